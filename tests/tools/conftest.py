"""Shared fixtures for the prep tools: a tiny real video collection and a way to run the tools."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.prep.media import tone, write_video

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# path -> (labels, audio): "tone" a sine, "silent" an all-zero track, None no audio stream.
VIDEOS = {
    "c0/a0.mp4": ("0,2", 300.0),
    "c0/a1.mp4": ("0", 500.0),
    "c0/n0.mp4": ("0", None),
    "c0/a2.mp4": ("0,1", 700.0),
    "c0/a3.mp4": ("0", 900.0),
    "c0/a4.mp4": ("0", 1100.0),
    "c1/b0.mp4": ("1", 1300.0),
    "c1/b1.mp4": ("1,0", 1500.0),
    "c2/s0.mp4": ("2", None),
    "c3/q0.mp4": ("3", "silent"),
    "c3/q1.mp4": ("3,1", 1700.0),
}
MISSING = ("c4/missing.mp4", "4")


@pytest.fixture(scope="session")
def video_set(tmp_path_factory):
    """Videos (1 s, 32x24, AAC 16 kHz where present) and a list including a missing file."""
    root = tmp_path_factory.mktemp("videos")
    for path, (_, audio) in VIDEOS.items():
        os.makedirs(root / os.path.dirname(path), exist_ok=True)
        if audio is None:
            wave = None
        elif audio == "silent":
            wave = np.zeros(16000, np.float32)
        else:
            wave = tone(1.0, audio, amplitude=0.4)
        write_video(str(root / path), 1.0, wave)
    lines = [f"{p},{labels}" for p, (labels, _) in VIDEOS.items()] + [f"{MISSING[0]},{MISSING[1]}"]
    list_path = root / "train-t.csv"
    list_path.write_text("\n".join(lines) + "\n")
    names = root / "categories-t.txt"
    names.write_text("dog+barking\nsinging\nrain/storm\nengine running\nwhistling\n")
    return {"root": str(root), "list": str(list_path), "names": str(names), "lines": lines}


def run_tool(name, *args, check=True):
    """Run tools/<name>.py in a fresh interpreter; return the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))  # this checkout's package
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", name + ".py"), *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc
