"""Temporal samplers by name (DATA.TEMPORAL_SAMPLER): the times at which an item's frames are taken.

A sampler turns a video's duration (seconds; a frame folder of n frames lasts
n / DATA.FRAMES_FPS) into sample times; the reader then takes, for every time, the frame that
covers it (``m3a.datasets.decoder``), so frame i of a folder is taken for times in
``[i / fps, (i + 1) / fps)``.

- ``dense``: one clip of NUM_FRAMES times SAMPLING_RATE / TARGET_FPS seconds apart. Train and
  val: the clip starts uniformly at random in ``[0, duration - span]``; test:
  TEST.NUM_ENSEMBLE_VIEWS clips evenly spaced from the start to the end (one clip: centred).
  A video shorter than one clip gets times past its end (the last frame repeats).
- ``tsn``: the video is cut into NUM_FRAMES equal segments (TSN). Train: one uniformly random
  time in every segment; val: every segment's centre; test: TEST.NUM_ENSEMBLE_VIEWS offsets
  evenly spread inside every segment, at fractions (v + 0.5) / V of its length for view v (one
  view: the centres). For a folder of n frames segment i covers frames
  ``[i * n / T, (i + 1) * n / T)``, and view v takes frame ``floor((i + (v + 0.5) / V) * n / T)``.
- ``tsn_tsm``: TSN segments by the integer rules of TSM's and ACTION-Net's released code, on
  the frame indices of n frames (n = duration x DATA.FRAMES_FPS for frame folders, x
  DATA.TARGET_FPS for videos, rounded). Train: ``a = n // T``, frame ``i * a + randint(a)`` of
  segment i (the last ``n - a * T`` frames are never taken); with fewer frames than segments
  (a = 0) frame 0, T times. Val: ``int(n / T / 2 + i * n / T)`` when n > T, else frame 0, T
  times. Test: TEST.NUM_ENSEMBLE_VIEWS clips, each drawn as in training (ACTION-Net's test
  protocol), from a generator the dataset seeds with (RNG_SEED, item index), so a test run is
  reproducible.
- ``tsn_rounded``: TSN segments by the rounded-integer rule of M2CLIP's (and EVL's) released
  code, on n frames counted as for ``tsn_tsm``. With ``s = (n - 1) / T``, segment i spans frames
  ``round(i * s)`` to ``round((i + 1) * s)``, both included (Python's round: halves to even), so
  neighbouring segments share their boundary frame and a video shorter than T repeats frames.
  Train: a uniformly random frame of every segment (from the item's generator); val and test:
  ``(start + end) // 2`` of every segment, one clip (TEST.NUM_ENSEMBLE_VIEWS must be 1, as the
  release allows no other).
"""
import abc
from typing import List, Optional, Tuple

import numpy as np
import torch
from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry

from m3a.config import ConfigError
from m3a.config.validate import check_sampler_test_clips

TEMPORAL_SAMPLER_REGISTRY = Registry("TEMPORAL_SAMPLER")
TEMPORAL_SAMPLER_REGISTRY.__doc__ = """Temporal samplers by name. Each entry is called as
``fn(cfg)`` and returns a ``TemporalSampler``: ``train_times(duration, generator)`` and
``val_times(duration, generator)`` give the NUM_FRAMES sample times (seconds) of one clip,
``test_times(duration)`` a list of the TEST.NUM_ENSEMBLE_VIEWS clips' times."""


def clip_span(num_frames: int, sampling_rate: int, target_fps: float) -> float:
    """Return the duration in seconds that one clip covers."""
    return num_frames * sampling_rate / target_fps


def clip_times(start: float, num_frames: int, sampling_rate: int, target_fps: float) -> np.ndarray:
    """Return the ``num_frames`` sample times (seconds) of a clip starting at ``start``."""
    return start + np.arange(num_frames, dtype=np.float64) * (sampling_rate / target_fps)


def random_clip_start(duration: float, span: float, generator: Optional[torch.Generator] = None) -> float:
    """Return a uniformly random clip start in ``[0, max(duration - span, 0)]``."""
    room = max(duration - span, 0.0)
    return room * float(torch.rand((), generator=generator))


def uniform_clip_starts(duration: float, span: float, num_clips: int) -> List[float]:
    """Return ``num_clips`` evenly spaced starts from the video start to the last full clip.

    One clip is centred; with several, the first starts at 0 and the last ends at the video end
    (all start at 0 when the video is shorter than one clip).
    """
    room = max(duration - span, 0.0)
    if num_clips == 1:
        return [room / 2.0]
    return [room * i / (num_clips - 1) for i in range(num_clips)]


