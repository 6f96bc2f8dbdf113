"""Clip transforms on uint8 frames: scale jitter + crop (resizing only the crop region), uniform
crops, flips and normalisation, with float conversion as late and on as little data as possible.

Input frames are uint8 tensors (T, H, W, 3) as decoded; outputs are float32 (3, T, h, w) clips.
Resizing (DATA.INTERPOLATION) is ``bilinear`` on uint8 (torch's fast path, the same 2-pixel
kernel at any scale), ``pil_bilinear`` on uint8 by PIL's ``Image.resize(BILINEAR)`` itself, frame
by frame (the resize of TSN/TSM/ACTION-Net's released pipelines: when shrinking, the triangle
kernel widens by the scale, an antialiasing filter; weights in PIL's 22-bit fixed point, horizontal
pass first, rounded to uint8 between the passes), or ``bicubic`` on float32 (torch's Keys kernel,
a = -0.75, no antialiasing and no clamping, as float bicubic resizing of normalised frames is;
normalisation is affine per channel, so normalising before or after resizing is the same).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

INTERPOLATIONS = ("bilinear", "bicubic", "pil_bilinear")
# Interpolations that resize the uint8 frames (the others convert to float32 first).
UINT8_INTERPOLATIONS = ("bilinear", "pil_bilinear")


def resize(frames: torch.Tensor, size: Tuple[int, int], interpolation: str = "bilinear") -> torch.Tensor:
    """Resize uint8 frames (T, H, W, 3) to ``size`` = (h, w) by a UINT8_INTERPOLATIONS filter:
    uint8 (T, 3, h, w), in channels-last memory.

    ``bilinear`` is torch's uint8 fast path (about 7x faster than float), ``pil_bilinear``
    :func:`pil_resize`. A frame already of ``size`` is returned as a view, not resampled (as PIL
    and torchvision's Resize do too).
    """
    planes = frames.permute(0, 3, 1, 2)
    if tuple(planes.shape[-2:]) == tuple(size):
        return planes
    if interpolation == "pil_bilinear":
        return pil_resize(frames, size)
    return F.interpolate(planes, size=size, mode="bilinear", align_corners=False, antialias=False)


def pil_resize(frames: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """PIL's ``Image.resize((w, h), BILINEAR)`` of every uint8 frame (T, H, W, 3) (views and
    crops of frames welcome): uint8 (T, 3, h, w) in channels-last memory."""
    height, width = size
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for step, frame in enumerate(frames.numpy()):
        image = Image.fromarray(np.ascontiguousarray(frame))
        out[step] = np.asarray(image.resize((width, height), Image.BILINEAR))
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def resize_to_float(frames: torch.Tensor, size: Tuple[int, int], interpolation: str = "bilinear",
                    time_first: bool = True) -> torch.Tensor:
    """Resize uint8 frames (T, H, W, 3) to ``size`` = (h, w): float32 (T, 3, h, w), or (3, T, h, w)
    when not ``time_first``. bilinear and pil_bilinear resize the uint8 planes and convert the
    result; bicubic converts first and resizes the float planes (its overshoot past [0, 255] is
    kept)."""
    if interpolation in UINT8_INTERPOLATIONS:
        return to_float(resize(frames, size, interpolation), time_first)
    if interpolation != "bicubic":
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got '{interpolation}'")
    planes = to_float(frames.permute(0, 3, 1, 2), time_first)
    if tuple(planes.shape[-2:]) == tuple(size):
        return planes
    return F.interpolate(planes, size=size, mode="bicubic", align_corners=False)


def to_float(frames: torch.Tensor, time_first: bool = True) -> torch.Tensor:
    """uint8 (T, 3, h, w) -> contiguous float32 (T, 3, h, w), or (3, T, h, w) when not
    ``time_first``, in one copy; contiguous channel planes keep normalisation vectorised."""
    planes = frames if time_first else frames.transpose(0, 1)
    return torch.empty(planes.shape, dtype=torch.float32).copy_(planes)


def short_side_size(height: int, width: int, short: int, truncate: bool = False) -> Tuple[int, int]:
    """Return (h, w) with the short side equal to ``short`` and the aspect ratio kept: the long
    side rounded, or truncated as torchvision's Resize does (``truncate``: ``int(short * long /
    short side)``, what the PIL pipelines of TSN/TSM/ACTION-Net get)."""
    if truncate:
        if height <= width:
            return short, max(1, int(short * width / height))
        return max(1, int(short * height / width)), short
    if height <= width:
        return short, max(1, int(round(width * short / height)))
    return max(1, int(round(height * short / width))), short


def normalize(
    frames: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int = 1
) -> torch.Tensor:
    """Map [0, 255] float frames to ``(x / 255 - mean) / std`` in place (channels at ``channel_dim``)."""
    shape = [1] * frames.dim()
    shape[channel_dim] = len(mean)
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=frames.dtype).view(shape)
    shift = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=frames.dtype).view(shape)
    return frames.mul_(scale).add_(shift)


def crop_region(
    height: int, width: int, scale_short: int, crop: int, position: Optional[Tuple[float, float]]
) -> Tuple[int, int, int, int]:
    """Return the source box (y, x, h, w) that becomes a ``crop`` square after scaling the short
    side to ``scale_short``; ``position`` = (fy, fx) in [0, 1] places it (None = centre)."""
    ratio = min(height, width) / float(max(scale_short, crop))
    box_h = min(height, max(1, int(round(crop * ratio))))
    box_w = min(width, max(1, int(round(crop * ratio))))
    fy, fx = position if position is not None else (0.5, 0.5)
    y = int(round((height - box_h) * fy))
    x = int(round((width - box_w) * fx))
    return y, x, box_h, box_w


def scale_crop_clip(
    frames: torch.Tensor,
    scale_short: int,
    crop: int,
    position: Optional[Tuple[float, float]],
    flip: bool,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """Scale (short side ``scale_short``), crop ``crop`` x ``crop``, flip and normalise a clip.

    Only the source box that maps onto the crop is resized and converted to float.
    ``frames`` is uint8 (T, H, W, 3); returns float32 (3, T, crop, crop).
    """
    _, height, width, _ = frames.shape
    box = crop_region(height, width, scale_short, crop, position)
    return crop_resize_clip(frames, box, crop, flip, mean, std, interpolation)


def crop_resize_clip(
    frames: torch.Tensor,
    box: Tuple[int, int, int, int],
    size: int,
    flip: bool,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """Cut the source ``box`` (y, x, h, w) of every frame, resize it to ``size`` x ``size``, flip
    and normalise: uint8 (T, H, W, 3) -> float32 (3, T, size, size)."""
    y, x, box_h, box_w = box
    region = frames[:, y : y + box_h, x : x + box_w]
    if interpolation in UINT8_INTERPOLATIONS:  # flip the uint8 planes: a quarter of the bytes
        planes = resize(region, (size, size), interpolation)
        planes = planes.flip(-1) if flip else planes
        return normalize(to_float(planes, time_first=False), mean, std, channel_dim=0)
    planes = resize_to_float(region, (size, size), interpolation, time_first=False)
    planes = planes.flip(-1) if flip else planes
    return normalize(planes, mean, std, channel_dim=0)


def random_scale_crop_clip(
    frames: torch.Tensor,
    jitter: Sequence[int],
    crop: int,
    random_flip: bool,
    mean: Sequence[float],
    std: Sequence[float],
    generator: Optional[torch.Generator] = None,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """Training transform: random short side in ``jitter`` (inclusive), random crop, random flip."""
    low, high = int(jitter[0]), int(jitter[-1])
    scale_short = int(torch.randint(low, high + 1, (), generator=generator))
    fy, fx = torch.rand(2, generator=generator).tolist()
    flip = bool(random_flip) and bool(torch.rand((), generator=generator) < 0.5)
    return scale_crop_clip(frames, scale_short, crop, (fy, fx), flip, mean, std, interpolation)


# TEST.CROP_OFFSETS: where the crops sit along the long side, for a margin m = long - size.
# even: 1 crop m // 2; 3 crops 0, m // 2, m; 4 crops 0, m // 4, m // 2, m (and m // 2 across).
# quarter_steps (TSM/ACTION-Net's test crops): multiples of s = m // 4: 1 crop 2s; 3 crops 0, 2s,
# 4s; 4 crops 0, s, 2s, 4s (and 2 * ((short - size) // 4) across).
CROP_OFFSETS = ("even", "quarter_steps")
CROP_COUNTS = (1, 3, 4)


def _long_side_offsets(margin: int, num_crops: int, rule: str) -> List[int]:
    if rule == "quarter_steps":
        step = margin // 4
        return [step * k for k in {1: (2,), 3: (0, 2, 4), 4: (0, 1, 2, 4)}[num_crops]]
    return {1: [margin // 2], 3: [0, margin // 2, margin], 4: [0, margin // 4, margin // 2, margin]}[num_crops]


def uniform_crop_offsets(
    height: int, width: int, size: int, num_crops: int, rule: str = "even"
) -> List[Tuple[int, int]]:
    """Return (y, x) of ``num_crops`` (1, 3 or 4) ``size`` squares spread along the long side
    (left to right; top to bottom for portrait frames) by ``rule`` (CROP_OFFSETS), centred across."""
    if num_crops not in CROP_COUNTS:
        raise ValueError(f"num_crops must be one of {CROP_COUNTS}, got {num_crops}")
    if rule not in CROP_OFFSETS:
        raise ValueError(f"crop offsets must be one of {CROP_OFFSETS}, got '{rule}'")
    landscape = width >= height
    long_margin, short_margin = (width - size, height - size) if landscape else (height - size, width - size)
    across = short_margin // 2 if rule == "even" else 2 * (short_margin // 4)
    along = _long_side_offsets(long_margin, num_crops, rule)
    return [(across, a) if landscape else (a, across) for a in along]


def prepare_test_frames(
    frames: torch.Tensor,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str = "bilinear",
    square: bool = False,
) -> torch.Tensor:
    """Scale uint8 frames (U, H, W, 3) to short side ``size`` (to ``size`` x ``size``, aspect
    ratio ignored, when ``square``) and normalise: float (U, 3, h, w). pil_bilinear truncates the
    long side as torchvision's Resize does (:func:`short_side_size`).

    Each frame is processed independently, so scaling a set of frames once and slicing it gives
    exactly the frames that scaling each clip on its own would give.
    """
    _, height, width, _ = frames.shape
    target = (size, size) if square else short_side_size(height, width, size, interpolation == "pil_bilinear")
    return normalize(resize_to_float(frames, target, interpolation), mean, std)


def clip_frames(frames: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The ``rows`` of ``frames`` (along dim 0): a view when they are consecutive, else a copy."""
    first = int(rows[0])
    if torch.equal(rows, torch.arange(first, first + len(rows))):
        return frames.narrow(0, first, len(rows))
    return frames.index_select(0, rows)


def cut_views(
    prepared: torch.Tensor, clip_rows: Sequence[torch.Tensor], size: int, num_crops: int, rule: str = "even"
) -> torch.Tensor:
    """Cut views from prepared frames (U, 3, h, w): for every clip (rows into ``prepared``) and
    every crop (placed by ``rule``, see :func:`uniform_crop_offsets`), a (3, T, size, size) view;
    returns (clips * crops, 3, T, size, size), clip-major.

    Each view is copied once, from the prepared frames straight into the one output tensor.
    """
    height, width = prepared.shape[-2:]
    offsets = uniform_crop_offsets(height, width, size, num_crops, rule)
    channels, steps = prepared.shape[1], len(clip_rows[0])
    views = torch.empty((len(clip_rows) * len(offsets), channels, steps, size, size), dtype=prepared.dtype)
    for c, rows in enumerate(clip_rows):
        clip = clip_frames(prepared, rows).transpose(0, 1)  # (3, T, h, w)
        for k, (y, x) in enumerate(offsets):
            views[c * len(offsets) + k].copy_(clip[:, :, y : y + size, x : x + size])
    return views
