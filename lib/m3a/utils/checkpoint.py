"""Checkpoints: save, find the newest complete one, load ours / published / VMZ-layout files.

Formats read by :func:`load_checkpoint` (``torch.load(weights_only=True)``, or the restricted
TorchScript reader for TorchScript archives such as OpenAI's CLIP files):
- ours and the published model-zoo ``.pyth``: a dict with ``model_state`` (and ``epoch``,
  ``optimizer_state``, ``cfg``; ours may add ``scaler_state``);
- a dict with ``state_dict`` (e.g. the published IG-65M + Kinetics pretraining ``.pth``),
  ``model_state_dict`` (e.g. the EPAM-Net release: ``epoch``, ``optimizer_state_dict``) or
  ``model``; or a bare state dict.
``module.`` prefixes (DDP) are stripped; foreign layouts (e.g. torchvision / VMZ-PyTorch
VideoResNet names) are mapped by the model itself (``model.convert_state_dict``), so this module
knows no family's key names.

Our checkpoints are self-contained: besides the weights they hold ``cfg`` (the resolved config as
YAML text) and, when known, ``class_names`` and ``model_inputs`` (the tensors the head was built
with, e.g. the M3A lexicons and adjacency), so a model can be rebuilt without the data folder.
With ``TRAIN.EMA`` they also hold ``ema_state``, the EMA model's state dict (same keys as
``model_state``; m3a.engine.predict loads it as TEST.WEIGHTS says).

Housekeeping of ``OUTPUT_DIR/checkpoints``: leftover temporary files of interrupted saves are
removed (:func:`remove_temporary_files`), old epochs pruned (:func:`prune_checkpoints`), the best
epoch by validation mAP kept as ``checkpoint_best.pyth`` (:func:`save_best_checkpoint`).
"""
import dataclasses
import errno
import logging
import os
import re
import zipfile
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn

from m3a.utils.file_io import atomic_path
from m3a.utils.torchscript_archive import ArchiveError, is_torchscript_archive, read_archive_state

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = "checkpoint_best.pyth"
# Name prefix of the temporary files of atomic saves (m3a.utils.file_io.atomic_path).
_TMP_PREFIX = ".tmp-"
# Below this many free bytes, a failed write is reported as a full disk.
_NEARLY_FULL_BYTES = 1 << 20
_NAME = re.compile(r"checkpoint_epoch_(\d+)\.pyth")
# Top-level fields holding a model state dict, in order of preference.
_STATE_FIELDS = ("model_state", "state_dict", "model_state_dict", "model")
# Fields returned by load_checkpoint in place of the raw extra fields.
_WEIGHT_FIELDS = ("model_state", "state_dict", "model_state_dict", "model", "optimizer_state",
                  "optimizer_state_dict", "scaler_state", "model_inputs", "ema_state")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model; the message names why."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a torch.compile and/or DistributedDataParallel / DataParallel wrapper
    (or ``model``)."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


def checkpoint_path(output_dir: str, epoch: int) -> str:
    """``output_dir/checkpoints/checkpoint_epoch_{epoch:05d}.pyth``."""
    return os.path.join(output_dir, CHECKPOINT_DIR, f"checkpoint_epoch_{epoch:05d}.pyth")


def _training_state(model: nn.Module, optimizer: Optional[torch.optim.Optimizer], scaler, epoch: int,
                    cfg, class_names: Optional[List[str]] = None, extra: Optional[dict] = None) -> dict:
    """The fields of a checkpoint: weights, optimizer/scaler state, epoch, config, the model's
    ``checkpoint_inputs()`` as ``model_inputs``, ``class_names`` (when given) and the ``extra``
    fields (e.g. ``ema_state``, the EMA weights)."""
    inner = unwrap_model(model)
    inputs = getattr(inner, "checkpoint_inputs", None)
    state = {
        "epoch": int(epoch),
        "model_state": inner.state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "cfg": cfg.dump() if hasattr(cfg, "dump") else str(cfg),
        "model_inputs": inputs() if inputs is not None else {},
    }
    if class_names is not None:
        state["class_names"] = list(class_names)
    if scaler is not None:
        state["scaler_state"] = scaler.state_dict()
    state.update(extra or {})
    return state


def _free_bytes(folder: str) -> int:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def _caused_by_enospc(err: Optional[BaseException]) -> bool:
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err = err.__cause__ or err.__context__
    return False


def _disk_full(path: str) -> CheckpointError:
    return CheckpointError(f"no space left on device at {path}; the checkpoints saved before are kept")


