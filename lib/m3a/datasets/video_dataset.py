"""Video datasets over list files (M-MiT, Charades-style, Kinetics-style) behind a registry.

Item contract:

- ``train``: ``(frames, label, index, meta)``; frames float32 (3, T, crop, crop), label float32
  multi-hot (N,) or int64 scalar, index the entry actually returned, meta ``{"failed": [paths
  replaced for this sample]}``: the sampler's training clip through the training pipeline of
  ``m3a.datasets.clip_pipeline`` (by default: short side random in DATA.TRAIN_JITTER_SCALES,
  random TRAIN_CROP_SIZE crop, random flip (DATA.RANDOM_FLIP)).
- ``val``: ``(frame, label, index, ok)``: the sampler's validation clip, short side
  DATA.TRAIN_JITTER_SCALES[0] (DATA.TEST_RESIZE), centre TRAIN_CROP_SIZE crop, no flip (same
  input size as training); a failed video gives a zero clip and ``ok = False`` and is never replaced.
- ``test``: ``(views, label, index, ok)``; views float32 (V, 3, T, S, S), V = NUM_ENSEMBLE_VIEWS x
  NUM_SPATIAL_CROPS, clip-major, all cut from one decoding pass; a failed video gives zero views
  and ``ok = False`` and is never replaced. Samplers with random test clips (``tsn_tsm``) draw
  them from a generator seeded with (RNG_SEED, index).

The first element (frames / views) may also be a list of pathway tensors (e.g. [rgb, pose]);
the loader's collate stacks each pathway separately and the engine hands the list to the model.

Lists are read in DATA.LIST_FORMAT (``m3a.datasets.list_formats``; empty: the dataset's own).
Frame times come from DATA.TEMPORAL_SAMPLER (``m3a.datasets.temporal_sampler``); with ``dense``
a training/val clip starts uniformly at random in [0, duration - clip span] and test clips are
evenly spaced from the start to the end. A video shorter than one clip is padded by repeating
its last frame (clamping), not failed.

A training video that fails to decode is logged (logging.warning naming the file) and replaced
by a random other entry, up to DATA.NUM_RETRIES times; the replaced paths travel in
``meta["failed"]`` so the engine can count them per epoch (the dataset keeps no counter, since
it lives in loader worker processes).
"""
import logging
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry

from m3a.datasets import clip_pipeline, decoder
from m3a.datasets.list_formats import read_list
from m3a.datasets.seeding import derived_seed
from m3a.datasets.temporal_sampler import TemporalSampler, build_temporal_sampler
from m3a.datasets.video_list import ListFormatError, VideoEntry

logger = logging.getLogger(__name__)

DATASET_REGISTRY = Registry("DATASET")
DATASET_REGISTRY.__doc__ = "Datasets by name; each entry is called as fn(cfg, split)."

SPLITS = ("train", "val", "test")


def resolve_path(path: str, cfg: CfgNode) -> str:
    """Resolve a list path against DATA.PATH_PREFIX when set, else against DATA.PATH_TO_DATA_DIR."""
    if os.path.isabs(path):
        return path
    return os.path.join(cfg.DATA.PATH_PREFIX or cfg.DATA.PATH_TO_DATA_DIR, path)


