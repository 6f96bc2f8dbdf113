"""tools/benchmark.py data: runs end to end on generated videos and prints the summary line."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_benchmark_data_on_generated_videos():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    overrides = [
        "DATA.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "2", "DATA.TRAIN_JITTER_SCALES", "[64,80]",
        "DATA.TRAIN_CROP_SIZE", "56", "DATA.TEST_CROP_SIZE", "64", "TEST.NUM_ENSEMBLE_VIEWS", "2",
    ]
    cmd = [sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "data", "--make-short", "--videos", "1",
           "--rounds", "1"] + overrides
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "test (6 views)" in lines[-2]
    assert re.fullmatch(r"train_speedup=\d+\.\d\d test_speedup=\d+\.\d\d", lines[-1])


def test_benchmark_reports_a_bad_override(capsys):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import benchmark
    finally:
        sys.path.pop(0)
    assert benchmark.main(["data", "--make-short", "DATA.NOPE", "1"]) == 2  # fails before any work
    assert "DATA.NOPE" in capsys.readouterr().err
