"""Peak resident memory of this process (numpy and torch allocations alike), for the benchmarks."""

from __future__ import annotations

from pathlib import Path


def rss_peak() -> int | None:
    """Peak resident memory (bytes) since the last reset, from /proc (Linux); None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_rss_peak() -> int | None:
    """Reset the peak to the current resident memory and return it (None where unsupported)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return rss_peak()
