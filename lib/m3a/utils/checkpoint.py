"""Checkpoints: save, find the newest complete one, load ours / published / VMZ-layout files.

Formats read by :func:`load_checkpoint` (always ``torch.load(weights_only=True)``):
- ours and the published model-zoo ``.pyth``: a dict with ``model_state`` (and ``epoch``,
  ``optimizer_state``, ``cfg``; ours may add ``scaler_state``);
- a dict with ``state_dict`` (e.g. the published IG-65M + Kinetics pretraining ``.pth``) or
  ``model``; or a bare state dict.
``module.`` prefixes (DDP) are stripped. Keys in the torchvision / VMZ-PyTorch VideoResNet
layout (``stem.*``, ``layer1.0.conv1.0.0.weight``, ``downsample``, ``fc``) are mapped to ours.
"""
import logging
import os
import re
import zipfile
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from m3a.utils.file_io import atomic_path

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"checkpoint_epoch_(\d+)\.pyth")
# Top-level fields holding a model state dict, in order of preference.
_STATE_FIELDS = ("model_state", "state_dict", "model")
# Fields returned by load_checkpoint in place of the raw extra fields.
_WEIGHT_FIELDS = ("model_state", "state_dict", "model", "optimizer_state", "scaler_state")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model; the message names why."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / DataParallel wrapper (or ``model``)."""
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


def checkpoint_path(output_dir: str, epoch: int) -> str:
    """``output_dir/checkpoints/checkpoint_epoch_{epoch:05d}.pyth``."""
    return os.path.join(output_dir, CHECKPOINT_DIR, f"checkpoint_epoch_{epoch:05d}.pyth")


def save_checkpoint(
    output_dir: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer],
    scaler, epoch: int, cfg,
) -> str:
    """Write ``model_state`` (unwrapped from DDP), ``optimizer_state``, ``scaler_state`` (if a
    scaler is given), ``epoch`` and ``cfg`` (YAML text) atomically; return the file path.

    The caller decides which process saves.
    """
    state = {
        "epoch": int(epoch),
        "model_state": unwrap_model(model).state_dict(),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "cfg": cfg.dump() if hasattr(cfg, "dump") else str(cfg),
    }
    if scaler is not None:
        state["scaler_state"] = scaler.state_dict()
    path = checkpoint_path(output_dir, epoch)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def is_complete(path: str) -> bool:
    """True when ``path`` is a readable checkpoint: every member of the zip archive passes its
    CRC check (legacy non-zip files: ``torch.load`` succeeds)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return archive.testzip() is None
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:  # any failure to read means incomplete
        return False


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


def get_last_checkpoint(output_dir: str) -> Optional[str]:
    """Newest complete checkpoint in ``output_dir/checkpoints`` (highest epoch number), or None.

    Truncated or corrupt files are skipped with a warning.
    """
    for _, path in _candidates(output_dir):
        if is_complete(path):
            return path
        logger.warning("skipping incomplete or corrupt checkpoint %s", path)
    return None


def has_checkpoint(output_dir: str) -> bool:
    """True when ``output_dir/checkpoints`` holds a complete checkpoint."""
    return get_last_checkpoint(output_dir) is not None


# ---------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------
_TV_BLOCK = re.compile(r"(layer\d+\.\d+)\.(conv\d|downsample)\.(.+)")
_TV_CONV = {"0.0": "conv{i}_middle", "0.1": "bn{i}_middle", "0.3": "conv{i}", "0": "conv{i}",
            "1": "bn{i}"}


def _map_torchvision_block(key: str) -> Optional[str]:
    match = _TV_BLOCK.fullmatch(key)
    if not match:
        return None
    prefix, part, rest = match.groups()
    if part == "downsample":
        idx, _, leaf = rest.partition(".")
        name = {"0": "shortcut", "1": "shortcut_bn"}.get(idx)
        return f"{prefix}.block.{name}.{leaf}" if name else None
    i = part[-1]
    for sub, template in _TV_CONV.items():
        if rest.startswith(sub + ".") and rest.count(".") == sub.count(".") + 1:
            return f"{prefix}.block.{template.format(i=i)}.{rest[len(sub) + 1:]}"
    return None


def _map_torchvision(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    two_conv_stem = "stem.3.weight" in state
    stem = ({"0": "conv1_middle", "1": "bn1_middle", "3": "conv1", "4": "bn1"} if two_conv_stem
            else {"0": "conv1", "1": "bn1"})
    mapped = OrderedDict()
    for key, value in state.items():
        new = None
        if key.startswith("stem."):
            idx, _, leaf = key[5:].partition(".")
            new = f"{stem[idx]}.{leaf}" if idx in stem else None
        elif key.startswith("fc."):
            new = "projection." + key[3:]
        else:
            new = _map_torchvision_block(key)
        if new is None:
            logger.warning("checkpoint key %s has no counterpart in our layout; ignored", key)
            continue
        mapped[new] = value
    return mapped


def detect_layout(state: Dict[str, torch.Tensor]) -> str:
    """``torchvision`` (VMZ-PyTorch / torchvision VideoResNet names) or ``m3a`` (the published
    M3A layout, which is ours)."""
    if any(k.startswith("stem.") or _TV_BLOCK.fullmatch(k) for k in state):
        return "torchvision"
    return "m3a"


def convert_state_dict(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], str]:
    """Map a state dict to our layout; return (mapped state dict, detected layout name).

    Strips ``module.`` prefixes, maps the torchvision/VMZ layout, and drops the published
    transformer's constant ``trsfmr_pos_encoder.pe`` table (we compute the encodings).
    """
    state = OrderedDict(
        (k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items()
    )
    layout = detect_layout(state)
    if layout == "torchvision":
        state = _map_torchvision(state)
    dropped = [k for k in state if k.endswith("trsfmr_pos_encoder.pe")]
    for key in dropped:
        del state[key]
    return state, layout


def extract_state(ckpt, path: str) -> Dict[str, torch.Tensor]:
    """The model state dict inside a loaded checkpoint (``model_state``, ``state_dict``,
    ``model`` or the dict itself when it is a bare state dict)."""
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
    """``torch.load(path, weights_only=True)`` on CPU, with a CheckpointError naming the file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"{path}: cannot read checkpoint: {err}") from None


