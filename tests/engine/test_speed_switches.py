"""Model speed switches: TRAIN.CHANNELS_LAST, TRAIN.AMP_DTYPE and MODEL.COMPILE are validated,
change the layout / precision / execution they name, and train to the same losses and metrics as
without them (within the tolerances below), with checkpoint keys unchanged."""

import pytest
import torch
import torch.nn as nn

from m3a.config import ConfigError, get_cfg, load_config
from m3a.engine import amp, speed
from m3a.engine.train_loop import train
from m3a.utils import checkpoint as cu
from m3a.utils.logging import read_json_stats
from tests.engine.conftest import tiny_cfg

# Largest |difference| to the fp32 run of the logged train losses and of the validation mAPs
# after 2 epochs of 2 iterations (batch 4, learning rate 0.01, fixed seed): (loss, mAP). fp32 switches only reorder
# sums. bf16 keeps 8 bits of mantissa: its losses drift by about 5e-4 in 4 steps; its mAPs are not
# compared (None): on 4 validation videos one swapped pair of scores moves them by 1/12 to 1/6.
TOLERANCE = {"channels_last": (1e-4, 1e-4), "compile": (1e-4, 1e-4), "bf16": (1e-2, None)}
SWITCH_CFG = {
    "channels_last": {"TRAIN": {"CHANNELS_LAST": True}},
    "compile": {"MODEL": {"COMPILE": True}},
    "bf16": {"TRAIN": {"ENABLE_AMP": True, "AMP_DTYPE": "bfloat16", "CPU_AMP": "on"}},
}


def test_float16_needs_cuda_and_unknown_dtypes_are_refused():
    with pytest.raises(ConfigError, match="TRAIN.AMP_DTYPE float16 needs CUDA .*use TRAIN.AMP_DTYPE bfloat16"):
        load_config(None, ["TRAIN.ENABLE_AMP", "True", "TRAIN.AMP_DTYPE", "float16", "NUM_GPUS", "0"])
    with pytest.raises(ConfigError, match="TRAIN.AMP_DTYPE must be one of auto, bfloat16, float16, got 'fp8'"):
        load_config(None, ["TRAIN.AMP_DTYPE", "fp8"])
    # Without AMP the dtype is not used, and CUDA configs may ask for float16.
    load_config(None, ["TRAIN.AMP_DTYPE", "float16", "NUM_GPUS", "0"])
    load_config(None, ["TRAIN.ENABLE_AMP", "True", "TRAIN.AMP_DTYPE", "float16", "NUM_GPUS", "1"])


def test_amp_dtype_picks_the_autocast_dtype_and_the_scaler():
    cfg = get_cfg()
    cfg.TRAIN.ENABLE_AMP = True
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert amp.autocast_dtype(cfg, cuda) == torch.float16  # auto: as before on CUDA
    cfg.TRAIN.AMP_DTYPE = "bfloat16"
    assert amp.autocast_dtype(cfg, cuda) == torch.bfloat16
    assert "bf16 autocast on CUDA, no gradient scaling" in amp.describe_precision(cfg, cuda)
    cfg.TRAIN.CPU_AMP = "on"
    assert amp.autocast_dtype(cfg, cpu) == torch.bfloat16
    assert not amp.build_grad_scaler(cfg, cpu).is_enabled()
    cfg.TRAIN.AMP_DTYPE = "float16"  # on CPU refused by the config's validation (above)
    assert amp.autocast_dtype(cfg, cuda) == torch.float16
    cfg.TRAIN.ENABLE_AMP = False
    assert amp.autocast_dtype(cfg, cuda) is None and amp.autocast_dtype(cfg, cpu) is None


def test_channels_last_converts_weights_and_inputs_in_place():
    cfg = get_cfg()
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.Conv2d(4, 2, 1), nn.Linear(2, 2))
    params = list(model.parameters())
    video, image = torch.randn(2, 3, 4, 8, 8), torch.randn(2, 3, 8, 8)
    assert speed.convert_model(model, cfg) is model and model[0].weight.is_contiguous()  # off: unchanged
    assert speed.convert_inputs(video, cfg) is video
    cfg.TRAIN.CHANNELS_LAST = True
    speed.convert_model(model, cfg)
    assert list(model.parameters()) == params  # same Parameter objects: the optimizer still holds them
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model[2].weight.is_contiguous(memory_format=torch.channels_last)
    assert not model[0].weight.is_contiguous()
    converted = speed.convert_inputs([video, image, torch.randn(2, 5)], cfg)
    assert converted[0].is_contiguous(memory_format=torch.channels_last_3d)
    assert converted[1].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(converted[0], video) and torch.equal(converted[1], image)
    assert speed.convert_inputs(video, cfg).is_contiguous(memory_format=torch.channels_last_3d)


