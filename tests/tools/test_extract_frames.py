"""tools/extract_frames.py on real videos: every frame as a JPEG, resized, resumable, parallel."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from m3a.prep.frame_extraction import frame_size
from tests.prep.media import write_video

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "extract_frames.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_frame_size_by_short_side_or_height():
    assert frame_size(320, 240, short_side=120) == (160, 120)
    assert frame_size(240, 320, short_side=120) == (120, 160)
    assert frame_size(427, 240, target_height=256) == (455, 256)
    assert frame_size(50, 40) == (50, 40)


def test_extracts_every_frame_resized_and_resumes(tmp_path):
    videos, out = tmp_path / "videos", tmp_path / "frames"
    for name, seconds in (("a/v1.mp4", 1.0), ("a/v2.mp4", 0.5), ("b/v3.mkv", 0.3)):
        os.makedirs(videos / os.path.dirname(name), exist_ok=True)
        write_video(str(videos / name), seconds, size=(32, 24), fps=10)
    (videos / "b" / "broken.mp4").write_bytes(b"not a video at all" * 10)
    proc = run_tool("--videos-root", videos, "--out-root", out, "--height", 12, "--workers", 2)
    assert proc.returncode == 0, proc.stderr
    assert "done: 3" in proc.stdout and "failed: 1" in proc.stdout
    counts = {f: sorted(os.listdir(out / f)) for f in ("a/v1", "a/v2", "b/v3")}
    assert counts["a/v1"] == [f"{i:06d}.jpg" for i in range(1, 11)]
    assert len(counts["a/v2"]) == 5 and len(counts["b/v3"]) == 3
    second = Image.open(out / "a" / "v1" / "000002.jpg")
    assert second.size == (16, 12) and second.mode == "RGB"
    # write_video's frame i is grey level 25 i with a bright strip at the left.
    assert abs(float(np.asarray(second)[:, -4:].mean()) - 25) < 8
    assert not os.path.exists(out / "b" / "broken")
    assert "broken.mp4" in (out / "failed.txt").read_text()
    assert not [n for n in os.listdir(out / "a") if n.startswith(".tmp-")]
    again = run_tool("--videos-root", videos, "--out-root", out, "--height", 12)
    assert "skipped: 3" in again.stdout and "failed: 1" in again.stdout
