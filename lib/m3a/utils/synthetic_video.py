"""Writing real H.264 mp4 files with distinct per-frame content (tests, benchmarks, demos)."""
from fractions import Fraction
from typing import Optional, Sequence

import av
import numpy as np

from m3a.utils.file_io import atomic_path


def synthetic_frame(index: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Return an RGB uint8 (height, width, 3) frame: a drifting colour gradient, a moving square
    and a texture, so that every frame differs from its neighbours."""
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    phase = index * 0.15 + seed
    red = 127.5 + 127.5 * np.sin(xs / max(width, 1) * 6.28 + phase)
    green = 127.5 + 127.5 * np.cos(ys / max(height, 1) * 6.28 - 0.7 * phase)
    blue = (xs * 3 + ys * 2 + index * 7 + seed * 31) % 256
    frame = np.stack(np.broadcast_arrays(red, green, blue), axis=-1).astype(np.uint8)
    side = max(1, min(height, width) // 4)
    y0 = (index * 3 + seed * 5) % max(1, height - side + 1)
    x0 = (index * 5 + seed * 3) % max(1, width - side + 1)
    frame[y0 : y0 + side, x0 : x0 + side] = (255 - 4 * index) % 256
    return frame


def write_video(
    path: str,
    num_frames: int,
    fps: int = 30,
    height: int = 96,
    width: int = 128,
    audio: bool = False,
    pts_ms: Optional[Sequence[int]] = None,
    gop: Optional[int] = None,
    pix_fmt: str = "yuv420p",
    preset: str = "veryfast",
    seed: int = 0,
    faststart: bool = False,
) -> str:
    """Encode ``num_frames`` synthetic frames as H.264 (libx264) mp4 at ``path`` (atomically).

    ``pts_ms`` gives explicit presentation times in milliseconds (variable frame rate);
    ``audio`` adds an AAC track of a quiet tone as long as the video; ``gop`` sets the keyframe
    interval (None = the encoder default). Odd sizes need ``pix_fmt="yuv444p"``. ``faststart`` puts
    the index (moov atom) before the data, as streaming-friendly downloads have it.
    """
    with atomic_path(path) as tmp:
        options = {"movflags": "faststart"} if faststart else {}
        with av.open(tmp, "w", format="mp4", options=options) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            options = {"preset": preset}
            if gop is not None:
                options["g"] = str(gop)
            stream.options = options
            time_base = Fraction(1, 1000) if pts_ms is not None else Fraction(1, fps)
            stream.codec_context.time_base = time_base
            tone = _add_tone_stream(container) if audio else None
            for i in range(num_frames):
                frame = av.VideoFrame.from_ndarray(synthetic_frame(i, height, width, seed), format="rgb24")
                frame.pts = pts_ms[i] if pts_ms is not None else i
                frame.time_base = time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
            if tone is not None:
                seconds = (pts_ms[-1] / 1000.0 + 1.0 / fps) if pts_ms is not None else num_frames / fps
                _encode_tone(container, tone, seconds)
    return path


def _add_tone_stream(container, rate: int = 16000):
    """Add an AAC mono stream to a container opened for writing."""
    stream = container.add_stream("aac", rate=rate)
    stream.layout = "mono"
    return stream


def _encode_tone(container, stream, seconds: float) -> None:
    """Encode a quiet 440 Hz tone of ``seconds`` into the AAC ``stream``."""
    rate = stream.rate
    samples = int(seconds * rate)
    chunk = 1024
    t = np.arange(samples, dtype=np.float32) / rate
    wave = (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    for start in range(0, samples, chunk):
        piece = wave[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_audio_only(path: str, seconds: float = 1.0) -> str:
    """Write an mp4 that holds only an AAC audio track (no video stream)."""
    with atomic_path(path) as tmp:
        with av.open(tmp, "w", format="mp4") as container:
            _encode_tone(container, _add_tone_stream(container), seconds)
    return path
