"""The motion-direction demo data set: folders of JPEG frames whose classes differ only in the
direction of motion, so that a model without temporal modelling (TSN) cannot tell the classes of
a pair apart, while TSM and ACTION-Net can.

Six classes in three pairs: a square moving right / left, moving down / up, and a clock hand
turning clockwise / anticlockwise. Within a pair the start point, speed and path are drawn so that
every single frame has the same distribution in both classes (a left-moving clip is a
right-moving clip played backwards); only the order of the frames tells them apart. Colours and
background are random per clip and carry no class information.

Layout under ``out_dir``::

    frames/{train,val,test}/{split}-NNNN/000001.jpg ...
    {train,val,test}.csv     frame_folder lists: path num_frames label (0-based)
    classes.txt              class names in label order
    README.txt
    .complete                written last
"""
import os
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from m3a.utils.file_io import atomic_write_text

CLASSES = ("moving right", "moving left", "moving down", "moving up", "turning clockwise",
           "turning anticlockwise")
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.25}
COMPLETE_MARKER = ".complete"


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random colour gradient with noise, (size, size, 3) float in [0, 1]."""
    ramp = np.linspace(0.0, 1.0, size)
    a, b = rng.uniform(0.1, 0.5, 3), rng.uniform(0.1, 0.5, 3)
    horizontal = rng.random() < 0.5
    mix = ramp[None, :, None] if horizontal else ramp[:, None, None]
    img = a * (1 - mix) + b * mix
    return np.clip(img + rng.normal(0, 0.03, (size, size, 3)), 0, 1)


def _translation_masks(size: int, frames: int, horizontal: bool, forward: bool,
                       rng: np.random.Generator) -> np.ndarray:
    """(frames, size, size) masks of a square moving along x (or y), forward = increasing."""
    half = size / 10
    travel = rng.uniform(0.35, 0.6) * size
    start = rng.uniform(half + 1, size - half - 1 - travel)
    along = start + travel * np.linspace(0, 1, frames)
    if not forward:
        along = along[::-1]
    across = rng.uniform(half + 1, size - half - 1)
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    masks = []
    for p in along:
        cx, cy = (p, across) if horizontal else (across, p)
        masks.append((np.abs(xs - cx) < half) & (np.abs(ys - cy) < half))
    return np.stack(masks)


def _rotation_masks(size: int, frames: int, clockwise: bool, rng: np.random.Generator) -> np.ndarray:
    """(frames, size, size) masks of a clock hand (a bar with a disc at its tip) turning about the
    centre; image y points down, so clockwise on screen is increasing angle."""
    sweep = rng.uniform(0.5, 1.0) * np.pi
    angles = rng.uniform(0, 2 * np.pi) + sweep * np.linspace(0, 1, frames)
    if not clockwise:
        angles = angles[::-1]
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    c, length, width = size / 2, size * 0.38, size / 16
    masks = []
    for a in angles:
        ux, uy = np.cos(a), np.sin(a)
        along = (xs - c) * ux + (ys - c) * uy
        across = np.abs(-(xs - c) * uy + (ys - c) * ux)
        bar = (along > 0) & (along < length) & (across < width)
        tip = (xs - c - length * ux) ** 2 + (ys - c - length * uy) ** 2 < (2 * width) ** 2
        masks.append(bar | tip)
    return np.stack(masks)


def render_clip(label: int, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Frames (frames, size, size, 3) uint8 of one clip of class ``label``."""
    if label < 4:
        masks = _translation_masks(size, frames, horizontal=label < 2, forward=label % 2 == 0, rng=rng)
    else:
        masks = _rotation_masks(size, frames, clockwise=label == 4, rng=rng)
    background = _background(size, rng)
    colour = rng.uniform(0.6, 1.0, 3) * (rng.random(3) < 0.8) + 0.1
    clip = np.where(masks[..., None], np.clip(colour, 0, 1), background[None])
    return (clip * 255).round().astype(np.uint8)


def plan_clips(clips_per_class: int, seed: int) -> List[Tuple[str, int, int]]:
    """(split, label, seed of the clip) for every clip, classes balanced in every split."""
    if clips_per_class < 4:
        raise ValueError(f"need at least 4 clips per class (train, val, test), got {clips_per_class}")
    counts = {s: max(1, int(round(clips_per_class * f))) for s, f in SPLIT_FRACTIONS.items()}
    counts["train"] = clips_per_class - counts["val"] - counts["test"]
    plan = []
    for split in SPLITS:
        for i in range(counts[split]):
            for label in range(len(CLASSES)):
                plan.append((split, label, seed * 1_000_003 + len(plan)))
    return plan


def make_motion_dataset(out_dir: str, clips_per_class: int = 60, frames: int = 24, size: int = 64,
                        seed: int = 0) -> Dict[str, int]:
    """Write the data set under ``out_dir`` (see the module docstring); return clips per split."""
    if frames < 8 or size < 32:
        raise ValueError(f"need at least 8 frames of at least 32 px, got {frames} frames of {size} px")
    plan = plan_clips(clips_per_class, seed)
    marker = os.path.join(out_dir, COMPLETE_MARKER)
    if os.path.exists(marker):
        os.remove(marker)
    lines: Dict[str, List[str]] = {s: [] for s in SPLITS}
    for split, label, clip_seed in plan:
        name = f"frames/{split}/{split}-{len(lines[split]):04d}"
        folder = os.path.join(out_dir, name)
        os.makedirs(folder, exist_ok=True)
        for i, frame in enumerate(render_clip(label, frames, size, np.random.default_rng(clip_seed)), 1):
            Image.fromarray(frame).save(os.path.join(folder, f"{i:06d}.jpg"), quality=92)
        lines[split].append(f"{name} {frames} {label}")
    for split in SPLITS:
        atomic_write_text(os.path.join(out_dir, f"{split}.csv"), "".join(x + "\n" for x in lines[split]))
    atomic_write_text(os.path.join(out_dir, "classes.txt"), "".join(c + "\n" for c in CLASSES))
    counts = {split: len(lines[split]) for split in SPLITS}
    atomic_write_text(os.path.join(out_dir, "README.txt"), _readme(counts, frames, size, seed))
    atomic_write_text(marker, f"{len(plan)} clips, seed {seed}\n")
    return counts


def _readme(counts: Dict[str, int], frames: int, size: int, seed: int) -> str:
    return "\n".join([
        "m3a motion-direction demo (synthetic; tools/make_demo_data.py --kind motion)",
        "",
        f"{sum(counts.values())} clips: {counts['train']} train, {counts['val']} val, {counts['test']} test;"
        f" {len(CLASSES)} classes; seed {seed}.",
        f"Each clip: a folder of {frames} JPEG frames of {size}x{size} (000001.jpg ...).",
        "Classes (pairs differ only in the direction of motion): " + ", ".join(CLASSES) + ".",
        "Lists {train,val,test}.csv: 'path num_frames label' (DATA.LIST_FORMAT frame_folder).",
    ]) + "\n"
