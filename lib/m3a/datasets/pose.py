"""2D skeletons for pose-driven models (EPAM-Net): the PoseC3D / MMAction2 annotation pickle,
frame sampling, the person-box crop, flipping and joint heatmap volumes.

Annotation file: a pickle of ``dict(split=dict(<name>=[frame_dir, ...]), annotations=[...])``
(or a bare list of annotations, one split's), read with the restricted unpickler. Each
annotation is a dict with ``frame_dir`` (str), ``label`` (int, 0-based; a list of them for multi-label data), ``img_shape`` (H, W),
``keypoint`` float (M persons, T frames, V joints, 2) in pixels, (0, 0) = missing, and
``keypoint_score`` float (M, T, V); ``total_frames`` (= T) and ``original_shape`` are optional.

Clip preparation (EPAM-Net's pipeline): :func:`sample_pose_indices` picks 48 frames (the RGB
frames are every third, :func:`rgb_indices`); :func:`person_box` is one box around every
person's joints over those frames, padded 25 %, made square and clipped to the image; the box
crops keypoints (:func:`crop_keypoints`) and RGB frames (:func:`crop_frames`) alike; in training
:func:`flip_pose` mirrors and swaps left/right joints; :func:`render_heatmap_volume` draws one
Gaussian per joint and frame.
"""
import math
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from m3a.utils.errors import InputError
from m3a.utils.safe_pickle import PickleLoadError, load_pickle

# COCO-17 joints: 0 nose, then (left, right) pairs: eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles. A horizontal flip swaps each pair.
COCO_FLIP_PAIRS = tuple((left, left + 1) for left in range(1, 17, 2))
# The person box: padding about its centre, height / width ratio, and the smallest tight box
# (pixels, either side) that is cropped at all (smaller: the whole frame is kept).
BOX_PADDING = 0.25
BOX_HW_RATIO = 1.0
BOX_MIN_SIZE = 10
# Joints scored below this draw no Gaussian.
MIN_SCORE = 1e-4
# Seed of the test-mode frame sampling (deterministic test clips, as published).
TEST_SEED = 255
REQUIRED_FIELDS = ("frame_dir", "label", "img_shape", "keypoint", "keypoint_score")

Box = Tuple[int, int, int, int]


class PoseClip(NamedTuple):
    """One sampled clip of an annotation: what the model's pose input and the RGB frames need."""

    heatmaps: np.ndarray  # (V, pose frames, S, S) float32
    pose_indices: np.ndarray  # frame indices of the heatmaps
    rgb_indices: np.ndarray  # frame indices of the RGB frames (every k-th pose frame)
    box: Box  # person box (x0, y0, x1, y1) in the annotation's image pixels
    flipped: bool  # mirrored (keypoints done; the RGB frames are to be mirrored too)


class PoseDataError(InputError):
    """A malformed annotation file; the message names the file, the annotation and the field
    (reported in one line by the command-line tools)."""


def load_annotations(path: str, split: Optional[str] = None) -> List[Dict[str, Any]]:
    """The annotations of ``path`` (all, or those whose ``frame_dir`` ``split`` lists), checked.

    PoseDataError names the file, the annotation (index and frame_dir) and the bad field; a
    pickle that is not plain data (e.g. one that would run code) is refused.
    """
    try:
        data = load_pickle(path)
    except PickleLoadError as err:
        raise PoseDataError(str(err)) from None
    if isinstance(data, list):
        if split is not None:
            raise PoseDataError(f"{path}: split '{split}' asked for, but the file is a bare "
                                f"list of annotations (one split's)")
        annotations = data
    elif isinstance(data, dict) and isinstance(data.get("annotations"), list):
        annotations = data["annotations"]
    else:
        raise PoseDataError(f"{path}: expected dict(split=..., annotations=[...]) or a list of "
                            f"annotations, got {type(data).__name__}")
    for i, ann in enumerate(annotations):
        check_annotation(ann, f"{path}: annotation {i}")
    if split is None:
        return annotations
    return _select_split(data, annotations, split, path)


def _select_split(data: dict, annotations: list, split: str, path: str) -> List[Dict[str, Any]]:
    splits = data.get("split")
    if not isinstance(splits, dict) or split not in splits:
        names = sorted(splits) if isinstance(splits, dict) else []
        raise PoseDataError(f"{path}: no split '{split}' (splits: {', '.join(names) or 'none'})")
    wanted = set(splits[split])
    chosen = [ann for ann in annotations if ann["frame_dir"] in wanted]
    missing = wanted - {ann["frame_dir"] for ann in chosen}
    if missing:
        raise PoseDataError(f"{path}: split '{split}' names {len(missing)} frame_dir(s) without "
                            f"an annotation, e.g. {sorted(missing)[0]}")
    return chosen


