"""A synthetic skeleton + RGB data set for EPAM-Net on CPU: stick figures whose limb motions are
the classes, with their COCO-17 keypoints in the PoseC3D annotation format and matching videos.

Classes (all mirror-symmetric, so the training flip keeps the label):

0. ``arms_up``: both arms swing from the hips to above the head and back;
1. ``squat``: hips and knees bend, the body lowers and rises;
2. ``jumping_jack``: legs spread wide while the arms rise to shoulder height, and close again;
3. ``clap``: forearms swing in front of the chest, hands meeting.

A sample: one figure of random size and position on a noisy background, a random period
(0.8-1.6 s at 30 fps), phase and length (40-110 frames), joint jitter, scores 0.6-1.0. Its
annotation has ``frame_dir`` ``demo_<index>``, and its video ``demo_<index>.mp4`` shows the same
figure: limbs as coloured lines, head as a disc.
"""
import math
import os
import pickle
from typing import Dict, List, Tuple

import numpy as np

from m3a.utils.file_io import atomic_path
from m3a.utils.video_writer import write_h264

CLASSES = ("arms_up", "squat", "jumping_jack", "clap")
FPS = 30
# COCO-17 limbs drawn in the videos (joint pairs).
LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (11, 12), (5, 11), (6, 12), (11, 13), (13, 15),
         (12, 14), (14, 16))
ANN_FILE = "pose_demo_2d.pkl"


def _figure(cls: int, phase: float) -> np.ndarray:
    """COCO-17 joints (17, 2) of a unit-height figure (y down, origin at the hips' centre) at
    ``phase`` (0-1) of the class's motion; the subject faces the camera (its left is image
    right)."""
    s = 0.5 - 0.5 * math.cos(2 * math.pi * phase)  # 0 -> 1 -> 0 over a period
    drop = 0.25 * s if cls == 1 else 0.0
    spread = 0.2 * s if cls == 2 else 0.0
    j = np.zeros((17, 2))
    j[0] = (0, -0.95 + drop)
    j[1], j[2] = (0.03, -0.98 + drop), (-0.03, -0.98 + drop)
    j[3], j[4] = (0.06, -0.96 + drop), (-0.06, -0.96 + drop)
    j[5], j[6] = (0.12, -0.75 + drop), (-0.12, -0.75 + drop)
    j[11], j[12] = (0.08, drop), (-0.08, drop)
    knee_out = 0.12 * s if cls == 1 else 0.0
    j[13], j[14] = (0.09 + knee_out + spread, 0.22 + drop * 0.2), (-0.09 - knee_out - spread, 0.22 + drop * 0.2)
    j[15], j[16] = (0.09 + 2 * spread, 0.45), (-0.09 - 2 * spread, 0.45)
    for side, (shoulder, elbow, wrist) in ((1, (5, 7, 9)), (-1, (6, 8, 10))):
        if cls in (0, 2):  # arm angle from hanging (0) to overhead (pi)
            angle = math.pi * (s if cls == 0 else 0.55 * s)  # jumping jack: to shoulder height
            direction = np.array([side * math.sin(angle), math.cos(angle)])
            j[elbow] = j[shoulder] + 0.2 * direction
            j[wrist] = j[shoulder] + 0.4 * direction
        elif cls == 3:  # forearms swing inwards to meet in front of the chest
            j[elbow] = j[shoulder] + (side * 0.08, 0.18)
            j[wrist] = j[elbow] + (side * (0.12 - 0.16 * s), -0.12)
        else:
            j[elbow] = j[shoulder] + (side * 0.04, 0.2)
            j[wrist] = j[shoulder] + (side * 0.06, 0.4)
    return j


def sample_skeleton(cls: int, rng: np.random.Generator, size: Tuple[int, int]) -> Dict:
    """keypoint (1, T, 17, 2), keypoint_score (1, T, 17) of one random sample of class ``cls``
    in an image of ``size`` (H, W)."""
    h, w = size
    frames = int(rng.integers(40, 111))
    period = rng.uniform(0.8, 1.6) * FPS
    start = rng.uniform(0, 1)
    height = rng.uniform(0.45, 0.7) * h
    centre = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.55, 0.65) * h])
    phases = start + np.arange(frames) / period
    joints = np.stack([_figure(cls, p % 1.0) for p in phases]) * height + centre
    joints += rng.normal(0, 0.004 * h, joints.shape)
    joints = np.clip(joints, 1, [w - 1, h - 1]).astype(np.float32)
    scores = rng.uniform(0.6, 1.0, (1, frames, 17)).astype(np.float32)
    return {"keypoint": joints[None], "keypoint_score": scores}


def render_frames(keypoint: np.ndarray, size: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """RGB frames (T, H, W, 3) uint8 of the figure of ``keypoint`` (1, T, 17, 2)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    background = rng.integers(30, 70, (h, w, 3)).astype(np.uint8)
    thickness = max(1.5, 0.012 * h)
    frames = np.repeat(background[None], keypoint.shape[1], axis=0)
    for t in range(keypoint.shape[1]):
        kp = keypoint[0, t]
        for i, (a, b) in enumerate(LIMBS):
            near = _segment_distance(xx, yy, kp[a], kp[b]) <= thickness
            frames[t][near] = (220, 90 + 12 * i, 60) if i < 4 else (70, 160, 230)
        head = (xx - kp[0, 0]) ** 2 + (yy - kp[0, 1]) ** 2 <= (3 * thickness) ** 2
        frames[t][head] = (240, 220, 180)
    return frames


def _segment_distance(xx: np.ndarray, yy: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = ((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / max(float(ab @ ab), 1e-6)
    t = np.clip(t, 0, 1)
    return np.hypot(xx - (a[0] + t * ab[0]), yy - (a[1] + t * ab[1]))


def make_pose_demo(out_dir: str, samples_per_class: int = 24, size: int = 96, seed: int = 0,
                   val_fraction: float = 0.25) -> Dict[str, int]:
    """Write ``out_dir/pose_demo_2d.pkl`` (splits ``train`` / ``val``) and one mp4 per sample;
    return the split sizes."""
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    annotations: List[Dict] = []
    splits: Dict[str, List[str]] = {"train": [], "val": []}
    for index in range(samples_per_class * len(CLASSES)):
        cls = index % len(CLASSES)
        name = f"demo_{index:04d}"
        skeleton = sample_skeleton(cls, rng, (size, size))
        frames = render_frames(skeleton["keypoint"], (size, size), rng)
        write_h264(os.path.join(out_dir, f"{name}.mp4"), frames, FPS, size, size,
                   options={"crf": "20", "preset": "veryfast"})
        annotations.append({"frame_dir": name, "label": cls, "img_shape": (size, size),
                            "original_shape": (size, size), "total_frames": frames.shape[0],
                            **skeleton})
        is_val = index // len(CLASSES) < samples_per_class * val_fraction
        splits["val" if is_val else "train"].append(name)
    with atomic_path(os.path.join(out_dir, ANN_FILE)) as tmp, open(tmp, "wb") as f:
        pickle.dump({"split": splits, "annotations": annotations}, f, protocol=4)
    with atomic_path(os.path.join(out_dir, "classes.txt")) as tmp, open(tmp, "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    return {k: len(v) for k, v in splits.items()}
