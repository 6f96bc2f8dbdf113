"""Single-video inference: decode the multi-view test clips once, score them, combine, rank."""
import dataclasses
import logging
import os
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.datasets import decoder
from m3a.datasets.video_dataset import ClipLoader
from m3a.datasets.multiview import combine_views
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


def load_model(cfg: CfgNode, checkpoint: str, device: Optional[torch.device] = None) -> nn.Module:
    """Build the model of ``cfg``, load ``checkpoint`` into it (layout detected) and set eval mode.

    Raises CheckpointError when the file does not exist (before the model is built), cannot be
    read, does not fit, or leaves model weights uninitialised (the config does not describe the
    checkpoint).
    """
    from m3a.models import build_model
    from m3a.utils.checkpoint import CheckpointError, load_checkpoint

    if not os.path.isfile(checkpoint):
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    model = build_model(cfg, device)
    info = load_checkpoint(checkpoint, model)
    missing = info["missing_keys"]
    if missing:
        raise CheckpointError(
            f"{checkpoint}: {len(missing)} model weight(s) not in the checkpoint (first: {missing[0]}); "
            "does the config match the checkpoint?"
        )
    return model.eval()