def write_checkpoint(state: dict, path: str) -> str:
    """``torch.save(state)`` to ``path`` atomically (a temporary file renamed over it); return
    ``path``. A full disk raises CheckpointError("no space left on device at PATH ...") and
    leaves any file already at ``path`` as it was.

    torch writes through our Python file object, so the file is closed (its space freed once
    the temporary file is removed) whatever torch's writer does with the error. A Ctrl-C during
    the write is raised as KeyboardInterrupt (torch's writer would report it as a RuntimeError).
    """
    try:
        with atomic_path(path) as tmp:
            try:
                with open(tmp, "wb") as f:
                    torch.save(state, f)
            except RuntimeError as err:  # torch wraps the failed write ("unexpected pos ...")
                if isinstance(err.__context__, KeyboardInterrupt):  # Ctrl-C mid-write stays a Ctrl-C
                    raise KeyboardInterrupt from None
                if not (_caused_by_enospc(err) or _free_bytes(os.path.dirname(tmp)) < _NEARLY_FULL_BYTES):
                    raise
                raise _disk_full(path) from None
    except OSError as err:  # a write torch did not wrap, the flush at close, the fsync
        if not _caused_by_enospc(err):
            raise
        raise _disk_full(path) from None
    return path


def save_checkpoint(
    output_dir: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer],
    scaler, epoch: int, cfg, class_names: Optional[List[str]] = None, extra: Optional[dict] = None,
) -> str:
    """Write ``model_state`` (unwrapped from DDP), ``optimizer_state``, ``scaler_state`` (if a
    scaler is given), ``epoch``, ``cfg`` (YAML text), ``model_inputs`` (the model's
    ``checkpoint_inputs()``), ``class_names`` (when given) and the ``extra`` fields (``ema_state``
    with TRAIN.EMA) atomically; return the file path.

    The caller decides which process saves. See :func:`write_checkpoint` for a full disk.
    """
    return write_checkpoint(_training_state(model, optimizer, scaler, epoch, cfg, class_names, extra),
                            checkpoint_path(output_dir, epoch))


def best_checkpoint_path(output_dir: str) -> str:
    """``output_dir/checkpoints/checkpoint_best.pyth``."""
    return os.path.join(output_dir, CHECKPOINT_DIR, BEST_CHECKPOINT)


def save_best_checkpoint(
    output_dir: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer],
    scaler, epoch: int, cfg, metric: str, value: float, class_names: Optional[List[str]] = None,
    extra: Optional[dict] = None,
) -> str:
    """Write the state after ``epoch`` epochs as ``checkpoint_best.pyth`` (atomically), recording
    ``best = {"epoch": epoch, "metric": metric, "value": value}``; return the path."""
    state = _training_state(model, optimizer, scaler, epoch, cfg, class_names, extra)
    state["best"] = {"epoch": int(epoch), "metric": metric, "value": float(value)}
    return write_checkpoint(state, best_checkpoint_path(output_dir))


def read_best_record(output_dir: str) -> Optional[dict]:
    """The ``best`` record of ``checkpoint_best.pyth`` (epoch, metric, value), or None when the
    file is absent or unreadable."""
    path = best_checkpoint_path(output_dir)
    if not os.path.isfile(path):
        return None
    try:
        best = read_checkpoint(path).get("best")
    except (CheckpointError, AttributeError):
        logger.warning("cannot read %s; the next validation replaces it", path)
        return None
    return best if isinstance(best, dict) else None


def remove_temporary_files(output_dir: str) -> Tuple[int, int]:
    """Delete the temporary files (``.tmp-*``) that interrupted saves left in
    ``output_dir/checkpoints``; return (files removed, bytes freed). Call it before any save."""
    folder = os.path.join(output_dir, CHECKPOINT_DIR)
    count, size = 0, 0
    if not os.path.isdir(folder):
        return count, size
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(_TMP_PREFIX) and os.path.isfile(path) and not os.path.islink(path):
            nbytes = os.path.getsize(path)
            os.remove(path)
            count, size = count + 1, size + nbytes
    return count, size


def prune_checkpoints(output_dir: str, keep: int, newest_epoch: int) -> List[str]:
    """Delete epoch checkpoints of epochs up to ``newest_epoch`` except the ``keep`` newest ones;
    return the deleted paths. ``keep`` <= 0 keeps all. Files of later epochs (left by an earlier
    run) and ``checkpoint_best.pyth`` are never touched."""
    if keep <= 0:
        return []
    ours = [path for epoch, path in _candidates(output_dir) if epoch <= newest_epoch]
    removed = ours[keep:]
    for path in removed:
        os.remove(path)
    return removed


def is_complete(path: str) -> bool:
    """True when ``path`` is a readable checkpoint: every member of the zip archive passes its
    CRC check and ``torch.load(weights_only=True)`` finds every tensor record."""
    return _read_problem(path)[0] is None


