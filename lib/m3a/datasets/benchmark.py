"""Measuring the data path: our selective / decode-once readers against the plain approach.

The plain approach is what a straightforward loader does: decode every frame of the video to
RGB, then pick the clip's frames; at test time it does so again for every view (clips x crops
decodes per video) and resizes whole frames before cropping.
"""
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import av
import numpy as np
import torch
from fvcore.common.config import CfgNode

from m3a.datasets import decoder, transform
from m3a.datasets.temporal_sampler import clip_span, clip_times, random_clip_start, uniform_clip_starts
from m3a.utils.parallel import parallel_imap
from m3a.utils.synthetic_video import write_video


def decode_all(path: str, multi_thread: bool = False) -> Tuple[torch.Tensor, np.ndarray, float]:
    """Decode every frame of ``path``: uint8 (N, H, W, 3), their times (s) and the duration.

    Uses the same codec threading and RGB conversion as our reader, so that comparisons measure
    the decoding strategy alone.
    """
    rgb = decoder.RgbConverter(multi_thread)
    with av.open(path) as container:
        stream = container.streams.video[0]
        decoder.configure_threads(stream, multi_thread)
        start = stream.start_time or 0
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(rgb(frame))
            times.append(float((frame.pts - start) * stream.time_base))
        duration = float(stream.duration * stream.time_base) if stream.duration else container.duration / av.time_base
    return torch.from_numpy(np.stack(frames)), np.asarray(times), duration


def sample_frames(frames: torch.Tensor, frame_times: np.ndarray, sample_times: Sequence[float]) -> torch.Tensor:
    """Pick, for every sample time, the last frame at or before it (clamped to the first/last)."""
    rows = np.searchsorted(frame_times, np.asarray(sample_times) + 1e-6, side="right") - 1
    rows = np.clip(rows, 0, len(frames) - 1)
    return frames[torch.from_numpy(rows)]


