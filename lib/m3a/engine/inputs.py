"""Model inputs of a batch: one tensor, or a list of pathway tensors (e.g. ``[rgb, pose]``).

The engine moves, slices and reshapes inputs with these helpers and passes the result to the
model as it is: a tensor stays a tensor, a list stays a list with one tensor per pathway, in
order. Every pathway shares the leading batch (and, at test, views) dimensions.
"""
from typing import List, Tuple, Union

import torch

Inputs = Union[torch.Tensor, List[torch.Tensor]]


def _pathways(inputs: Inputs) -> List[torch.Tensor]:
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _like(inputs: Inputs, pathways: List[torch.Tensor]) -> Inputs:
    return pathways if isinstance(inputs, (list, tuple)) else pathways[0]


def to_device(inputs: Inputs, device: torch.device, non_blocking: bool = False) -> Inputs:
    """Every pathway moved to ``device``."""
    return _like(inputs, [p.to(device, non_blocking=non_blocking) for p in _pathways(inputs)])


def batch_size(inputs: Inputs) -> int:
    """Items in the batch (the first dimension, the same in every pathway)."""
    sizes = {p.shape[0] for p in _pathways(inputs)}
    if len(sizes) != 1:
        raise ValueError(f"pathways disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()


def slice_items(inputs: Inputs, start: int, stop: int) -> Inputs:
    """Items ``start:stop`` of every pathway."""
    return _like(inputs, [p[start:stop] for p in _pathways(inputs)])


def flatten_views(inputs: Inputs) -> Tuple[Inputs, int, int]:
    """Test inputs (B, V, ...) per pathway as (B * V, ...), with B and V."""
    pathways = _pathways(inputs)
    shapes = {tuple(p.shape[:2]) for p in pathways}
    if len(shapes) != 1:
        raise ValueError(f"pathways disagree on (videos, views): {sorted(shapes)}")
    b, v = shapes.pop()
    return _like(inputs, [p.reshape((b * v,) + p.shape[2:]) for p in pathways]), b, v
