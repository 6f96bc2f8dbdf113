"""Dataset ``pose_rgb``: RGB clips and joint heatmap volumes of the samples of a PoseC3D
annotation pickle (EPAM-Net's two-stream input); single-label, or multi-label with
DATA.MULTI_LABEL True (an annotation's ``label`` a list of class ids; target multi-hot float32).

Item: ``([rgb, heatmaps], label, index, meta)`` in train, ``([rgb, heatmaps], label, index, ok)``
in val, ``([rgb[None], heatmaps[None]], label, index, ok)`` at test (one view; POSE.STREAMS
chooses and orders the streams), with rgb
float (3, DATA.NUM_FRAMES, S, S) normalised by DATA.MEAN / DATA.STD (of 0-1 values) and heatmaps float (EPAM.NUM_JOINTS, EPAM.POSE_FRAMES,
EPAM.HEATMAP_SIZE, EPAM.HEATMAP_SIZE). See :func:`m3a.datasets.pose.prepare_pose_clip` for the
sampling, person box, flip (training) and heatmaps; val and test clips are deterministic.

The annotation file is POSE.ANN_FILE (splits POSE.TRAIN_SPLIT / VAL_SPLIT / TEST_SPLIT); the
RGB video of a sample is POSE.VIDEO_TEMPLATE with its frame_dir, under DATA.PATH_PREFIX (or
DATA.PATH_TO_DATA_DIR). Pose frame i is taken from the video at time (i + 0.5) x duration /
total_frames. A training video that fails to decode is logged and replaced by a random other
sample (DATA.NUM_RETRIES times at most); a val or test video that fails gives zero inputs and
ok False (never replaced).
"""
import logging
import os
from typing import List, Tuple

import numpy as np
import torch
from fvcore.common.config import CfgNode

from m3a.datasets import decoder
from m3a.datasets.pose import PoseClip, clip_frames, label_tuple, load_annotations, prepare_pose_clip
from m3a.datasets.video_dataset import DATASET_REGISTRY, SPLITS, check_label_counts, label_target
from m3a.datasets.video_list import VideoEntry

logger = logging.getLogger(__name__)


