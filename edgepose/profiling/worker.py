"""``python -m edgepose.profiling.worker JOB.json RESULT.json ERROR.txt``: one bench job in a fresh process.

Started by :func:`edgepose.profiling.runner.run_job_isolated`. On failure it writes the error as the first
line of ERROR.txt (the traceback below it, for unexpected errors) and exits 1; the terminal only ever sees
the progress bar on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    import faulthandler

    from edgepose.errors import EdgeposeError
    from edgepose.profiling.bench import bench_job

    faulthandler.enable(all_threads=True)  # a backend crashing natively prints the Python stack to our stderr
    job_file, out_file, err_file = argv
    with open(job_file) as f:
        job = json.load(f)
    try:
        result = bench_job(job, progress=job.pop("progress", True))
    except EdgeposeError as exc:
        _write(err_file, (str(exc).splitlines() or [type(exc).__name__])[0] + "\n")
        return 1
    except Exception as exc:  # a backend failure: one line for the parent, the traceback kept below it
        first = (str(exc).splitlines() or [""])[0]
        _write(err_file, f"{type(exc).__name__}: {first}\n{traceback.format_exc()}")
        return 1
    _write(out_file, json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