def _read_problem(path: str) -> Tuple[Optional[str], Optional[dict]]:
    """(why ``path`` cannot be read, None) or (None, the loaded checkpoint)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                return f"CRC error in {bad}", None
        return None, torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to read means incomplete
        text = str(err).strip().splitlines()
        return (text[0] if text else type(err).__name__), None


def _tensors(value, prefix: str) -> Iterator[Tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{prefix}.{i}")


def first_nonfinite(ckpt: dict) -> Optional[str]:
    """Name (e.g. ``model_state.fc.weight``) of the first floating-point tensor of the model or
    optimizer state holding NaN or Inf, or None when all are finite."""
    for field in _STATE_FIELDS + ("optimizer_state", "ema_state"):
        for name, tensor in _tensors(ckpt.get(field), field):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return name
    return None


def _candidates(output_dir: str) -> List[Tuple[int, str]]:
    folder = os.path.join(output_dir, CHECKPOINT_DIR)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = _NAME.fullmatch(name)
        if match:
            found.append((int(match.group(1)), os.path.join(folder, name)))
    return sorted(found, reverse=True)


def list_checkpoints(output_dir: str) -> List[str]:
    """Every epoch checkpoint file in ``output_dir/checkpoints``, newest epoch first."""
    return [path for _, path in _candidates(output_dir)]


def get_last_checkpoint(output_dir: str) -> Optional[str]:
    """Newest usable checkpoint in ``output_dir/checkpoints`` (highest epoch number), or None.

    Truncated or corrupt files (a CRC error, a missing tensor record) and files whose weights
    hold NaN/Inf are skipped with a warning naming the file and why.
    """
    for _, path in _candidates(output_dir):
        problem, ckpt = _read_problem(path)
        if problem is not None:
            logger.warning("skipping incomplete or corrupt checkpoint %s: %s", path, problem)
            continue
        bad_key = first_nonfinite(ckpt) if isinstance(ckpt, dict) else None
        if bad_key is not None:
            logger.warning("refusing to resume from %s: %s holds NaN/Inf values; trying an earlier "
                           "checkpoint", path, bad_key)
            continue
        return path
    return None


def has_checkpoint(output_dir: str) -> bool:
    """True when ``output_dir/checkpoints`` holds a complete checkpoint."""
    return get_last_checkpoint(output_dir) is not None


def strip_ddp_prefix(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The state dict without the ``module.`` prefixes that (D)DP wrappers add."""
    return OrderedDict(
        (k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items()
    )


def convert_for(model: nn.Module, state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], str]:
    """Map ``state`` to ``model``'s published keys: strip ``module.``, then let the model convert
    foreign layouts (``model.convert_state_dict``); return the state and the layout's name."""
    state = strip_ddp_prefix(state)
    convert = getattr(unwrap_model(model), "convert_state_dict", None)
    return convert(state) if convert is not None else (state, "native")


def extract_state(ckpt, path: str) -> Dict[str, torch.Tensor]:
    """The model state dict inside a loaded checkpoint (``model_state``, ``state_dict``,
    ``model_state_dict``, ``model`` or the dict itself when it is a bare state dict)."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(ckpt).__name__}")
    for field in _STATE_FIELDS:
        if isinstance(ckpt.get(field), dict):
            return ckpt[field]
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise CheckpointError(
        f"{path}: no model weights found (expected one of {', '.join(_STATE_FIELDS)} or a bare "
        f"state dict; top-level keys: {sorted(ckpt)[:10]})"
    )


def recorded_epoch(ckpt: dict, state: Dict[str, torch.Tensor]) -> int:
    """Epochs completed when ``ckpt`` was saved (-1: a bare state dict, or none recorded)."""
    return -1 if state is ckpt or ckpt.get("epoch") is None else int(ckpt["epoch"])


def read_checkpoint(path: str) -> dict:
    """``torch.load(path, weights_only=True)`` on CPU, with a CheckpointError naming the file.

    A TorchScript archive (e.g. OpenAI's CLIP release files) is read as a bare state dict by the
    restricted reader of :mod:`m3a.utils.torchscript_archive`, which runs none of its code."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if is_torchscript_archive(path):
        try:
            return read_archive_state(path)
        except ArchiveError as err:
            raise CheckpointError(str(err)) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path}: cannot read checkpoint: {err}") from None


def _is_foreign_head_key(model: nn.Module, key: str, layout: str) -> bool:
    """True for a head key of a foreign (pretraining) layout, e.g. a Kinetics classifier."""
    is_head = getattr(model, "is_head_key", None)
    return layout not in ("m3a", "native") and is_head is not None and is_head(key)


