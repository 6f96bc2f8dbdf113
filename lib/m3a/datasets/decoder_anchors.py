"""Other video decoders (torchcodec, decord) sampling the same clips as ours, for side-by-side
benchmarks; optional (``pip install -e .[bench]``): each is skipped when it cannot be imported.

An anchor decodes the frames played at the sample times of our clips (the last frame starting
at or before each time, clamped to the first and last frame) with one decoding thread and
hands them, as uint8 (K, H, W, 3), to the same transforms that our loader uses, so a ratio
to ours measures the decoding alone.
"""
import importlib
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from fvcore.common.config import CfgNode

from m3a.datasets import decoder, temporal_sampler, transform

# Frames are found at (sample time + this) so that float rounding of a time on a frame start
# picks that frame, as our reader does.
_TIME_EPS = 1e-6


def _frame_rows(starts: np.ndarray, times: Sequence[float]) -> np.ndarray:
    """Row of the frame played at each time, given sorted frame start times."""
    rows = np.searchsorted(starts, np.asarray(times, dtype=np.float64) + _TIME_EPS, side="right") - 1
    return np.clip(rows, 0, len(starts) - 1)


class TorchcodecReader:
    """torchcodec's VideoDecoder (one FFmpeg thread, approximate seeking: no index scan)."""

    name = "torchcodec"

    def __init__(self, path: str):
        from torchcodec.decoders import VideoDecoder

        self._decoder = VideoDecoder(path, seek_mode="approximate", num_ffmpeg_threads=1, dimension_order="NHWC")
        meta = self._decoder.metadata
        self.duration = float(meta.duration_seconds)
        self._first = float(meta.begin_stream_seconds)
        self._last = float(meta.end_stream_seconds) - 0.5 / float(meta.average_fps)

    def frames_at(self, times: Sequence[float]) -> torch.Tensor:
        """uint8 (K, H, W, 3): the frame played at each time."""
        clamped = np.clip(np.asarray(times, dtype=np.float64) + _TIME_EPS, self._first, self._last)
        return self._decoder.get_frames_played_at(clamped.tolist()).data


class DecordReader:
    """decord's VideoReader (one thread), frames picked from its frame start times."""

    name = "decord"

    def __init__(self, path: str):
        import decord

        self._reader = decord.VideoReader(path, num_threads=1)
        self._starts = self._reader.get_frame_timestamp(range(len(self._reader)))[:, 0].astype(np.float64)
        self.duration = float(self._reader.get_frame_timestamp(len(self._reader) - 1)[1])

    def frames_at(self, times: Sequence[float]) -> torch.Tensor:
        """uint8 (K, H, W, 3): the frame played at each time."""
        rows = _frame_rows(self._starts, times)
        return torch.from_numpy(self._reader.get_batch(rows.tolist()).asnumpy())


ANCHORS = {"torchcodec": ("torchcodec.decoders", TorchcodecReader), "decord": ("decord", DecordReader)}


def available_anchors() -> Tuple[Dict[str, type], Dict[str, str]]:
    """Return ({name: reader class} of the anchors that load, {name: why not} of the others)."""
    found, missing = {}, {}
    for name, (module, reader) in ANCHORS.items():
        try:
            importlib.import_module(module)
        except ImportError as err:
            missing[name] = f"not installed ({err}); `pip install -e .[bench]` installs it"
        except (OSError, RuntimeError) as err:  # installed, but its native libraries do not load
            first_line = (str(err).strip().splitlines() or [""])[0].rstrip(":")
            missing[name] = (
                f"installed but does not load ({type(err).__name__}: {first_line}); it needs a build for this "
                "torch and its native libraries (for torchcodec: FFmpeg's shared libraries) on the library path"
            )
        else:
            found[name] = reader
    return found, missing


def _test_times(cfg: CfgNode, duration: float) -> List[np.ndarray]:
    data = cfg.DATA
    span = temporal_sampler.clip_span(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
    starts = temporal_sampler.uniform_clip_starts(duration, span, cfg.TEST.NUM_ENSEMBLE_VIEWS)
    return [temporal_sampler.clip_times(s, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS) for s in starts]


def anchor_train_clip(reader_class: type, cfg: CfgNode) -> Callable[[str], torch.Tensor]:
    """A function path -> training clip (as ClipLoader.train_clip) that decodes with ``reader_class``."""
    data = cfg.DATA
    span = temporal_sampler.clip_span(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)

    def train_clip(path: str) -> torch.Tensor:
        reader = reader_class(path)
        start = temporal_sampler.random_clip_start(reader.duration, span)
        frames = reader.frames_at(temporal_sampler.clip_times(start, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS))
        return transform.random_scale_crop_clip(
            frames, data.TRAIN_JITTER_SCALES, data.TRAIN_CROP_SIZE, data.RANDOM_FLIP, data.MEAN, data.STD
        )

    return train_clip


def anchor_test_views(reader_class: type, cfg: CfgNode) -> Callable[[str], torch.Tensor]:
    """A function path -> test views (as ClipLoader.test_views) that decodes with ``reader_class``:
    the frames of all clips in one call, then the same scaling and cropping as ours."""
    data, test = cfg.DATA, cfg.TEST

    def test_views(path: str) -> torch.Tensor:
        reader = reader_class(path)
        times = _test_times(cfg, reader.duration)
        frames = reader.frames_at(np.concatenate(times))
        prepared = transform.prepare_test_frames(frames, data.TEST_CROP_SIZE, data.MEAN, data.STD)
        rows = torch.arange(len(frames)).view(len(times), data.NUM_FRAMES)
        return transform.cut_views(prepared, rows, data.TEST_CROP_SIZE, test.NUM_SPATIAL_CROPS)

    return test_views


def same_frames_as_ours(reader_class: type, cfg: CfgNode, path: str) -> bool:
    """Whether ``reader_class`` decodes the same frames as our reader at the test clip times of ``path``."""
    with decoder.VideoReader(path) as ours:
        times = np.concatenate(_test_times(cfg, ours.duration))
        mine = ours.decode_at(times).gather()
    theirs = reader_class(path).frames_at(times)
    return tuple(theirs.shape) == tuple(mine.shape) and bool(torch.equal(theirs, mine))
