"""Launch decisions of the distributed helpers (multi-process collectives: test_ddp.py)."""
import pytest
import torch

from m3a.config import ConfigError, get_cfg
from m3a.utils import distributed as du


def test_single_process_runs_in_place():
    cfg = get_cfg()
    cfg.NUM_GPUS = 0
    seen = []
    du.launch_job(cfg, lambda c: seen.append((du.get_world_size(), du.is_master_proc())))
    assert seen == [(1, True)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_gpu_request_without_cuda_is_one_clear_error():
    cfg = get_cfg()
    cfg.NUM_GPUS = 1
    with pytest.raises(ConfigError, match="NUM_GPUS 0"):
        du.launch_job(cfg, print)
