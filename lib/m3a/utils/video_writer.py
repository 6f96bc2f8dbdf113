"""Writing H.264 video with an optional AAC track through PyAV: stream set-up and encoding."""
from fractions import Fraction
from typing import Dict, Iterable, Optional, Sequence, Union

import av
import numpy as np

from m3a.utils.file_io import atomic_path

FrameRate = Union[int, Fraction]


def add_h264_stream(container, rate: FrameRate, width: int, height: int, pix_fmt: str = "yuv420p",
                    options: Optional[Dict[str, str]] = None):
    """Add a libx264 stream of ``rate`` frames per second, ``width`` x ``height``, to ``container``."""
    stream = container.add_stream("libx264", rate=rate, options=dict(options or {}))
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    return stream


def add_aac_stream(container, sample_rate: int, layout: str = "mono"):
    """Add an AAC stream at ``sample_rate`` Hz with channel ``layout`` to ``container``."""
    stream = container.add_stream("aac", rate=sample_rate)
    stream.layout = layout
    return stream


def encode_rgb_frames(container, stream, frames: Iterable[np.ndarray], pts: Optional[Sequence[int]] = None,
                      time_base: Optional[Fraction] = None) -> None:
    """Encode RGB uint8 frames (H, W, 3) into ``stream`` and flush it.

    Frame i is presented at ``pts[i]`` (default i) in ``time_base`` (default: the stream's).
    """
    for index, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = pts[index] if pts is not None else index
        if time_base is not None:
            frame.time_base = time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def encode_waveform(container, stream, waveform: np.ndarray) -> None:
    """Encode a mono float waveform in [-1, 1] into the audio ``stream`` and flush it."""
    samples = np.asarray(waveform, dtype=np.float32)
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, samples.size, chunk):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[None, start : start + chunk]), format="fltp", layout="mono")
        frame.sample_rate = stream.codec_context.sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_h264(
    path: str,
    frames: Iterable[np.ndarray],
    fps: FrameRate,
    width: int,
    height: int,
    audio: Optional[np.ndarray] = None,
    sample_rate: int = 16000,
    pix_fmt: str = "yuv420p",
    options: Optional[Dict[str, str]] = None,
    pts: Optional[Sequence[int]] = None,
    time_base: Optional[Fraction] = None,
    container_format: Optional[str] = "mp4",
    container_options: Optional[Dict[str, str]] = None,
) -> str:
    """Write RGB frames as H.264 (+ a mono AAC track of ``audio``) to ``path`` atomically.

    ``options`` are libx264's (crf, preset, g, threads, ...); ``pts`` and ``time_base`` give
    explicit presentation times (see :func:`encode_rgb_frames`); ``container_format`` None infers
    the container from the file name. The audio is encoded after the video.
    """
    with atomic_path(path) as tmp:
        with av.open(tmp, "w", format=container_format, options=container_options or {}) as container:
            video = add_h264_stream(container, fps, width, height, pix_fmt, options)
            if time_base is not None:
                video.codec_context.time_base = time_base
            sound = add_aac_stream(container, sample_rate) if audio is not None else None
            encode_rgb_frames(container, video, frames, pts, time_base)
            if sound is not None:
                encode_waveform(container, sound, audio)
    return path
