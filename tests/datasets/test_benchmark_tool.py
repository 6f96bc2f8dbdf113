"""tools/benchmark.py data: runs end to end on generated videos and prints the summary line."""
import os
import re
import subprocess
import sys

import pytest

from tests.datasets.conftest import small_cfg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_benchmark_data_on_generated_videos():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    overrides = [
        "DATA.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "2", "DATA.TRAIN_JITTER_SCALES", "[64,80]",
        "DATA.TRAIN_CROP_SIZE", "56", "DATA.TEST_CROP_SIZE", "64", "TEST.NUM_ENSEMBLE_VIEWS", "2",
    ]
    cmd = [sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "data", "--make", "short", "--videos", "1",
           "--rounds", "1"] + overrides
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "test (6 views): ours" in proc.stdout
    pair = r"=\d+\.\d\d"
    assert re.fullmatch(rf"train_speedup{pair} test_speedup{pair}( train_vs_\w+{pair} test_vs_\w+{pair})*", lines[-1])
    for name in ("torchcodec", "decord"):  # each anchor is measured or skipped with a note
        assert f"train_vs_{name}=" in lines[-1] or f"note: {name} not measured" in proc.stdout


def test_benchmark_reports_a_bad_override(capsys):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import benchmark
    finally:
        sys.path.pop(0)
    assert benchmark.main(["data", "--make", "short", "DATA.NOPE", "1"]) == 2  # fails before any work
    assert "DATA.NOPE" in capsys.readouterr().err


def test_missing_anchor_is_reported_not_raised(monkeypatch):
    from m3a.datasets import decoder_anchors

    monkeypatch.setitem(decoder_anchors.ANCHORS, "nope", ("m3a_no_such_decoder_module", None))
    found, missing = decoder_anchors.available_anchors()
    assert "nope" not in found and missing["nope"].startswith("not installed")


@pytest.mark.parametrize("name", ["torchcodec", "decord"])
def test_anchor_decodes_our_frames_and_feeds_our_transforms(video_dir, name):
    from m3a.datasets import decoder_anchors

    found, missing = decoder_anchors.available_anchors()
    if name not in found:
        pytest.skip(f"{name}: {missing[name]}")
    path = os.path.join(video_dir, "a.mp4")
    cfg = small_cfg(video_dir)
    assert decoder_anchors.same_frames_as_ours(found[name], cfg, path)
    assert decoder_anchors.anchor_train_clip(found[name], cfg)(path).shape == (3, 4, 32, 32)
    assert decoder_anchors.anchor_test_views(found[name], cfg)(path).shape == (6, 3, 4, 40, 40)


def test_benchmark_metrics_agrees_with_sklearn_and_prints_the_ratios():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "metrics", "--videos", "120", "--classes",
           "12", "--rounds", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    for name in ("class", "sample"):
        line = next(line for line in lines if line.startswith(f"map_{name}:"))
        assert float(line.rsplit("|difference| ", 1)[1]) < 1e-6
    assert re.fullmatch(r"class_speedup=\d+\.\d sample_speedup=\d+\.\d", lines[-1])


def test_benchmark_data_measures_training_copies():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "data", "--make", "short", "--videos", "1",
           "--rounds", "1", "--training-copy", "96", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_JITTER_SCALES", "[64,80]",
           "DATA.TRAIN_CROP_SIZE", "56", "DATA.TEST_CROP_SIZE", "64", "TEST.NUM_ENSEMBLE_VIEWS", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "clips/s on the originals" in proc.stdout
    assert re.search(r" copy_speedup=\d+\.\d\d$", proc.stdout.strip().splitlines()[-1])
