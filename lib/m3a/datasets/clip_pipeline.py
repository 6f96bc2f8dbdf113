"""The spatial pipelines of training clips, validation clips and test views, as cfg.DATA and
cfg.TEST ask, on uint8 frames (T, H, W, 3) as decoded.

Training (random draws from ``generator``, else torch's global generator, which the loader
seeds per sample):

1. DATA.RAND_AUGMENT (a timm-style policy, ``m3a.datasets.rand_augment``) on the frames as
   decoded, the same ops for every frame, geometric ops sampled by
   DATA.RAND_AUGMENT_INTERPOLATION; "" = none.
2. The frame size the crop is drawn in, DATA.TRAIN_RESIZE: ``short_side`` (short side random
   in DATA.TRAIN_JITTER_SCALES, inclusive), ``square`` (both sides that random size, aspect
   ratio ignored) or ``none`` (as decoded).
3. A crop box in that frame, DATA.TRAIN_CROP (``m3a.datasets.crop_boxes``): ``random`` (a
   TRAIN_CROP_SIZE square at a random position), ``multi_scale`` (TSN's, DATA.MULTI_SCALES /
   DATA.MULTI_SCALE_MAX_DISTORT) or ``random_resized`` (DATA.RRC_SCALE / DATA.RRC_RATIO).
4. The box carried back to the decoded frame; only that region is resized (DATA.INTERPOLATION)
   to TRAIN_CROP_SIZE, flipped when DATA.RANDOM_FLIP draws so (p = 0.5), normalised. With
   ``pil_bilinear`` the resizing follows the TSN-family releases instead: the whole frames are
   scaled to that size first (long side truncated, as torchvision's Resize), then the box is cut
   and resized, so every pixel is the release's, on every TRAIN_RESIZE / TRAIN_CROP pair.

``short_side`` + ``random`` + bilinear or bicubic is the long-standing default pipeline and draws
the same random numbers as before (``transform.random_scale_crop_clip``, which resizes only the
crop's source region, long side rounded).

Validation: DATA.TEST_RESIZE ``short_side`` (short side TRAIN_JITTER_SCALES[0]) or ``square``
(TRAIN_JITTER_SCALES[0] x TRAIN_JITTER_SCALES[0]), then the centre TRAIN_CROP_SIZE crop (with
``pil_bilinear``: whole frames scaled first, then cropped, as released).
Test: frames scaled the same way to TEST_CROP_SIZE, then TEST.NUM_SPATIAL_CROPS crops (1, 3 or
4) placed by TEST.CROP_OFFSETS (``transform.uniform_crop_offsets``).
"""
from typing import Optional, Sequence, Tuple

import torch
from fvcore.common.config import CfgNode

from m3a.datasets import crop_boxes, transform
from m3a.datasets.rand_augment import parse_policy

def resizes_whole_frames(data: CfgNode) -> bool:
    """True when frames are scaled whole before cropping, as the TSN-family releases do
    (DATA.INTERPOLATION pil_bilinear); else only the crop's source region is resized."""
    return data.INTERPOLATION == "pil_bilinear"


def train_frame_size(height: int, width: int, data: CfgNode, generator: Optional[torch.Generator]) -> Tuple[int, int]:
    """The (h, w) the training crop box is drawn in (DATA.TRAIN_RESIZE)."""
    if data.TRAIN_RESIZE == "none":
        return height, width
    low, high = int(data.TRAIN_JITTER_SCALES[0]), int(data.TRAIN_JITTER_SCALES[-1])
    side = int(torch.randint(low, high + 1, (), generator=generator))
    if data.TRAIN_RESIZE == "square":
        return side, side
    return transform.short_side_size(height, width, side, truncate=resizes_whole_frames(data))


