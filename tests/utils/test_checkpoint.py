"""Checkpoints: save/reload round trip, newest complete file, layouts, clear errors."""
import logging
import os
from collections import OrderedDict

import pytest
import torch

from m3a.utils.checkpoint import (
    CheckpointError,
    get_last_checkpoint,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from m3a.models import build_model
from tests.models.helpers import single_thread, tiny_cfg, tiny_data_dir  # noqa: F401
from tests.visualization.tiny_setup import load_tool


@pytest.fixture(scope="module")
def data_dir(tiny_data_dir):  # noqa: F811
    return tiny_data_dir[0]


class Payload:
    """An arbitrary Python object: weights-only loading must refuse to rebuild it."""


def _model(data_dir, mode="GRAPH", modal="RGB_AUDIO_TEXT", joint="SUM", seed=0):
    torch.manual_seed(seed)
    return build_model(tiny_cfg(data_dir, mode, modal, joint))


def _train_a_bit(model, optimizer):
    model.train()
    for _ in range(2):
        loss = model(torch.randn(2, 3, 4, 16, 16)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("mode, modal, joint", [
    ("NONE", "NONE", "NONE"), ("GRAPH", "RGB_AUDIO_TEXT", "SUM"), ("TRSFMR", "RGB_TEXT", "CROSS"),
])
def test_save_and_reload_gives_same_outputs(tmp_path, data_dir, mode, modal, joint):
    cfg = tiny_cfg(data_dir, mode, modal, joint)
    model = _model(data_dir, mode, modal, joint, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    _train_a_bit(model, optimizer)
    path = save_checkpoint(str(tmp_path), model, optimizer, scaler, 3, cfg)
    assert path == str(tmp_path / "checkpoints" / "checkpoint_epoch_00003.pyth")
    assert [f for f in os.listdir(tmp_path / "checkpoints")] == ["checkpoint_epoch_00003.pyth"]

    fresh = _model(data_dir, mode, modal, joint, seed=1)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=1e-3, momentum=0.9)
    fresh_scaler = torch.amp.GradScaler("cpu", enabled=True)
    info = load_checkpoint(path, fresh, fresh_opt, fresh_scaler)
    assert info["epoch"] == 3 and info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert "NUM_CLASSES: 5" in info["cfg"]
    clip = torch.randn(2, 3, 4, 16, 16)
    model.eval(), fresh.eval()
    with torch.no_grad():
        expected = model(clip)
        assert torch.isfinite(expected).all()
        assert torch.allclose(fresh(clip), expected, atol=1e-4)
    assert fresh_opt.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()
    assert fresh_scaler.get_scale() == scaler.get_scale()


def test_ddp_prefix_and_bare_state_dicts(tmp_path, data_dir):
    model = _model(data_dir, seed=0)
    prefixed = OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    torch.save(prefixed, tmp_path / "bare.pth")
    torch.save({"state_dict": prefixed}, tmp_path / "wrapped.pth")
    for name in ("bare.pth", "wrapped.pth"):
        fresh = _model(data_dir, seed=1)
        info = load_checkpoint(str(tmp_path / name), fresh)
        assert info["epoch"] == -1 and info["missing_keys"] == []
        for k, v in model.state_dict().items():
            assert torch.equal(fresh.state_dict()[k], v), k


def test_backbone_only_file_leaves_head_fresh(tmp_path, data_dir, caplog):
    backbone = {k: v for k, v in _model(data_dir, "NONE", seed=0).state_dict().items()
                if not k.startswith("projection")}
    torch.save({"model_state": backbone, "epoch": 9}, tmp_path / "backbone.pyth")
    model = _model(data_dir, seed=1)
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("m3a_head")}
    with caplog.at_level(logging.WARNING, logger="m3a.utils.checkpoint"):
        info = load_checkpoint(str(tmp_path / "backbone.pyth"), model)
    assert info["epoch"] == 9 and sorted(info["missing_keys"]) == sorted(head_before)
    head_key = "m3a_head.m3a_joint_learning.multi_modal.RGB.relation_learner.graph_1.weight"
    assert head_key in caplog.text
    assert all(torch.equal(model.state_dict()[k], v) for k, v in head_before.items())
    assert torch.equal(model.state_dict()["conv1.weight"], backbone["conv1.weight"])


def test_shape_mismatch_is_a_clear_error(tmp_path, data_dir):
    state = _model(data_dir, seed=0).state_dict()
    state["layer1.0.block.conv1.weight"] = torch.zeros(3, 3, 3, 1, 1)
    torch.save({"model_state": state}, tmp_path / "bad.pyth")
    model = _model(data_dir, seed=1)
    expected_shape = tuple(model.state_dict()["layer1.0.block.conv1.weight"].shape)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(tmp_path / "bad.pyth"), model)
    msg = str(err.value)
    assert "layer1.0.block.conv1.weight" in msg and "(3, 3, 3, 1, 1)" in msg
    assert str(expected_shape) in msg
    info = load_checkpoint(str(tmp_path / "bad.pyth"), model, strict_shapes=False)
    assert "layer1.0.block.conv1.weight" in info["missing_keys"]


