"""Process groups, launching (torchrun, SlowFast-style shards, CPU), and collective helpers.

Launch styles handled by :func:`launch_job`:

- **torchrun** (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment): every process was
  started by torchrun; it joins the ``env://`` rendezvous and runs the job once.
- **shards** (``--num_shards K --shard_id i --init_method tcp://host:port``): this node spawns
  one process per GPU (``NUM_GPUS``), or ``NUM_CPU_PROCESSES`` processes when ``NUM_GPUS`` is 0;
  global rank = ``shard_id * processes_per_node + local_rank``.
- **single process**: one process on one node needs no process group at all.

The backend is ``DIST_BACKEND`` if set, else NCCL on GPU and gloo on CPU. Collectives time out
after ``DIST_TIMEOUT_S`` seconds; a rank whose collective fails (a peer hung or died) prints one
``error:`` line naming the rank(s) that did not take part and exits with
:data:`EXIT_COLLECTIVE_FAILED`. Spawned ranks die with their launcher (see :mod:`m3a.utils.parent_watch`).
When the shards style gets no ``init_method`` (and no ``MASTER_PORT``), a one-node run meets on
a free port: the launcher hosts the rendezvous store there and logs the port.
"""
import datetime
import faulthandler
import logging
import os
import sys
import time
from typing import Any, Callable, List, Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.loading import ConfigError
from m3a.utils.parent_watch import die_with_parent

logger = logging.getLogger(__name__)

_LOCAL_RANK = 0
# torch's intra-op thread count before this module changes it (physical cores by default).
_TORCH_DEFAULT_THREADS = torch.get_num_threads()
# The rendezvous store of a run whose launcher hosts it (None: torch's default store is used).
_STORE: Optional[dist.Store] = None
# Exit status of a rank whose collective failed (a peer hung or died); it printed one error line.
EXIT_COLLECTIVE_FAILED = 3
# Seconds the launcher gives the other ranks to exit after one failed, before SIGTERM then SIGKILL.
_SHUTDOWN_GRACE_S = 1.0
# Seconds spawned ranks wait for each other at start-up (or DIST_TIMEOUT_S if longer).
_STARTUP_WAIT_S = 120.0
# Key prefixes under which ranks check in at start-up and when their collective failed.
_ARRIVED_KEY = "m3a/arrived/"
_FAILED_KEY = "m3a/collective_failed/"
_FINISHED_KEY = "m3a/finished/"
# A launcher-hosted store: (host, port); or an init_method URL such as tcp://host:port.
Rendezvous = Union[str, Tuple[str, int]]


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


def dist_timeout(cfg: CfgNode) -> datetime.timedelta:
    """The process-group timeout ``DIST_TIMEOUT_S``; ConfigError unless it is positive."""
    if not cfg.DIST_TIMEOUT_S > 0:
        raise ConfigError(f"DIST_TIMEOUT_S must be a positive number of seconds, got {cfg.DIST_TIMEOUT_S}")
    return datetime.timedelta(seconds=float(cfg.DIST_TIMEOUT_S))


def resolve_init_method(init_method: Optional[str], cfg: CfgNode) -> Optional[str]:
    """The rendezvous URL of a shards-style run: ``init_method`` when given, else
    ``tcp://MASTER_ADDR:MASTER_PORT`` when ``MASTER_PORT`` is set, else None (one node: the
    launcher picks a free port). A multi-node run without either is a ConfigError."""
    if init_method:
        return init_method
    if os.environ.get("MASTER_PORT"):
        return f"tcp://{os.environ.get('MASTER_ADDR', 'localhost')}:{os.environ['MASTER_PORT']}"
    if cfg.NUM_SHARDS > 1:
        raise ConfigError(
            f"NUM_SHARDS is {cfg.NUM_SHARDS}: give every node the same --init_method tcp://HOST0:PORT "
            "(or MASTER_ADDR and MASTER_PORT)"
        )
    return None


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
    rendezvous: Rendezvous,
    shard_id: int,
    num_shards: int,
    cfg: CfgNode,
    launcher_pid: int,
) -> None:
    """Entry point of a process spawned by :func:`launch_job` (shards style)."""
    global _STORE
    die_with_parent(launcher_pid)
    per_node = processes_per_node(cfg)
    _set_local_rank(local_rank, cfg)
    set_cpu_threads(cfg, per_node)
    timeout = dist_timeout(cfg)
    group = dict(backend=get_backend(cfg), world_size=per_node * num_shards,
                 rank=shard_id * per_node + local_rank, timeout=timeout)
    if isinstance(rendezvous, str):
        dist.init_process_group(init_method=rendezvous, **group)
    else:
        _STORE = _meet_at_store(rendezvous, group["rank"], group["world_size"], timeout)
        dist.init_process_group(store=_STORE, **group)
    _run_in_group(func, cfg)


