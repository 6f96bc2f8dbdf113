"""tools/build_mini_mmit.py on real videos with and without audio."""
import os

import numpy as np

from m3a.prep.mini_mmit import select_mini
from tests.tools.conftest import run_tool


def _kept(path):
    with open(path) as f:
        return [line.rstrip("\n") for line in f]


def test_keeps_expected_videos_for_seed(video_set, tmp_path):
    out = tmp_path / "mini.csv"
    proc = run_tool("build_mini_mmit", "--list", video_set["list"], "--videos-root", video_set["root"],
                    "--out", out, "--per-class", 3, "--seed", 0, "--workers", 2,
                    "--class-names", video_set["names"], "--dropped-list", tmp_path / "dropped.txt")
    # Category 0 (by FIRST label) has 5 videos with audio: a0..a4; default_rng(0) draws
    # positions [2, 3, 4] of 5 -> a2, a3, a4. b1 ("1,0") counts for category 1, not 0.
    # n0 and s0 have no audio, q0's track is silent but present (kept), the missing file is dropped.
    assert _kept(out) == [
        "c0/a2.mp4,0,1", "c0/a3.mp4,0", "c0/a4.mp4,0",
        "c1/b0.mp4,1", "c1/b1.mp4,1,0",
        "c3/q0.mp4,3", "c3/q1.mp4,3,1",
    ]
    assert "7 of 12 videos" in proc.stdout
    assert "2 without audio, 1 unreadable" in proc.stdout
    assert "dog+barking" in proc.stdout
    dropped = sorted(open(tmp_path / "dropped.txt").read().split("\n"))[1:]
    assert dropped == ["c0/n0.mp4\tno-audio", "c2/s0.mp4\tno-audio", "c4/missing.mp4\tunreadable"]


def test_other_seed_other_draw_and_resume_from_cache(video_set, tmp_path):
    out = tmp_path / "mini.csv"
    args = ["--list", video_set["list"], "--videos-root", video_set["root"], "--per-class", 3]
    run_tool("build_mini_mmit", *args, "--out", out, "--seed", 1)
    first = _kept(out)[:3]
    assert first == ["c0/a1.mp4,0", "c0/a2.mp4,0,1", "c0/a3.mp4,0"]  # default_rng(1): [1, 2, 3]
    cache = str(out) + ".probe.tsv"
    assert len(open(cache).read().splitlines()) == 12
    # A re-run reuses the cache: mark a4 as no-audio there and it disappears from the pool.
    with open(cache, "a") as f:
        f.write("c0/a4.mp4\tno-audio\n")
    run_tool("build_mini_mmit", *args, "--out", out, "--seed", 0, "--per-class", 10)
    assert not any(line.startswith("c0/a4.mp4") for line in _kept(out))
    assert len(_kept(out)) == 8  # a0..a3, b0, b1, q0, q1


def test_select_mini_caps_and_is_seeded():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 400)
    keep = rng.random(400) > 0.2
    chosen = select_mini(labels, keep, per_class=50, seed=3)
    assert chosen == sorted(chosen) and chosen == select_mini(labels, keep, 50, 3)
    assert chosen != select_mini(labels, keep, 50, 4)
    for c in range(4):
        pool = np.flatnonzero((labels == c) & keep)
        mine = [i for i in chosen if labels[i] == c]
        assert len(mine) == min(50, pool.size) and set(mine) <= set(pool)


def test_bad_list_line_is_a_one_line_error(tmp_path, video_set):
    bad = tmp_path / "bad.csv"
    bad.write_text("c0/a0.mp4,0\nc0/a1.mp4,x\n")
    proc = run_tool("build_mini_mmit", "--list", bad, "--videos-root", video_set["root"],
                    "--out", tmp_path / "o.csv", check=False)
    assert proc.returncode == 2
    assert f"{bad}:2:" in proc.stderr and "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "o.csv")
