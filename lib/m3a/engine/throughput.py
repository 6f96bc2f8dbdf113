"""Training throughput (``tools/benchmark.py train``): clips per second of the engine's training
step fed by the real loader, against the same step replaying one batch kept in memory.

Both call :func:`m3a.engine.train_loop.train_step` (forward, loss, backward, optimizer step,
autocast, channels-last, on the compiled model under MODEL.COMPILE), as the training loop does.
Their ratio (``loader_ratio``) is the share of the step's speed the loader keeps: 1.0 means
loading costs nothing. Model speed switches (channels-last, bf16/fp16 autocast, torch.compile)
are compared on the replayed batch, each with its own model built from the same seed (as is the
replayed run of the base config), so their losses after the same steps show that a switch keeps
the results.

The loader alone (batches taken, no step) is measured too: on CPU, where the step and the loader
workers share the cores, ``loader_ratio`` is at most about loader-alone / replayed clips/s, and
lower when the step's threads and the workers compete for the same cores.

Every block of iterations starts with unmeasured warm-up iterations (they also empty the loader's
prefetched queue); blocks of the loader alone, the real and the replayed input alternate for
``rounds`` rounds so that load from other processes hits them alike.
"""
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.datasets.epoch_stream import TrainEpochs
from m3a.engine import amp, speed
from m3a.engine.inputs import batch_size, to_device
from m3a.engine.lr_policy import get_lr_at_epoch
from m3a.engine.optimizer import construct_optimizer, set_lr
from m3a.engine.train_loop import build_model_for_training, set_seed, train_step
from m3a.models.losses import get_loss_func, prepare_targets
from m3a.utils import distributed as du

# --compare switch -> its config overrides; switches combine with "+" (channels_last+bf16).
SWITCHES: Dict[str, Tuple[str, ...]] = {
    "channels_last": ("TRAIN.CHANNELS_LAST", "True"),
    "bf16": ("TRAIN.ENABLE_AMP", "True", "TRAIN.AMP_DTYPE", "bfloat16", "TRAIN.CPU_AMP", "on"),
    "fp16": ("TRAIN.ENABLE_AMP", "True", "TRAIN.AMP_DTYPE", "float16"),
    "compile": ("MODEL.COMPILE", "True"),
}


def switch_overrides(spec: str) -> List[str]:
    """The KEY VALUE overrides of a --compare spec such as ``channels_last+bf16``."""
    opts: List[str] = []
    for name in spec.split("+"):
        if name not in SWITCHES:
            raise ValueError(f"--compare: unknown switch '{name}' in '{spec}'; choose from "
                             f"{', '.join(SWITCHES)} (combine with +)")
        opts.extend(SWITCHES[name])
    return opts


@dataclass
class Trainer:
    """What one training step needs: the model (saved, uncompiled), the model the step calls
    (compiled under MODEL.COMPILE), optimizer, gradient scaler and loss."""

    cfg: CfgNode
    device: torch.device
    model: nn.Module
    step_model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss_fn: nn.Module

    @classmethod
    def build(cls, cfg: CfgNode, device: torch.device) -> "Trainer":
        """Build as :func:`m3a.engine.train_loop.train` does, from ``cfg.RNG_SEED``."""
        set_seed(cfg.RNG_SEED)
        model = build_model_for_training(cfg, device)
        optimizer = construct_optimizer(model, cfg)
        set_lr(optimizer, get_lr_at_epoch(cfg, 0.0))
        loss_fn = get_loss_func(cfg.MODEL.LOSS_FUNC)(reduction="mean")
        return cls(cfg, device, model, speed.compile_model(model, cfg, device), optimizer,
                   amp.build_grad_scaler(cfg, device), loss_fn)

    def step(self, batch: Sequence) -> Tuple[int, float]:
        """One training iteration on a loader batch; return its clip count and loss."""
        inputs, labels = batch[0], batch[1]
        inputs = to_device(inputs, self.device, non_blocking=True)
        targets = prepare_targets(labels, self.cfg.MODEL.NUM_CLASSES, self.cfg.MODEL.LOSS_FUNC).to(self.device)
        loss = train_step(self.step_model, inputs, targets, self.loss_fn, self.optimizer, self.scaler,
                          self.cfg, self.device)
        return batch_size(inputs), loss