class TemporalSampler(abc.ABC):
    """Sample times (seconds from the video start) of the frames of one item."""

    @abc.abstractmethod
    def train_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """Times of one training clip (random; torch's global generator unless ``generator``)."""

    @abc.abstractmethod
    def val_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """Times of the one validation clip."""

    @abc.abstractmethod
    def test_times(self, duration: float, generator: Optional[torch.Generator] = None) -> List[np.ndarray]:
        """Times of every test clip, one array per clip (view); samplers with random test clips
        draw them from ``generator``."""


class DenseSampler(TemporalSampler):
    """A clip of ``num_frames`` frames every ``sampling_rate`` at ``target_fps``; ``num_views``
    evenly spaced clips at test."""

    def __init__(self, num_frames: int, sampling_rate: int, target_fps: float, num_views: int):
        self.num_frames, self.sampling_rate, self.target_fps = num_frames, sampling_rate, target_fps
        self.num_views = num_views
        self.span = clip_span(num_frames, sampling_rate, target_fps)

    def _clip(self, start: float) -> np.ndarray:
        return clip_times(start, self.num_frames, self.sampling_rate, self.target_fps)

    def train_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """A clip starting uniformly at random in ``[0, duration - span]``."""
        return self._clip(random_clip_start(duration, self.span, generator))

    def val_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """A random clip, as in training."""
        return self.train_times(duration, generator)

    def test_times(self, duration: float, generator: Optional[torch.Generator] = None) -> List[np.ndarray]:
        """``num_views`` clips evenly spaced from the start to the end."""
        return [self._clip(s) for s in uniform_clip_starts(duration, self.span, self.num_views)]


class TsnSampler(TemporalSampler):
    """One frame from each of ``num_segments`` equal segments of the whole video (TSN)."""

    def __init__(self, num_segments: int, num_views: int):
        self.num_segments, self.num_views = num_segments, num_views

    def _times(self, duration: float, offsets: np.ndarray) -> np.ndarray:
        """Times at ``offsets`` (fractions in [0, 1), one per segment) inside every segment."""
        return (np.arange(self.num_segments, dtype=np.float64) + offsets) * (duration / self.num_segments)

    def train_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """A uniformly random time inside every segment."""
        offsets = torch.rand(self.num_segments, generator=generator, dtype=torch.float64).numpy()
        return self._times(duration, offsets)

    def val_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """The centre of every segment."""
        return self._times(duration, np.full(self.num_segments, 0.5))

    def test_times(self, duration: float, generator: Optional[torch.Generator] = None) -> List[np.ndarray]:
        """For view v of V, the time at fraction (v + 0.5) / V of every segment."""
        return [self._times(duration, np.full(self.num_segments, (v + 0.5) / self.num_views))
                for v in range(self.num_views)]


class FrameIndexSampler(TemporalSampler):
    """A sampler whose rules pick frame indices among the n frames of an item, counted at ``fps``
    (n = duration x fps, rounded); the times it returns are those frames' centres."""

    def __init__(self, num_segments: int, num_views: int, fps: float):
        self.num_segments, self.num_views, self.fps = num_segments, num_views, fps

    def frame_count(self, duration: float) -> int:
        """The number of frames n the rules see (at least 1)."""
        return max(1, int(round(duration * self.fps)))

    def _times(self, indices: np.ndarray) -> np.ndarray:
        """The times whose covering frames are ``indices`` (frame centres)."""
        return (np.asarray(indices, dtype=np.float64) + 0.5) / self.fps