def train_box(height: int, width: int, data: CfgNode, generator: Optional[torch.Generator]) -> crop_boxes.Box:
    """A DATA.TRAIN_CROP box in a ``height`` x ``width`` frame."""
    if data.TRAIN_CROP == "multi_scale":
        return crop_boxes.multi_scale_crop_box(
            height, width, data.TRAIN_CROP_SIZE, data.MULTI_SCALES, data.MULTI_SCALE_MAX_DISTORT, generator
        )
    if data.TRAIN_CROP == "random_resized":
        return crop_boxes.random_resized_crop_box(height, width, data.RRC_SCALE, data.RRC_RATIO, generator)
    return crop_boxes.random_crop_box(height, width, data.TRAIN_CROP_SIZE, generator)


def train_clip(frames: torch.Tensor, data: CfgNode, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A training clip: uint8 (T, H, W, 3) -> float32 (3, T, crop, crop) (module docstring)."""
    if data.RAND_AUGMENT:
        frames = parse_policy(data.RAND_AUGMENT, data.RAND_AUGMENT_INTERPOLATION)(frames, generator)
    if data.TRAIN_RESIZE == "short_side" and data.TRAIN_CROP == "random" and not resizes_whole_frames(data):
        return transform.random_scale_crop_clip(
            frames, data.TRAIN_JITTER_SCALES, data.TRAIN_CROP_SIZE, data.RANDOM_FLIP, data.MEAN, data.STD,
            generator, data.INTERPOLATION,
        )
    _, height, width, _ = frames.shape
    frame_hw = train_frame_size(height, width, data, generator)
    box = train_box(*frame_hw, data, generator)
    flip = bool(data.RANDOM_FLIP) and bool(torch.rand((), generator=generator) < 0.5)
    if resizes_whole_frames(data):
        frames = transform.resize(frames, frame_hw, data.INTERPOLATION).permute(0, 2, 3, 1)
    else:
        box = crop_boxes.map_box(box, frame_hw, (height, width))
    return transform.crop_resize_clip(
        frames, box, data.TRAIN_CROP_SIZE, flip, data.MEAN, data.STD, data.INTERPOLATION
    )


def centre_box(side: int, crop: int) -> crop_boxes.Box:
    """The centre ``crop`` square of a ``side`` x ``side`` frame (all of it when smaller)."""
    size = min(side, crop)
    return (side - size) // 2, (side - size) // 2, size, size


def val_clip(frames: torch.Tensor, data: CfgNode) -> torch.Tensor:
    """A validation clip: scaled by DATA.TEST_RESIZE to TRAIN_JITTER_SCALES[0], centre crop."""
    scale, crop = int(data.TRAIN_JITTER_SCALES[0]), data.TRAIN_CROP_SIZE
    if resizes_whole_frames(data):
        _, height, width, _ = frames.shape
        size = (scale, scale) if data.TEST_RESIZE == "square" else transform.short_side_size(height, width, scale, True)
        frames = transform.resize(frames, size, data.INTERPOLATION).permute(0, 2, 3, 1)
        box = transform.crop_region(*size, min(size), crop, None)
        return transform.crop_resize_clip(frames, box, crop, False, data.MEAN, data.STD, data.INTERPOLATION)
    if data.TEST_RESIZE == "short_side":
        return transform.scale_crop_clip(frames, scale, crop, None, False, data.MEAN, data.STD, data.INTERPOLATION)
    _, height, width, _ = frames.shape
    box = crop_boxes.map_box(centre_box(scale, crop), (scale, scale), (height, width))
    return transform.crop_resize_clip(frames, box, crop, False, data.MEAN, data.STD, data.INTERPOLATION)


def test_views(frames: torch.Tensor, clip_rows: Sequence[torch.Tensor], data: CfgNode, test: CfgNode) -> torch.Tensor:
    """The views of one video from its decoded frames (U, H, W, 3) and every clip's rows into
    them: float (clips x crops, 3, T, S, S), clip-major."""
    size = data.TEST_CROP_SIZE
    prepared = transform.prepare_test_frames(
        frames, size, data.MEAN, data.STD, data.INTERPOLATION, square=data.TEST_RESIZE == "square"
    )
    return transform.cut_views(prepared, clip_rows, size, test.NUM_SPATIAL_CROPS, test.CROP_OFFSETS)
