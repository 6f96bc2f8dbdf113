"""The Charades configs load, validate, build their models (full size: parameter counts; tiny: a
training step and a max-ensembled test), and run end to end on lists made by the Charades tool."""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch

from m3a.config import load_config
from m3a.datasets.list_formats import resolve_list_format
from m3a.datasets.multiview import combine_views
from m3a.engine.lr_policy import get_lr_at_epoch
from m3a.models import BACKBONE_REGISTRY, HEAD_REGISTRY, build_model
from m3a.models.build import component_names
from m3a.models.losses import get_loss_func
from m3a.models.model_info import params_count
from m3a.utils.synthetic_video import write_video
from tests.tools.charades_files import write_annotations

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = os.path.join(REPO, "configs", "Charades")
# Published counts (DESIGN.md section 1, tests/models/test_action_net_configs.py) moved to 157
# classes: R(2+1)D-34 + FC is 63,652,544 at 313 classes (FC 512 -> N); ACTION-Net R50 + TSN FC is
# 28,082,378 at 174 classes (FC 2048 -> N). The one-layer text GCN is W (300 x C) and b (C).
R2P1D_BACKBONE = 63_652_544 - 513 * 313
ACTION_BACKBONE = 28_082_378 - 2049 * 174
# File -> ((backbone, neck, head), (M3A.MODE, MODAL_TYPE), parameters).
EXPECTED = {
    "R2PLUS1D_G_VT.yaml": (("video_resnet", "video_avgpool", "m3a"), ("GRAPH", "TEXT"),
                           R2P1D_BACKBONE + 300 * 512 + 512),
    "R2PLUS1D_BASELINE.yaml": (("video_resnet", "video_avgpool", "fc"), ("NONE", "NONE"),
                               R2P1D_BACKBONE + 513 * 157),
    "ACTION_R50_G_VT.yaml": (("action_resnet", "segment_consensus", "m3a"), ("GRAPH", "TEXT"),
                             ACTION_BACKBONE + 300 * 2048 + 2048),
    "ACTION_R50_BASELINE.yaml": (("action_resnet", "segment_consensus", "tsn_fc"), ("NONE", "NONE"),
                                 ACTION_BACKBONE + 2049 * 157),
}


def _load(name, *opts):
    return load_config(os.path.join(FOLDER, name), ["LOG_MODEL_INFO", "False", *opts])