@dataclass
class Throughput:
    """Clips and seconds of the measured iterations, and the last loss."""

    clips: int = 0
    seconds: float = 0.0
    losses: List[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        """Clips per second (0 before any measurement)."""
        return self.clips / self.seconds if self.seconds > 0 else 0.0


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_block(trainer: Trainer, batches: Iterator, warmup: int, iters: int, result: Throughput) -> None:
    """``warmup`` unmeasured then ``iters`` measured iterations on ``batches`` (the time to get
    each measured batch counts); add them to ``result``."""
    trainer.step_model.train()
    for _ in range(warmup):
        trainer.step(next(batches))
    _synchronize(trainer.device)
    start = time.perf_counter()
    for _ in range(iters):
        clips, loss = trainer.step(next(batches))
        result.clips += clips
        result.losses.append(loss)
    _synchronize(trainer.device)
    result.seconds += time.perf_counter() - start


def run_loader_block(batches: Iterator, warmup: int, iters: int, result: Throughput) -> None:
    """Like :func:`run_block` without the training step: the loader's own clips/s."""
    for _ in range(warmup):
        next(batches)
    start = time.perf_counter()
    for _ in range(iters):
        result.clips += batch_size(next(batches)[0])
    result.seconds += time.perf_counter() - start


def loader_epochs(epochs: TrainEpochs) -> Iterator:
    """The batches of ``epochs``, epoch after epoch as the training loop takes them, without end."""
    for epoch in itertools.count():
        yield from epochs.epoch(epoch)


@dataclass
class Report:
    """Results of :func:`measure`: real and replayed input of the base config, then each switch;
    ``loader`` is the loader alone (no training step)."""

    real: Throughput
    loader: Throughput
    synthetic: Throughput
    switches: Dict[str, Throughput]

    @property
    def loader_ratio(self) -> float:
        """Real over replayed clips/s."""
        return self.real.per_second / self.synthetic.per_second


def measure(
    make_cfg: Callable[[Sequence[str]], CfgNode], compare: Sequence[str], warmup: int, iters: int, rounds: int,
    on_block: Callable[[str], None] = lambda name: None,
) -> Report:
    """Measure the base config ``make_cfg(())`` on its loader and on its first batch replayed,
    then every --compare spec on that batch replayed (config ``make_cfg(switch_overrides(spec))``)."""
    from m3a.datasets.loader import construct_train_epochs

    cfg = make_cfg(())
    du.check_devices(cfg)
    device = du.get_device(cfg)
    real_batches = loader_epochs(construct_train_epochs(cfg))
    first = next(real_batches)
    replay = itertools.repeat(first)
    real_trainer = Trainer.build(cfg, device)
    # The replayed runs each start from the same weights and see the same batches: their losses compare.
    trainers = {"": Trainer.build(cfg, device)}
    for spec in compare:
        trainers[spec] = Trainer.build(make_cfg(switch_overrides(spec)), device)
    real, alone, results = Throughput(), Throughput(), {name: Throughput() for name in trainers}
    for _ in range(rounds):
        on_block("loader alone")
        run_loader_block(real_batches, warmup, iters, alone)
        on_block("real input")
        run_block(real_trainer, real_batches, warmup, iters, real)
        for name, trainer in trainers.items():
            on_block(f"replayed batch{', ' + name if name else ''}")
            run_block(trainer, replay, warmup, iters, results[name])
    synthetic = results.pop("")
    return Report(real, alone, synthetic, results)


def describe(cfg: CfgNode) -> str:
    """One line naming the device, threads and loader workers of a measurement."""
    import os

    device = du.get_device(cfg)
    where = f"{device}" if device.type == "cuda" else f"cpu ({torch.get_num_threads()} torch threads, " \
        f"{os.cpu_count()} cores)"
    return (f"training step of {cfg.MODEL.MODEL_NAME} ({cfg.MODEL.ARCH}-{cfg.MODEL.DEPTH}), batch "
            f"{cfg.TRAIN.BATCH_SIZE} of {cfg.DATA.NUM_FRAMES}x{cfg.DATA.TRAIN_CROP_SIZE}^2 clips on {where}; "
            f"loader workers {cfg.DATA_LOADER.NUM_WORKERS}; {amp.describe_precision(cfg, device)}")


def mean_loss(result: Throughput, last: int = 5) -> float:
    """Mean loss of the last ``last`` measured iterations."""
    tail = result.losses[-last:]
    return sum(tail) / len(tail)


def summary_pairs(report: Report, workers: int) -> Dict[str, float]:
    """The ``name=value`` pairs of the last line."""
    pairs = {"real_clips_per_s": report.real.per_second, "synthetic_clips_per_s": report.synthetic.per_second,
             "loader_ratio": report.loader_ratio, "loader_only_clips_per_s": report.loader.per_second,
             "workers": workers}
    for name, result in report.switches.items():
        pairs[f"{name}_speedup"] = result.per_second / report.synthetic.per_second
    return pairs
