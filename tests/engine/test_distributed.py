"""Distributed helpers in real gloo processes spawned by launch_job."""
import json
import os
import socket

import numpy as np
import pytest
import torch

from m3a.config import ConfigError, get_cfg
from m3a.engine.evaluation import gather_predictions
from m3a.utils import distributed as du


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _GatherJob:
    """Each rank holds videos {rank, rank+2} plus a padded repeat of video 0."""

    def __init__(self, out: str):
        self.out = out

    def __call__(self, cfg):
        rank = du.get_rank()
        idx = [np.array([rank, rank + 2]), np.array([0])]
        scores = [np.array([[rank, 0.0], [rank + 2, 1.0]]), np.array([[0.0, 0.0]])]
        labels = [np.array([rank, rank + 2]), np.array([0])]
        got = gather_predictions(idx, scores, labels)
        bn = torch.nn.BatchNorm1d(2)
        bn.running_mean.fill_(float(rank))
        du.average_norm_buffers(bn)
        sums = du.all_reduce_sum([1.0, rank])
        with open(os.path.join(self.out, f"rank{rank}.json"), "w") as f:
            json.dump({"world": du.get_world_size(), "indices": got["indices"].tolist(),
                       "scores": got["scores"][:, 0].tolist(), "labels": got["labels"].tolist(),
                       "bn_mean": bn.running_mean.tolist(), "sums": sums,
                       "device": str(du.get_device(cfg)), "backend": du.get_backend(cfg)}, f)


def test_two_cpu_processes_gather_dedup_and_average(tmp_path):
    cfg = get_cfg()
    cfg.NUM_GPUS = 0
    cfg.NUM_CPU_PROCESSES = 2
    du.launch_job(cfg, _GatherJob(str(tmp_path)), init_method=f"tcp://127.0.0.1:{free_port()}")
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.json") as f:
            res = json.load(f)
        assert res["world"] == 2 and res["backend"] == "gloo" and res["device"] == "cpu"
        assert res["indices"] == [0, 1, 2, 3]  # the padded repeat of video 0 counted once
        assert res["scores"] == [0.0, 1.0, 2.0, 3.0] and res["labels"] == [0, 1, 2, 3]
        assert res["bn_mean"] == [0.5, 0.5] and res["sums"] == [2.0, 1.0]


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
