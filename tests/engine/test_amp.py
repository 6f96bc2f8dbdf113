"""CPU mixed precision: bf16 autocast only on CPUs with native bf16 (or when forced), and the
engine logs which precision runs."""
import logging

import pytest
import torch
import torch.nn as nn

from m3a.config import ConfigError, get_cfg, load_config
from m3a.engine import amp
from m3a.engine.train_loop import train
from tests.engine.conftest import tiny_cfg

X86_NO_BF16 = "fpu vme sse2 avx avx2 fma avx512f avx512bw avx512vl".split()
X86_BF16 = X86_NO_BF16 + ["avx512_bf16"]


def test_decision_follows_the_cpu_flags_unless_forced():
    assert amp.cpu_autocast_decision("auto", X86_BF16) == (True, "this CPU has native bf16 (avx512_bf16)")
    assert amp.cpu_autocast_decision("auto", X86_NO_BF16 + ["amx_bf16", "amx_tile"])[0]
    use, why = amp.cpu_autocast_decision("auto", X86_NO_BF16)
    assert not use and "no native bf16" in why and "TRAIN.CPU_AMP on" in why
    assert amp.cpu_autocast_decision("on", X86_NO_BF16) == (True, "TRAIN.CPU_AMP on")
    assert amp.cpu_autocast_decision("off", X86_BF16) == (False, "TRAIN.CPU_AMP off")
    with pytest.raises(ConfigError, match="TRAIN.CPU_AMP must be one of auto, on, off, got 'yes'"):
        load_config(None, ["TRAIN.CPU_AMP", "yes"])  # the config's validation owns the choices


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU implementer\t: 0x41\n")
    assert amp.cpu_flags(str(x86)) == {"fpu", "avx2", "avx512_bf16"}
    assert amp.cpu_autocast_decision("auto", amp.cpu_flags(str(arm))) == (True, "this CPU has native bf16 (bf16)")
    assert amp.cpu_flags(str(tmp_path / "none")) == frozenset()


def test_autocast_dtype_and_description_on_cpu():
    cfg = get_cfg()
    cpu = torch.device("cpu")
    layer = nn.Linear(4, 2)
    assert amp.describe_precision(cfg, cpu) == "precision: fp32 (TRAIN.ENABLE_AMP False)"
    cfg.TRAIN.ENABLE_AMP = True
    for mode, dtype, text in (
        ("on", torch.bfloat16, "precision: bf16 autocast on CPU (TRAIN.ENABLE_AMP True; TRAIN.CPU_AMP on)"),
        ("off", torch.float32, "precision: fp32 on CPU although TRAIN.ENABLE_AMP is True (TRAIN.CPU_AMP off)"),
    ):
        cfg.TRAIN.CPU_AMP = mode
        with amp.autocast(cfg, cpu):
            assert layer(torch.ones(1, 4)).dtype == dtype
        assert amp.describe_precision(cfg, cpu) == text
    assert amp.describe_precision(cfg, torch.device("cuda")).startswith("precision: fp16 autocast")
    cfg.TRAIN.AMP_DTYPE, cfg.NUM_GPUS = "float16", 1  # valid for a GPU run, but this model is on the CPU
    with pytest.raises(ConfigError, match="TRAIN.AMP_DTYPE float16 needs a CUDA device"):
        amp.autocast_dtype(cfg, cpu)


@pytest.mark.parametrize("mode,precision", [("off", "precision: fp32 on CPU"), ("on", "precision: bf16 autocast on CPU")])
def test_training_logs_the_precision_that_runs(tiny_data, tmp_path, caplog, mode, precision):
    cfg = tiny_cfg(tiny_data, str(tmp_path / "out"))
    cfg.TRAIN.ENABLE_AMP = True
    cfg.TRAIN.CPU_AMP = mode
    cfg.TRAIN.EVAL_PERIOD = 0
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1
    cfg.SOLVER.MAX_EPOCH = 1
    with caplog.at_level(logging.INFO):
        train(cfg)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("precision:")] == [
        amp.describe_precision(cfg, torch.device("cpu"))
    ]
    assert amp.describe_precision(cfg, torch.device("cpu")).startswith(precision)
