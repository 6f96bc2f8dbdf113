"""Data loaders: per-process batch size, distributed sampling, seeded workers, batch collation.

Batches:

- train / val: ``(frames (B, 3, T, H, W), labels (B, N) float or (B,) int64, indices (B,) int64,
  {"failed": [paths replaced by other videos in this batch]})``
- test: ``(views (B, V, 3, T, S, S), labels, indices (B,) int64, ok (B,) bool)``

When items carry a list of pathway tensors (e.g. ``[rgb, pose]``) instead of one tensor, the
first element of a batch is the list of the pathways, each stacked separately: ``[(B, ...),
(B, ...)]``. A single tensor stays a tensor.

Reproducibility: the loader's torch Generator is seeded from RNG_SEED (+ the process rank), so
the shuffling order and the per-worker torch seeds are the same in every run; each worker also
seeds Python's ``random`` and NumPy from its torch seed.
"""
import random
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from fvcore.common.config import CfgNode
from torch.utils.data import DataLoader, DistributedSampler, default_collate

from m3a.datasets.video_dataset import SPLITS, build_dataset


def _world() -> Tuple[int, int]:
    """Return (world size, rank) of the initialised process group, or (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def seed_worker(worker_id: int) -> None:
    """Seed Python's ``random`` and NumPy in a loader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


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


def construct_loader(cfg: CfgNode, split: str) -> DataLoader:
    """Build the DataLoader of ``split`` (train, val or test) for this process."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
    name = cfg.TEST.DATASET if split == "test" else cfg.TRAIN.DATASET
    dataset = build_dataset(name, cfg, split)
    world, rank = _world()
    total = cfg.TEST.BATCH_SIZE if split == "test" else cfg.TRAIN.BATCH_SIZE
    batch_size = max(1, total // world)
    shuffle = split == "train"
    drop_last = split == "train"
    generator = torch.Generator()
    generator.manual_seed(cfg.RNG_SEED + rank)
    sampler = None
    if world > 1:
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=cfg.RNG_SEED, drop_last=False
        )
    workers = cfg.DATA_LOADER.NUM_WORKERS
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cfg.DATA_LOADER.PIN_MEMORY and torch.cuda.is_available(),
        drop_last=drop_last and len(dataset) >= batch_size * world,
        collate_fn=collate,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0 and cfg.DATA_LOADER.PERSISTENT_WORKERS,
    )


def shuffle_dataset(loader: DataLoader, epoch: int) -> None:
    """Set the epoch of a distributed sampler so every epoch gets a different shuffle."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
