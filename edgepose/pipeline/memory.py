"""Current resident memory of this process, for soak runs (device side: standard library only)."""

from __future__ import annotations

import resource
import sys


def rss_mb() -> float:
    """Resident set size now, in MiB: Linux reads VmRSS from /proc/self/status; elsewhere the peak (ru_maxrss), which
    can only show growth, never a fall."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