def _match_shapes(
    state: Dict[str, torch.Tensor], model_state: Dict[str, torch.Tensor], layout: str,
    strict_shapes: bool, path: str,
) -> Dict[str, torch.Tensor]:
    usable, mismatched = OrderedDict(), []
    for key, value in state.items():
        if key not in model_state:
            continue
        if value.shape == model_state[key].shape:
            usable[key] = value
        elif layout == "torchvision" and key.startswith("projection."):
            logger.warning(
                "pretraining classifier %s %s does not fit the model's %s; head stays fresh",
                key, tuple(value.shape), tuple(model_state[key].shape),
            )
        else:
            mismatched.append(
                f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(model_state[key].shape)}"
            )
    if mismatched and strict_shapes:
        shown = "; ".join(mismatched[:3]) + (f"; ... and {len(mismatched) - 3} more" if len(mismatched) > 3 else "")
        raise CheckpointError(f"{path}: shape mismatch for {len(mismatched)} key(s) (does the config "
                              f"match the checkpoint's?): {shown}")
    for line in mismatched:
        logger.warning("not loaded (shape mismatch) %s", line)
    return usable


def load_checkpoint(
    path: str, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None,
    scaler=None, strict_shapes: bool = True,
) -> dict:
    """Load weights (and optimizer / scaler states when given and present) from ``path``.

    Missing and unexpected keys are logged by name (a backbone-only file leaves the head fresh);
    a shape mismatch raises CheckpointError naming the key and both shapes (with
    ``strict_shapes=False`` it is skipped with a warning). A torchvision/VMZ pretraining
    classifier ``fc`` of another class count is always skipped. Returns the file's other fields
    (``cfg``, ...) plus ``epoch`` (-1 when absent), ``layout``, ``missing_keys`` and
    ``unexpected_keys``.
    """
    ckpt = read_checkpoint(path)
    raw_state = extract_state(ckpt, path)
    bare = raw_state is ckpt
    state, layout = convert_state_dict(raw_state)
    target = unwrap_model(model)
    model_state = target.state_dict()
    usable = _match_shapes(state, model_state, layout, strict_shapes, path)
    missing = [k for k in model_state if k not in usable]
    unexpected = [k for k in state if k not in model_state]
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
