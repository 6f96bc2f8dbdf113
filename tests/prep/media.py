"""Tiny real media files for the prep tests, encoded with PyAV (libx264 video, AAC audio)."""
from typing import Optional

import numpy as np

from m3a.prep.transcode import write_wav as _write_wav
from m3a.utils.video_writer import write_h264


def tone(seconds: float, freq: float = 440.0, rate: int = 16000, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine tone."""
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_video(
    path: str,
    seconds: float = 1.0,
    audio: Optional[np.ndarray] = None,
    audio_rate: int = 16000,
    size=(32, 24),
    fps: int = 10,
) -> str:
    """Write an mp4 (or any container PyAV infers from ``path``) with moving frames and optional audio."""
    width, height = size
    frames = []
    for i in range(int(round(seconds * fps))):
        img = np.full((height, width, 3), (i * 25) % 256, dtype=np.uint8)
        img[:, : (i % width)] = 200
        frames.append(img)
    return write_h264(path, frames, fps, width, height, audio=audio, sample_rate=audio_rate, container_format=None)


def write_wav(path: str, audio: np.ndarray, rate: int = 16000) -> str:
    """Write a mono 16-bit PCM wav."""
    _write_wav(path, audio, rate)
    return path
