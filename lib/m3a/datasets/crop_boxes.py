"""Training crop boxes (y, x, h, w) in a frame of a given size, drawn with torch's generators.

- :func:`random_crop_box`: a ``crop`` square at a uniformly random position (today's random
  crop after the short-side jitter).
- :func:`multi_scale_crop_box`: TSN's multi-scale crop (published with TSN/TSM/ACTION-Net): crop
  sides are ``int(base * scale)`` for the base ``min(h, w)``, a side within 3 px of the output
  size counts as the output size; a (width, height) pair is drawn among the pairs whose scale
  indices differ by at most ``max_distort``, then one of 13 fixed positions on a grid of quarter
  steps ``(W - w) // 4``, ``(H - h) // 4``. The box is resized to the output size afterwards.
- :func:`random_resized_crop_box`: the Inception crop: an area fraction uniform in ``scale``, an
  aspect ratio log-uniform in ``ratio``, 10 tries, else the centre crop nearest to ``ratio``.

:func:`map_box` carries a box drawn in a resized frame back to the source frame, so that only
the source region is resized, once.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch

Box = Tuple[int, int, int, int]

# The 13 fixed positions of the multi-scale crop, in quarter steps (x, y), in TSN's order:
# the 4 corners, the centre, the 4 edge centres and the 4 quarter points.
FIXED_POSITIONS = (
    (0, 0), (4, 0), (0, 4), (4, 4), (2, 2),
    (0, 2), (4, 2), (2, 4), (2, 0),
    (1, 1), (3, 1), (1, 3), (3, 3),
)
# Near-misses of the output size that count as the output size (pixels, exclusive).
SNAP_PIXELS = 3


def _randint(high: int, generator: Optional[torch.Generator]) -> int:
    """A uniform integer in [0, high)."""
    return int(torch.randint(high, (), generator=generator))


def _uniform(low: float, high: float, generator: Optional[torch.Generator]) -> float:
    return low + (high - low) * float(torch.rand((), dtype=torch.float64, generator=generator))


def random_crop_box(height: int, width: int, crop: int, generator: Optional[torch.Generator] = None) -> Box:
    """A ``crop`` square (clipped to the frame) at a uniformly random integer position."""
    box_h, box_w = min(crop, height), min(crop, width)
    y = _randint(height - box_h + 1, generator)
    x = _randint(width - box_w + 1, generator)
    return y, x, box_h, box_w


def multi_scale_sides(height: int, width: int, size: int, scales: Sequence[float]) -> List[int]:
    """Crop sides ``int(min(height, width) * s)`` for every scale, snapped to ``size`` when
    closer than SNAP_PIXELS."""
    base = min(height, width)
    sides = [int(base * s) for s in scales]
    return [size if abs(side - size) < SNAP_PIXELS else side for side in sides]


def multi_scale_pairs(
    height: int, width: int, size: int, scales: Sequence[float], max_distort: int
) -> List[Tuple[int, int]]:
    """The (width, height) crop pairs the multi-scale crop draws from, in TSN's order (height
    index outer, width index inner), keeping pairs whose indices differ by <= ``max_distort``."""
    sides = multi_scale_sides(height, width, size, scales)
    return [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]


def fixed_offsets(height: int, width: int, box_h: int, box_w: int) -> List[Tuple[int, int]]:
    """The 13 fixed (y, x) positions of a ``box_h`` x ``box_w`` box, in FIXED_POSITIONS' order."""
    step_x, step_y = (width - box_w) // 4, (height - box_h) // 4
    return [(qy * step_y, qx * step_x) for qx, qy in FIXED_POSITIONS]


def multi_scale_crop_box(
    height: int,
    width: int,
    size: int,
    scales: Sequence[float],
    max_distort: int,
    generator: Optional[torch.Generator] = None,
) -> Box:
    """TSN's multi-scale crop box in a ``height`` x ``width`` frame (output side ``size``)."""
    pairs = multi_scale_pairs(height, width, size, scales, max_distort)
    box_w, box_h = pairs[_randint(len(pairs), generator)]
    offsets = fixed_offsets(height, width, box_h, box_w)
    y, x = offsets[_randint(len(offsets), generator)]
    return y, x, box_h, box_w


def centre_box_for_ratio(height: int, width: int, ratio: Sequence[float]) -> Box:
    """The random-resized crop's fallback: the largest centred box whose aspect ratio (w / h)
    is within ``ratio`` (the whole frame when the frame's own ratio is)."""
    frame_ratio = width / height
    if frame_ratio < min(ratio):
        box_w, box_h = width, int(round(width / min(ratio)))
    elif frame_ratio > max(ratio):
        box_w, box_h = int(round(height * max(ratio))), height
    else:
        box_w, box_h = width, height
    return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w


def random_resized_crop_box(
    height: int,
    width: int,
    scale: Sequence[float],
    ratio: Sequence[float],
    generator: Optional[torch.Generator] = None,
    tries: int = 10,
) -> Box:
    """The Inception crop box: area ``U(scale) * h * w``, aspect ``exp(U(log ratio))`` (w / h),
    sides rounded; the first of ``tries`` draws that fits, at a uniform position; else the
    centre box of :func:`centre_box_for_ratio`."""
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(tries):
        area = _uniform(scale[0], scale[1], generator) * height * width
        aspect = math.exp(_uniform(log_low, log_high, generator))
        box_w = int(round(math.sqrt(area * aspect)))
        box_h = int(round(math.sqrt(area / aspect)))
        if 0 < box_w <= width and 0 < box_h <= height:
            y = _randint(height - box_h + 1, generator)
            x = _randint(width - box_w + 1, generator)
            return y, x, box_h, box_w
    return centre_box_for_ratio(height, width, ratio)


def map_box(box: Box, frame_hw: Tuple[int, int], source_hw: Tuple[int, int]) -> Box:
    """Carry ``box`` drawn in a frame of ``frame_hw`` to a source of ``source_hw`` that was
    resized (each axis on its own) to that frame: edges scaled and rounded, at least 1 px."""
    (frame_h, frame_w), (source_h, source_w) = frame_hw, source_hw
    if (frame_h, frame_w) == (source_h, source_w):
        return box
    y, x, box_h, box_w = box
    sy, sx = source_h / frame_h, source_w / frame_w
    top, left = int(round(y * sy)), int(round(x * sx))
    bottom = min(source_h, max(top + 1, int(round((y + box_h) * sy))))
    right = min(source_w, max(left + 1, int(round((x + box_w) * sx))))
    top, left = min(top, bottom - 1), min(left, right - 1)
    return top, left, bottom - top, right - left