def label_tuple(label: Any) -> Tuple[int, ...]:
    """The class ids of an annotation's ``label``: an integer >= 0 (single-label) or a list /
    tuple / 1-D array of distinct ones (multi-label); () when it is neither."""
    if isinstance(label, np.ndarray) and label.ndim == 1:
        label = label.tolist()
    items = list(label) if isinstance(label, (list, tuple)) else [label]
    if not items or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) and i >= 0 for i in items):
        return ()
    return tuple(int(i) for i in items) if len(set(items)) == len(items) else ()


def check_annotation(ann: Any, where: str) -> None:
    """PoseDataError unless ``ann`` has every field with a consistent type and shape."""
    if not isinstance(ann, dict):
        raise PoseDataError(f"{where}: expected a dict, got {type(ann).__name__}")
    absent = [f for f in REQUIRED_FIELDS if f not in ann]
    if absent:
        raise PoseDataError(f"{where}: missing field(s) {', '.join(absent)}")
    where = f"{where} ({ann['frame_dir']})"
    if not isinstance(ann["frame_dir"], str):
        raise PoseDataError(f"{where}: frame_dir must be a string")
    if not label_tuple(ann["label"]):
        raise PoseDataError(f"{where}: label must be an integer >= 0 or a non-empty list of distinct "
                            f"ones (multi-label), got {ann['label']!r}")
    shape = ann["img_shape"]
    if not (isinstance(shape, (tuple, list)) and len(shape) == 2
            and all(int(s) > 0 for s in shape)):
        raise PoseDataError(f"{where}: img_shape must be (height, width), got {shape!r}")
    kp, score = ann["keypoint"], ann["keypoint_score"]
    if not isinstance(kp, np.ndarray) or kp.ndim != 4 or kp.shape[-1] != 2 or 0 in kp.shape:
        raise PoseDataError(f"{where}: keypoint must be an array (persons, frames, joints, 2), "
                            f"got {getattr(kp, 'shape', type(kp).__name__)}")
    if not isinstance(score, np.ndarray) or score.shape != kp.shape[:3]:
        raise PoseDataError(f"{where}: keypoint_score must be an array of shape "
                            f"{kp.shape[:3]}, got {getattr(score, 'shape', type(score).__name__)}")
    if ann.get("total_frames", kp.shape[1]) != kp.shape[1]:
        raise PoseDataError(f"{where}: total_frames {ann['total_frames']} but keypoint has "
                            f"{kp.shape[1]} frames")


