"""The training loop: epochs of SGD/AdamW steps, validation, precise BN, checkpoints, resuming."""
import datetime
import itertools
import logging
import os
import random
import sys
import time
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import yaml
from fvcore.common.config import CfgNode
from fvcore.nn.precise_bn import get_bn_modules, update_bn_stats
from tqdm import tqdm

from m3a.engine import accumulation, amp, speed
from m3a.engine.accumulation import FULL_STEP, MicroBatch
from m3a.engine.ema import ModelEma, build_ema, choose_weights, ema_fields
from m3a.engine.epoch_summary import epoch_summary
from m3a.engine.mixup import Mixup, build_mixup
from m3a.engine.inputs import Inputs, batch_size, to_device
from m3a.datasets.loader import list_dataset
from m3a.engine.evaluation import (compute_metrics, gather_failed, gather_predictions, require_decoded,
                                   threshold_metrics)
from m3a.engine.lr_policy import get_lr_at_epoch
from m3a.engine.optimizer import clip_gradients, construct_optimizer, set_lr
from m3a.models.losses import compute_loss, get_loss_func, prepare_targets
from m3a.utils import distributed as du
from m3a.utils.class_names import load_class_names
from m3a.utils.logging import FILE_ONLY, STDOUT_LOG_FILE, log_json_stats, setup_logging

logger = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random number generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_iterations(loader, cfg: CfgNode) -> int:
    """Iterations (optimizer steps) per epoch: the loader's micro-batches in groups of
    ``TRAIN.ACCUM_STEPS``, capped by ``TRAIN.MAX_ITERS_PER_EPOCH`` (m3a.engine.accumulation)."""
    return accumulation.optimizer_steps(len(loader), cfg)


def count_failed(meta) -> int:
    """Number of replaced (failed) video paths recorded in a batch's ``meta``."""
    failed = meta.get("failed", []) if isinstance(meta, dict) else []

    def _count(item) -> int:
        if isinstance(item, (list, tuple)):
            return sum(_count(x) for x in item)
        return 1 if item else 0

    return _count(failed)


def train_step(
    model: nn.Module,
    inputs: Inputs,
    targets: torch.Tensor,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    cfg: CfgNode,
    device: torch.device,
    micro: MicroBatch = FULL_STEP,
) -> float:
    """One optimisation step (autocast forward, scaled backward, clipping); returns the loss.

    ``micro``: this batch's place in an accumulated step (m3a.engine.accumulation): only the
    first clears the gradients, the loss is backpropagated times ``micro.weight``, only the last
    clips and steps.

    ``inputs``: the batch's tensor, or its list of pathway tensors, passed to the model as is. The
    loss is the model's ``training_loss(outputs, targets, loss_fn)`` when it defines one that
    returns a tensor (a head with a multi-task loss), else ``MODEL.LOSS_FUNC`` of the outputs.
    """
    inputs = speed.convert_inputs(inputs, cfg)  # channels-last when TRAIN.CHANNELS_LAST
    own_loss = getattr(getattr(model, "module", model), "training_loss", None)  # (D)DP-wrapped or not
    with amp.autocast(cfg, device):
        outputs = model(inputs)
        loss = own_loss(outputs, targets, loss_fn) if own_loss is not None else None
    if loss is None:
        loss = compute_loss(loss_fn, outputs, targets, cfg.MODEL.LOSS_FUNC)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"training loss is {loss.item()}; lower SOLVER.BASE_LR or enable clipping")
    if micro.first:
        optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss * micro.weight).backward()
    if not micro.last:
        return loss.item()
    scaler.unscale_(optimizer)
    clip_gradients(model.parameters(), cfg)
    scaler.step(optimizer)
    scaler.update()
    return loss.item()


def train_iteration(
    model: nn.Module, group: List, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler, cfg: CfgNode, device: torch.device, mixup: Optional[Mixup] = None,
) -> Tuple[float, int, int]:
    """One optimizer step over ``group``, the loader batches (micro-batches) it accumulates, each
    mixed by ``mixup`` when given; return (mean loss over the videos, videos, failed videos)."""
    loss_sum, videos, failed = 0.0, 0, 0
    for (inputs, labels, _, meta), micro in zip(group, accumulation.positions(len(group))):
        failed += count_failed(meta)
        inputs = to_device(inputs, device, non_blocking=True)
        targets = prepare_targets(labels, cfg.MODEL.NUM_CLASSES, cfg.MODEL.LOSS_FUNC).to(device)
        if mixup is not None:
            inputs, targets, _ = mixup(inputs, targets)
        with accumulation.sync_context(model, micro):
            loss = train_step(model, inputs, targets, loss_fn, optimizer, scaler, cfg, device, micro)
        loss_sum += loss * batch_size(inputs)
        videos += batch_size(inputs)
    return loss_sum / max(videos, 1), videos, failed


