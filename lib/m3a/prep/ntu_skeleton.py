"""NTU RGB+D ``.skeleton`` files (Kinect v2, 25 joints) to PoseC3D-style 2D annotations.

A ``.skeleton`` file is text: the frame count; per frame the body count; per body a line of 10
values (body id, clipped edges, hand states, restricted flag, lean x/y, tracking state), the
joint count (25) and one line per joint of 12 values: x y z (camera space), depthX depthY,
colorX colorY (pixels of the 1920 x 1080 colour frame), orientation w x y z, tracking state
(2 tracked, 1 inferred, 0 not tracked).

The annotation keeps the colour-frame coordinates of the COCO-17 joints that Kinect has: nose <-
Head, shoulders, elbows, wrists, hips, knees and ankles (left = the subject's left, as in COCO).
Eyes and ears have no Kinect joint and are written missing: (0, 0) with score 0. Scores: 1 for
tracked joints, 0.5 for inferred ones, 0 (and (0, 0)) for untracked ones. Persons: the
``max_persons`` body ids present in the most frames (ties: the first seen).
"""
import os
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from m3a.utils.errors import InputError

# Kinect v2 joint of each COCO-17 joint (-1: none).
KINECT_OF_COCO = (3, -1, -1, -1, -1, 4, 8, 5, 9, 6, 10, 12, 16, 13, 17, 14, 18)
KINECT_JOINTS = 25
# Score of a joint by Kinect tracking state (0 not tracked, 1 inferred, 2 tracked).
STATE_SCORE = (0.0, 0.5, 1.0)
COLOR_SHAPE = (1080, 1920)
NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
# Training subjects of the cross-subject benchmarks (NTU RGB+D 60 and 120 papers); NTU-60's
# are the first 20.
XSUB_TRAIN_SUBJECTS = (
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50,
    52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103,
)
# Training cameras of NTU-60 cross-view; NTU-120 cross-setup trains on even setup numbers.
XVIEW_TRAIN_CAMERAS = (2, 3)
BENCHMARKS = {"ntu60": 60, "ntu120": 120}


class SkeletonFormatError(InputError):
    """A malformed ``.skeleton`` file; the message names the file and line."""


class _Lines:
    """The file's lines of numbers, read one at a time with the line number for errors."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path) as f:
            self.lines = f.read().split("\n")
        self.pos = 0

    def tokens(self, count: int, what: str) -> List[str]:
        """The next non-blank line's ``count`` numbers, as written."""
        while self.pos < len(self.lines) and not self.lines[self.pos].strip():
            self.pos += 1
        if self.pos >= len(self.lines):
            raise SkeletonFormatError(f"{self.path}: ends before {what}")
        line, self.pos = self.lines[self.pos], self.pos + 1
        tokens = line.split()
        try:
            [float(v) for v in tokens]
        except ValueError:
            tokens = []
        if len(tokens) != count:
            raise SkeletonFormatError(f"{self.path}:{self.pos}: expected {what} ({count} "
                                      f"number(s)), got '{line.strip()[:60]}'")
        return tokens

    def values(self, count: int, what: str) -> List[float]:
        """The next non-blank line's ``count`` numbers."""
        return [float(v) for v in self.tokens(count, what)]

    def count(self, what: str) -> int:
        value = self.values(1, what)[0]
        if value < 0 or value != int(value):
            raise SkeletonFormatError(
                f"{self.path}:{self.pos}: {what} must be a count, got {value}")
        return int(value)


def read_skeleton(path: str) -> Tuple[int, List[Dict[str, np.ndarray]]]:
    """(frame count, per frame a dict body id -> (25, 3) array of colorX, colorY, state)."""
    lines = _Lines(path)
    frames = []
    for _ in range(lines.count("the frame count")):
        bodies = {}
        for _ in range(lines.count("a body count")):
            body_id = lines.tokens(10, "a body line")[0]  # 64-bit ids: kept as text
            joints = lines.count("the joint count")
            if joints != KINECT_JOINTS:
                raise SkeletonFormatError(f"{path}:{lines.pos}: expected {KINECT_JOINTS} joints, "
                                          f"got {joints}")
            rows = [lines.values(12, "a joint line") for _ in range(joints)]
            bodies[body_id] = np.array(rows, dtype=np.float64)[:, [5, 6, 11]]
        frames.append(bodies)
    return len(frames), frames


def skeleton_annotation(path: str, max_persons: int = 2) -> Optional[dict]:
    """The annotation of one ``.skeleton`` file (None when no frame has a body)."""
    name = os.path.splitext(os.path.basename(path))[0]
    match = NAME.match(name)
    if not match:
        raise SkeletonFormatError(f"{path}: name is not SsssCcccPpppRrrrAaaa.skeleton")
    total, frames = read_skeleton(path)
    seen = Counter(body for frame in frames for body in frame)
    if not seen:
        return None
    first = {}
    for t, frame in enumerate(frames):
        for body in frame:
            first.setdefault(body, t)
    persons = sorted(seen, key=lambda b: (-seen[b], first[b]))[:max_persons]
    keypoint = np.zeros((len(persons), total, 17, 2), np.float32)
    score = np.zeros((len(persons), total, 17), np.float32)
    coco = [i for i, k in enumerate(KINECT_OF_COCO) if k >= 0]
    kinect = [KINECT_OF_COCO[i] for i in coco]
    for m, body in enumerate(persons):
        for t, frame in enumerate(frames):
            if body not in frame:
                continue
            joints = frame[body][kinect]
            state = np.clip(joints[:, 2].astype(int), 0, 2)
            tracked = state > 0
            keypoint[m, t, np.array(coco)[tracked]] = joints[tracked, :2]
            score[m, t, coco] = np.take(STATE_SCORE, state)
    return {
        "frame_dir": name, "label": int(match.group(5)) - 1, "img_shape": COLOR_SHAPE,
        "original_shape": COLOR_SHAPE, "total_frames": total, "keypoint": keypoint,
        "keypoint_score": score,
    }


def benchmark_splits(names: Sequence[str], benchmark: str) -> Dict[str, List[str]]:
    """The standard splits of ``names``: NTU-60 xsub/xview, NTU-120 xsub/xset (train/val)."""
    splits = {}
    second = "xview" if benchmark == "ntu60" else "xset"
    for split in ("xsub", second):
        for part in ("train", "val"):
            splits[f"{split}_{part}"] = []
    for name in names:
        setup, camera, subject = (int(g) for g in NAME.match(name).groups()[:3])
        splits["xsub_train" if subject in XSUB_TRAIN_SUBJECTS else "xsub_val"].append(name)
        if benchmark == "ntu60":
            train = camera in XVIEW_TRAIN_CAMERAS
        else:
            train = setup % 2 == 0
        splits[f"{second}_{'train' if train else 'val'}"].append(name)
    return splits


def in_benchmark(name: str, benchmark: str) -> bool:
    """True when the sample's action belongs to the benchmark (NTU-60: actions 1-60)."""
    match = NAME.match(name)
    return match is not None and int(match.group(5)) <= BENCHMARKS[benchmark]
