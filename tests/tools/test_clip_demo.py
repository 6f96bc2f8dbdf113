"""tools/clip_demo.py: on a small 12-class demo set it splits the classes, trains the demo M2CLIP
on the seen ones, tests them and scores the held-out names zero-shot, reporting both top-1s."""
import json

import numpy as np
import pytest

from m3a.prep.demo_data import make_demo_dataset
from m3a.prep.zero_shot_split import chance_top1, read_list
from tests.tools.conftest import run_tool

SHORT = ["SOLVER.MAX_EPOCH", "1", "TRAIN.MAX_ITERS_PER_EPOCH", "2", "TRAIN.BATCH_SIZE", "4", "TEST.BATCH_SIZE", "4",
         "TEST.NUM_ENSEMBLE_VIEWS", "1", "DATA_LOADER.NUM_WORKERS", "0", "DATA_LOADER.PERSISTENT_WORKERS", "False",
         "LOG_MODEL_INFO", "False"]


def test_missing_data_names_the_command_that_makes_it(tmp_path):
    done = run_tool("clip_demo", "--data", tmp_path / "nothing", "--out", tmp_path / "out", check=False)
    assert done.returncode == 2
    assert "make_demo_data.py --classes 12 --out" in done.stderr and "Traceback" not in done.stderr


def test_a_held_out_class_without_shared_words_is_refused(tmp_path):
    # Held out with its shape partner (6) and its motion partner (1), "white star bouncing" has no word left.
    # (Nothing trains: the split is checked first.)
    data = tmp_path / "demo"
    make_demo_dataset(str(data), 24, 12, seed=0, duration=1.0, size=32, workers=1)
    done = run_tool("clip_demo", "--data", data, "--out", tmp_path / "out", "--held-out", 1, 6, 7, check=False)
    assert done.returncode == 2 and "share no word" in done.stderr and "white star bouncing" in done.stderr


@pytest.mark.slow
def test_tiny_run_reports_seen_top1_and_zero_shot_top1_next_to_chance(tmp_path):
    data, out = tmp_path / "demo", tmp_path / "out"
    make_demo_dataset(str(data), 24, 12, seed=0, duration=1.5, size=64, workers=1)
    stale = out / "train" / "checkpoints" / "checkpoint_epoch_00020.pyth"  # an earlier, longer run's
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not this run's model")
    done = run_tool("clip_demo", "--data", data, "--out", out, *SHORT)
    with open(out / "clip_demo.json") as f:
        result = json.load(f)
    seen, zero = result["seen"], result["zero_shot"]
    assert zero["names"] == ["white star bouncing", "lime bar growing", "brown diamond falling"]
    seen_test = read_list(str(data / "test-seen.csv"), 9)
    assert len(seen["names"]) == 9 and seen["chance"] == pytest.approx(chance_top1(seen_test, 9))
    held = read_list(str(data / "test-heldout.csv"), 3)
    assert zero["videos"] == len(held) > 0 and zero["chance"] == pytest.approx(chance_top1(held, 3))
    # The numbers are those of the two test runs (seen classes; held-out names, zero-shot).
    for part, run in ((seen, "train"), (zero, "zero_shot")):
        with open(out / run / "test_metrics.json") as f:
            assert part["top1"] == pytest.approx(json.load(f)["top1"])
    with np.load(out / "zero_shot" / "test_predictions.npz") as f:
        assert f["scores"].shape == (len(held), 3)
    assert 0 <= zero["without_word_sharers"]["videos"] <= len(held)
    assert f"top-1 {zero['top1']:.3f} on {len(held)} videos (chance {zero['chance']:.3f})" in done.stdout
    assert f"seen_top1={seen['top1']:.4f} zero_shot_top1={zero['top1']:.4f}" in done.stdout
    assert result["checkpoint"] == str(out / "train" / "checkpoints" / "checkpoint_epoch_00001.pyth")
