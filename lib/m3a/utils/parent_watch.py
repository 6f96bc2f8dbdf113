"""Make a spawned process die with the process that launched it.

A rank whose launcher was killed (``kill -9``, an out-of-memory kill, a closed terminal) would
otherwise keep training and writing checkpoints. On Linux the kernel sends SIGKILL to the
process when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls
``os.getppid()`` and kills the process once the launcher is gone.
"""
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
# Seconds between parent checks of the portable fallback.
POLL_S = 0.5


def _set_pdeathsig(sig: int) -> bool:
    """Ask the Linux kernel to send ``sig`` to this process when its parent dies; True on success."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent(parent_pid: int) -> None:
    """Kill this process (SIGKILL: it also ends a stopped or blocked process) when
    ``parent_pid``, its launcher, exits; at once when the launcher is already gone."""
    if not _set_pdeathsig(signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="m3a-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # the launcher died before the kernel could be told
        os.kill(os.getpid(), signal.SIGKILL)
