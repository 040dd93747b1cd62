"""``python -m edgepose.profiling.worker JOB.json RESULT.json``: one bench job in a fresh process.

Started by :func:`edgepose.profiling.runner.run_job_isolated`. On failure it prints one line (the error)
on stdout for the parent to report and exits non-zero; the progress bar goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    from edgepose.errors import EdgeposeError
    from edgepose.profiling.bench import bench_job

    job_file, out_file = argv
    with open(job_file) as f:
        job = json.load(f)
    try:
        result = bench_job(job, progress=job.pop("progress", True))
    except EdgeposeError as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return 1
    except Exception as exc:  # a backend failure: one line for the parent, the traceback on stderr
        import traceback

        traceback.print_exc()
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return 1
    tmp = f"{out_file}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, out_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