class ClipLoader:
    """Turns one video path into a training clip, a validation clip or the test views (cfg.DATA);
    the frame times come from the temporal sampler DATA.TEMPORAL_SAMPLER."""

    def __init__(self, cfg: CfgNode):
        self.cfg = cfg
        build_temporal_sampler(cfg)  # an unknown DATA.TEMPORAL_SAMPLER fails here, not per item

    @property
    def sampler(self) -> TemporalSampler:
        """The sampler of the config as it is now (a few numbers: built on every use)."""
        return build_temporal_sampler(self.cfg)

    def open(self, path: str):
        """Open ``path`` as a video file or a frame folder (DATA.INPUT_FORMAT)."""
        data = self.cfg.DATA
        return decoder.open_video(
            path,
            input_format=data.INPUT_FORMAT,
            multi_thread=self.cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE,
            frames_fps=data.FRAMES_FPS,
        )

    def duration(self, reader, num_frames: Optional[int] = None) -> float:
        """Seconds the sampler spreads its times over: a frame folder whose frame count the list
        gives (``num_frames``) lasts num_frames / DATA.FRAMES_FPS, anything else the reader's
        duration (a folder: its image count / FRAMES_FPS)."""
        data = self.cfg.DATA
        if num_frames is not None and data.INPUT_FORMAT == "frames":
            return num_frames / data.FRAMES_FPS
        return reader.duration

    def _clip_frames(self, path: str, times_of: Callable, num_frames: Optional[int]) -> torch.Tensor:
        with self.open(path) as reader:
            return reader.decode_at(times_of(self.duration(reader, num_frames))).gather()

    def train_clip(self, path: str, num_frames: Optional[int] = None) -> torch.Tensor:
        """A training clip through the training pipeline (clip_pipeline): float (3, T, crop, crop)."""
        return clip_pipeline.train_clip(self._clip_frames(path, self.sampler.train_times, num_frames), self.cfg.DATA)

    def val_clip(self, path: str, num_frames: Optional[int] = None) -> torch.Tensor:
        """A validation clip, short side TRAIN_JITTER_SCALES[0], centre crop: float (3, T, crop, crop)."""
        return clip_pipeline.val_clip(self._clip_frames(path, self.sampler.val_times, num_frames), self.cfg.DATA)

    def test_clip_times(self, duration: float, seed_key: int = 0) -> List:
        """Return the sample times of the NUM_ENSEMBLE_VIEWS test clips; random ones come from a
        generator seeded with (RNG_SEED, ``seed_key``)."""
        generator = torch.Generator().manual_seed(derived_seed(self.cfg.RNG_SEED, seed_key))
        return self.sampler.test_times(duration, generator)

    def test_views(self, path: str, num_frames: Optional[int] = None, seed_key: int = 0) -> torch.Tensor:
        """Decode the frames of all test clips once and cut every view: float (V, 3, T, S, S)."""
        with self.open(path) as reader:
            clips = self.test_clip_times(self.duration(reader, num_frames), seed_key)
            decoded = reader.decode_at([t for clip in clips for t in clip])
        clip_rows = decoded.index.view(len(clips), self.cfg.DATA.NUM_FRAMES)
        return clip_pipeline.test_views(decoded.frames, clip_rows, self.cfg.DATA, self.cfg.TEST)


def label_target(labels: Tuple[int, ...], num_classes: int, multi_label: bool) -> torch.Tensor:
    """A sample's target: multi-hot float32 (num_classes,) when ``multi_label``, else the first
    label as an int64 scalar."""
    if multi_label:
        target = torch.zeros(num_classes, dtype=torch.float32)
        target[list(labels)] = 1.0
        return target
    return torch.tensor(labels[0], dtype=torch.int64)


def check_label_counts(entries: Sequence[VideoEntry], multi_label: bool, name: Callable[[int], str]) -> None:
    """ValueError naming the first entry (``name(i)`` of entry ``i``, e.g. ``list.csv: entry 3
    ('a.mp4')``) without exactly one label when ``multi_label`` (DATA.MULTI_LABEL) is False."""
    if multi_label:
        return
    for i, entry in enumerate(entries):
        if len(entry.labels) != 1:
            raise ValueError(f"{name(i)} has {len(entry.labels)} labels but DATA.MULTI_LABEL is False")


