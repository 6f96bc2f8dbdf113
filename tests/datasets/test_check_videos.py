"""tools/check_videos.py on a list of good and broken real videos."""
import os
import subprocess
import sys

from m3a.datasets.decoder import check_video
from m3a.utils.synthetic_video import write_video
from tests.datasets.conftest import BROKEN, write_list

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cut_faststart_video(folder: str) -> str:
    """An mp4 whose index comes first but whose data is cut off at 40 %."""
    full = write_video(os.path.join(folder, "full.mp4"), 90, height=64, width=64, faststart=True, gop=10)
    with open(full, "rb") as f:
        data = f.read()
    cut = os.path.join(folder, "cut.mp4")
    with open(cut, "wb") as f:
        f.write(data[: int(len(data) * 0.4)])
    return cut


def test_check_video_reasons(video_dir, tmp_path):
    assert check_video(os.path.join(video_dir, "a.mp4")) is None
    assert check_video(os.path.join(video_dir, "vfr.mp4")) is None
    assert check_video(os.path.join(video_dir, "missing.mp4")) == "file not found"
    assert check_video(os.path.join(video_dir, "empty.mp4")) == "empty file"
    assert check_video(os.path.join(video_dir, "audio_only.mp4")) == "no video stream"
    assert check_video(os.path.join(video_dir, "frames_a"), "frames") is None
    assert check_video(_cut_faststart_video(str(tmp_path))) is not None  # decoding fails mid-way


def test_check_videos_tool(video_dir, tmp_path):
    names = ["a.mp4", "b.mp4", "short.mp4", "odd.mp4"] + BROKEN
    list_path = write_list(os.path.join(tmp_path, "list.csv"), {n: (0, 1) for n in names})
    out = os.path.join(tmp_path, "broken.txt")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, os.path.join(ROOT, "tools", "check_videos.py"), list_path, "--prefix", video_dir]
    proc = subprocess.run(cmd + ["--out", out, "--workers", "2"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"checked 8 videos: 4 ok, 4 broken (listed in {out})"
    lines = open(out).read().splitlines()
    assert [line.split("\t")[0] for line in lines] == [os.path.join(video_dir, n) for n in BROKEN]
    assert all(len(line.split("\t")) == 2 and line.split("\t")[1] for line in lines)


def test_check_videos_tool_rejects_a_bad_list(tmp_path, capsys):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import check_videos
    finally:
        sys.path.pop(0)
    list_path = write_list(os.path.join(tmp_path, "list.csv"), {"a.mp4": (0,), "b.mp4": ("x",)})
    assert check_videos.main([list_path]) == 2
    assert "list.csv:2: labels must be integers" in capsys.readouterr().err