def plain_train_clip(path: str, cfg: CfgNode) -> torch.Tensor:
    """Plain training sample: decode the whole video, sample a random clip, resize whole frames
    (short side random in the jitter range), random crop, flip, normalise: float (3, T, crop, crop)."""
    data = cfg.DATA
    frames, times, duration = decode_all(path, cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE)
    span = clip_span(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
    start = random_clip_start(duration, span)
    clip = sample_frames(frames, times, clip_times(start, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS))
    short = int(torch.randint(data.TRAIN_JITTER_SCALES[0], data.TRAIN_JITTER_SCALES[1] + 1, ()))
    _, height, width, _ = clip.shape
    scaled = transform.resize(clip, transform.short_side_size(height, width, max(short, data.TRAIN_CROP_SIZE)))
    size = data.TRAIN_CROP_SIZE
    y = int(torch.randint(0, scaled.shape[-2] - size + 1, ()))
    x = int(torch.randint(0, scaled.shape[-1] - size + 1, ()))
    out = scaled[..., y : y + size, x : x + size]
    if data.RANDOM_FLIP and bool(torch.rand(()) < 0.5):
        out = out.flip(-1)
    return transform.normalize(transform.to_float(out, time_first=False), data.MEAN, data.STD, channel_dim=0)


def plain_test_views(path: str, cfg: CfgNode) -> torch.Tensor:
    """Plain multi-view test: for every (clip, crop) decode the whole video again, sample the
    clip, resize, crop and normalise: float (V, 3, T, S, S) in clip-major order."""
    data, test = cfg.DATA, cfg.TEST
    span = clip_span(data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
    size = data.TEST_CROP_SIZE
    views = []
    for clip_index in range(test.NUM_ENSEMBLE_VIEWS):
        for crop_index in range(test.NUM_SPATIAL_CROPS):
            frames, times, duration = decode_all(path, cfg.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE)
            start = uniform_clip_starts(duration, span, test.NUM_ENSEMBLE_VIEWS)[clip_index]
            sample = clip_times(start, data.NUM_FRAMES, data.SAMPLING_RATE, data.TARGET_FPS)
            scaled = transform.prepare_test_frames(sample_frames(frames, times, sample), size, data.MEAN, data.STD)
            offsets = transform.uniform_crop_offsets(scaled.shape[-2], scaled.shape[-1], size, test.NUM_SPATIAL_CROPS)
            y, x = offsets[crop_index]
            views.append(scaled[..., y : y + size, x : x + size].transpose(0, 1))
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


def _total(rates: Sequence[Rate]) -> Rate:
    return Rate(sum(r.items for r in rates), sum(r.seconds for r in rates))


def compare(
    ours: Callable[[str], object], plain: Callable[[str], object], paths: Sequence[str], rounds: int = 1
) -> Tuple[Rate, Rate]:
    """Measure ``ours`` and ``plain`` on the same paths, alternating rounds so load drift hits both."""
    mine: List[Rate] = []
    theirs: List[Rate] = []
    for _ in range(rounds):
        mine.append(measure(ours, paths))
        theirs.append(measure(plain, paths))
    return _total(mine), _total(theirs)


# Kinds of generated videos (``benchmark.py data --make``, ``make_shaped_data.py``): name ->
# (seconds, short side, aspect ratio, B-frames (None: libx264's default)).
GENERATED = {
    "short": (3.0, 128, 4 / 3, None),
    "mmit": (3.0, 256, 4 / 3, None),
    "long": (10.0, 256, 4 / 3, None),
    "720p": (3.0, 720, 16 / 9, 0),
}


@dataclass(frozen=True)
class _VideoJob:
    """Video ``index`` of :func:`generate_videos` (picklable, for worker processes)."""

    folder: str
    index: int
    num_frames: int
    fps: int
    height: int
    width: int
    bframes: Optional[int]
    skip_existing: bool


def _write_generated(job: _VideoJob) -> str:
    path = os.path.join(job.folder, f"video_{job.index:04d}.mp4")
    if not (job.skip_existing and os.path.isfile(path)):
        write_video(path, job.num_frames, fps=job.fps, height=job.height, width=job.width, audio=True,
                    preset="medium", seed=job.index, bframes=job.bframes)
    return path


def generate_videos(
    folder: str, count: int, seconds: float, short_side: int, fps: int = 30, aspect: float = 4 / 3,
    bframes: Optional[int] = None, skip_existing: bool = False, workers: int = 1,
) -> Iterator[str]:
    """Write ``count`` synthetic H.264 videos (libx264 default GOP and preset, AAC audio) of
    ``seconds`` with a landscape frame whose short side is ``short_side`` and whose width is
    ``aspect`` times that; ``bframes`` 0 writes no B-frames (None: libx264's default). Yield each
    path when written, in order, encoding in up to ``workers`` processes. Video ``i`` depends on
    ``i`` only and is written atomically, so with ``skip_existing`` an interrupted run resumes:
    files already there are yielded, not rewritten."""
    height = short_side - short_side % 2
    width = int(round(short_side * aspect / 2)) * 2
    jobs = [_VideoJob(folder, i, int(round(seconds * fps)), fps, height, width, bframes, skip_existing)
            for i in range(count)]
    yield from parallel_imap(_write_generated, jobs, workers, chunksize=1, disable_progress=True)


def metric_inputs(videos: int, classes: int, seed: int = 0, decimals: Optional[int] = 3) -> Tuple[np.ndarray, np.ndarray]:
    """Model-like float32 scores and multi-hot labels (videos, classes): one to three labels per
    video (M-MiT has 1.0 to 1.4 on average), sigmoid scores that favour the true labels, rounded
    to ``decimals`` (None: not rounded) so that many scores tie."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((videos, classes), dtype=np.float32)
    for extra in range(3):
        chosen = rng.integers(0, classes, videos)
        keep = np.ones(videos, dtype=bool) if extra == 0 else rng.random(videos) < 0.2
        labels[np.flatnonzero(keep), chosen[keep]] = 1.0
    logits = rng.normal(-3.0, 1.5, size=(videos, classes)) + 3.0 * labels
    scores = 1.0 / (1.0 + np.exp(-logits))
    if decimals is not None:
        scores = np.round(scores, decimals)
    return scores.astype(np.float32), labels


def sklearn_map_class(scores: np.ndarray, labels: np.ndarray) -> float:
    """Class-wise mAP by scikit-learn's average_precision_score, one class at a time."""
    from sklearn.metrics import average_precision_score

    aps = [average_precision_score(labels[:, c], scores[:, c]) for c in range(labels.shape[1]) if labels[:, c].any()]
    return float(np.mean(aps))


def sklearn_map_sample(scores: np.ndarray, labels: np.ndarray) -> float:
    """Sample-wise mAP by scikit-learn's average_precision_score, one video at a time."""
    from sklearn.metrics import average_precision_score

    return float(np.mean([average_precision_score(labels[i], scores[i]) for i in range(len(labels)) if labels[i].any()]))


def best_time(fn: Callable[[], object], repeats: int) -> Tuple[float, object]:
    """The shortest of ``repeats`` timed calls of ``fn`` (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