class VideoDataset(torch.utils.data.Dataset):
    """Clips (train/val) or multi-view stacks (test) of the videos of one list file.

    ``list_format`` names the dataset's own list format, read when DATA.LIST_FORMAT is empty.
    """

    def __init__(self, cfg: CfgNode, split: str, list_path: str, list_format: str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
        self.cfg = cfg
        self.split = split
        self.list_path = list_path
        self.num_classes = cfg.MODEL.NUM_CLASSES
        self.multi_label = cfg.DATA.MULTI_LABEL
        self.entries: List[VideoEntry] = read_list(list_path, cfg, list_format)
        if not self.entries:
            raise ValueError(f"{list_path}: the list holds no videos")
        check_label_counts(self.entries, self.multi_label,
                           lambda i: f"{list_path}: entry {i + 1} ('{self.entries[i].path}')")
        self.paths = [resolve_path(e.path, cfg) for e in self.entries]
        self._handle_duplicates()
        self.clips = ClipLoader(cfg)
        logger.info("%s %s: %d videos from %s", type(self).__name__, split, len(self), list_path)

    def _handle_duplicates(self) -> None:
        """Report videos listed more than once. Validation and test score each video once (the
        first line; DATA.ALLOW_DUPLICATE_VIDEOS True keeps every line); lines of one video with
        different labels are a ListFormatError. Training keeps them (they oversample)."""
        first: Dict[str, int] = {}
        repeats: List[int] = []
        for i, path in enumerate(self.paths):
            if path not in first:
                first[path] = i
                continue
            repeats.append(i)
            if self.entries[i].labels != self.entries[first[path]].labels:
                raise ListFormatError(
                    f"{self.list_path}: '{self.entries[i].path}' is listed twice with different "
                    f"labels ({list(self.entries[first[path]].labels)} and {list(self.entries[i].labels)})"
                )
        if not repeats:
            return
        example = self.entries[repeats[0]].path
        if self.split == "train" or self.cfg.DATA.ALLOW_DUPLICATE_VIDEOS:
            logger.warning("%s: %d line(s) repeat a video listed before (e.g. %s); all are used",
                           self.list_path, len(repeats), example)
            return
        logger.warning("%s: %d line(s) repeat a video listed before (e.g. %s); each video is scored "
                       "once (DATA.ALLOW_DUPLICATE_VIDEOS True scores every line)",
                       self.list_path, len(repeats), example)
        keep = sorted(first.values())
        self.entries = [self.entries[i] for i in keep]
        self.paths = [self.paths[i] for i in keep]

    def __len__(self) -> int:
        return len(self.entries)

    def label(self, index: int) -> torch.Tensor:
        """Return the target of entry ``index`` (see :func:`label_target`)."""
        return label_target(self.entries[index].labels, self.num_classes, self.multi_label)

    def _empty_clip(self) -> torch.Tensor:
        size = self.cfg.DATA.TRAIN_CROP_SIZE
        return torch.zeros(3, self.cfg.DATA.NUM_FRAMES, size, size)

    def _empty_views(self) -> torch.Tensor:
        data, test = self.cfg.DATA, self.cfg.TEST
        views = test.NUM_ENSEMBLE_VIEWS * test.NUM_SPATIAL_CROPS
        size = data.TEST_CROP_SIZE
        return torch.zeros(views, 3, data.NUM_FRAMES, size, size)

    def __getitem__(self, index: int) -> Tuple:
        if self.split == "test":
            return self._test_item(index)
        if self.split == "val":
            return self._val_item(index)
        return self._train_item(index)

    def _val_item(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, int, bool]:
        """A validation clip; a video that fails is reported (ok False), never replaced."""
        try:
            clip = self.clips.val_clip(self.paths[index], self.entries[index].num_frames)
            return clip, self.label(index), index, True
        except decoder.DecodeError as err:
            logger.warning("val video failed, scored as missing: %s", err)
            return self._empty_clip(), self.label(index), index, False

    def _test_item(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, int, bool]:
        path = self.paths[index]
        try:
            views = self.clips.test_views(path, self.entries[index].num_frames, seed_key=index)
            return views, self.label(index), index, True
        except decoder.DecodeError as err:
            logger.warning("test video failed, scored as missing: %s", err)
            return self._empty_views(), self.label(index), index, False

    def _train_item(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, int, dict]:
        failed: List[str] = []
        for _ in range(self.cfg.DATA.NUM_RETRIES + 1):
            path = self.paths[index]
            try:
                clip = self.clips.train_clip(path, self.entries[index].num_frames)
                return clip, self.label(index), index, {"failed": failed}
            except decoder.DecodeError as err:
                logger.warning("train video failed, replaced by another: %s", err)
                failed.append(path)
                index = int(torch.randint(len(self), ()))
        raise decoder.DecodeError(
            f"{len(failed)} videos in a row failed to decode (DATA.NUM_RETRIES = "
            f"{self.cfg.DATA.NUM_RETRIES}); last: {failed[-1]}"
        )


def _list_path(cfg: CfgNode, name: str) -> str:
    return os.path.join(cfg.DATA.PATH_TO_DATA_DIR, name)


@DATASET_REGISTRY.register()
def mmit(cfg: CfgNode, split: str) -> VideoDataset:
    """M-MiT: ``{split}-{DATA.MMIT_VERSION}.csv``, by default ``mmit_csv``: ``path,label[,label...]``
    (DATA.PATH_LABEL_SEPARATOR).

    With DATA.MULTI_LABEL False every line must hold exactly one label.
    """
    path = _list_path(cfg, f"{split}-{cfg.DATA.MMIT_VERSION}.csv")
    return VideoDataset(cfg, split, path, "mmit_csv")


@DATASET_REGISTRY.register()
def charades(cfg: CfgNode, split: str) -> VideoDataset:
    """Charades-style multi-label list ``{split}.csv``, by default ``mmit_csv``: ``path,label[,label...]``."""
    if not cfg.DATA.MULTI_LABEL:
        raise ValueError("the charades dataset is multi-label: set DATA.MULTI_LABEL True")
    path = _list_path(cfg, f"{split}.csv")
    return VideoDataset(cfg, split, path, "mmit_csv")


@DATASET_REGISTRY.register()
def kinetics(cfg: CfgNode, split: str) -> VideoDataset:
    """Kinetics-style single-label list ``{split}.csv``, by default ``path_label``: ``path label``
    (whitespace-separated)."""
    path = _list_path(cfg, f"{split}.csv")
    return VideoDataset(cfg, split, path, "path_label")


def build_dataset(name: str, cfg: CfgNode, split: str) -> torch.utils.data.Dataset:
    """Build the registered dataset ``name`` (mmit, charades, kinetics, pose_rgb) for ``split``."""
    return DATASET_REGISTRY.get(name.lower())(cfg, split)


from m3a.datasets import pose_dataset  # noqa: E402,F401 (registers pose_rgb)
