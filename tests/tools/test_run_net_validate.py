"""``run_net.py --validate CHECKPOINT`` end to end on the tiny demo data (real subprocesses): the
val-phase metrics of that checkpoint, strict loading, the checkpoint and epoch named, an atomic
result file, nothing trained; and the per-epoch summary line of the training run."""
import json
import os
import subprocess
import sys

import pytest

from m3a.utils import checkpoint as cu
from m3a.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = ["--cfg", "configs/demo/demo.yaml"]
SMALL = ["MODEL.NUM_CLASSES", "4", "NUM_GPUS", "0", "DATA_LOADER.NUM_WORKERS", "0", "LOG_MODEL_INFO", "False",
         "TEST.ENABLE", "False", "TRAIN.BATCH_SIZE", "4", "TRAIN.MAX_ITERS_PER_EPOCH", "2"]
METRICS = ("map_class", "map_sample", "top1", "top5", "precision_micro", "recall_micro", "f1_micro",
           "precision_macro", "recall_macro", "f1_macro", "num_videos", "failed_videos", "threshold")


def run_net(*args):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))
    return subprocess.run([sys.executable, "tools/run_net.py", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


@pytest.fixture(scope="module")
def trained(tiny_demo_dir, tmp_path_factory):
    """A 2-epoch demo run validated after each epoch (the first epoch without validation)."""
    out = str(tmp_path_factory.mktemp("validate") / "train")
    proc = run_net(*DEMO, *SMALL, "DATA.PATH_TO_DATA_DIR", tiny_demo_dir, "OUTPUT_DIR", out,
                   "SOLVER.MAX_EPOCH", "2", "TRAIN.EVAL_PERIOD", "2", "TRAIN.CHECKPOINT_PERIOD", "1")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


def test_validate_scores_a_checkpoint_as_the_val_phase_did(trained, tiny_demo_dir, tmp_path):
    train_out, _ = trained
    checkpoint = cu.checkpoint_path(train_out, 2)
    out = str(tmp_path / "val")
    proc = run_net(*DEMO, "--validate", checkpoint, *SMALL, "DATA.PATH_TO_DATA_DIR", tiny_demo_dir, "OUTPUT_DIR", out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(os.path.join(out, "val_metrics.json")) as f:
        result = json.load(f)
    phase = read_json_stats(train_out, "val_epoch")[-1]
    assert phase["epoch"] == 2 and result["epoch"] == 2
    assert result["checkpoint"] == checkpoint and result["weights"] == "model"
    assert result["val_list"] == os.path.join(tiny_demo_dir, "val-demo.csv")
    assert result["num_videos"] == 4
    for key in METRICS:  # the same numbers as the training run's validation of these weights
        assert result[key] == pytest.approx(phase[key], abs=1e-6), key
    line = [row for row in proc.stdout.splitlines() if "validation results:" in row]
    assert len(line) == 1 and f"{checkpoint} (epoch 2) | model weights" in line[0]
    assert f"class-wise mAP {phase['map_class']:.4f}" in line[0]
    # Nothing trained or tested; the result was written through a renamed temporary file.
    assert sorted(os.listdir(out)) == ["json_stats.log", "stdout.log", "val_metrics.json"]
    assert not read_json_stats(out, "train_epoch") and not read_json_stats(out, "test")


def test_validate_loads_strictly_and_names_a_missing_file(trained, tiny_demo_dir, tmp_path):
    train_out, _ = trained
    checkpoint = cu.checkpoint_path(train_out, 1)
    proc = run_net(*DEMO, "--validate", checkpoint, *SMALL, "M3A.MODE", "NONE", "DATA.PATH_TO_DATA_DIR",
                   tiny_demo_dir, "OUTPUT_DIR", str(tmp_path / "a"))
    lines = [row for row in proc.stderr.splitlines() if row.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"error: {checkpoint}: ") and "checkpoint key(s) not in the model" in lines[0]
    assert "the checkpoint was trained with M3A.MODE" in lines[0]
    missing = str(tmp_path / "nope.pyth")
    proc = run_net(*DEMO, "--validate", missing, *SMALL, "DATA.PATH_TO_DATA_DIR", tiny_demo_dir,
                   "OUTPUT_DIR", str(tmp_path / "b"))
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: checkpoint not found: {missing}"
    assert not os.path.exists(os.path.join(tmp_path / "b", "val_metrics.json"))


def test_every_epoch_ends_with_a_summary_line(trained):
    train_out, proc = trained
    summaries = [row.split("m3a.engine.train_loop: ", 1)[1] for row in proc.stdout.splitlines()
                 if "m3a.engine.train_loop: epoch " in row and " | " in row]
    epochs = read_json_stats(train_out, "train_epoch")
    val = read_json_stats(train_out, "val_epoch")[0]
    assert len(summaries) == len(epochs) == 2
    first, second = summaries
    assert first.startswith(f"epoch 1/2: train loss {epochs[0]['loss']:.4f}, lr {epochs[0]['lr']:.4g} | "
                            "no validation | ")
    assert first.endswith(f"| failed videos: {epochs[0]['failed_videos']} train")
    assert second.startswith(
        f"epoch 2/2: train loss {epochs[1]['loss']:.4f}, lr {epochs[1]['lr']:.4g} | val class mAP "
        f"{val['map_class']:.4f}, sample mAP {val['map_sample']:.4f}, top-1 {val['top1']:.4f}, top-5 "
        f"{val['top5']:.4f}, P/R/F1@0.5 micro {val['precision_micro']:.4f}/{val['recall_micro']:.4f}/"
        f"{val['f1_micro']:.4f} macro {val['precision_macro']:.4f}/{val['recall_macro']:.4f}/"
        f"{val['f1_macro']:.4f} | ")
    assert second.endswith(f"| failed videos: {epochs[1]['failed_videos']} train, {val['failed_videos']} val")
    timing = second.split(" | ")[2]
    total, train_s, val_s = (float(x) for x in
                             timing.replace("(train ", "").replace(" s,", "").replace("val ", "").replace(" s)", "")
                             .replace(" s", "").split())
    # Times are printed to 0.1 s: a fast validation of 4 videos may show 0.0 s.
    assert train_s > 0 and val_s >= 0 and total == pytest.approx(train_s + val_s, abs=0.11)
