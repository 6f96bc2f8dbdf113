"""Data loaders: per-process batch size, distributed sampling, seeded samples, batch collation.

Batches:

- train / val: ``(frames (B, 3, T, H, W), labels (B, N) float or (B,) int64, indices (B,) int64,
  {"failed": [paths replaced by other videos in this batch]})``
- test: ``(views (B, V, 3, T, S, S), labels, indices (B,) int64, ok (B,) bool)``

When items carry a list of pathway tensors (e.g. ``[rgb, pose]``) instead of one tensor, the
first element of a batch is the list of the pathways, each stacked separately: ``[(B, ...),
(B, ...)]``. A single tensor stays a tensor.

Reproducibility and resuming: the data a training epoch sees is a function of ``(RNG_SEED,
epoch)`` alone. The sampler's order is the permutation of ``RNG_SEED + epoch`` (split between
processes as torch's DistributedSampler does, also with one process), and every train/val sample
is drawn with Python's, NumPy's and torch's generators seeded from ``(RNG_SEED, epoch, index)``
(restored afterwards in the main process), whichever process or loader worker loads it. So epoch 5 of a run
resumed after epoch 4 sees exactly the batches and augmentations of epoch 5 of an uninterrupted
run; the training loop takes its epochs from :func:`construct_train_epochs`. Validation always
uses epoch 0: the same clips at every evaluation.
"""
import contextlib
import functools
import os
import random
import signal
import threading
from typing import Iterator, List, Sequence, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate, get_worker_info

from m3a.datasets.epoch_stream import EpochBatchSampler, TrainEpochs
from m3a.datasets.seeding import derived_seed
from m3a.datasets.video_dataset import SPLITS, build_dataset
from m3a.datasets.video_list import ListFormatError


def _world() -> Tuple[int, int]:
    """Return (world size, rank) of the initialised process group, or (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


@contextlib.contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's (CPU) global generators with ``seed``.

    In the main process (``NUM_WORKERS 0``) their states are restored afterwards, so loading
    leaves the training loop's own random stream (dropout...) as it was; a loader worker has no
    other use for them and skips that (saving NumPy's state alone costs ~0.2 ms).
    """
    main = get_worker_info() is None
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state()) if main else None
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)  # the CPU generator only: CUDA's is left alone
    try:
        yield
    finally:
        if states is not None:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


class EpochSampler(DistributedSampler):
    """DistributedSampler that yields ``(epoch, index)`` keys for :class:`SeededSamples`."""

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, index) for index in super().__iter__())


class SeededSamples(Dataset):
    """Wraps a dataset: item ``(epoch, index)`` is ``dataset[index]`` drawn under the seed
    ``derived_seed(seed, epoch, index)``, so a sample's augmentation is reproducible anywhere."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Tuple[int, int]):
        epoch, index = key
        with seeded_rngs(derived_seed(self.seed, epoch, index)):
            return self.dataset[index]


def stack_inputs(inputs: Sequence) -> Union[torch.Tensor, List[torch.Tensor]]:
    """Stack the items' tensors, or, for items holding lists of pathway tensors, each pathway."""
    if not isinstance(inputs[0], (list, tuple)):
        # default_collate stacks straight into shared memory inside a worker (no extra copy).
        return default_collate(inputs)
    counts = {len(item) for item in inputs}
    if len(counts) != 1:
        raise ValueError(f"items of one batch hold different numbers of pathways: {sorted(counts)}")
    return [default_collate([item[p] for item in inputs]) for p in range(counts.pop())]


def collate(batch: Sequence[Tuple]) -> Tuple:
    """Stack dataset items into a batch; train/val metas merge into one flat ``failed`` list."""
    tensors, labels, indices, last = zip(*batch)
    stacked = (stack_inputs(tensors), default_collate(labels), torch.as_tensor(indices, dtype=torch.int64))
    if isinstance(last[0], dict):
        failed: List[str] = [path for meta in last for path in meta["failed"]]
        return stacked + ({"failed": failed},)
    return stacked + (torch.as_tensor(last, dtype=torch.bool),)


def _build_dataset(cfg: CfgNode, split: str) -> Dataset:
    """The dataset of ``split``; a list that does not fit the config is a ListFormatError."""
    name = cfg.TEST.DATASET if split == "test" else cfg.TRAIN.DATASET
    try:
        return build_dataset(name, cfg, split)
    except ListFormatError:
        raise
    except ValueError as err:  # an empty list, labels that do not fit DATA.MULTI_LABEL...
        raise ListFormatError(str(err)) from None


