"""Tiny real media files for the prep tests, encoded with PyAV (libx264 video, AAC audio)."""
from typing import Optional

import av
import numpy as np


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
    audio_codec: str = "aac",
) -> str:
    """Write an mp4 (or any container PyAV infers from ``path``) with moving frames and optional audio."""
    width, height = size
    with av.open(path, "w") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        astream = None
        if audio is not None:
            astream = container.add_stream(audio_codec, rate=audio_rate)
            astream.layout = "mono"
        for i in range(int(round(seconds * fps))):
            img = np.full((height, width, 3), (i * 25) % 256, dtype=np.uint8)
            img[:, : (i % width)] = 200
            for packet in vstream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in vstream.encode(None):
            container.mux(packet)
        if astream is not None:
            _encode_audio(container, astream, audio, audio_rate)
    return path


def _encode_audio(container, stream, audio: np.ndarray, rate: int) -> None:
    frame_size = stream.codec_context.frame_size or 1024
    samples = np.asarray(audio, dtype=np.float32)
    for start in range(0, samples.size, frame_size):
        chunk = samples[start : start + frame_size]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_wav(path: str, audio: np.ndarray, rate: int = 16000) -> str:
    """Write a mono 16-bit PCM wav with PyAV."""
    with av.open(path, "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        pcm = np.clip(np.round(np.asarray(audio) * 32767), -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
