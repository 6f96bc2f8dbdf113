"""Combining the per-view scores of multi-view testing into one score per video."""
import torch

ENSEMBLE_METHODS = ("sum", "max")


def combine_views(scores: torch.Tensor, method: str) -> torch.Tensor:
    """Combine scores (B, V, N) over the V views by ``sum`` or ``max`` (DATA.ENSEMBLE_METHOD): (B, N)."""
    if scores.dim() != 3:
        raise ValueError(f"scores must be (batch, views, classes), got shape {tuple(scores.shape)}")
    if method == "sum":
        return scores.sum(dim=1)
    if method == "max":
        return scores.amax(dim=1)
    raise ValueError(f"ensemble method must be one of {ENSEMBLE_METHODS}, got '{method}'")