def _random_inputs(cfg, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n = cfg.MODEL.NUM_CLASSES
    return {"psi": torch.rand(n, n, generator=gen, dtype=torch.float64).fill_diagonal_(0.0),
            "text": torch.randn(n, cfg.M3A.TEXT_VEC_SIZE, generator=gen)}


def test_every_config_is_listed():
    assert {os.path.basename(p) for p in glob.glob(os.path.join(FOLDER, "*.yaml"))} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_charades_data_and_evaluation_settings(name):
    cfg = _load(name)
    components, (mode, modal), _ = EXPECTED[name]
    assert component_names(cfg) == components
    assert (cfg.M3A.MODE, cfg.M3A.MODAL_TYPE) == (mode, modal)
    assert (cfg.TRAIN.DATASET, cfg.TEST.DATASET, cfg.DATA.MMIT_VERSION) == ("charades", "charades", "charades")
    assert resolve_list_format(cfg, "mmit_csv") == "mmit_csv" and cfg.DATA.INPUT_FORMAT == "video"
    assert cfg.MODEL.NUM_CLASSES == 157 and cfg.DATA.MULTI_LABEL
    assert (cfg.MODEL.LOSS_FUNC, cfg.MODEL.HEAD_ACT) == ("bce_logit", "sigmoid")
    # The field's Charades test: 10 clips x 3 crops per video, combined by max.
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, cfg.DATA.ENSEMBLE_METHOD) == (10, 3, "max")
    lrs = [get_lr_at_epoch(cfg, e) for e in range(cfg.SOLVER.MAX_EPOCH)]
    assert cfg.SOLVER.MAX_EPOCH == 57
    assert lrs == pytest.approx([0.01 * 0.1 ** ((e >= 41) + (e >= 49)) for e in range(57)])
    if name.startswith("R2PLUS1D"):
        assert (cfg.MODEL.ARCH, cfg.MODEL.DEPTH, cfg.DATA.TRAIN_CROP_SIZE) == ("r2plus1d", 34, 112)
        assert (cfg.DATA.TEMPORAL_SAMPLER, cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == ("dense", 32, 4)
    else:
        assert (cfg.ACTION.VARIANT, cfg.ACTION.DEPTH, cfg.DATA.TRAIN_CROP_SIZE) == ("action", 50, 224)
        assert (cfg.DATA.TEMPORAL_SAMPLER, cfg.DATA.NUM_FRAMES) == ("tsn", 8)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_full_size_model_parameters(name):
    cfg = _load(name)
    assert params_count(build_model(cfg, inputs=_random_inputs(cfg))) == EXPECTED[name][2]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tiny_model_trains_a_step_and_tests_by_max(name):
    cfg = _load(name, "MODEL.NUM_CLASSES", "7")
    backbone, _, head = component_names(cfg)
    BACKBONE_REGISTRY.get(backbone).make_tiny(cfg)
    inputs = HEAD_REGISTRY.get(head).make_tiny(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, inputs=inputs)
    clips = model.example_inputs(cfg, batch=2)[0]
    targets = torch.tensor([[1, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1]], dtype=torch.float32)
    model.train()
    loss = get_loss_func(cfg.MODEL.LOSS_FUNC)(reduction="mean")(model(clips), targets)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        views = model(torch.cat([clips, clips.flip(-1), clips * 0.5])).reshape(3, 2, -1).transpose(0, 1)
    scores = combine_views(views, cfg.DATA.ENSEMBLE_METHOD)
    assert scores.shape == (2, 7) and ((scores >= 0) & (scores <= 1)).all()
    assert torch.equal(scores, views.amax(dim=1))


def _tool(name, *args):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", name), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_charades_g_vt_runs_on_the_tool_lists(tmp_path):
    """Charades files -> build_charades_lists -> graph adjacency and text lexicon -> run_net with the
    R(2+1)D G-VT config (tiny overrides): trains, tests by max over views, counts left-out classes."""
    data = tmp_path / "charades"
    _tool("build_charades_lists.py", "--annotations", write_annotations(tmp_path / "Charades"), "--out-dir", data)
    for i, video in enumerate(("46GP8", "ZZ9QK", "A2B3C", "X0Y1Z")):
        write_video(str(data / "Charades_v1_480" / f"{video}.mp4"), num_frames=30, height=24, width=32, seed=i)
    _tool("gen_graph_adj.py", "--list", data / "train.csv", "--num-classes", 5,
          "--out", data / "mmit-m3a" / "graph-adj-charades.npz")
    _tool("gen_text_lexicon.py", "--class-names", data / "categories-charades.txt",
          "--out", data / "mmit-m3a" / "text-lexicon-charades.npz", "--method", "hashed")
    out = tmp_path / "out"
    _tool("run_net.py", "--cfg", os.path.join(FOLDER, "R2PLUS1D_G_VT.yaml"), "DATA.PATH_TO_DATA_DIR", data,
          "OUTPUT_DIR", out, "NUM_GPUS", 0, "MODEL.NUM_CLASSES", 5, "MODEL.DEPTH", 18, "MODEL.BASE_WIDTH", 4,
          "MODEL.STAGE_BLOCKS", "[1,1,1,1]", "DATA.NUM_FRAMES", 4, "DATA.SAMPLING_RATE", 2,
          "DATA.TRAIN_JITTER_SCALES", "[20,24]", "DATA.TRAIN_CROP_SIZE", 16, "DATA.TEST_CROP_SIZE", 16,
          "TEST.NUM_ENSEMBLE_VIEWS", 2, "TRAIN.BATCH_SIZE", 2, "TEST.BATCH_SIZE", 2, "SOLVER.MAX_EPOCH", 1,
          "TRAIN.MAX_ITERS_PER_EPOCH", 1, "TRAIN.ENABLE_AMP", False, "BN.USE_PRECISE_STATS", False,
          "DATA_LOADER.NUM_WORKERS", 0, "DATA_LOADER.PIN_MEMORY", False, "LOG_MODEL_INFO", False)
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert (metrics["num_videos"], metrics["num_views"], metrics["ensemble_method"]) == (1, 6, "max")
    assert metrics["classes_without_positives"] == 3 and metrics["failed_videos"] == 0
    ap = (out / "per_class_ap.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in ap] == ["Holding some clothes", "Putting clothes somewhere",
                                                 "Drinking from a cup/glass/bottle", "Opening a door",
                                                 "Sitting in a chair"]