def test_compiled_models_save_their_plain_keys(tmp_path):
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4))
    compiled = torch.compile(model)  # lazy: nothing compiles until it is called
    assert any(k.startswith("_orig_mod.") for k in compiled.state_dict())
    assert cu.unwrap_model(compiled) is model
    assert cu.unwrap_model(torch.compile(nn.parallel.DataParallel(model))) is model
    cfg = get_cfg()
    path = cu.save_checkpoint(str(tmp_path), compiled, None, None, 1, cfg)
    state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    assert list(state) == list(model.state_dict())


def test_compile_without_a_cpp_compiler_is_a_config_error_when_training_starts():
    """The config loads (testing or predicting needs no compiler); compiling for training fails."""
    from torch._inductor import config as inductor_config

    with inductor_config.patch({"cpp.cxx": ("/nonexistent/c++",)}):  # what CXX=/nonexistent/c++ gives
        cfg = load_config(None, ["MODEL.COMPILE", "True"])
        with pytest.raises(ConfigError, match="MODEL.COMPILE True needs a C\\+\\+ compiler for torch.compile on CPU"):
            speed.compile_model(nn.Linear(2, 2), cfg, torch.device("cpu"))
    assert speed.compile_model(nn.Linear(2, 2), cfg, torch.device("cpu")) is not None  # g++ is there


def _short_run(tiny_data: str, out: str, switch: str = "") -> dict:
    cfg = tiny_cfg(tiny_data, out)
    cfg.SOLVER.MAX_EPOCH = 2
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 2
    cfg.TRAIN.EVAL_PERIOD = 2
    cfg.TRAIN.CHECKPOINT_PERIOD = 2
    cfg.SOLVER.BASE_LR = 0.01
    for section, values in SWITCH_CFG.get(switch, {}).items():
        for key, value in values.items():
            cfg[section][key] = value
    model = train(cfg)
    val = read_json_stats(out, "val_epoch")[-1]
    return {
        "out": out,
        "model": model,
        "losses": [entry["loss"] for entry in read_json_stats(out, "train_iter")],
        "map_class": val["map_class"],
        "map_sample": val["map_sample"],
    }


@pytest.fixture(scope="module")
def fp32_run(tiny_data, tmp_path_factory) -> dict:
    return _short_run(tiny_data, str(tmp_path_factory.mktemp("fp32")))


def _assert_close(run: dict, reference: dict, tolerance: tuple) -> None:
    assert len(run["losses"]) == len(reference["losses"]) == 4
    assert max(abs(a - b) for a, b in zip(run["losses"], reference["losses"])) <= tolerance[0]
    for key in ("map_class", "map_sample") if tolerance[1] is not None else ():
        assert abs(run[key] - reference[key]) <= tolerance[1], key


@pytest.mark.parametrize("switch", ["channels_last", "bf16"])
def test_switch_trains_like_fp32(tiny_data, tmp_path, fp32_run, switch):
    run = _short_run(tiny_data, str(tmp_path / switch), switch)
    _assert_close(run, fp32_run, TOLERANCE[switch])
    if switch == "bf16":  # it did run in bf16: not bit-identical to fp32
        assert run["losses"] != fp32_run["losses"]
    if switch == "channels_last":
        convs = [m for m in run["model"].modules() if isinstance(m, nn.Conv3d)]
        assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last_3d) for m in convs)


@pytest.mark.slow
def test_compiled_training_matches_and_keeps_checkpoint_keys(tiny_data, tmp_path, fp32_run):
    from torch._dynamo.utils import counters

    out = str(tmp_path / "compile")
    counters.clear()
    run = _short_run(tiny_data, out, "compile")
    assert counters["stats"]["unique_graphs"] >= 1  # it did compile
    _assert_close(run, fp32_run, TOLERANCE["compile"])
    saved = torch.load(cu.checkpoint_path(out, 2), map_location="cpu", weights_only=True)["model_state"]
    plain = torch.load(cu.checkpoint_path(fp32_run["out"], 2), map_location="cpu", weights_only=True)["model_state"]
    assert list(saved) == list(plain)  # no _orig_mod. prefixes