class PoseRGBDataset(torch.utils.data.Dataset):
    """Samples of one split of an annotation pickle, with their RGB videos."""

    def __init__(self, cfg: CfgNode, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
        self.cfg, self.split = cfg, split
        name = {"train": cfg.POSE.TRAIN_SPLIT, "val": cfg.POSE.VAL_SPLIT,
                "test": cfg.POSE.TEST_SPLIT}[split]
        path = os.path.join(cfg.DATA.PATH_TO_DATA_DIR, cfg.POSE.ANN_FILE)
        self.annotations = load_annotations(path, name)
        if not self.annotations:
            raise ValueError(f"{path}: split '{name}' is empty")
        # The RGB video of every sample (the engine names failed videos by these) and the
        # samples as list entries (video, (label,)) of the annotation file.
        self.paths = [self.video_path(i) for i in range(len(self.annotations))]
        self.entries = [VideoEntry(path=p, labels=label_tuple(a["label"]))
                        for p, a in zip(self.paths, self.annotations)]
        self.multi_label, self.num_classes = cfg.DATA.MULTI_LABEL, cfg.MODEL.NUM_CLASSES
        self._check_labels(path)
        self.list_path = path
        streams = list(cfg.POSE.STREAMS)
        if not streams or len(set(streams)) != len(streams) or not set(streams) <= {"rgb", "pose"}:
            raise ValueError(f"POSE.STREAMS must list rgb and/or pose once each, got {streams}")

    def __len__(self) -> int:
        return len(self.annotations)

    def video_path(self, index: int) -> str:
        """The RGB video of sample ``index``."""
        name = self.cfg.POSE.VIDEO_TEMPLATE.format(self.annotations[index]["frame_dir"])
        return os.path.join(self.cfg.DATA.PATH_PREFIX or self.cfg.DATA.PATH_TO_DATA_DIR, name)

    def clip(self, index: int) -> PoseClip:
        """The pose side of sample ``index`` (random in training: drawn from torch's generator,
        so loader seeding makes it reproducible)."""
        cfg, train = self.cfg, self.split == "train"
        rng = np.random.RandomState(int(torch.randint(2 ** 31 - 1, ()))) if train else None
        return prepare_pose_clip(
            self.annotations[index], cfg.EPAM.POSE_FRAMES, cfg.DATA.NUM_FRAMES,
            cfg.EPAM.HEATMAP_SIZE, cfg.POSE.HEATMAP_SIGMA, train, rng, cfg.POSE.FLIP_PROB,
        )

    def rgb(self, index: int, clip: PoseClip) -> torch.Tensor:
        """The clip's RGB frames, cut to the person (unless the videos are), resized, mirrored
        with the keypoints, normalised: float (3, T, S, S)."""
        cfg, ann = self.cfg, self.annotations[index]
        size = cfg.DATA.TEST_CROP_SIZE if self.split == "test" else cfg.DATA.TRAIN_CROP_SIZE
        with decoder.open_video(self.video_path(index), cfg.DATA.INPUT_FORMAT,
                                frames_fps=cfg.DATA.FRAMES_FPS) as reader:
            step = reader.duration / ann["keypoint"].shape[1]
            frames = reader.decode_at((clip.rgb_indices + 0.5) * step).gather()
        img_shape = None if cfg.POSE.VIDEOS_CROPPED else ann["img_shape"]
        x = clip_frames(frames, clip, size, img_shape) / 255.0
        mean = torch.tensor(cfg.DATA.MEAN).view(3, 1, 1, 1)
        std = torch.tensor(cfg.DATA.STD).view(3, 1, 1, 1)
        return (x - mean) / std

    def inputs(self, index: int) -> List[torch.Tensor]:
        """The POSE.STREAMS of sample ``index`` (e.g. [rgb, heatmaps])."""
        clip = self.clip(index)
        make = {"rgb": lambda: self.rgb(index, clip),
                "pose": lambda: torch.from_numpy(clip.heatmaps)}
        return [make[stream]() for stream in self.cfg.POSE.STREAMS]

    def _check_labels(self, path: str) -> None:
        """ValueError naming the sample whose labels do not fit DATA.MULTI_LABEL / NUM_CLASSES."""
        def name(number: int) -> str:
            return f"{path}: annotation {number} ({self.annotations[number]['frame_dir']})"

        check_label_counts(self.entries, self.multi_label, name)
        for number, entry in enumerate(self.entries):
            if max(entry.labels) >= self.num_classes:
                raise ValueError(f"{name(number)} has label {max(entry.labels)}, "
                                 f"not below MODEL.NUM_CLASSES {self.num_classes}")

    def label(self, index: int) -> torch.Tensor:
        """The target of sample ``index`` (see :func:`m3a.datasets.video_dataset.label_target`)."""
        return label_target(self.entries[index].labels, self.num_classes, self.multi_label)

    def __getitem__(self, index: int) -> Tuple:
        if self.split != "train":
            return self._eval_item(index)
        failed: List[str] = []
        for _ in range(self.cfg.DATA.NUM_RETRIES + 1):
            try:
                return self.inputs(index), self.label(index), index, {"failed": failed}
            except decoder.DecodeError as err:
                logger.warning("%s video failed, replaced by another: %s", self.split, err)
                failed.append(self.paths[index])
                index = int(torch.randint(len(self), ()))
        raise decoder.DecodeError(
            f"{len(failed)} videos in a row failed to decode (DATA.NUM_RETRIES = "
            f"{self.cfg.DATA.NUM_RETRIES}); last: {failed[-1]}"
        )

    def _eval_item(self, index: int) -> Tuple:
        """A val item (inputs) or a test item (one view of each input); a video that fails
        gives zeros and ok False, never another video."""
        try:
            inputs, ok = self.inputs(index), True
        except decoder.DecodeError as err:
            logger.warning("%s video failed, scored as missing: %s", self.split, err)
            cfg, hm = self.cfg, self.cfg.EPAM.HEATMAP_SIZE
            size = cfg.DATA.TEST_CROP_SIZE if self.split == "test" else cfg.DATA.TRAIN_CROP_SIZE
            zeros = {"rgb": (3, cfg.DATA.NUM_FRAMES, size, size),
                     "pose": (cfg.EPAM.NUM_JOINTS, cfg.EPAM.POSE_FRAMES, hm, hm)}
            inputs, ok = [torch.zeros(zeros[stream]) for stream in cfg.POSE.STREAMS], False
        if self.split == "test":
            inputs = [x[None] for x in inputs]
        return inputs, self.label(index), index, ok


@DATASET_REGISTRY.register()
def pose_rgb(cfg: CfgNode, split: str) -> PoseRGBDataset:
    """Skeletons (PoseC3D annotation pickle) + RGB videos: items [rgb, heatmaps] (EPAM-Net)."""
    return PoseRGBDataset(cfg, split)
