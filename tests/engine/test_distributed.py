"""Launch decisions of the distributed helpers (multi-process collectives: test_ddp.py)."""
import os

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


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_cpu_process_leaves_a_core_per_loader_worker(monkeypatch, workers):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cfg = get_cfg()
    cfg.NUM_GPUS = 0
    cfg.DATA_LOADER.NUM_WORKERS = workers
    before = torch.get_num_threads()
    seen = []
    du.launch_job(cfg, lambda c: seen.append(torch.get_num_threads()))
    cores = min(len(os.sched_getaffinity(0)), du._TORCH_DEFAULT_THREADS)
    assert seen == [max(1, cores - workers)]
    assert torch.get_num_threads() == before  # the caller's setting comes back


def test_cpu_threads_follow_omp_num_threads_when_set(monkeypatch):
    """An OMP_NUM_THREADS the user set wins over the policy (which would give every core here)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = get_cfg()
    cfg.NUM_GPUS = 0
    cfg.DATA_LOADER.NUM_WORKERS = 0
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    seen = []
    try:
        du.launch_job(cfg, lambda c: seen.append(torch.get_num_threads()))
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
