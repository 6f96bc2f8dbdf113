"""Re-encoding with PyAV: videos rescaled to a short side (audio kept), fast-decoding training
copies, audio tracks to wav."""
import os
import shutil
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import av
import numpy as np

from m3a.utils.file_io import atomic_path
from m3a.utils.video_writer import add_aac_stream, add_h264_stream

DONE, SKIPPED, COPIED, NO_AUDIO, FAILED = "done", "skipped", "copied", "no-audio", "failed"


def scaled_size(width: int, height: int, short_side: int) -> Tuple[int, int]:
    """(width, height) with the short side at ``short_side``, aspect kept, both even."""
    if width <= height:
        new_w, new_h = short_side, height * short_side / width
    else:
        new_w, new_h = width * short_side / height, short_side
    return max(2, int(round(new_w / 2)) * 2), max(2, int(round(new_h / 2)) * 2)


@dataclass(frozen=True)
class Encoding:
    """libx264 settings of a re-encoded video.

    ``keyframe_interval`` None keeps libx264's default (up to 250 frames); a short interval
    bounds the frames decoded before a clip that starts mid-video. ``fast_decode`` uses x264's
    ``tune=fastdecode`` (no CABAC, no deblocking, no weighted prediction): larger files that
    decode faster.
    """

    crf: int = 23
    keyframe_interval: Optional[int] = None
    fast_decode: bool = False

    def options(self) -> Dict[str, str]:
        """The libx264 options."""
        options = {"crf": str(self.crf), "preset": "fast"}
        if self.keyframe_interval is not None:
            options["g"] = str(self.keyframe_interval)
        if self.fast_decode:
            options["tune"] = "fastdecode"
        return options


# Training copies: the short side that the M-MiT recipe's scale jitter reaches at most, a
# keyframe every 16 frames, and x264's fast-decode tuning.
TRAINING_COPY_SIZE = 160
TRAINING_COPY = Encoding(crf=23, keyframe_interval=16, fast_decode=True)


def _encode_video(out_container, src_path: str, size: int, encoding: Encoding) -> None:
    with av.open(src_path) as src:
        vin = src.streams.video[0]
        ain = src.streams.audio[0] if src.streams.audio else None
        width, height = scaled_size(vin.codec_context.width, vin.codec_context.height, size)
        rate = vin.average_rate or vin.guessed_rate or 30
        vout = add_h264_stream(out_container, rate, width, height, options=encoding.options())
        aout = None
        if ain is not None:
            layout = "mono" if ain.codec_context.channels == 1 else "stereo"
            aout = add_aac_stream(out_container, ain.codec_context.sample_rate or 44100, layout)
        streams = [vin] + ([ain] if ain is not None else [])
        for packet in src.demux(*streams):
            for frame in packet.decode():
                if packet.stream is vin:
                    scaled = frame.reformat(width=width, height=height, format="yuv420p")
                    scaled.pts, scaled.time_base = frame.pts, frame.time_base
                    out_container.mux(vout.encode(scaled))
                else:
                    frame.pts = None
                    out_container.mux(aout.encode(frame))
        out_container.mux(vout.encode(None))
        if aout is not None:
            out_container.mux(aout.encode(None))


def rescale_video(
    src_path: str, dst_path: str, size: int = 256, encoding: Encoding = Encoding(), upscale: bool = False,
    copy_small: bool = True,
) -> str:
    """Write ``dst_path`` with the short side at ``size`` (H.264 with ``encoding``, AAC audio kept);
    atomic, resumable.

    A video whose short side is already at most ``size`` is copied when ``copy_small`` (and not
    ``upscale``), else re-encoded at its own size (a training copy's keyframes matter even then).
    Returns ``skipped`` when ``dst_path`` exists, ``copied`` or ``done``.
    """
    if os.path.exists(dst_path):
        return SKIPPED
    with av.open(src_path) as probe:
        if not probe.streams.video:
            raise ValueError(f"{src_path}: no video stream")
        ctx = probe.streams.video[0].codec_context
        short = min(ctx.width, ctx.height)
    copy = short <= size and copy_small and not upscale
    with atomic_path(dst_path) as tmp:
        if copy:
            shutil.copyfile(src_path, tmp)
        else:
            with av.open(tmp, "w", format=_container_format(dst_path)) as out:
                _encode_video(out, src_path, size if upscale else min(size, short), encoding)
    return COPIED if copy else DONE


def _container_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    formats = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov",
               ".avi": "avi"}
    return formats.get(ext, "mp4")


def write_wav(path: str, waveform: np.ndarray, sample_rate: int = 16000) -> None:
    """Write a mono float waveform in [-1, 1] as 16-bit PCM wav, atomically."""
    pcm = np.clip(np.round(np.asarray(waveform, np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    with atomic_path(path) as tmp:
        with av.open(tmp, "w", format="wav") as out:
            stream = out.add_stream("pcm_s16le", rate=sample_rate)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
            frame.sample_rate = sample_rate
            out.mux(stream.encode(frame))
            out.mux(stream.encode(None))


def extract_audio(src_path: str, dst_path: str, sample_rate: int = 16000) -> str:
    """Audio track of ``src_path`` as a 16-bit mono wav at ``sample_rate``; resumable.

    Returns ``skipped`` (output exists), ``no-audio`` (nothing written) or ``done``.
    """
    from m3a.prep.audio_io import read_audio

    if os.path.exists(dst_path):
        return SKIPPED
    waveform = read_audio(src_path, sample_rate)
    if waveform is None:
        return NO_AUDIO
    write_wav(dst_path, waveform, sample_rate)
    return DONE


def rescale_job(job: Tuple[str, str, int, Encoding, bool, bool]) -> Tuple[str, str]:
    """Worker entry for rescale_video (its arguments in order): (status, error message or "")."""
    src = job[0]
    try:
        return rescale_video(*job), ""
    except (OSError, av.FFmpegError, ValueError) as err:
        return FAILED, f"{src}: {err}"


def extract_job(job: Tuple[str, str, int]) -> Tuple[str, str]:
    """Worker entry for extract_audio: (status, error message or "")."""
    src, dst, rate = job
    try:
        return extract_audio(src, dst, rate), ""
    except (OSError, av.FFmpegError, ValueError) as err:
        return FAILED, f"{src}: {err}"