def sample_pose_indices(
    total: int, clip_len: int = 48, train: bool = True, rng: Optional[np.random.RandomState] = None
) -> np.ndarray:
    """``clip_len`` frame indices of a ``total``-frame sequence, uniformly spread (PoseC3D).

    Shorter than the clip: consecutive frames from a start (random in training, 0 at test),
    looping. Up to twice the clip: ``total - clip_len`` of the ``clip_len + 1`` gaps between
    consecutive frames are skipped at random. Longer: one random frame in each of ``clip_len``
    equal segments. Test mode draws from a RandomState seeded with 255 (the same clips every
    time, as published); training from ``rng`` (default: NumPy's global generator).
    """
    if total < 1:
        raise ValueError(f"cannot sample from {total} frames")
    if not train:
        rng = np.random.RandomState(TEST_SEED)
    elif rng is None:
        rng = np.random.mtrand._rand
    if total < clip_len:
        start = rng.randint(0, total) if train else 0
        inds = np.arange(start, start + clip_len)
    elif total < 2 * clip_len:
        skipped = np.zeros(clip_len + 1, dtype=np.int64)
        skipped[rng.choice(clip_len + 1, total - clip_len, replace=False)] = 1
        inds = np.arange(clip_len) + np.cumsum(skipped)[:-1]
    else:
        bounds = np.array([i * total // clip_len for i in range(clip_len + 1)])
        inds = bounds[:-1] + rng.randint(np.diff(bounds))
    return np.mod(inds, total)


def rgb_indices(pose_indices: np.ndarray, num_rgb: int) -> np.ndarray:
    """The RGB frames: the pose frames at positions 0, k, 2k, ... (k = pose / RGB frames)."""
    step = len(pose_indices) // num_rgb
    if step < 1 or step * num_rgb != len(pose_indices):
        raise ValueError(
            f"{len(pose_indices)} pose frames are not a multiple of {num_rgb} RGB frames")
    return pose_indices[::step]


def person_box(
    keypoints: np.ndarray, img_shape: Sequence[int], padding: float = BOX_PADDING,
    hw_ratio: float = BOX_HW_RATIO, min_size: float = BOX_MIN_SIZE,
) -> Box:
    """One box (x0, y0, x1, y1) around every non-zero joint coordinate of ``keypoints`` (..., 2).

    The tight box grows by ``padding`` about its centre, its half-height becomes at least
    ``hw_ratio`` x its half-width and vice versa (square for 1), and it is clipped to the image
    and truncated to integers. A tight box under ``min_size`` pixels either way, no joint, or
    joints all outside the image give the whole image.
    """
    h, w = int(img_shape[0]), int(img_shape[1])
    xs, ys = keypoints[..., 0], keypoints[..., 1]
    xs, ys = xs[xs != 0], ys[ys != 0]
    if not xs.size or not ys.size:
        return 0, 0, w, h
    x_min, x_max, y_min, y_max = xs.min(), xs.max(), ys.min(), ys.max()
    if x_max - x_min < min_size or y_max - y_min < min_size:
        return 0, 0, w, h
    cx, cy = (x_max + x_min) / 2, (y_max + y_min) / 2
    half_w = (x_max - x_min) / 2 * (1 + padding)
    half_h = (y_max - y_min) / 2 * (1 + padding)
    half_h = max(hw_ratio * half_w, half_h)
    half_w = max(half_h / hw_ratio, half_w)
    box = (int(max(0, cx - half_w)), int(max(0, cy - half_h)),
           int(min(w, cx + half_w)), int(min(h, cy + half_h)))
    return box if box[2] > box[0] and box[3] > box[1] else (0, 0, w, h)


def crop_keypoints(keypoints: np.ndarray, box: Box) -> np.ndarray:
    """``keypoints`` (..., 2) relative to the box origin; missing (zero) coordinates stay 0."""
    out = np.array(keypoints, dtype=np.float32, copy=True)
    for axis, origin in ((0, box[0]), (1, box[1])):
        coord = out[..., axis]
        coord[coord != 0] -= origin
    return out


def crop_frames(frames: Union[np.ndarray, torch.Tensor], box: Box):
    """Frames (T, H, W, C) cut to the box."""
    x0, y0, x1, y1 = box
    return frames[:, y0:y1, x0:x1]


def scale_keypoints(keypoints: np.ndarray, img_shape: Sequence[int], out_size: int) -> np.ndarray:
    """Keypoints of an ``img_shape`` (H, W) image mapped onto ``out_size`` x ``out_size``
    (anisotropic when the image is not square)."""
    factor = np.array([out_size / img_shape[1], out_size / img_shape[0]], dtype=np.float32)
    return keypoints.astype(np.float32) * factor


def flip_pose(
    keypoints: np.ndarray, scores: np.ndarray, width: float,
    pairs: Sequence[Tuple[int, int]] = COCO_FLIP_PAIRS,
) -> Tuple[np.ndarray, np.ndarray]:
    """Mirror keypoints (M, T, V, 2) of a ``width``-wide image (x -> width - x for non-zero x)
    and swap the left/right joints of ``pairs`` in keypoints and scores (M, T, V)."""
    order = np.arange(keypoints.shape[2])
    for left, right in pairs:
        order[left], order[right] = right, left
    kp = np.array(keypoints[:, :, order], dtype=np.float32, copy=True)
    xs = kp[..., 0]
    xs[xs != 0] = width - xs[xs != 0]
    return kp, np.array(scores[:, :, order], copy=True)


def render_heatmap_volume(
    keypoints: np.ndarray, scores: np.ndarray, img_shape: Sequence[int], out_size: int = 56,
    sigma: float = 0.6, frame_indices: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Joint heatmaps (V, T, out_size, out_size), float32, values in [0, 1].

    ``keypoints`` (M, T, V, 2) are pixels of an ``img_shape`` (H, W) image; they are scaled to
    ``out_size`` x ``out_size`` (``frame_indices`` picks frames first). Pixel (x, y) of joint v
    in frame t holds the max over persons m of ``s * exp(-((x - mx)^2 + (y - my)^2) / (2
    sigma^2))`` (s the joint's score, (mx, my) its position), for integer pixels within
    ``[int(m - 3 sigma), int(m + 3 sigma)]`` of the joint (int truncates towards 0) and 0
    elsewhere; joints scored below 1e-4 draw nothing.
    """
    if frame_indices is not None:
        keypoints, scores = keypoints[:, frame_indices], scores[:, frame_indices]
    kp = scale_keypoints(keypoints, img_shape, out_size)
    scores = scores.astype(np.float32)
    num_frames, num_joints = scores.shape[1:]
    # Every joint's window (at most floor(6 sigma) + 2 pixels a side), all at once.
    side = int(math.floor(6 * sigma)) + 2
    xs, in_x = _window(kp[..., 0], sigma, side, out_size)  # (M, T, V, side)
    ys, in_y = _window(kp[..., 1], sigma, side, out_size)
    dx2 = (xs - kp[..., 0, None]) ** 2
    dy2 = (ys - kp[..., 1, None]) ** 2
    gauss = np.exp(-(dx2[..., None, :] + dy2[..., :, None]) / 2 / sigma ** 2)
    gauss *= scores[..., None, None]
    drawn = in_y[..., :, None] & in_x[..., None, :] & (scores >= MIN_SCORE)[..., None, None]
    t = np.arange(num_frames)[:, None, None, None]
    v = np.arange(num_joints)[:, None, None]
    flat = ((v * num_frames + t) * out_size + ys[..., :, None].astype(np.int64)) * out_size
    flat = flat + xs[..., None, :].astype(np.int64)  # (M, T, V, side, side) into (V, T, S, S)
    volume = np.zeros((num_joints, num_frames, out_size, out_size), dtype=np.float32)
    np.maximum.at(volume.reshape(-1), flat[drawn], gauss[drawn])
    return volume


def _window(mu: np.ndarray, sigma: float, side: int, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (..., side) from max(int(mu - 3 sigma), 0), and which of them lie in
    ``[int(mu - 3 sigma), int(mu + 3 sigma)]`` and inside the map."""
    start = np.maximum(np.trunc(mu - 3 * sigma), 0)
    coords = (start[..., None] + np.arange(side)).astype(np.float32)
    inside = (coords <= np.trunc(mu + 3 * sigma)[..., None]) & (coords < size)
    return coords, inside


def prepare_pose_clip(
    ann: Dict[str, Any], num_pose_frames: int = 48, num_rgb_frames: int = 16,
    out_size: int = 56, sigma: float = 0.6, train: bool = False,
    rng: Optional[np.random.RandomState] = None, flip_prob: float = 0.5,
) -> PoseClip:
    """EPAM-Net's pose pipeline for one annotation: sample the frames, box the persons over
    them, crop and scale the keypoints to ``out_size`` (anisotropically if the clipped box is
    not square), flip with probability ``flip_prob`` in training, draw the heatmaps."""
    rng = rng if rng is not None else np.random.mtrand._rand
    pose_idx = sample_pose_indices(ann["keypoint"].shape[1], num_pose_frames, train, rng)
    kp = ann["keypoint"][:, pose_idx].astype(np.float32)
    scores = ann["keypoint_score"][:, pose_idx].astype(np.float32)
    box = person_box(kp, ann["img_shape"])
    kp = scale_keypoints(crop_keypoints(kp, box), (box[3] - box[1], box[2] - box[0]), out_size)
    flipped = bool(train and rng.rand() < flip_prob)
    if flipped:
        kp, scores = flip_pose(kp, scores, out_size)
    heatmaps = render_heatmap_volume(kp, scores, (out_size, out_size), out_size, sigma)
    return PoseClip(heatmaps, pose_idx, rgb_indices(pose_idx, num_rgb_frames), box, flipped)


def clip_frames(
    frames: torch.Tensor, clip: PoseClip, size: int, img_shape: Optional[Sequence[int]] = None
) -> torch.Tensor:
    """RGB frames (T, H, W, C) uint8 at the clip's RGB indices -> float (C, T, size, size).

    With ``img_shape`` (the annotation's image size; the frames may be smaller or larger) the
    frames are first cut to the clip's person box, scaled to their size; without it they are
    used whole (videos pre-cropped to the person, as published). Then they are resized
    bilinearly and mirrored when the clip is.
    """
    if img_shape is not None:
        sy, sx = frames.shape[1] / img_shape[0], frames.shape[2] / img_shape[1]
        x0, y0, x1, y1 = clip.box
        box = (int(x0 * sx), int(y0 * sy), max(int(x1 * sx), int(x0 * sx) + 1),
               max(int(y1 * sy), int(y0 * sy) + 1))
        frames = crop_frames(frames, box)
    x = frames.permute(3, 0, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.flip(-1) if clip.flipped else x
