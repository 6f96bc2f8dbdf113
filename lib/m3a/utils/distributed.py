"""Process groups, launching (torchrun, SlowFast-style shards, CPU), and collective helpers.

Launch styles handled by :func:`launch_job`:

- **torchrun** (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment): every process was
  started by torchrun; it joins the ``env://`` rendezvous and runs the job once.
- **shards** (``--num_shards K --shard_id i --init_method tcp://host:port``): this node spawns
  one process per GPU (``NUM_GPUS``), or ``NUM_CPU_PROCESSES`` processes when ``NUM_GPUS`` is 0;
  global rank = ``shard_id * processes_per_node + local_rank``.
- **single process**: one process on one node needs no process group at all.

The backend is ``DIST_BACKEND`` if set, else NCCL on GPU and gloo on CPU.
"""
import faulthandler
import logging
import os
from typing import Any, Callable, List

import torch
import torch.distributed as dist
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.loading import ConfigError

logger = logging.getLogger(__name__)

_LOCAL_RANK = 0


def is_dist() -> bool:
    """True when a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    """Number of processes of the run (1 without a process group)."""
    return dist.get_world_size() if is_dist() else 1


def get_rank() -> int:
    """Global rank of this process (0 without a process group)."""
    return dist.get_rank() if is_dist() else 0


def get_local_rank() -> int:
    """Rank of this process on its node (selects the GPU)."""
    return _LOCAL_RANK


def is_master_proc() -> bool:
    """True on the process that writes files and logs (global rank 0)."""
    return get_rank() == 0


def get_device(cfg: CfgNode) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` when ``NUM_GPUS`` > 0, else CPU."""
    if cfg.NUM_GPUS > 0:
        return torch.device(f"cuda:{get_local_rank()}")
    return torch.device("cpu")


def processes_per_node(cfg: CfgNode) -> int:
    """Processes this node runs: one per GPU, or ``NUM_CPU_PROCESSES`` on CPU."""
    return cfg.NUM_GPUS if cfg.NUM_GPUS > 0 else max(1, cfg.NUM_CPU_PROCESSES)


def check_devices(cfg: CfgNode) -> None:
    """Raise ConfigError when the config asks for more GPUs than this machine has."""
    if cfg.NUM_GPUS <= 0:
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"NUM_GPUS is {cfg.NUM_GPUS} but CUDA is not available; run with NUM_GPUS 0 for CPU")
    if torch.cuda.device_count() < cfg.NUM_GPUS and "LOCAL_RANK" not in os.environ:
        raise ConfigError(
            f"NUM_GPUS is {cfg.NUM_GPUS} but only {torch.cuda.device_count()} GPU(s) are visible"
        )


def get_backend(cfg: CfgNode) -> str:
    """``DIST_BACKEND`` when set, else nccl for GPU runs and gloo for CPU runs."""
    if cfg.DIST_BACKEND:
        return cfg.DIST_BACKEND
    return "nccl" if cfg.NUM_GPUS > 0 else "gloo"


def _set_local_rank(local_rank: int, cfg: CfgNode) -> None:
    global _LOCAL_RANK
    _LOCAL_RANK = local_rank
    if cfg.NUM_GPUS > 0:
        torch.cuda.set_device(local_rank)


def _is_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def _run_spawned(
    local_rank: int,
    func: Callable[[CfgNode], Any],
    init_method: str,
    shard_id: int,
    num_shards: int,
    cfg: CfgNode,
) -> None:
    """Entry point of a process spawned by :func:`launch_job` (shards style)."""
    per_node = processes_per_node(cfg)
    _set_local_rank(local_rank, cfg)
    _share_cpu_threads(cfg, per_node)
    dist.init_process_group(
        backend=get_backend(cfg),
        init_method=init_method,
        world_size=per_node * num_shards,
        rank=shard_id * per_node + local_rank,
    )
    _run_in_group(func, cfg)


def _share_cpu_threads(cfg: CfgNode, per_node: int) -> None:
    """Give each CPU rank its share of this node's cores (as torchrun does with OMP_NUM_THREADS).

    Without it every spawned CPU process starts one intra-op thread per core, and ``per_node``
    processes oversubscribe the node (4x slower for 2 ranks on 2 cores). An explicit
    ``OMP_NUM_THREADS`` is left alone.
    """
    if cfg.NUM_GPUS > 0 or "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores // per_node))


def _run_in_group(func: Callable[[CfgNode], Any], cfg: CfgNode) -> None:
    """Run ``func(cfg)`` in an initialised group, then tear the group down.

    A native crash (e.g. an abort inside the communication library) prints this rank's Python
    stack through ``faulthandler``. After a successful job every rank waits at a barrier before
    the group is destroyed, so no rank closes its sockets while a peer still talks to it.
    """
    faulthandler.enable(all_threads=True)
    try:
        func(cfg)
        synchronize()
    finally:
        dist.destroy_process_group()


def launch_job(
    cfg: CfgNode,
    func: Callable[[CfgNode], Any],
    init_method: str = "tcp://localhost:9999",
) -> None:
    """Run ``func(cfg)`` in every process of the run (see the module docstring for the styles).

    ``func`` must be picklable (a module-level function or object) for the spawned styles.
    """
    check_devices(cfg)
    if _is_torchrun():
        _set_local_rank(int(os.environ["LOCAL_RANK"]), cfg)
        dist.init_process_group(backend=get_backend(cfg), init_method="env://")
        _run_in_group(func, cfg)
        return
    per_node = processes_per_node(cfg)
    if per_node * cfg.NUM_SHARDS == 1:
        _set_local_rank(0, cfg)
        func(cfg)
        return
    torch.multiprocessing.spawn(
        _run_spawned,
        nprocs=per_node,
        args=(func, init_method, cfg.SHARD_ID, cfg.NUM_SHARDS, cfg),
        daemon=False,
    )


def synchronize() -> None:
    """Barrier across processes (no-op without a process group)."""
    if is_dist() and get_world_size() > 1:
        dist.barrier()


def all_gather_objects(obj: Any) -> List[Any]:
    """Gather a picklable object from every process, in rank order (``[obj]`` alone)."""
    if not is_dist() or get_world_size() == 1:
        return [obj]
    out: List[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values: List[float]) -> List[float]:
    """Sum a list of numbers over processes."""
    if not is_dist() or get_world_size() == 1:
        return list(values)
    gathered = all_gather_objects(list(values))
    return [sum(col) for col in zip(*gathered)]


def average_norm_buffers(model: nn.Module) -> None:
    """Average BatchNorm running statistics over processes (after precise BN on each rank)."""
    if not is_dist() or get_world_size() == 1:
        return
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            for buf in (module.running_mean, module.running_var):
                if buf is not None:
                    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                    buf.div_(get_world_size())


__all__ = [
    "all_gather_objects",
    "all_reduce_sum",
    "average_norm_buffers",
    "check_devices",
    "get_backend",
    "get_device",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "is_dist",
    "is_master_proc",
    "launch_job",
    "processes_per_node",
    "synchronize",
]
