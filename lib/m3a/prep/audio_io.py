"""Decoding audio tracks with PyAV into mono float32 waveforms."""
import logging
from typing import Optional

import av
import numpy as np

logger = logging.getLogger(__name__)


def has_audio_stream(path: str) -> bool:
    """True when the container at ``path`` holds at least one audio stream."""
    with av.open(path) as container:
        return len(container.streams.audio) > 0


def read_audio(path: str, sample_rate: int = 16000) -> Optional[np.ndarray]:
    """Decode the first audio stream of ``path`` as mono float32 in [-1, 1] at ``sample_rate``.

    Returns None when the file has no audio stream. Raises ``av.FFmpegError`` (an OSError) for
    files PyAV cannot open.
    """
    with av.open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        for frame in container.decode(stream):
            frame.pts = None  # let the resampler count samples itself
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    waveform = np.concatenate(chunks).astype(np.float32, copy=False)
    return np.clip(waveform, -1.0, 1.0)
