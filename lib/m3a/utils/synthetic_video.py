"""Writing real H.264 mp4 files with distinct per-frame content (tests, benchmarks, demos)."""
from fractions import Fraction
from typing import Optional, Sequence

import av
import numpy as np

from m3a.utils.file_io import atomic_path
from m3a.utils.video_writer import add_aac_stream, encode_waveform, write_h264


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
    bframes: Optional[int] = None,
) -> str:
    """Encode ``num_frames`` synthetic frames as H.264 (libx264) mp4 at ``path`` (atomically).

    ``pts_ms`` gives explicit presentation times in milliseconds (variable frame rate);
    ``audio`` adds an AAC track of a quiet tone as long as the video; ``gop`` sets the keyframe
    interval (None = the encoder default). Odd sizes need ``pix_fmt="yuv444p"``. ``faststart`` puts
    the index (moov atom) before the data, as streaming-friendly downloads have it. ``bframes`` sets
    the most consecutive B-frames (0: none, as in many high-resolution camera files; None = the
    preset's).
    """
    options = {"preset": preset}
    if gop is not None:
        options["g"] = str(gop)
    if bframes is not None:
        options["bf"] = str(bframes)
    time_base = Fraction(1, 1000) if pts_ms is not None else Fraction(1, fps)
    seconds = (pts_ms[-1] / 1000.0 + 1.0 / fps) if pts_ms is not None else num_frames / fps
    return write_h264(
        path,
        (synthetic_frame(i, height, width, seed) for i in range(num_frames)),
        fps,
        width,
        height,
        audio=_quiet_tone(seconds) if audio else None,
        pix_fmt=pix_fmt,
        options=options,
        pts=pts_ms,
        time_base=time_base,
        container_options={"movflags": "faststart"} if faststart else None,
    )


def _quiet_tone(seconds: float, rate: int = 16000) -> np.ndarray:
    """A quiet 440 Hz tone of ``seconds`` at ``rate`` Hz (float32)."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def write_audio_only(path: str, seconds: float = 1.0) -> str:
    """Write an mp4 that holds only an AAC audio track (no video stream)."""
    with atomic_path(path) as tmp:
        with av.open(tmp, "w", format="mp4") as container:
            encode_waveform(container, add_aac_stream(container, 16000), _quiet_tone(seconds))
    return path