@dataclasses.dataclass
class StateMatch:
    """A checkpoint's state dict, converted to a model's layout, compared with the model's key by key."""

    layout: str
    state: Dict[str, torch.Tensor]  # the converted checkpoint state
    usable: Dict[str, torch.Tensor]  # the model's keys of the same shape
    absent: List[str]  # model keys the checkpoint lacks
    unexpected: List[str]  # checkpoint keys the model lacks
    mismatched: List[Tuple[str, tuple, tuple]]  # (key, checkpoint shape, model shape)


def match_state(raw_state: Dict[str, torch.Tensor], path: str, model: nn.Module) -> StateMatch:
    """Convert ``raw_state`` (read from ``path``) for ``model`` (:func:`convert_for`) and compare
    them key by key; a model's layout error is a CheckpointError naming ``path``."""
    target = unwrap_model(model)
    try:
        state, layout = convert_for(target, raw_state)
    except CheckpointError as err:  # a model's own layout check (e.g. EPAM-Net's stream files)
        raise CheckpointError(f"{path}: {err}") from None
    model_state = target.state_dict()
    usable, mismatched = OrderedDict(), []
    for key, value in state.items():
        if key not in model_state:
            continue
        if value.shape == model_state[key].shape:
            usable[key] = value
        else:
            mismatched.append((key, tuple(value.shape), tuple(model_state[key].shape)))
    return StateMatch(layout=layout, state=state, usable=usable,
                      absent=[k for k in model_state if k not in state],
                      unexpected=[k for k in state if k not in model_state], mismatched=mismatched)


def _match_shapes(match: StateMatch, model: nn.Module, strict_shapes: bool, path: str) -> Dict[str, torch.Tensor]:
    """The tensors to load; a shape mismatch raises (``strict_shapes``) or is logged and skipped."""
    mismatched = []
    for key, have, want in match.mismatched:
        if _is_foreign_head_key(model, key, match.layout):
            logger.warning("pretraining classifier %s %s does not fit the model's %s; head stays fresh",
                           key, have, want)
        else:
            mismatched.append(f"{key}: checkpoint {have} vs model {want}")
    if mismatched and strict_shapes:
        shown = "; ".join(mismatched[:3]) + (f"; ... and {len(mismatched) - 3} more" if len(mismatched) > 3 else "")
        raise CheckpointError(f"{path}: shape mismatch for {len(mismatched)} key(s) (does the config "
                              f"match the checkpoint's?): {shown}")
    for line in mismatched:
        logger.warning("not loaded (shape mismatch) %s", line)
    return match.usable


def load_checkpoint(
    path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
    scaler=None, strict_shapes: bool = True,
) -> dict:
    """Read ``path`` and :func:`apply_checkpoint` it to ``model`` (and optimizer / scaler)."""
    return apply_checkpoint(read_checkpoint(path), path, model, optimizer, scaler, strict_shapes)


def apply_checkpoint(
    ckpt, path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
    scaler=None, strict_shapes: bool = True,
) -> dict:
    """Load weights (and optimizer / scaler states when given and present) from the checkpoint
    ``ckpt`` read from ``path``.

    Missing and unexpected keys are logged by name (a backbone-only file leaves the head fresh);
    a shape mismatch raises CheckpointError naming the key and both shapes (with
    ``strict_shapes=False`` it is skipped with a warning). A torchvision/VMZ pretraining
    classifier of another class count (a head key of a foreign layout) is always skipped. Returns the file's other fields
    (``cfg``, ...) plus ``epoch`` (-1 when absent), ``layout``, ``missing_keys`` and
    ``unexpected_keys``.
    """
    raw_state = extract_state(ckpt, path)
    bare = raw_state is ckpt
    target = unwrap_model(model)
    match = match_state(raw_state, path, target)
    usable = _match_shapes(match, target, strict_shapes, path)
    layout, unexpected = match.layout, match.unexpected
    missing = [k for k in target.state_dict() if k not in usable]
    target.load_state_dict(usable, strict=False)
    logger.info("loaded %d tensors from %s (%s layout)", len(usable), path, layout)
    if missing:
        logger.warning("%d model keys not in the checkpoint (left as initialised): %s",
                       len(missing), ", ".join(missing))
    if unexpected:
        logger.warning("%d checkpoint keys not in the model (ignored): %s",
                       len(unexpected), ", ".join(unexpected))
    try:
        if optimizer is not None and not bare and ckpt.get("optimizer_state"):
            optimizer.load_state_dict(ckpt["optimizer_state"])
        if scaler is not None and not bare and ckpt.get("scaler_state"):
            scaler.load_state_dict(ckpt["scaler_state"])
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{path}: optimizer/scaler state does not fit: {err}") from None
    info = {} if bare else {k: v for k, v in ckpt.items() if k not in _WEIGHT_FIELDS}
    info.update(epoch=recorded_epoch(ckpt, raw_state), layout=layout, missing_keys=missing,
                unexpected_keys=unexpected)
    return info