class TsmSampler(FrameIndexSampler):
    """TSN segments by the integer rules of TSM's / ACTION-Net's released code (module docstring)."""

    def train_indices(self, count: int, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """``i * a + randint(a)`` with ``a = count // T``; all 0 when a = 0."""
        length = count // self.num_segments
        if length == 0:
            return np.zeros(self.num_segments, dtype=np.int64)
        offsets = torch.randint(length, (self.num_segments,), generator=generator).numpy()
        return np.arange(self.num_segments, dtype=np.int64) * length + offsets

    def val_indices(self, count: int) -> np.ndarray:
        """``int(tick / 2 + tick * i)`` with ``tick = count / T`` when count > T; else all 0."""
        if count <= self.num_segments:
            return np.zeros(self.num_segments, dtype=np.int64)
        tick = count / float(self.num_segments)
        return np.array([int(tick / 2.0 + tick * i) for i in range(self.num_segments)], dtype=np.int64)

    def train_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """One random frame per segment of ``n // T`` frames."""
        return self._times(self.train_indices(self.frame_count(duration), generator))

    def val_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """The centre frame of every segment."""
        return self._times(self.val_indices(self.frame_count(duration)))

    def test_times(self, duration: float, generator: Optional[torch.Generator] = None) -> List[np.ndarray]:
        """``num_views`` clips, each drawn as a training clip from ``generator``."""
        return [self.train_times(duration, generator) for _ in range(self.num_views)]


class RoundedTsnSampler(FrameIndexSampler):
    """TSN segments by the rounded-integer rule of M2CLIP's released code (module docstring)."""

    def segment_bounds(self, count: int) -> Tuple[np.ndarray, np.ndarray]:
        """First and last frame (both included) of every segment of ``count`` frames."""
        size = (count - 1) / self.num_segments
        starts = [round(size * i) for i in range(self.num_segments)]
        ends = [round(size * (i + 1)) for i in range(self.num_segments)]
        return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)

    def train_indices(self, count: int, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """A uniformly random frame of every segment, its end included."""
        starts, ends = self.segment_bounds(count)
        draws = torch.rand(self.num_segments, generator=generator, dtype=torch.float64).numpy()
        offsets = np.minimum(np.floor(draws * (ends - starts + 1)).astype(np.int64), ends - starts)
        return starts + offsets

    def val_indices(self, count: int) -> np.ndarray:
        """``(start + end) // 2`` of every segment."""
        starts, ends = self.segment_bounds(count)
        return (starts + ends) // 2

    def train_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """A random frame of every segment."""
        return self._times(self.train_indices(self.frame_count(duration), generator))

    def val_times(self, duration: float, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """The middle frame of every segment."""
        return self._times(self.val_indices(self.frame_count(duration)))

    def test_times(self, duration: float, generator: Optional[torch.Generator] = None) -> List[np.ndarray]:
        """One clip: the middle frames, as in validation."""
        return [self.val_times(duration)]


def _frames_fps(cfg: CfgNode) -> float:
    """The rate frames are counted at: DATA.FRAMES_FPS for frame folders, else DATA.TARGET_FPS."""
    data = cfg.DATA
    return data.FRAMES_FPS if data.INPUT_FORMAT == "frames" else data.TARGET_FPS


@TEMPORAL_SAMPLER_REGISTRY.register()
def dense(cfg: CfgNode) -> DenseSampler:
    """DATA.NUM_FRAMES every DATA.SAMPLING_RATE at DATA.TARGET_FPS; TEST.NUM_ENSEMBLE_VIEWS clips."""
    data = cfg.DATA
    return DenseSampler(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS, cfg.TEST.NUM_ENSEMBLE_VIEWS)


@TEMPORAL_SAMPLER_REGISTRY.register()
def tsn(cfg: CfgNode) -> TsnSampler:
    """DATA.NUM_FRAMES segments; TEST.NUM_ENSEMBLE_VIEWS offsets per segment at test."""
    return TsnSampler(cfg.DATA.NUM_FRAMES, cfg.TEST.NUM_ENSEMBLE_VIEWS)


@TEMPORAL_SAMPLER_REGISTRY.register()
def tsn_tsm(cfg: CfgNode) -> TsmSampler:
    """DATA.NUM_FRAMES segments over the frames at DATA.FRAMES_FPS (frame folders) or
    DATA.TARGET_FPS (videos); TEST.NUM_ENSEMBLE_VIEWS random clips at test."""
    return TsmSampler(cfg.DATA.NUM_FRAMES, cfg.TEST.NUM_ENSEMBLE_VIEWS, _frames_fps(cfg))


@TEMPORAL_SAMPLER_REGISTRY.register()
def tsn_rounded(cfg: CfgNode) -> RoundedTsnSampler:
    """DATA.NUM_FRAMES segments over the frames at DATA.FRAMES_FPS (frame folders) or
    DATA.TARGET_FPS (videos); one test clip (ConfigError for TEST.NUM_ENSEMBLE_VIEWS != 1, as
    load_config gives: m3a.config.validate.check_sampler_test_clips)."""
    check_sampler_test_clips(cfg)
    return RoundedTsnSampler(cfg.DATA.NUM_FRAMES, cfg.TEST.NUM_ENSEMBLE_VIEWS, _frames_fps(cfg))


def build_temporal_sampler(cfg: CfgNode) -> TemporalSampler:
    """The sampler DATA.TEMPORAL_SAMPLER names; ConfigError listing the valid names otherwise."""
    name = cfg.DATA.TEMPORAL_SAMPLER
    if name not in TEMPORAL_SAMPLER_REGISTRY:
        valid = ", ".join(sorted(n for n, _ in TEMPORAL_SAMPLER_REGISTRY))
        raise ConfigError(f"DATA.TEMPORAL_SAMPLER must be one of {valid}, got '{name}'")
    return TEMPORAL_SAMPLER_REGISTRY.get(name)(cfg)