def test_unsafe_or_missing_files_are_refused(tmp_path, data_dir):
    model = _model(data_dir)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path / "nope.pyth"), model)
    torch.save({"model_state": model.state_dict(), "extra": Payload()}, tmp_path / "code.pyth")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(str(tmp_path / "code.pyth"), model)
    torch.save({"weights": [1, 2]}, tmp_path / "empty.pyth")
    with pytest.raises(CheckpointError, match="no model weights"):
        load_checkpoint(str(tmp_path / "empty.pyth"), model)


def test_last_checkpoint_skips_truncated_files(tmp_path, data_dir, caplog):
    assert get_last_checkpoint(str(tmp_path)) is None and not has_checkpoint(str(tmp_path))
    model = _model(data_dir, "NONE")
    cfg = tiny_cfg(data_dir, "NONE")
    paths = [save_checkpoint(str(tmp_path), model, None, None, e, cfg) for e in (1, 2, 10)]
    assert get_last_checkpoint(str(tmp_path)) == paths[2]  # numeric, not name order
    size = os.path.getsize(paths[2])
    with open(paths[2], "r+b") as f:
        f.truncate(size // 2)
    with caplog.at_level(logging.WARNING, logger="m3a.utils.checkpoint"):
        assert get_last_checkpoint(str(tmp_path)) == paths[1]
    assert "checkpoint_epoch_00010.pyth" in caplog.text
    with open(paths[1], "r+b") as f:  # flip bytes inside a stored tensor: CRC fails
        f.seek(size // 2)
        chunk = f.read(64)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))
    assert get_last_checkpoint(str(tmp_path)) == paths[0]
    assert has_checkpoint(str(tmp_path))
    (tmp_path / "checkpoints" / ".tmp-abc.pyth").write_bytes(b"partial")
    assert get_last_checkpoint(str(tmp_path)) == paths[0]


def _to_torchvision(state):
    """Rename our R(2+1)D keys to the torchvision / VMZ-PyTorch VideoResNet layout."""
    stem = {"conv1_middle": "stem.0", "bn1_middle": "stem.1", "conv1": "stem.3", "bn1": "stem.4"}
    conv = {"conv{i}_middle": "conv{i}.0.0", "bn{i}_middle": "conv{i}.0.1",
            "conv{i}": "conv{i}.0.3", "bn{i}": "conv{i}.1"}
    out = OrderedDict()
    for key, value in state.items():
        module, leaf = key.rsplit(".", 1)
        if module in stem:
            out[f"{stem[module]}.{leaf}"] = value
        elif module == "projection":
            out[f"fc.{leaf}"] = value
        else:
            layer, idx, _, name = module.split(".")
            names = {"shortcut": "downsample.0", "shortcut_bn": "downsample.1"}
            for i in "12":
                names.update({k.format(i=i): v.format(i=i) for k, v in conv.items()})
            out[f"{layer}.{idx}.{names[name]}.{leaf}"] = value
    return out


def test_torchvision_vmz_layout_is_mapped(tmp_path, data_dir, caplog):
    source = _model(data_dir, "NONE", seed=0)
    tv = _to_torchvision(source.state_dict())
    assert "layer2.0.conv1.0.0.weight" in tv and "layer2.0.downsample.1.running_var" in tv
    mapped, layout = source.convert_state_dict(tv)
    assert layout == "torchvision" and list(mapped) == list(source.state_dict())
    tv["fc.weight"] = torch.zeros(400, tv["fc.weight"].shape[1])  # a Kinetics classifier
    tv["fc.bias"] = torch.zeros(400)
    torch.save({"state_dict": OrderedDict(("module." + k, v) for k, v in tv.items())},
               tmp_path / "vmz.pth")
    model = _model(data_dir, "NONE", seed=1)
    head = model.head.projection.weight.detach().clone()
    with caplog.at_level(logging.WARNING, logger="m3a.utils.checkpoint"):
        info = load_checkpoint(str(tmp_path / "vmz.pth"), model)
    assert info["layout"] == "torchvision"
    assert sorted(info["missing_keys"]) == ["projection.bias", "projection.weight"]
    assert "head stays fresh" in caplog.text and torch.equal(model.head.projection.weight, head)
    for k, v in source.state_dict().items():
        if not k.startswith("projection"):
            assert torch.equal(model.state_dict()[k], v), k


def test_convert_checkpoint_tool(tmp_path, data_dir, capsys):
    source = _model(data_dir, "NONE", seed=0)
    torch.save({"state_dict": _to_torchvision(source.state_dict())}, tmp_path / "vmz.pth")
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(tiny_cfg(data_dir, "NONE").dump())
    out = tmp_path / "ours.pyth"
    tool = load_tool("convert_checkpoint")
    assert tool.main([str(tmp_path / "vmz.pth"), str(out), "--cfg", str(cfg_file)]) == 0
    assert "0 missing, 0 unexpected" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    assert list(saved["model_state"]) == list(source.state_dict())
    assert source.convert_state_dict(saved["model_state"])[1] == "m3a"
    assert tool.main([str(tmp_path / "missing.pth"), str(out)]) == 1
    err = capsys.readouterr().err
    assert "missing.pth" in err and err.count("\n") == 1
