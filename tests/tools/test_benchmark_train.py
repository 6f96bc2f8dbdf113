"""tools/benchmark.py train: runs the training step on the real loader and on a replayed batch
(and speed switches) on tiny settings and prints its summary line; bad switches fail early."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "benchmark.py")
DEMO = os.path.join(ROOT, "configs", "demo", "demo.yaml")


def _overrides(data_dir: str):
    return ["DATA.PATH_TO_DATA_DIR", data_dir, "MODEL.NUM_CLASSES", "4", "TRAIN.BATCH_SIZE", "4"]


def _benchmark():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import benchmark
    finally:
        sys.path.pop(0)
    return benchmark


def test_train_benchmark_prints_clips_per_second_and_ratios(tiny_demo_dir):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, TOOL, "train", "--cfg", DEMO, "--iters", "2", "--warmup", "1", "--rounds", "1",
           "--workers", "1", "--threads", "1", "--compare", "channels_last", *_overrides(tiny_demo_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "batch 4 of 8x56^2 clips on cpu (1 torch threads" in proc.stdout
    assert "loader workers 1" in proc.stdout and "precision: fp32" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    number = r"(\d+\.\d\d)"
    match = re.fullmatch(rf"real_clips_per_s={number} synthetic_clips_per_s={number} loader_ratio={number} "
                         rf"loader_only_clips_per_s={number} workers=1 channels_last_speedup={number}", last)
    assert match, last
    real, synthetic, ratio, alone, speedup = map(float, match.groups())
    assert real > 0 and synthetic > 0 and alone > 0 and speedup > 0
    assert ratio == pytest.approx(real / synthetic, abs=0.01 + 0.01 * ratio)
    # The switched model started from the same weights and saw the same batch: same losses.
    losses = re.search(r"mean loss of the last 5 steps (\d\.\d+) \(without: (\d\.\d+)\)", proc.stdout)
    assert losses and float(losses.group(1)) == pytest.approx(float(losses.group(2)), abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--compare", "channels_last+turbo"], "unknown switch 'turbo' in 'channels_last+turbo'"),
    (["--iters", "0"], "--iters must be at least 1"),
    (["TRAIN.ENABLE_AMP", "True", "TRAIN.AMP_DTYPE", "float16"], "TRAIN.AMP_DTYPE float16 needs CUDA"),
])
def test_train_benchmark_refuses_bad_requests_before_measuring(tiny_demo_dir, capsys, args, message):
    argv = ["train", "--cfg", DEMO, *args[:2], *_overrides(tiny_demo_dir), *args[2:]]
    assert _benchmark().main(argv) == 2
    assert message in capsys.readouterr().err


def test_switches_name_their_overrides():
    from m3a.engine.throughput import switch_overrides

    assert switch_overrides("channels_last+compile") == ["TRAIN.CHANNELS_LAST", "True", "MODEL.COMPILE", "True"]
    assert switch_overrides("bf16")[:4] == ["TRAIN.ENABLE_AMP", "True", "TRAIN.AMP_DTYPE", "bfloat16"]
