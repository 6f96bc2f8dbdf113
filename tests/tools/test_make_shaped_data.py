"""tools/make_shaped_data.py and m3a.prep.shaped_data: a synthetic folder shaped for a config that
the model, the loader and `benchmark.py train` use unchanged; resumes, refuses foreign folders."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from m3a.config import load_config
from m3a.datasets.decoder import check_video
from m3a.datasets.video_dataset import build_dataset
from m3a.models.build import build_model
from m3a.models.node_features import load_m3a_inputs
from m3a.prep.shaped_data import ShapedDataError, make_shaped_dataset
from tests.tools.conftest import ROOT, run_tool

DEMO = os.path.join(ROOT, "configs", "demo", "demo.yaml")
MMIT = os.path.join(ROOT, "configs", "Mmit", "R2PLUS1D_GRAPH_8x2.yaml")
# Small videos keep the tests fast: 1 s, 32-px short side, 4:3.
SMALL = dict(seconds=1.0, short_side=32, aspect=4 / 3)


def _cfg(data_dir, *opts):
    return load_config(DEMO, ["DATA.PATH_TO_DATA_DIR", str(data_dir), "MODEL.NUM_CLASSES", "7",
                              "M3A.TEXT_VEC_SIZE", "24", "LOG_MODEL_INFO", "False", *opts])


def _read_list(path):
    with open(path) as f:
        return [line.rstrip("\n").split(",") for line in f]


def test_folder_feeds_the_loader_and_the_model_unchanged(tmp_path):
    cfg = _cfg(tmp_path)
    assert make_shaped_dataset(cfg, str(tmp_path), 5, seed=3, **SMALL) is True
    rows = _read_list(tmp_path / "train-demo.csv")
    assert len(rows) == 5 and all(1 <= len(r) - 1 <= 3 for r in rows)
    assert all(0 <= int(label) < 7 for r in rows for label in r[1:])
    assert _read_list(tmp_path / "val-demo.csv") == rows == _read_list(tmp_path / "test-demo.csv")
    assert all(check_video(str(tmp_path / r[0]), cfg.DATA.INPUT_FORMAT) is None for r in rows)
    with open(tmp_path / "categories-demo.txt") as f:
        assert f.read().split() == [f"class_{c:03d}" for c in range(7)]
    inputs = load_m3a_inputs(cfg)
    assert inputs["psi"].shape == (7, 7) and inputs["text"].shape == (7, 24)
    assert len(inputs["audio"]["label"]) == 7 and all(len(k) == 1 for k in inputs["audio"]["label"].values())
    assert {v.shape for v in inputs["audio"]["audio"].values()} == {(384,)}
    # psi is the co-occurrence of the drawn labels: 1 where a class always comes with another.
    labels = [[int(x) for x in r[1:]] for r in rows]
    pair = next(lab for lab in labels if len(lab) > 1)
    assert inputs["psi"][pair[0], pair[1]] > 0
    clip, target, _, _ = build_dataset("mmit", cfg, "train")[0]
    assert tuple(clip.shape) == (3, 8, 56, 56) and target.sum().item() == len(labels[0])
    logits = build_model(cfg).eval()(clip.unsqueeze(0))
    assert tuple(logits.shape) == (1, 7) and torch.isfinite(logits).all()


def test_same_seed_same_labels_and_lexicons(tmp_path):
    cfg = _cfg(tmp_path)
    for name in ("a", "b"):
        make_shaped_dataset(cfg, str(tmp_path / name), 3, seed=1, **SMALL)
    for path in ("train-demo.csv", "mmit-m3a/text-lexicon-demo.npz", "mmit-m3a/graph-adj-demo.npz"):
        with open(tmp_path / "a" / path, "rb") as a, open(tmp_path / "b" / path, "rb") as b:
            assert a.read() == b.read(), path


def test_interrupted_run_resumes_and_foreign_folders_are_refused(tmp_path):
    out = tmp_path / "shaped"
    cfg = _cfg(out)
    make_shaped_dataset(cfg, str(out), 3, **SMALL)
    kept = out / "videos" / "video_0000.mp4"
    stamp = os.stat(kept).st_mtime_ns
    os.remove(out / "videos" / "video_0002.mp4")
    os.remove(out / ".complete")  # as if interrupted while writing the last video
    calls = []
    assert make_shaped_dataset(cfg, str(out), 3, progress=lambda: calls.append(1), workers=2, **SMALL) is True
    assert check_video(str(out / "videos" / "video_0002.mp4"), cfg.DATA.INPUT_FORMAT) is None
    assert os.path.isfile(out / ".complete")
    assert os.stat(kept).st_mtime_ns == stamp and len(calls) == 3
    assert make_shaped_dataset(cfg, str(out), 3, **SMALL) is False  # complete: nothing to do
    with pytest.raises(ShapedDataError, match="holds another shaped data set"):
        make_shaped_dataset(cfg, str(out), 4, **SMALL)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine\n")
    with pytest.raises(ShapedDataError, match="holds other files"):
        make_shaped_dataset(cfg, str(tmp_path / "other"), 3, **SMALL)
    with pytest.raises(ShapedDataError, match="only M-MiT-style configs"):
        make_shaped_dataset(_cfg(out, "TRAIN.DATASET", "kinetics"), str(tmp_path / "k"), 3, **SMALL)


def test_tool_writes_mmit_like_videos_for_the_recipe_config(tmp_path):
    out = tmp_path / "mmit"
    proc = run_tool("make_shaped_data", "--cfg", MMIT, "--out", out, "--videos", 2, "MODEL.NUM_CLASSES", 5)
    assert f"{out}: 2 videos, 5 classes, version v1: written" in proc.stdout
    import av

    with av.open(str(out / "videos" / "video_0001.mp4")) as container:
        video = container.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 342, 256)
        assert len(container.streams.audio) == 1
    assert len(_read_list(out / "train-v1.csv")) == 2
    with np.load(out / "mmit-m3a" / "text-lexicon-v1.npz") as npz:
        assert npz["lexicon"].shape == (5, 300)  # the recipe takes the width from the file
    again = run_tool("make_shaped_data", "--cfg", MMIT, "--out", out, "--videos", 2, "MODEL.NUM_CLASSES", 5)
    assert "already complete" in again.stdout
    refused = run_tool("make_shaped_data", "--cfg", MMIT, "--out", out, "--videos", 3, "MODEL.NUM_CLASSES", 5,
                       check=False)
    assert refused.returncode == 2 and "holds another shaped data set" in refused.stderr


def test_train_benchmark_runs_on_a_shaped_folder(tmp_path):
    make_shaped_dataset(_cfg(tmp_path), str(tmp_path), 4, **SMALL)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))
    cmd = [sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "train", "--cfg", DEMO, "--iters", "1",
           "--warmup", "0", "--rounds", "1", "--workers", "1", "--threads", "1", "DATA.PATH_TO_DATA_DIR",
           str(tmp_path), "MODEL.NUM_CLASSES", "7", "M3A.TEXT_VEC_SIZE", "24", "TRAIN.BATCH_SIZE", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"real_clips_per_s=\S+ synthetic_clips_per_s=\S+ loader_ratio=\S+ "
                        r"loader_only_clips_per_s=\S+ workers=1", last), last
