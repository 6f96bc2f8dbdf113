"""Released ACTION-Net, TSM and torchvision ImageNet files load through ``load_checkpoint``
unchanged (files written here in the releases' formats, with the releases' key names)."""
from collections import OrderedDict

import pytest
import torch

from m3a.models import build_model
from m3a.utils.checkpoint import CheckpointError, load_checkpoint
from tests.models.test_action_net import LAYOUT, action_cfg, published_keys


def constant_state(keys, prefix=""):
    """Every tensor a distinct constant (a 1-element storage expanded, so files stay small)."""
    state = OrderedDict()
    for i, (key, shape) in enumerate(keys):
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        state[prefix + key] = torch.full([1] * len(shape), float(i % 997 + 1), dtype=dtype).expand(shape)
    return state


def torchvision_resnet50_keys():
    """torchvision's resnet50 state dict names and shapes (the release's backbone keys without
    ``base_model.`` and ``conv1.net``, plus the ImageNet classifier)."""
    keys = [(k[len("base_model."):].replace(".conv1.net.", ".conv1."), s)
            for k, s in published_keys("ssv2_action_r50_8f", "tsm") if k.startswith("base_model.")]
    return keys + [("fc.weight", [1000, 2048]), ("fc.bias", [1000])]


def assert_loaded(model, state, rename=lambda k: k):
    loaded = model.state_dict()
    for key, value in state.items():
        if rename(key) is not None:
            assert torch.equal(loaded[rename(key)], value), key


@pytest.mark.parametrize("name", ["egogesture_action_r50_8f", "jester_action_r50_8f"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_released_action_net_file_loads_unchanged(name, prefix, tmp_path):
    config = LAYOUT[name]["config"]
    model = build_model(action_cfg(config["num_classes"], config["num_segments"]))
    state = constant_state(published_keys(name), prefix)
    path = tmp_path / "clip_len_8frame_sample_rate_1_checkpoint.pth.tar"
    torch.save({"state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    info = load_checkpoint(str(path), model)
    assert (info["layout"], info["missing_keys"], info["unexpected_keys"]) == ("native", [], [])
    assert_loaded(model, state, lambda k: k[len(prefix):])


def test_tsm_checkpoint_loads_into_tsm_and_its_backbone_into_action(tmp_path):
    keys = published_keys("ssv2_action_r50_8f", "tsm")
    state = constant_state(keys, "module.")
    path = tmp_path / "TSM_something_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"
    torch.save({"epoch": 50, "arch": "resnet50", "state_dict": state, "best_prec1": 61.2}, path)
    tsm = build_model(action_cfg(174, 8, "tsm"))
    info = load_checkpoint(str(path), tsm)
    assert (info["layout"], info["missing_keys"], info["unexpected_keys"]) == ("native", [], [])
    assert info["epoch"] == 50 and info["best_prec1"] == 61.2
    assert_loaded(tsm, state, lambda k: k[len("module."):])

    action = build_model(action_cfg(174, 8))
    shift = action.state_dict()["base_model.layer2.1.conv1.action_shift.weight"].clone()
    info = load_checkpoint(str(path), action)
    assert info["layout"] == "tsm" and info["unexpected_keys"] == []
    assert len(info["missing_keys"]) == 16 * 13 and all(".action_" in k for k in info["missing_keys"])
    assert_loaded(action, state, lambda k: k[len("module."):])
    assert torch.equal(action.state_dict()["base_model.layer2.1.conv1.action_shift.weight"], shift)

    tsn = build_model(action_cfg(174, 8, "tsn"))
    info = load_checkpoint(str(path), tsn)
    assert (info["layout"], info["missing_keys"], info["unexpected_keys"]) == ("tsm", [], [])
    assert_loaded(tsn, state, lambda k: k[len("module."):].replace(".conv1.net.", ".conv1."))


def test_kinetics_tsm_classifier_is_skipped_for_another_class_count(tmp_path):
    keys = [(k, [400, 2048] if k == "new_fc.weight" else [400] if k == "new_fc.bias" else s)
            for k, s in published_keys("ssv2_action_r50_8f", "tsm")]
    path = tmp_path / "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"
    torch.save({"epoch": 50, "arch": "resnet50", "state_dict": constant_state(keys, "module.")}, path)
    model = build_model(action_cfg(27, 8))
    info = load_checkpoint(str(path), model)
    assert "new_fc.weight" in info["missing_keys"] and model.state_dict()["new_fc.bias"].abs().sum() == 0


def test_torchvision_imagenet_resnet50_initialises_every_backbone_conv(tmp_path):
    keys = torchvision_resnet50_keys()
    assert len(keys) == 320
    state = constant_state(keys)
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(state, path)
    for variant in ("action", "tsm", "tsn"):
        model = build_model(action_cfg(174, 8, variant))
        info = load_checkpoint(str(path), model)
        assert info["layout"] == "torchvision" and info["unexpected_keys"] == []
        assert [k for k in info["missing_keys"] if ".action_" not in k] == ["new_fc.weight", "new_fc.bias"]
        wrapped = ".conv1.net." if variant != "tsn" else ".conv1."

        def ours(key):
            if key.startswith("fc."):
                return None
            key = "base_model." + key
            return key.replace(".conv1.", wrapped) if ".layer" in key else key

        assert_loaded(model, state, ours)


def test_action_file_of_another_class_count_is_a_clear_error(tmp_path):
    path = tmp_path / "ego.pth.tar"
    torch.save({"state_dict": constant_state(published_keys("egogesture_action_r50_8f")), "optimizer": {}}, path)
    model = build_model(action_cfg(27, 8))
    with pytest.raises(CheckpointError, match=r"new_fc.weight: checkpoint \(83, 2048\) vs model \(27, 2048\)"):
        load_checkpoint(str(path), model)