def check_videos_exist(paths: Sequence[str], list_path: str) -> None:
    """Raise ListFormatError naming the list and its first path when none of ``paths`` exists.

    Stops at the first existing path (one ``stat`` for a healthy list); single missing videos
    are left to the dataset, which replaces or skips them.
    """
    if paths and not any(os.path.exists(p) for p in paths):
        raise ListFormatError(
            f"{list_path}: none of its {len(paths)} videos exists (first: {paths[0]}); "
            "check DATA.PATH_PREFIX and DATA.PATH_TO_DATA_DIR"
        )


def construct_loader(cfg: CfgNode, split: str, across_epochs: bool = False) -> DataLoader:
    """Build the DataLoader of ``split`` (train, val or test) for this process.

    ``across_epochs`` (train only): the batches run on from epoch to epoch without end (an
    :class:`~m3a.datasets.epoch_stream.EpochBatchSampler`; see :func:`construct_train_epochs`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
    dataset = _build_dataset(cfg, split)
    check_videos_exist(dataset.paths, dataset.list_path)
    world, rank = _world()
    total = cfg.TEST.BATCH_SIZE if split == "test" else cfg.TRAIN.BATCH_SIZE
    if split == "train":  # micro-batches of gradient accumulation (m3a.engine.accumulation)
        total //= cfg.TRAIN.ACCUM_STEPS
    batch_size = max(1, total // world)
    sampler = None
    if split != "test":
        sampler = EpochSampler(
            dataset, num_replicas=world, rank=rank, shuffle=split == "train", seed=cfg.RNG_SEED, drop_last=False
        )
        dataset = SeededSamples(dataset, cfg.RNG_SEED)
    elif world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False, drop_last=False)
    drop_last = split == "train" and len(dataset) >= batch_size * world
    workers = cfg.DATA_LOADER.NUM_WORKERS
    options = dict(
        num_workers=workers,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        collate_fn=collate,
        # Worker base seeds come from here, not from the global generator (samples seed themselves).
        generator=torch.Generator().manual_seed(cfg.RNG_SEED + rank),
        persistent_workers=workers > 0 and cfg.DATA_LOADER.PERSISTENT_WORKERS,
        worker_init_fn=functools.partial(prepare_worker, niceness=cfg.DATA_LOADER.WORKER_NICENESS),
    )
    if across_epochs:
        if split != "train":
            raise ValueError(f"across_epochs is for the train split, not '{split}'")
        return DataLoader(dataset, batch_sampler=EpochBatchSampler(sampler, batch_size, drop_last), **options)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **options)


def construct_train_epochs(cfg: CfgNode) -> TrainEpochs:
    """The training batches of this process, one epoch at a time, with the loader workers going
    on into the next epoch while the last steps of an epoch run (m3a.datasets.epoch_stream)."""
    return TrainEpochs(construct_loader(cfg, "train", across_epochs=True))


def prepare_worker(worker_id: int, niceness: int = 0) -> None:
    """Loader workers run ``niceness`` steps below the training process's priority (see
    ``DATA_LOADER.WORKER_NICENESS``), leave Ctrl-C to their process, which stops and shuts them
    down, and stay quiet when it goes away mid-transfer.

    Killed by the terminal's SIGINT while passing a batch, a worker made the main process print a
    ConnectionResetError traceback. And a batch's tensors travel as file descriptors that the main
    process fetches from a listener thread of the worker: when the main process stops during that
    hand-over, the thread's ConnectionResetError would be printed as a 20-line traceback under the
    one-line message; connection errors of a worker's threads are therefore not printed.
    """
    if niceness and hasattr(os, "nice"):  # POSIX only
        os.nice(niceness)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.excepthook = _quiet_connection_errors


def _quiet_connection_errors(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook`` of a loader worker: connection errors (the main process is gone)
    pass silently, anything else is reported as usual."""
    if issubclass(args.exc_type, (ConnectionError, EOFError)):
        return
    threading.__excepthook__(args)


def list_dataset(loader: Union[DataLoader, TrainEpochs]) -> Dataset:
    """The list's dataset of ``loader`` (inside the SeededSamples wrapper of train/val)."""
    dataset = loader.dataset
    return dataset.dataset if isinstance(dataset, SeededSamples) else dataset
