"""EPAM-Net release files load through ``load_checkpoint``: the multimodal DDP checkpoint
unchanged and strictly, each MMAction2 stream checkpoint into its stream of the multimodal
model, and a stream file whose keys do not match is an error naming them (the release's
non-strict loading would leave the stream random)."""
from collections import OrderedDict

import pytest
import torch

from m3a.models import build_model
from m3a.utils.checkpoint import CheckpointError, load_checkpoint
from tests.models.test_epam_net import LAYOUT, epam_cfg, layout_cfg


def constant_state(keys, prefix="", offset=1):
    """Every tensor a distinct constant (a 1-element storage expanded, so files stay small)."""
    state = OrderedDict()
    for i, (key, shape) in enumerate(keys):
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        value = float((i + offset) % 997 + 1)
        state[prefix + key] = torch.full([1] * len(shape), value, dtype=dtype).expand(shape)
    return state


def assert_loaded(model, state, rename=lambda k: k):
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[rename(key)], value), key


def rgb_stream_keys():
    """The RGB stream file's keys: ``backbone.*`` (the RGB X-ShiftNet) + ``cls_head.fc_cls.*``."""
    model = build_model(epam_cfg(60, "xshift_rgb"))
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def mmaction_file(path, state):
    """An MMAction2-0.24 runner checkpoint (meta, state_dict, optimizer)."""
    meta = {"epoch": 235, "iter": 1000, "mmcv_version": "1.5.0", "config": "model = dict()"}
    torch.save({"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}},
               path)


@pytest.mark.parametrize("name", ["ntu60_epam", "ntu120_epam"])
def test_released_multimodal_checkpoint_loads_unchanged(name, tmp_path):
    model = build_model(layout_cfg(name))
    state = constant_state(LAYOUT[name]["state_dict"], "module.")
    path = tmp_path / LAYOUT[name]["config"]["released_checkpoint"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0015, momentum=0.9)
    torch.save({"epoch": 4, "model_state_dict": state,
                "optimizer_state_dict": optimizer.state_dict()}, path)
    info = load_checkpoint(str(path), model)
    assert (info["layout"], info["missing_keys"], info["unexpected_keys"]) == ("native", [], [])
    assert info["epoch"] == 4 and "optimizer_state_dict" not in info
    assert_loaded(model, state, lambda k: k[len("module."):])


def test_released_pose_stream_checkpoint_loads_into_the_pose_model(tmp_path):
    model = build_model(layout_cfg("ntu60_pose_xshift"))
    state = constant_state(LAYOUT["ntu60_pose_xshift"]["state_dict"])
    path = tmp_path / "ntu60_xsub_x3dTShiftPose_double_shifted_chs_best_top1_acc_epoch_235.pth"
    mmaction_file(path, state)
    info = load_checkpoint(str(path), model)
    assert (info["layout"], info["missing_keys"], info["unexpected_keys"]) == ("native", [], [])
    assert_loaded(model, state)


def test_both_stream_checkpoints_fill_the_multimodal_model(tmp_path):
    model = build_model(epam_cfg(60))
    pose = constant_state(LAYOUT["ntu60_pose_xshift"]["state_dict"], offset=1)
    rgb = constant_state(rgb_stream_keys(), offset=500)
    mmaction_file(tmp_path / "pose.pth", pose)
    mmaction_file(tmp_path / "rgb.pth", rgb)
    pose_info = load_checkpoint(str(tmp_path / "pose.pth"), model)
    rgb_info = load_checkpoint(str(tmp_path / "rgb.pth"), model)
    assert (pose_info["layout"], rgb_info["layout"]) == ("epam_pose_stream", "epam_rgb_stream")
    assert pose_info["unexpected_keys"] == rgb_info["unexpected_keys"] == []
    # Each file leaves exactly the other stream and the attention block to the other file / init.
    assert set(pose_info["missing_keys"]) == {k for k in model.state_dict() if not k.startswith("pose_")}
    assert_loaded(model, pose, lambda k: "pose_" + k)
    assert_loaded(model, rgb, lambda k: "rgb_" + k)


def test_stream_file_with_stream_prefixes_loads_too(tmp_path):
    model = build_model(epam_cfg(60))
    pose = constant_state(LAYOUT["ntu60_pose_xshift"]["state_dict"], "pose_")
    torch.save({"state_dict": pose}, tmp_path / "pose.pth")
    assert load_checkpoint(str(tmp_path / "pose.pth"), model)["layout"] == "epam_pose_stream"
    assert_loaded(model, pose)


@pytest.mark.parametrize("edit, words", [
    (lambda s: OrderedDict(("model." + k, v) for k, v in s.items()), "1067 missing key(s)"),
    (lambda s: OrderedDict((k, v) for k, v in s.items() if "layer2.3.conv2" not in k),
     "6 missing key(s): pose_backbone.layer2.3.conv2.conv.weight"),
    (lambda s: OrderedDict(list(s.items()) + [("backbone.layer4.0.conv1.conv.weight", torch.zeros(1))]),
     "1 unexpected key(s): pose_backbone.layer4.0.conv1.conv.weight"),
    (lambda s: OrderedDict((k.replace("cls_head.fc_cls", "cls_head.fc"), v) for k, v in s.items()),
     "2 missing key(s): pose_cls_head.fc_cls.weight, pose_cls_head.fc_cls.bias; "
     "2 unexpected key(s): pose_cls_head.fc.weight, pose_cls_head.fc.bias"),
])
def test_stream_file_that_does_not_match_is_an_error_naming_keys(edit, words, tmp_path):
    model = build_model(epam_cfg(60))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = edit(constant_state(LAYOUT["ntu60_pose_xshift"]["state_dict"]))
    mmaction_file(tmp_path / "pose.pth", state)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(tmp_path / "pose.pth"), model)
    assert words in str(err.value) and str(err.value).startswith(str(tmp_path / "pose.pth"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded


def test_stream_file_of_unknown_input_width_is_an_error(tmp_path):
    model = build_model(epam_cfg(60))
    state = constant_state([(k, [24, 5, 1, 3, 3] if k == "backbone.conv1_s.conv.weight" else s)
                            for k, s in LAYOUT["ntu60_pose_xshift"]["state_dict"]])
    mmaction_file(tmp_path / "pose.pth", state)
    with pytest.raises(CheckpointError, match=r"has shape \(24, 5, 1, 3, 3\): the model's streams take \[3, 17\]"):
        load_checkpoint(str(tmp_path / "pose.pth"), model)


def test_whole_state_dict_missing_the_attention_block_is_an_error(tmp_path):
    model = build_model(epam_cfg(60))
    state = OrderedDict((k, v) for k, v in constant_state(LAYOUT["ntu60_epam"]["state_dict"]).items()
                        if not k.startswith("attention_module.conv_temporal"))
    torch.save({"epoch": 1, "model_state_dict": state}, tmp_path / "epam.pth")
    with pytest.raises(CheckpointError,
                       match="1 missing key.*attention_module.conv_temporal_attention.weight"):
        load_checkpoint(str(tmp_path / "epam.pth"), model)


def test_training_starts_from_both_stream_files(tmp_path):
    from m3a.engine.train_loop import load_training_state

    pose = constant_state(LAYOUT["ntu60_pose_xshift"]["state_dict"], offset=1)
    rgb = constant_state(rgb_stream_keys(), offset=500)
    mmaction_file(tmp_path / "pose.pth", pose)
    mmaction_file(tmp_path / "rgb.pth", rgb)
    cfg = epam_cfg(60)
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    cfg.TRAIN.INIT_FILES = [str(tmp_path / "rgb.pth"), str(tmp_path / "pose.pth")]
    model = build_model(cfg)
    attention = model.backbone.attention_module.spatial.conv.weight.clone()
    assert load_training_state(cfg, model, None, None) == 0
    assert_loaded(model, pose, lambda k: "pose_" + k)
    assert_loaded(model, rgb, lambda k: "rgb_" + k)
    assert torch.equal(model.backbone.attention_module.spatial.conv.weight, attention)  # fresh
    cfg.TRAIN.INIT_FILES = [str(tmp_path / "missing.pth")]
    with pytest.raises(FileNotFoundError, match="TRAIN.INIT_FILES: not found: .*missing.pth"):
        load_training_state(cfg, model, None, None)
