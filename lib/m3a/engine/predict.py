"""Single-video inference: decode the multi-view test clips once, score them, combine, rank."""
import dataclasses
import logging
import os
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.datasets import decoder
from m3a.datasets.video_dataset import ClipLoader
from m3a.datasets.multiview import combine_views
from m3a.engine.ema import EMA_FIELD, choose_weights
from m3a.engine.inputs import Inputs, batch_size, slice_items, to_device

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class VideoPrediction:
    """Top-k classes of one video, or the reason it could not be scored."""

    video: str
    ok: bool
    error: str = ""
    topk: List[dict] = dataclasses.field(default_factory=list)  # {"index", "name", "score"}


def load_video_views(cfg: CfgNode, path: str) -> torch.Tensor:
    """All test views of ``path`` (NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS, 3, T, S, S), decoded once.

    Raises DecodeError naming the file when it cannot be read.
    """
    return ClipLoader(cfg).test_views(path)


@torch.no_grad()
def score_views(model: nn.Module, views: Inputs, method: str, chunk: int = 8) -> torch.Tensor:
    """Eval-mode scores of every view (V, 3, T, S, S) (or of a list of such pathway tensors),
    combined over views by ``method``: (N,)."""
    device = next(model.parameters()).device
    scores = [
        model(to_device(slice_items(views, i, i + chunk), device)).float().cpu()
        for i in range(0, batch_size(views), chunk)
    ]
    return combine_views(torch.cat(scores).unsqueeze(0), method)[0]


def top_classes(scores: torch.Tensor, class_names: Sequence[str], k: int) -> List[dict]:
    """The ``k`` highest-scored classes as dicts {index, name, score}, best first."""
    values, indices = torch.topk(scores, min(k, scores.numel()))
    return [
        {"index": int(i), "name": class_names[int(i)], "score": float(v)}
        for v, i in zip(values.tolist(), indices.tolist())
    ]


def predict_videos(
    cfg: CfgNode, model: nn.Module, videos: Sequence[str], class_names: Sequence[str], k: int = 5
) -> List[VideoPrediction]:
    """Top-``k`` classes of every video; a video that fails to decode gets ``ok=False`` and its error."""
    model.eval()
    results = []
    for video in videos:
        try:
            views = load_video_views(cfg, video)
        except decoder.DecodeError as err:
            logger.warning("cannot predict %s: %s", video, err)
            results.append(VideoPrediction(video, ok=False, error=str(err)))
            continue
        scores = score_views(model, views, cfg.DATA.ENSEMBLE_METHOD)
        results.append(VideoPrediction(video, ok=True, topk=top_classes(scores, class_names, k)))
    return results


