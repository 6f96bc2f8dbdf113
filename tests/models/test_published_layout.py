"""Our models reproduce the published state-dict layout and parameter counts exactly."""
import json
import os
from collections import OrderedDict

import pytest
import torch

from m3a.config import get_cfg
from m3a.models import build_model
from m3a.models.model_info import params_count
from m3a.utils.checkpoint import load_checkpoint
from tests.models.helpers import write_lexicons

# Every state-dict key and shape of the published checkpoints, for seven configurations.
LAYOUT_FILE = os.path.join(os.path.dirname(__file__), "upstream_checkpoint_layout.json")
with open(LAYOUT_FILE) as f:
    LAYOUT = json.load(f)


@pytest.fixture(scope="module")
def full_data_dir(tmp_path_factory):
    """Lexicons of the published sizes: 313 classes, audio 384, text 300."""
    root = tmp_path_factory.mktemp("full_data")
    write_lexicons(root, 313, 384, 300)
    return str(root)


def published_cfg(config: dict, data_dir: str):
    """Our config for one entry of the layout file."""
    cfg = get_cfg()
    cfg.MODEL.ARCH, cfg.MODEL.DEPTH = config["arch"], config["depth"]
    cfg.M3A.MODE, cfg.M3A.MODAL_TYPE = config["mode"], config["modal"]
    cfg.M3A.MODAL_JOINT_TYPE = config["joint"]
    cfg.M3A.NLAYERS = config.get("nlayers", cfg.M3A.NLAYERS)
    cfg.M3A.HIDDEN_LAYER = config.get("hidden", cfg.M3A.HIDDEN_LAYER)
    cfg.DATA.PATH_TO_DATA_DIR = data_dir
    cfg.LOG_MODEL_INFO = False
    return cfg


def test_layout_file_has_the_seven_configurations():
    assert len(LAYOUT) == 7
    assert {"r2plus1d34_fc", "r3d18_graph_rgb", "i3d50_graph_text"} <= set(LAYOUT)


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_published_layout_params_and_loading(name, full_data_dir, tmp_path):
    entry = LAYOUT[name]
    model = build_model(published_cfg(entry["config"], full_data_dir))
    assert params_count(model) == entry["params"]

    ours = OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items())
    published = OrderedDict((k, list(shape)) for k, shape in entry["state_dict"])
    assert ours == published  # same keys, same shapes, same order

    # A published-style .pyth: every tensor a distinct constant (stored as a 1-element
    # expanded storage, so the file stays small), with the release's other fields.
    state = OrderedDict()
    for i, (key, shape) in enumerate(entry["state_dict"]):
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        one = torch.full([1] * len(shape), float(i % 997), dtype=dtype)
        state[key] = one.expand(shape)
    path = tmp_path / f"{name}.pyth"
    torch.save({"model_state": state, "optimizer_state": {}, "epoch": 29, "cfg": "M3A: {}\n"}, path)
    info = load_checkpoint(str(path), model)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert info["epoch"] == 29 and info["cfg"] == "M3A: {}\n"
    loaded = model.state_dict()
    for i, key in enumerate(state):
        assert torch.all(loaded[key] == i % 997), key


def _count(cfg) -> int:
    return params_count(build_model(cfg))


@pytest.mark.parametrize("modal, delta", [("AUDIO", 758_471), ("TEXT", 672_455)])
def test_paper_head_deltas_over_fc(modal, delta, full_data_dir):
    base = {"arch": "r2plus1d", "depth": 34, "nlayers": 2, "hidden": 1024}
    fc = _count(published_cfg(dict(base, mode="NONE", modal="NONE", joint="NONE"), full_data_dir))
    gcn = _count(published_cfg(dict(base, mode="GRAPH", modal=modal, joint="NONE"), full_data_dir))
    assert fc == 63_652_544
    assert gcn - fc == delta