def _meet_at_store(address: Tuple[str, int], rank: int, world: int,
                   timeout: datetime.timedelta) -> dist.TCPStore:
    """Connect to the launcher's store and wait there (at least ``_STARTUP_WAIT_S``) until
    every rank has arrived, so that a slow start-up does not count against a short timeout."""
    startup = datetime.timedelta(seconds=max(timeout.total_seconds(), _STARTUP_WAIT_S))
    store = dist.TCPStore(address[0], address[1], is_master=False, timeout=startup)
    store.set(f"{_ARRIVED_KEY}{rank}", "1")
    store.wait([f"{_ARRIVED_KEY}{r}" for r in range(world)])
    store.set_timeout(timeout)
    return store


def _cpu_threads(cfg: CfgNode, per_node: int) -> int:
    """Torch threads for one of ``per_node`` CPU processes of a node: its share of the cores
    (never more than torch's own default, which counts physical cores) less one core per loader
    worker (``DATA_LOADER.NUM_WORKERS``), at least 1.

    On CPU the loader workers decode on the same cores as the step: a step thread that shares
    its core with a worker stalls the others at every synchronisation (the demo trains 1.2-1.4x
    faster on 2 cores with 1 thread and 2 workers than with 2 threads and 2 workers).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(_TORCH_DEFAULT_THREADS, cores // per_node) - cfg.DATA_LOADER.NUM_WORKERS)


def set_cpu_threads(cfg: CfgNode, per_node: int) -> None:
    """Set :func:`_cpu_threads` for this CPU process (as torchrun does with OMP_NUM_THREADS).

    Without it every CPU process starts one intra-op thread per core, and ``per_node``
    processes plus their loader workers oversubscribe the node (4x slower for 2 ranks on 2
    cores). An explicit ``OMP_NUM_THREADS`` is left alone.
    """
    if cfg.NUM_GPUS > 0 or "OMP_NUM_THREADS" in os.environ:
        return
    torch.set_num_threads(_cpu_threads(cfg, per_node))


def _run_in_group(func: Callable[[CfgNode], Any], cfg: CfgNode) -> None:
    """Run ``func(cfg)`` in an initialised group, then tear the group down.

    A native crash (e.g. an abort inside the communication library) prints this rank's Python
    stack through ``faulthandler``. After a successful job every rank waits at a barrier before
    the group is destroyed, and then checks in at the rendezvous store until all have (so no rank
    tears its connections down while a peer's communication threads still read from them).
    A collective that fails (timed out after ``DIST_TIMEOUT_S``, or a peer's connection closed)
    ends this rank with one ``error:`` line and :data:`EXIT_COLLECTIVE_FAILED`.
    """
    faulthandler.enable(all_threads=True)
    try:
        func(cfg)
        synchronize()
        _finish_together()
    except RuntimeError as err:
        if not is_collective_failure(err):
            raise
        _exit_after_collective_failure(err, float(cfg.DIST_TIMEOUT_S))
    finally:
        if is_dist():
            dist.destroy_process_group()


def _finish_together() -> None:
    """Wait at the rendezvous store until every rank has finished its job (a barrier that does
    not use the backend's connections, so none of them carries a message when it is closed)."""
    store = _rendezvous_store()
    if store is None:
        return
    prefix = f"{_FINISHED_KEY}{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
    store.set(f"{prefix}{get_rank()}", "1")
    store.wait([f"{prefix}{r}" for r in range(get_world_size())])


def is_collective_failure(err: BaseException) -> bool:
    """True for a communication error: a collective timed out or a peer's connection dropped."""
    if isinstance(err, getattr(dist, "DistBackendError", ())):
        return True
    text = str(err)
    return any(p in text for p in ("Timed out", "timed out", "Connection closed by peer",
                                   "Connection reset by peer"))


def _rendezvous_store() -> Optional[dist.Store]:
    if _STORE is not None:
        return _STORE
    try:
        return dist.distributed_c10d._get_default_store()
    except (RuntimeError, AttributeError, ValueError):
        return None


def _ranks_not_checked_in(rank: int, world: int, wait_s: float) -> Optional[List[int]]:
    """Check in at the rendezvous store as a rank whose collective failed; wait up to ``wait_s``
    for the others; return the ranks that never checked in (None: the store does not answer).

    The ranks still alive all see the failure within about a second of each other, so the ones
    missing after the wait are those that hung or died.
    """
    store = _rendezvous_store()
    if store is None:
        return None
    try:
        store.set_timeout(datetime.timedelta(seconds=max(wait_s, 1.0)))
        store.set(f"{_FAILED_KEY}{rank}", "1")
        deadline = time.monotonic() + wait_s
        while True:
            present = [r for r in range(world) if store.check([f"{_FAILED_KEY}{r}"])]
            if len(present) == world or time.monotonic() >= deadline:
                return [r for r in range(world) if r not in present]
            time.sleep(0.1)
    except (RuntimeError, ValueError):  # torch raises DistStoreError (a RuntimeError) on timeouts
        return None


def collective_failure_message(err: BaseException, rank: int, missing: Optional[List[int]],
                               timeout_s: float) -> str:
    """The one ``error:`` line of a failed collective (``missing``: the ranks that did not take
    part; None when unknown)."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    reason = reason.split("] ", 1)[-1] if reason.startswith("[") else reason  # drop "[file.cc:N] "
    who = (f"rank(s) {', '.join(map(str, missing))}" if missing
           else "a peer rank (which one is unknown: the rendezvous store does not answer)")
    return (f"error: distributed job stopped: {who} did not take part in a collective within "
            f"DIST_TIMEOUT_S={timeout_s:g} s (hung or dead); rank {rank} saw: {reason}")


def _exit_after_collective_failure(err: BaseException, timeout_s: float) -> None:
    """Print the one-line error (from the lowest rank still alive) and end this process at once:
    tearing down a broken group can block."""
    rank, world = get_rank(), get_world_size()
    missing = _ranks_not_checked_in(rank, world, wait_s=min(5.0, timeout_s))
    if missing is None or rank == min(r for r in range(world) if r not in missing):
        print(collective_failure_message(err, rank, missing, timeout_s), file=sys.stderr, flush=True)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_COLLECTIVE_FAILED)


def _launcher_store(cfg: CfgNode) -> Tuple[dist.TCPStore, Tuple[str, int]]:
    """A rendezvous store in the launcher on a free port of 127.0.0.1 (no race for the port: the
    store itself binds port 0)."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=dist_timeout(cfg))
    logger.info("rendezvous on tcp://127.0.0.1:%d, a free port (--init_method or MASTER_PORT choose one)",
                store.port)
    return store, ("127.0.0.1", store.port)


def launch_job(
    cfg: CfgNode,
    func: Callable[[CfgNode], Any],
    init_method: Optional[str] = None,
) -> None:
    """Run ``func(cfg)`` in every process of the run (see the module docstring for the styles).

    ``func`` must be picklable (a module-level function or object) for the spawned styles.
    ``init_method`` (shards style): the rendezvous URL; None picks one (see
    :func:`resolve_init_method`).
    """
    check_devices(cfg)
    timeout = dist_timeout(cfg)
    if _is_torchrun():
        _set_local_rank(int(os.environ["LOCAL_RANK"]), cfg)
        set_cpu_threads(cfg, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # torchrun sets OMP_NUM_THREADS for > 1
        dist.init_process_group(backend=get_backend(cfg), init_method="env://", timeout=timeout)
        _run_in_group(func, cfg)
        return
    per_node = processes_per_node(cfg)
    if per_node * cfg.NUM_SHARDS == 1:
        _set_local_rank(0, cfg)
        threads = torch.get_num_threads()
        set_cpu_threads(cfg, 1)
        try:
            func(cfg)
        finally:
            torch.set_num_threads(threads)  # the caller's process goes on with its own setting
        return
    url = resolve_init_method(init_method, cfg)
    store, rendezvous = _launcher_store(cfg) if url is None else (None, url)
    try:
        context = torch.multiprocessing.start_processes(
            _run_spawned,
            nprocs=per_node,
            args=(func, rendezvous, cfg.SHARD_ID, cfg.NUM_SHARDS, cfg, os.getpid()),
            daemon=False,
            join=False,
        )
        # A hung rank (e.g. SIGSTOPped) ignores SIGTERM: the grace bounds the wait for SIGKILL.
        while not context.join(grace_period=_SHUTDOWN_GRACE_S):
            pass
    finally:
        del store  # the launcher's store serves the ranks until they have all ended


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
    "EXIT_COLLECTIVE_FAILED",
    "check_devices",
    "collective_failure_message",
    "dist_timeout",
    "get_backend",
    "get_device",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "is_dist",
    "is_collective_failure",
    "is_master_proc",
    "launch_job",
    "processes_per_node",
    "resolve_init_method",
    "set_cpu_threads",
    "synchronize",
]
