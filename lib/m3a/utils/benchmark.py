"""Measuring the data path: our selective / decode-once readers against the plain approach.

The plain approach is what a straightforward loader does: decode every frame of the video to
RGB, then pick the clip's frames; at test time it does so again for every view (clips x crops
decodes per video) and resizes whole frames before cropping.
"""
import time
from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

import av
import numpy as np
from av.video.reformatter import VideoReformatter
import torch
from fvcore.common.config import CfgNode

from m3a.datasets import decoder, transform


def decode_all(path: str) -> Tuple[torch.Tensor, np.ndarray, float]:
    """Decode every frame of ``path``: uint8 (N, H, W, 3), their times (s) and the duration.

    Uses the same fast RGB conversion as our reader, so comparisons measure decoding strategy.
    """
    rgb = VideoReformatter()
    with av.open(path) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(rgb.reformat(frame, format="rgb24").to_ndarray())
            times.append(float((frame.pts - start) * stream.time_base))
        duration = float(stream.duration * stream.time_base) if stream.duration else container.duration / av.time_base
    return torch.from_numpy(np.stack(frames)), np.asarray(times), duration


def sample_frames(frames: torch.Tensor, frame_times: np.ndarray, sample_times: Sequence[float]) -> torch.Tensor:
    """Pick, for every sample time, the last frame at or before it (clamped to the first/last)."""
    rows = np.searchsorted(frame_times, np.asarray(sample_times) + 1e-6, side="right") - 1
    rows = np.clip(rows, 0, len(frames) - 1)
    return frames[torch.from_numpy(rows)]


def _resize_short(frames: torch.Tensor, short: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, h, w) with the short side ``short``."""
    _, height, width, _ = frames.shape
    size = transform.short_side_size(height, width, short)
    return transform.resize(frames.permute(0, 3, 1, 2).float(), size)


def plain_train_clip(path: str, cfg: CfgNode) -> torch.Tensor:
    """Plain training sample: decode the whole video, sample a random clip, resize whole frames,
    random crop, flip, normalise; float (3, T, crop, crop)."""
    data = cfg.DATA
    frames, times, duration = decode_all(path)
    span = decoder.clip_span(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
    start = decoder.random_clip_start(duration, span)
    clip = sample_frames(frames, times, decoder.clip_times(start, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS))
    short = int(torch.randint(data.TRAIN_JITTER_SCALES[0], data.TRAIN_JITTER_SCALES[1] + 1, ()))
    scaled = _resize_short(clip, max(short, data.TRAIN_CROP_SIZE))
    size = data.TRAIN_CROP_SIZE
    y = int(torch.randint(0, scaled.shape[-2] - size + 1, ()))
    x = int(torch.randint(0, scaled.shape[-1] - size + 1, ()))
    out = scaled[..., y : y + size, x : x + size]
    if data.RANDOM_FLIP and bool(torch.rand(()) < 0.5):
        out = out.flip(-1)
    return transform.normalize(out.contiguous(), data.MEAN, data.STD).permute(1, 0, 2, 3)


def plain_test_views(path: str, cfg: CfgNode) -> torch.Tensor:
    """Plain multi-view test: for every (clip, crop) decode the whole video again, sample the
    clip, resize, crop and normalise; float (V, 3, T, S, S) in clip-major order."""
    data, test = cfg.DATA, cfg.TEST
    span = decoder.clip_span(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
    size = data.TEST_CROP_SIZE
    views = []
    for clip_index in range(test.NUM_ENSEMBLE_VIEWS):
        for crop_index in range(test.NUM_SPATIAL_CROPS):
            frames, times, duration = decode_all(path)
            start = decoder.uniform_clip_starts(duration, span, test.NUM_ENSEMBLE_VIEWS)[clip_index]
            sample = decoder.clip_times(start, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
            scaled = _resize_short(sample_frames(frames, times, sample), size)
            offsets = transform.uniform_crop_offsets(scaled.shape[-2], scaled.shape[-1], size, test.NUM_SPATIAL_CROPS)
            y, x = offsets[crop_index]
            view = transform.normalize(scaled[..., y : y + size, x : x + size].contiguous(), data.MEAN, data.STD)
            views.append(view.permute(1, 0, 2, 3))
    return torch.stack(views)


@dataclass
class Rate:
    """Items processed per second over a measured run."""

    items: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Items per second."""
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def measure(fn: Callable[[str], object], paths: Sequence[str], rounds: int = 1, warmup: int = 1) -> Rate:
    """Call ``fn`` on every path ``rounds`` times (after ``warmup`` untimed calls) and time it."""
    for path in list(paths)[:warmup]:
        fn(path)
    start = time.perf_counter()
    for _ in range(rounds):
        for path in paths:
            fn(path)
    return Rate(len(paths) * rounds, time.perf_counter() - start)


def compare(ours: Callable[[str], object], plain: Callable[[str], object], paths: Sequence[str], rounds: int = 1) -> Tuple[Rate, Rate]:
    """Measure ``ours`` and ``plain`` on the same paths, interleaving rounds to share drift."""
    mine: List[Rate] = []
    theirs: List[Rate] = []
    for _ in range(rounds):
        mine.append(measure(ours, paths))
        theirs.append(measure(plain, paths))
    total = lambda rates: Rate(sum(r.items for r in rates), sum(r.seconds for r in rates))  # noqa: E731
    return total(mine), total(theirs)
