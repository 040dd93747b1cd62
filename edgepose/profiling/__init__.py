"""Latency profiling: the bench loop (``bench``), running jobs in fresh processes (``runner``), the report
schema (``schema``) and the JSON / Markdown / HTML writers (``report``, ``plots``). Device side: no torch."""
