"""``steady_allocator``: large freed blocks go back to the system instead of staying resident in glibc's heap.

Each case runs in its own process, as the threshold is per process and only ever set once.
"""

import subprocess
import sys

import pytest

SCRIPT = """
import sys, torch
from nichetune.hardware import rss_mb, steady_allocator
if sys.argv[1] == "steady":
    assert steady_allocator()
x = torch.ones(24 * 2**18); del x  # a 24 MB block freed: by default glibc now serves blocks up to 24 MB from its heap
base = rss_mb()
big, small = [], []
for i in range(10):  # 20 MB blocks, each followed by a small block that stays alive above it in the heap
    big.append(torch.ones(20 * 2**18 + i)); small.append(torch.ones(64))
del big
print(round(rss_mb() - base))
"""


def _retained_mb(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_freed_between_live_small_ones_leave_no_resident_memory():
    default, steady = _retained_mb("default"), _retained_mb("steady")
    assert default > 100  # the failure it prevents: 200 MB freed, most of it still resident
    assert steady < 20
