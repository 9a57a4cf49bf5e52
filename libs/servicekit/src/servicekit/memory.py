"""Memory a service frees goes back to the system.

glibc's allocator raises its thresholds each time a large block (a fetched batch, say) is
freed, so that later large blocks come from the heap, which it then seldom shrinks: under
load credits held 136 to 149 MiB, against 127 to 130 MiB with the thresholds fixed
(docs/benchmarks.md, "What the C allocator kept").
"""

from __future__ import annotations

import ctypes

#: `M_TRIM_THRESHOLD` and `M_MMAP_THRESHOLD` of glibc's `mallopt` (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: glibc's defaults for both, where it starts before any block is freed: free memory above
#: this at the top of the heap goes back to the system, and a block this large gets pages
#: of its own, returned when it is freed.
THRESHOLD_BYTES = 128 * 1024


def return_freed_memory() -> bool:
    """Put glibc's thresholds back where they start, and keep them there (setting them
    stops glibc from raising them). False where the C library is not glibc: its allocator
    has no such thresholds."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    taken = [mallopt(p, THRESHOLD_BYTES) for p in (_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD)]
    return taken == [1, 1]