def progress_bar(iterable, total: int, desc: str):
    """tqdm bar on rank 0 when stdout is a terminal, else the iterable unchanged."""
    if du.is_master_proc() and sys.stdout.isatty():
        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
    return iterable


def _tensorboard_writer(cfg: CfgNode):
    if not (cfg.TENSORBOARD.ENABLE and du.is_master_proc()):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(cfg.TENSORBOARD.LOG_DIR or os.path.join(cfg.OUTPUT_DIR, "runs"))


def train_epoch(
    loader,
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    cur_epoch: int,
    cfg: CfgNode,
    device: torch.device,
    writer=None,
    ema: Optional[ModelEma] = None,
    mixup: Optional[Mixup] = None,
) -> Dict[str, float]:
    """Train one epoch; log JSON stats every ``LOG_PERIOD`` iterations; return epoch stats.

    An iteration is one optimizer step over ``TRAIN.ACCUM_STEPS`` loader batches (see
    :func:`train_iteration`); ``ema`` is updated after each step."""
    model.train()
    iters = epoch_iterations(loader, cfg)
    loss_sum, samples, failed = 0.0, 0, 0
    window_loss: List[float] = []
    iter_times: List[float] = []
    end = time.perf_counter()
    batches = accumulation.groups(itertools.islice(loader, accumulation.micro_batches_used(len(loader), cfg)),
                                  cfg.TRAIN.ACCUM_STEPS)
    for cur_iter, group in enumerate(progress_bar(batches, iters, f"epoch {cur_epoch + 1}")):
        data_time = time.perf_counter() - end
        lr = get_lr_at_epoch(cfg, cur_epoch + cur_iter / iters)
        set_lr(optimizer, lr)
        loss, videos, group_failed = train_iteration(model, group, loss_fn, optimizer, scaler, cfg, device, mixup)
        if ema is not None:
            ema.update(model)
        failed += group_failed
        loss_sum += loss * videos
        samples += videos
        window_loss.append(loss)
        iter_time = time.perf_counter() - end
        iter_times.append(iter_time)
        if (cur_iter + 1) % cfg.LOG_PERIOD == 0 or cur_iter + 1 == iters:
            mean_loss = du.all_reduce_sum([sum(window_loss) / len(window_loss)])[0] / du.get_world_size()
            remaining = (iters - cur_iter - 1) + (cfg.SOLVER.MAX_EPOCH - cur_epoch - 1) * iters
            eta = datetime.timedelta(seconds=int(np.mean(iter_times[-20:]) * remaining))
            stats = {
                "_type": "train_iter",
                "epoch": f"{cur_epoch + 1}/{cfg.SOLVER.MAX_EPOCH}",
                "iter": f"{cur_iter + 1}/{iters}",
                "loss": mean_loss,
                "lr": lr,
                "data_time": data_time,
                "iter_time": iter_time,
                "eta": str(eta),
            }
            if device.type == "cuda":
                stats["gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 1024**3
            log_json_stats(stats, cfg.OUTPUT_DIR)
            if writer is not None:
                step = cur_epoch * iters + cur_iter
                writer.add_scalar("Train/loss", mean_loss, step)
                writer.add_scalar("Train/lr", lr, step)
            window_loss.clear()
        end = time.perf_counter()
    loss_sum, samples, failed = du.all_reduce_sum([loss_sum, samples, failed])
    epoch_loss = loss_sum / max(samples, 1)
    log_json_stats(
        {
            "_type": "train_epoch",
            "epoch": cur_epoch + 1,
            "loss": epoch_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "samples": int(samples),
            "failed_videos": int(failed),
        },
        cfg.OUTPUT_DIR,
    )
    logger.info("epoch %d: %d video(s) failed to decode and were replaced", cur_epoch + 1, int(failed))
    if writer is not None:
        writer.add_scalar("Train/epoch_loss", epoch_loss, cur_epoch + 1)
    return {"loss": epoch_loss, "failed_videos": int(failed), "lr": optimizer.param_groups[0]["lr"]}


# Fields of the validation results that are counts or settings, not metrics.
VAL_COUNTS = ("num_videos", "failed_videos", "threshold")


def eval_epoch(
    loader, model: nn.Module, cur_epoch: int, cfg: CfgNode, device: torch.device, writer=None,
    weights: str = "model",
) -> Dict[str, float]:
    """Validate (:func:`validation_results`), log the ``val_epoch`` stats (``weights``: model or
    ema, the weights scored) and return the results."""
    results = validation_results(loader, model, cfg, device)
    stats = {"_type": "val_epoch", "epoch": cur_epoch + 1, "weights": weights}
    stats.update(results)
    log_json_stats(stats, cfg.OUTPUT_DIR)
    if writer is not None:
        for key, value in results.items():
            if key not in VAL_COUNTS:
                writer.add_scalar(f"Val/{key}", value, cur_epoch + 1)
    return results


@torch.no_grad()
def validation_results(loader, model: nn.Module, cfg: CfgNode, device: torch.device) -> Dict[str, float]:
    """Score one clip per val-list video that decodes: class-/sample-wise mAP, top-1, top-5,
    precision/recall/F1 at TEST.THRESHOLD (micro, macro), ``num_videos``; those that fail are
    counted (``failed_videos``), never replaced."""
    model.eval()
    indices, scores, labels, failed = [], [], [], []
    for inputs, batch_labels, batch_idx, ok in progress_bar(loader, len(loader), "val"):
        with amp.autocast(cfg, device):
            out = model(to_device(inputs, device, non_blocking=True))
        ok = ok.bool().cpu() if torch.is_tensor(ok) else torch.ones(len(batch_idx), dtype=torch.bool)
        failed.append(batch_idx[~ok].numpy())
        scores.append(out.float().cpu()[ok].numpy())
        labels.append(batch_labels[ok].cpu().numpy())
        indices.append(batch_idx[ok].cpu().numpy())
    gathered = gather_predictions(indices, scores, labels)
    failed_idx = gather_failed(failed)
    require_decoded(len(gathered["indices"]), failed_idx, list_dataset(loader))
    results = {"num_videos": int(len(gathered["indices"])), "failed_videos": int(len(failed_idx))}
    results.update(compute_metrics(gathered["scores"], gathered["labels"]))
    results.update(threshold_metrics(cfg, gathered["scores"], gathered["labels"]))
    return results


def calculate_precise_bn(loader, model: nn.Module, num_batches: int, device: torch.device) -> None:
    """Recompute BN running statistics over ``num_batches`` training batches, then average ranks."""

    def _inputs() -> Iterator[Inputs]:
        for inputs, *_ in loader:
            yield to_device(inputs, device, non_blocking=True)

    num_batches = min(num_batches, len(loader))
    update_bn_stats(model, _inputs(), num_batches)
    du.average_norm_buffers(model)


def _warn_if_seed_changed(cfg: CfgNode, state: dict, path: str) -> None:
    """Warn when a resumed checkpoint was trained with another RNG_SEED (another data order)."""
    try:
        saved = yaml.safe_load(state.get("cfg") or "") or {}
    except yaml.YAMLError:
        return
    seed = saved.get("RNG_SEED") if isinstance(saved, dict) else None
    if seed is not None and seed != cfg.RNG_SEED:
        logger.warning(
            "%s was trained with RNG_SEED %s, this run uses %s: the remaining epochs see another "
            "data order than an uninterrupted run would", path, seed, cfg.RNG_SEED,
        )


def load_training_state(cfg: CfgNode, model: nn.Module, optimizer, scaler) -> int:
    """Resume or initialise from a checkpoint; return the first epoch (0-based) to train.

    A checkpoint's ``epoch`` is the number of epochs completed when it was saved (the file
    ``checkpoint_epoch_00003.pyth`` holds the model after 3 epochs), so training continues at
    that 0-based epoch index. The data order and augmentations of an epoch depend only on
    ``(RNG_SEED, epoch)`` (see m3a.datasets.loader), so a resumed run continues exactly as an
    uninterrupted one would.
    """
    from m3a.utils import checkpoint as cu

    last = cu.get_last_checkpoint(cfg.OUTPUT_DIR)
    unusable = cu.list_checkpoints(cfg.OUTPUT_DIR) if last is None and cfg.TRAIN.AUTO_RESUME else []
    if unusable:
        logger.warning(
            "AUTO_RESUME: none of the %d checkpoint(s) in %s can be resumed (corrupt, incomplete or "
            "NaN/Inf weights): %s; this run does not resume and training starts from epoch 1%s",
            len(unusable), os.path.dirname(unusable[0]), ", ".join(os.path.basename(p) for p in unusable),
            " (initialised from TRAIN.CHECKPOINT_FILE_PATH)" if cfg.TRAIN.CHECKPOINT_FILE_PATH else "",
        )
    if last is not None and cfg.TRAIN.AUTO_RESUME:
        state = cu.load_checkpoint(last, model, optimizer, scaler)
        logger.info("resuming from %s after %d completed epoch(s)", last, state["epoch"])
        _warn_if_seed_changed(cfg, state, last)
        return max(int(state["epoch"]), 0)
    if last is not None:
        logger.warning(
            "%s already holds checkpoints (newest %s) and TRAIN.AUTO_RESUME is False: this run "
            "starts anew and overwrites checkpoints of the same epochs", cfg.OUTPUT_DIR, os.path.basename(last)
        )
    for path in cfg.TRAIN.INIT_FILES:  # e.g. one file per stream; each names what it fills
        if not os.path.isfile(path):
            raise FileNotFoundError(f"TRAIN.INIT_FILES: not found: {path}")
        cu.load_checkpoint(path, model, strict_shapes=False)
        logger.info("initialised part of the model from %s", path)
    if cfg.TRAIN.CHECKPOINT_FILE_PATH:
        path = cfg.TRAIN.CHECKPOINT_FILE_PATH
        if not os.path.isfile(path):
            raise FileNotFoundError(f"TRAIN.CHECKPOINT_FILE_PATH not found: {path}")
        if cfg.TRAIN.CHECKPOINT_EPOCH_RESET:
            # Fine-tuning: tensors whose shape differs (e.g. a classifier for another class
            # count) are skipped with a warning and stay freshly initialised.
            cu.load_checkpoint(path, model, strict_shapes=False)
            logger.info("initialised the model from %s; training from epoch 1", path)
            return 0
        state = cu.load_checkpoint(path, model, optimizer, scaler)
        logger.info("continuing from %s after %d completed epoch(s)", path, state["epoch"])
        _warn_if_seed_changed(cfg, state, path)
        return max(int(state["epoch"]), 0)
    return 0


def _resumed_from(cfg: CfgNode) -> str:
    """The checkpoint load_training_state continues from (for messages)."""
    from m3a.utils import checkpoint as cu

    last = cu.get_last_checkpoint(cfg.OUTPUT_DIR) if cfg.TRAIN.AUTO_RESUME else None
    return last or cfg.TRAIN.CHECKPOINT_FILE_PATH


def _entry_line(list_path: str, entry: int) -> int:
    """1-based line number of entry ``entry`` (0-based) of a list: its non-blank lines."""
    with open(list_path) as f:
        numbers = [number for number, line in enumerate(f, start=1) if line.strip()]
    return numbers[entry]


def check_loss_fits_labels(cfg: CfgNode, dataset) -> None:
    """Raise ConfigError naming the list file and line of the first video with several labels
    when MODEL.LOSS_FUNC is a single-label loss (it would silently train on one label only)."""
    from m3a.config.loading import ConfigError
    from m3a.models.losses import INDEX_TARGET_LOSSES

    if cfg.MODEL.LOSS_FUNC not in INDEX_TARGET_LOSSES:
        return
    for i, entry in enumerate(dataset.entries):
        if len(entry.labels) > 1:
            raise ConfigError(
                f"{dataset.list_path}:{_entry_line(dataset.list_path, i)}: '{entry.path}' has "
                f"{len(entry.labels)} labels but MODEL.LOSS_FUNC {cfg.MODEL.LOSS_FUNC} is single-label; "
                "use a multi-label loss (bce_logit, bce, soft_cross_entropy, wlsep) or a single-label list"
            )


def build_model_for_training(cfg: CfgNode, device: torch.device) -> nn.Module:
    """Build the model on ``device``; sync-BN (converted by the builder) needs CUDA under DDP."""
    from m3a.config.loading import ConfigError
    from m3a.models import build_model

    if cfg.BN.NORM_TYPE == "sync_batchnorm" and du.get_world_size() > 1 and device.type != "cuda":
        raise ConfigError("BN.NORM_TYPE sync_batchnorm needs GPUs; use BN.NORM_TYPE batchnorm on CPU")
    return speed.convert_model(build_model(cfg, device), cfg)


def clean_checkpoint_folder(cfg: CfgNode) -> None:
    """Remove the temporary files that interrupted saves left in OUTPUT_DIR/checkpoints (rank 0,
    before any save)."""
    from m3a.utils import checkpoint as cu

    if not du.is_master_proc():
        return
    count, size = cu.remove_temporary_files(cfg.OUTPUT_DIR)
    if count:
        logger.info("removed %d leftover temporary file(s) of interrupted saves (%.1f MB) from %s",
                    count, size / 1e6, os.path.join(cfg.OUTPUT_DIR, cu.CHECKPOINT_DIR))


def save_epoch_checkpoint(
    cfg: CfgNode, model: nn.Module, optimizer, scaler, epochs_done: int, class_names: List[str],
    ema: Optional[ModelEma] = None,
) -> None:
    """Save the checkpoint of ``epochs_done`` epochs (with ``ema``'s weights as ``ema_state``),
    then prune to TRAIN.CHECKPOINT_KEEP (rank 0)."""
    from m3a.utils import checkpoint as cu

    if not du.is_master_proc():
        return
    path = cu.save_checkpoint(cfg.OUTPUT_DIR, model, optimizer, scaler, epochs_done, cfg, class_names,
                              extra=ema_fields(ema))
    logger.info("saved checkpoint %s", path)
    removed = cu.prune_checkpoints(cfg.OUTPUT_DIR, cfg.TRAIN.CHECKPOINT_KEEP, epochs_done)
    if removed:
        logger.info("removed %d older checkpoint(s) (TRAIN.CHECKPOINT_KEEP %d): %s", len(removed),
                    cfg.TRAIN.CHECKPOINT_KEEP, ", ".join(os.path.basename(p) for p in removed))


class BestTracker:
    """Keeps OUTPUT_DIR/checkpoints/checkpoint_best.pyth at the best validation class mAP so far
    (TRAIN.SAVE_BEST). A resumed run continues from the recorded best; a new run replaces it."""

    METRIC = "map_class"

    def __init__(self, cfg: CfgNode, resumed: bool, class_names: List[str]):
        from m3a.utils import checkpoint as cu

        self.cfg, self.class_names = cfg, class_names
        self.best = float("-inf")
        record = cu.read_best_record(cfg.OUTPUT_DIR) if cfg.TRAIN.SAVE_BEST and resumed else None
        if record and record.get("metric") == self.METRIC:
            self.best = float(record["value"])
            logger.info("best %s so far: %.6g after epoch %d", self.METRIC, self.best, record["epoch"])

    def update(self, results: Dict[str, float], model: nn.Module, optimizer, scaler, epochs_done: int,
               ema: Optional[ModelEma] = None) -> None:
        """Save the best checkpoint (rank 0, with ``ema``'s weights) when ``results`` beat the best so far."""
        from m3a.utils import checkpoint as cu

        value = results.get(self.METRIC, float("nan"))
        if not (self.cfg.TRAIN.SAVE_BEST and value > self.best):
            return
        self.best = value
        if du.is_master_proc():
            path = cu.save_best_checkpoint(self.cfg.OUTPUT_DIR, model, optimizer, scaler, epochs_done,
                                           self.cfg, self.METRIC, value, self.class_names, extra=ema_fields(ema))
            logger.info("new best %s %.6g after epoch %d: saved %s", self.METRIC, value, epochs_done, path)


def _is_epoch(cur_epoch: int, period: int, max_epoch: int) -> bool:
    """True at every ``period``-th epoch and at the last one (``period`` 0 disables)."""
    if period <= 0:
        return False
    return (cur_epoch + 1) % period == 0 or cur_epoch + 1 == max_epoch


def train(cfg: CfgNode) -> nn.Module:
    """Train the model described by ``cfg``; return the trained (unwrapped) model, or its EMA
    model, as testing uses it (:func:`run_weights`)."""
    from m3a.datasets.loader import construct_loader, construct_train_epochs, derived_seed

    weights = run_weights(cfg)  # TEST.WEIGHTS ema without TRAIN.EMA.ENABLE stops before training
    set_seed(cfg.RNG_SEED)
    setup_logging(cfg.OUTPUT_DIR)
    device = du.get_device(cfg)
    logger.info("training on %s, %d process(es); full config in %s", device, du.get_world_size(),
                os.path.join(cfg.OUTPUT_DIR, STDOUT_LOG_FILE))
    logger.info("config:\n%s", cfg, extra=FILE_ONLY)
    logger.info(amp.describe_precision(cfg, device))
    clean_checkpoint_folder(cfg)

    # Loaders first: a missing or malformed list fails before any model is built.
    train_epochs = construct_train_epochs(cfg)
    check_loss_fits_labels(cfg, list_dataset(train_epochs))
    val_loader = construct_loader(cfg, "val") if cfg.TRAIN.EVAL_PERIOD > 0 else None
    model = build_model_for_training(cfg, device)
    class_names = load_class_names(cfg)  # stored in every checkpoint
    optimizer = construct_optimizer(model, cfg)
    scaler = amp.build_grad_scaler(cfg, device)
    start_epoch = load_training_state(cfg, model, optimizer, scaler)
    if start_epoch >= cfg.SOLVER.MAX_EPOCH:
        logger.info("training already finished: %d of %d epochs in %s; nothing to train",
                    start_epoch, cfg.SOLVER.MAX_EPOCH, _resumed_from(cfg))
        return model
    best = BestTracker(cfg, resumed=start_epoch > 0, class_names=class_names)
    ema = build_ema(cfg, model, _resumed_from(cfg) if start_epoch > 0 else None)
    mixup = build_mixup(cfg, model, du.get_rank())
    if cfg.TRAIN.ACCUM_STEPS > 1:
        logger.info(accumulation.describe(len(train_epochs), cfg, du.get_world_size()))
    loss_fn = get_loss_func(cfg.MODEL.LOSS_FUNC)(reduction="mean")
    if du.get_world_size() > 1:
        ids = [device] if device.type == "cuda" else None
        skips = getattr(model, "may_skip_parameters", None)  # trainable parameters a step may not use
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None,
                                                          find_unused_parameters=bool(skips and skips()))
    else:
        train_model = model
    train_model = speed.compile_model(train_model, cfg, device)  # checkpoints save `model`
    writer = _tensorboard_writer(cfg)
    use_precise_bn = cfg.BN.USE_PRECISE_STATS and len(get_bn_modules(model)) > 0

    logger.info("start epoch: %d of %d", start_epoch + 1, cfg.SOLVER.MAX_EPOCH)
    for cur_epoch in range(start_epoch, cfg.SOLVER.MAX_EPOCH):
        # Everything random in an epoch follows (RNG_SEED, epoch): resuming changes nothing.
        set_seed(derived_seed(cfg.RNG_SEED, cur_epoch, du.get_rank()))
        if mixup is not None:
            mixup.set_epoch(cur_epoch)
        epoch_start = time.perf_counter()
        train_stats = train_epoch(train_epochs.epoch(cur_epoch), train_model, loss_fn, optimizer, scaler, cur_epoch,
                                  cfg, device, writer, ema, mixup)
        is_eval = val_loader is not None and _is_epoch(cur_epoch, cfg.TRAIN.EVAL_PERIOD, cfg.SOLVER.MAX_EPOCH)
        is_ckpt = _is_epoch(cur_epoch, cfg.TRAIN.CHECKPOINT_PERIOD, cfg.SOLVER.MAX_EPOCH)
        if use_precise_bn and (is_eval or is_ckpt):
            calculate_precise_bn(train_epochs.epoch(cur_epoch), model, cfg.BN.NUM_BATCHES_PRECISE, device)
            if ema is not None:
                calculate_precise_bn(train_epochs.epoch(cur_epoch), ema.module.train(), cfg.BN.NUM_BATCHES_PRECISE,
                                     device)
                ema.module.eval()
        if is_ckpt:
            save_epoch_checkpoint(cfg, model, optimizer, scaler, cur_epoch + 1, class_names, ema)
            du.synchronize()
        results, val_start = None, time.perf_counter()
        if is_eval:
            results = eval_epoch(val_loader, ema.module if ema is not None else model, cur_epoch, cfg, device,
                                 writer, "ema" if ema is not None else "model")
            best.update(results, model, optimizer, scaler, cur_epoch + 1, ema)
        logger.info(epoch_summary(cfg, cur_epoch, train_stats, results, val_start - epoch_start,
                                  time.perf_counter() - val_start, ema is not None))
    if writer is not None:
        writer.close()
    return ema.module if weights == "ema" else model


def run_weights(cfg: CfgNode) -> str:
    """``ema`` or ``model``: the weights of the model this run trains that testing uses
    (TEST.WEIGHTS, m3a.engine.ema.choose_weights); ConfigError for ``ema`` without
    TRAIN.EMA.ENABLE."""
    from m3a.config.errors import ConfigError

    return choose_weights(cfg.TEST.WEIGHTS, cfg.TRAIN.EMA.ENABLE, "the model this run trains", ConfigError)