def inference_device(cfg: CfgNode, name: str = "") -> torch.device:
    """The device ``name`` when given, else cuda when NUM_GPUS > 0 and CUDA is available, else cpu."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if cfg.NUM_GPUS > 0 and torch.cuda.is_available() else "cpu")


@dataclasses.dataclass
class TrainedModel:
    """A model rebuilt from a checkpoint, with the config and class names it was trained with."""

    model: nn.Module
    cfg: CfgNode
    class_names: List[str]
    checkpoint: str
    epoch: int
    weights: str = "model"  # which weights of the checkpoint: model (model_state) or ema (ema_state)


def load_trained_model(
    checkpoint: str, cfg: Optional[CfgNode] = None, opts: Sequence[str] = (),
    device: Union[torch.device, str, None] = None,
) -> TrainedModel:
    """Rebuild the model of ``checkpoint`` in eval mode, from the checkpoint alone when it is
    self-contained (config, class names and head inputs stored in it).

    ``cfg`` (default: the checkpoint's own config with ``opts`` applied) describes the model;
    ``device`` defaults to :func:`inference_device` of the config. The head is built with the checkpoint's ``model_inputs`` when it has them, else from the data
    folder (older checkpoints). Loading is strict: CheckpointError names missing or unexpected
    keys and whether the checkpoint's config differs. The weights are the checkpoint's EMA
    weights or its model weights as ``TEST.WEIGHTS`` says (:func:`weights_to_load`).
    """
    from m3a.config.loading import config_from_text
    from m3a.models import build_model
    from m3a.utils.checkpoint import CheckpointError, apply_checkpoint, read_checkpoint
    from m3a.utils.class_names import load_class_names

    ckpt = read_checkpoint(checkpoint)
    stored_cfg = ckpt.get("cfg") if isinstance(ckpt, dict) else None
    compare_data_folder = cfg is not None
    if cfg is None:
        if not isinstance(stored_cfg, str) or not stored_cfg.strip():
            raise CheckpointError(f"{checkpoint}: the checkpoint holds no config; give --cfg")
        cfg = config_from_text(stored_cfg, f"{checkpoint} (stored config)", opts)
    cfg.LOG_MODEL_INFO = False
    if not isinstance(device, torch.device):
        device = inference_device(cfg, device or "")
    inputs = ckpt.get("model_inputs") if isinstance(ckpt, dict) else None
    if inputs and compare_data_folder:
        for line in changed_inputs(cfg, inputs):
            logger.warning("%s: %s; the checkpoint's own is used", checkpoint, line)
    model = build_model(cfg, device, inputs=inputs or None)
    weights = weights_to_load(ckpt, cfg.TEST.WEIGHTS, checkpoint)
    if weights == "ema":
        ckpt = {**ckpt, "model_state": ckpt[EMA_FIELD]}
    info = apply_checkpoint(ckpt, checkpoint, model)
    _require_exact_fit(checkpoint, info, cfg)
    names = ckpt.get("class_names") if isinstance(ckpt, dict) else None
    names = list(names) if names else load_class_names(cfg)
    logger.info("%s: using its %s weights", checkpoint, "EMA" if weights == "ema" else "model")
    return TrainedModel(model.eval(), cfg, names, checkpoint, info["epoch"], weights)


def weights_to_load(ckpt, mode: str, checkpoint: str) -> str:
    """``ema`` or ``model``: the weights of ``ckpt`` that TEST.WEIGHTS ``mode`` selects
    (m3a.engine.ema.choose_weights); CheckpointError for ``ema`` without them."""
    from m3a.utils.checkpoint import CheckpointError

    has_ema = isinstance(ckpt, dict) and isinstance(ckpt.get(EMA_FIELD), dict)
    return choose_weights(mode, has_ema, f"the checkpoint {checkpoint}", CheckpointError)


def changed_inputs(cfg: CfgNode, stored: dict) -> List[str]:
    """How the head inputs in the data folder of ``cfg`` (e.g. the M3A lexicons) differ from
    those ``stored`` in a checkpoint, one line each ([] when equal or not readable)."""
    from m3a.models.build import component_classes
    from m3a.utils.lexicon import LexiconError

    head = component_classes(cfg)[2]
    try:
        current = head.stored_inputs(cfg, head.read_inputs(cfg))
    except (LexiconError, OSError) as err:
        logger.info("head inputs not compared with the data folder: %s", err)
        return []
    lines = []
    for name, saved in stored.items():
        now = current.get(name)
        if now is None:
            continue
        if not isinstance(now, torch.Tensor) or not isinstance(saved, torch.Tensor):  # e.g. prompt lists
            if list(now) != list(saved):
                lines.append(f"{name} in the data folder differs from the checkpoint's")
            continue
        if tuple(now.shape) != tuple(saved.shape):
            lines.append(f"{name} in the data folder has shape {tuple(now.shape)}, the checkpoint's "
                         f"{tuple(saved.shape)}")
        elif not torch.allclose(now.double(), saved.double(), atol=1e-6):
            diff = (now.double() - saved.double()).abs()
            rows = int((diff.amax(dim=-1) > 1e-6).sum()) if diff.dim() > 1 else int((diff > 1e-6).sum())
            lines.append(f"{name} in the data folder differs from the checkpoint's in {rows} of "
                         f"{len(saved)} rows (max abs difference {float(diff.max()):.4g})")
    return lines


# Config sections that describe the model (compared when a checkpoint does not fit).
MODEL_SECTIONS = ("MODEL", "M3A")


def model_config_differences(stored_text: str, cfg: CfgNode) -> List[str]:
    """``KEY stored (config: value)`` for every model key where the config stored in a checkpoint
    differs from ``cfg`` ([] when the stored text cannot be read)."""
    from m3a.config import ConfigError
    from m3a.config.loading import config_from_text

    try:
        stored = config_from_text(stored_text, "stored config")
    except ConfigError:
        return []
    diffs = []
    for section in MODEL_SECTIONS:
        for key, value in stored[section].items():
            if cfg[section].get(key) != value:
                diffs.append(f"{section}.{key} {value} (config: {cfg[section].get(key)})")
    return diffs


def _require_exact_fit(checkpoint: str, info: dict, cfg: CfgNode) -> None:
    """CheckpointError when the checkpoint's keys are not exactly the model's; the message
    names the first keys and, when the checkpoint stores its config, the model keys to set."""
    from m3a.utils.checkpoint import CheckpointError

    missing, unexpected = info["missing_keys"], info["unexpected_keys"]
    if not missing and not unexpected:
        return
    parts = []
    for what, keys in (("model weight(s) not in the checkpoint", missing),
                       ("checkpoint key(s) not in the model", unexpected)):
        if keys:
            shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
            parts.append(f"{len(keys)} {what} (first: {shown})")
    diffs = model_config_differences(info["cfg"], cfg) if isinstance(info.get("cfg"), str) else []
    hint = (f" -- the checkpoint was trained with {', '.join(diffs[:4])}" if diffs
            else " -- does the config match the checkpoint?")
    raise CheckpointError(f"{checkpoint}: {'; '.join(parts)}{hint}")


def load_model(cfg: CfgNode, checkpoint: str, device: Optional[torch.device] = None) -> nn.Module:
    """The model of ``cfg`` with the weights (and head inputs, when stored) of ``checkpoint``, in
    eval mode; strict (see :func:`load_trained_model`)."""
    from m3a.utils.checkpoint import CheckpointError

    if not os.path.isfile(checkpoint):
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    return load_trained_model(checkpoint, cfg, device=device).model
