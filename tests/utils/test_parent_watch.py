"""A process that called die_with_parent ends when its parent is killed: through the kernel's
parent-death signal, and through the portable getppid() watcher alone."""
import os
import signal
import subprocess
import sys
import time

import pytest

LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "lib")

# The child: optionally disable the Linux prctl path, then sleep "forever" (SIGINT and SIGTERM
# ignored, as in a launcher started in the background).
CHILD = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
from m3a.utils import parent_watch
if sys.argv[1] == "fallback":
    parent_watch._set_pdeathsig = lambda sig: False
parent_watch.die_with_parent(os.getppid())
print(os.getpid(), flush=True)
time.sleep(120)
"""
# The parent: start the child, report its pid, wait.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to watch the child")
@pytest.mark.parametrize("way, limit_s", [("prctl", 1.0), ("fallback", 3.0)])
def test_child_dies_with_its_parent(way, limit_s):
    env = dict(os.environ, PYTHONPATH=LIB)
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, way], stdout=subprocess.PIPE, text=True, env=env)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait()
        killed = time.monotonic()
        while _alive(child) and time.monotonic() - killed < 10:
            time.sleep(0.02)
        took = time.monotonic() - killed
        assert not _alive(child), f"child still runs 10 s after its parent was killed ({way})"
        assert took < limit_s, f"{way}: child took {took:.2f} s"
    finally:
        parent.kill()
        parent.stdout.close()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
