"""Gradient accumulation (``TRAIN.ACCUM_STEPS``): optimizer steps made of several micro-batches.

The loader yields micro-batches of ``TRAIN.BATCH_SIZE / TRAIN.ACCUM_STEPS`` videos (over all
processes). One iteration of the training loop is one optimizer step over a group of
``ACCUM_STEPS`` consecutive micro-batches: the first clears the gradients, each backpropagates
its mean loss times 1/(micro-batches in the group), the last unscales, clips and steps. Under DDP
the micro-batches before the last run inside ``no_sync()``, so gradients are all-reduced once per
step. The learning rate is set once per optimizer step; iterations (MAX_ITERS_PER_EPOCH,
LOG_PERIOD, the LR schedule's epoch fraction) count optimizer steps.

An epoch makes ``micro-batches // ACCUM_STEPS`` steps (at least one); the leftover micro-batches
(fewer than one batch of TRAIN.BATCH_SIZE) are not loaded, as a loader drops an incomplete batch
without accumulation: with equal data order the epoch sees the same videos in the same steps
for every ACCUM_STEPS. A group never spans two epochs, so checkpoints (saved at epoch ends) hold
no half-accumulated gradient and resuming needs no extra state.
"""
import contextlib
import dataclasses
import itertools
import logging
from typing import Iterable, Iterator, List

import torch.nn as nn
from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MicroBatch:
    """Where a micro-batch sits in its optimizer step: ``first`` clears the gradients, ``last``
    steps, ``weight`` scales its loss (1 / micro-batches in the step)."""

    first: bool = True
    last: bool = True
    weight: float = 1.0


# A whole optimizer step in one batch (no accumulation).
FULL_STEP = MicroBatch()


def optimizer_steps(num_micro_batches: int, cfg: CfgNode) -> int:
    """Optimizer steps of an epoch of ``num_micro_batches``: whole groups of ACCUM_STEPS (one
    smaller group when there are fewer), capped by TRAIN.MAX_ITERS_PER_EPOCH (> 0)."""
    steps = num_micro_batches // cfg.TRAIN.ACCUM_STEPS or min(num_micro_batches, 1)
    if cfg.TRAIN.MAX_ITERS_PER_EPOCH > 0:
        steps = min(steps, cfg.TRAIN.MAX_ITERS_PER_EPOCH)
    return steps


def micro_batches_used(num_micro_batches: int, cfg: CfgNode) -> int:
    """Micro-batches the epoch's optimizer steps consume (the rest are not trained on)."""
    return min(num_micro_batches, optimizer_steps(num_micro_batches, cfg) * cfg.TRAIN.ACCUM_STEPS)


def groups(batches: Iterable, size: int) -> Iterator[List]:
    """Consecutive lists of ``size`` items of ``batches`` (the last may be shorter)."""
    it = iter(batches)
    while True:
        group = list(itertools.islice(it, size))
        if not group:
            return
        yield group


def positions(count: int) -> List[MicroBatch]:
    """The :class:`MicroBatch` of each of ``count`` micro-batches of one optimizer step."""
    return [MicroBatch(first=i == 0, last=i == count - 1, weight=1.0 / count) for i in range(count)]


def sync_context(model: nn.Module, micro: MicroBatch):
    """``model.no_sync()`` for a DDP model's micro-batch that does not step, else a no-op."""
    if isinstance(model, nn.parallel.DistributedDataParallel) and not micro.last:
        return model.no_sync()
    return contextlib.nullcontext()


def describe(num_micro_batches: int, cfg: CfgNode, world_size: int) -> str:
    """One line on how an epoch of ``num_micro_batches`` (per process) is accumulated."""
    accum = cfg.TRAIN.ACCUM_STEPS
    steps = optimizer_steps(num_micro_batches, cfg)
    unused = num_micro_batches - micro_batches_used(num_micro_batches, cfg)
    line = (f"gradient accumulation: {steps} optimizer step(s) per epoch, each of {accum} micro-batches of "
            f"{cfg.TRAIN.BATCH_SIZE // accum} video(s) over {world_size} process(es) (TRAIN.BATCH_SIZE "
            f"{cfg.TRAIN.BATCH_SIZE})")
    if unused and not cfg.TRAIN.MAX_ITERS_PER_EPOCH:
        line += f"; the last {unused} micro-batch(es) of each epoch (less than one batch) are not used"
    return line
