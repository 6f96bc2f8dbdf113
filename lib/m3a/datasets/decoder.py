"""Selective video decoding with PyAV at sample times, on presentation timestamps.

The sample times come from a temporal sampler (``m3a.datasets.temporal_sampler``). Every sample
time takes the last decoded frame whose timestamp is at or before it, which resamples any frame
rate (constant or variable) from the pts alone. Sample times past the last frame take the last
frame, and times before the first frame take the first frame: a video shorter than one clip is
therefore padded by repeating its frames (clamping) instead of failing.

A reader opens the container once, seeks to the keyframe at or before the earliest requested
time, decodes forward and stops right after the frame that covers the latest requested time.
Only frames that some sample uses are converted to RGB, each straight into its row of one
preallocated uint8 tensor: when every decoded frame serves one requested time, that tensor is
the clip in request order and no further copy or gather is made.
"""
import bisect
import collections
import logging
import math
import os
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter
import torch

from m3a.utils.errors import InputError

logger = logging.getLogger(__name__)

# Timestamps closer than this (seconds) count as equal when assigning frames to sample times.
_TIME_EPS = 1e-6
# Packets read ahead (in decode order) before deciding whether a packet's frame is needed: more
# than the deepest B-frame reordering, so the next frame in presentation order is known.
_LOOKAHEAD = 16
# Image files recognised in a frame folder.
_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


class DecodeError(InputError, RuntimeError):
    """A video that cannot be read; the message names the file and the reason."""


@dataclass
class DecodedFrames:
    """Distinct decoded frames and, per requested time, the row of ``frames`` that covers it.

    When every frame serves one requested time, ``frames`` holds them in request order and
    ``index`` is ``0..K-1``; ``gather()`` then returns ``frames`` itself, without a copy.
    """

    frames: torch.Tensor  # uint8 (U, H, W, 3)
    index: torch.Tensor  # int64 (K,), one entry per requested time, in request order

    @property
    def in_request_order(self) -> bool:
        """True when row i of ``frames`` is the frame of requested time i, for every time."""
        return len(self.frames) == len(self.index) and bool(
            torch.equal(self.index, torch.arange(len(self.index)))
        )

    def gather(self, rows: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Return the frames of the requested times (all, or the ``rows`` given) as (K, H, W, 3);
        all of them in request order is ``frames`` itself (no copy)."""
        if rows is None and self.in_request_order:
            return self.frames
        index = self.index if rows is None else self.index[torch.as_tensor(rows)]
        return self.frames.index_select(0, index)


class _FrameBuffer:
    """Writes decoded RGB frames into one preallocated uint8 tensor with a row per requested time.

    A frame covering several requested times is written once, in the row of the first of them
    in request order; rows left unused by such sharing are closed up at the end.
    """

    def __init__(self, path: str, order: np.ndarray):
        self._path = path
        self._order = order  # request position of every sorted time
        self._rows: Optional[np.ndarray] = None  # (K, H, W, 3), allocated at the first frame
        self._index = np.empty(len(order), dtype=np.int64)
        self._used: List[int] = []
        self.assigned = 0  # sorted times given a frame so far

    def put(self, rgb: np.ndarray, count: int) -> None:
        """Write ``rgb`` (H, W, 3) as the frame of the next ``count`` sorted times."""
        if self._rows is None:
            self._rows = np.empty((len(self._order),) + rgb.shape, dtype=np.uint8)
        elif rgb.shape != self._rows.shape[1:]:
            raise DecodeError(
                f"{self._path}: frame size changes from {self._rows.shape[2]}x{self._rows.shape[1]} "
                f"to {rgb.shape[1]}x{rgb.shape[0]}"
            )
        positions = self._order[self.assigned : self.assigned + count]
        row = int(positions.min())
        self._rows[row] = rgb
        self._index[positions] = row
        self._used.append(row)
        self.assigned += count

    def result(self) -> DecodedFrames:
        """The frames written so far (at least one) and the row of every requested time."""
        if len(self._used) == len(self._order):
            return DecodedFrames(torch.from_numpy(self._rows), torch.from_numpy(self._index))
        used = np.sort(np.asarray(self._used))
        for target, source in enumerate(used):  # close up the unused rows, moving rows down
            if target != source:
                self._rows[target] = self._rows[source]
        index = np.searchsorted(used, self._index)
        return DecodedFrames(torch.from_numpy(self._rows[: len(used)]), torch.from_numpy(index))


def configure_threads(stream: av.video.stream.VideoStream, multi_thread: bool) -> None:
    """Let the codec use frame and slice threads (``multi_thread``), or exactly one thread.

    PyAV's default (slice threads, count chosen by libavcodec) starts threads per opened file
    that single-slice videos cannot use; one thread is about twice as fast per short video here,
    and loader workers already run in parallel.
    """
    if multi_thread:
        stream.thread_type = "AUTO"
        stream.thread_count = 0
    else:
        stream.thread_count = 1


class RgbConverter:
    """Converts decoded frames to RGB with one reused swscale context, on one thread (or on
    libswscale's automatic thread count when ``multi_thread``).

    libswscale's automatic count starts a thread pool per context, that is per opened video;
    one thread is about 4x cheaper per 8-frame clip of a small video, and loader workers
    already run in parallel. The thread count does not change the pixels.
    """

    def __init__(self, multi_thread: bool = False):
        self._reformatter = VideoReformatter()
        self._threads = 0 if multi_thread else 1

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        """Return ``frame`` as RGB: a uint8 (H, W, 3) view of the converted frame's buffer."""
        return self._reformatter.reformat(frame, format="rgb24", threads=self._threads).to_ndarray()


def _as_decode_error(path: str, err: BaseException) -> DecodeError:
    reason = str(err).strip() or type(err).__name__
    return DecodeError(f"{path}: {reason}")


class VideoReader:
    """One opened video file; decodes the frames covering given times in a single forward pass."""

    def __init__(self, path: str, multi_thread: bool = False):
        self.path = path
        if not os.path.isfile(path):
            raise DecodeError(f"{path}: file not found")
        if os.path.getsize(path) == 0:
            raise DecodeError(f"{path}: empty file")
        try:
            self._container = av.open(path)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise _as_decode_error(path, err) from None
        if not self._container.streams.video:
            self.close()
            raise DecodeError(f"{path}: no video stream")
        self._stream = self._container.streams.video[0]
        self._multi_thread = multi_thread
        configure_threads(self._stream, multi_thread)
        self._time_base = self._stream.time_base
        self._seconds_per_tick = float(self._time_base)
        self._start_pts = self._stream.start_time or 0
        self._fresh = True
        # One converter for all frames: frame.to_ndarray(format=...) builds a new one per call.
        self._to_rgb = RgbConverter(multi_thread)
        # Frames the codec has produced so far (a measure of how selective the decoding was).
        self.decoded_frames = 0
        # Time (s) of the last frame the latest decode_at call reached.
        self.last_frame_time = 0.0
        try:
            self.duration = self._read_duration()
        except DecodeError:
            self.close()
            raise

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the container."""
        self._container.close()

    def _read_duration(self) -> float:
        """Return the video duration in seconds from the metadata, or by scanning packets."""
        if self._stream.duration and self._time_base:
            return float(self._stream.duration * self._time_base)
        if self._container.duration:
            return self._container.duration / av.time_base
        try:
            ends = [
                p.pts + (p.duration or 0)
                for p in self._container.demux(self._stream)
                if p.pts is not None
            ]
        except (av.error.FFmpegError, OSError) as err:
            raise _as_decode_error(self.path, err) from None
        self._seek_start()
        if not ends:
            raise DecodeError(f"{self.path}: no video packets")
        return float((max(ends) - self._start_pts) * self._time_base)

    def _seek_start(self) -> None:
        self._container.seek(self._start_pts, stream=self._stream, backward=True, any_frame=False)

    def _seek(self, seconds: float) -> None:
        """Position the demuxer at the keyframe at or before ``seconds`` after the start."""
        if seconds <= 0:
            if not self._fresh:
                self._seek_start()
            return
        target = self._start_pts + int(math.floor(seconds / self._time_base))
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)

    def decode_at(self, times: Sequence[float]) -> DecodedFrames:
        """Decode the frames covering ``times`` (seconds from the video start) in one pass.

        Raises DecodeError when the file cannot be demuxed or decoded or holds no frames.
        """
        times = np.asarray(times, dtype=np.float64)
        if times.size == 0:
            raise ValueError("decode_at needs at least one time")
        order = np.argsort(times, kind="stable")
        sorted_times = times[order]
        try:
            frames = self._decode_sorted(sorted_times, _FrameBuffer(self.path, order), seek=True)
            if frames is None:  # the seek landed after the first time: decode from the start
                frames = self._decode_sorted(sorted_times, _FrameBuffer(self.path, order), seek=False)
        except (av.error.FFmpegError, OSError, ValueError, MemoryError) as err:
            raise _as_decode_error(self.path, err) from None
        if frames.assigned == 0:
            raise DecodeError(f"{self.path}: no decodable video frames")
        return frames.result()

    def verify(self) -> None:
        """Decode the whole video; raise DecodeError when it fails or its frames stop well before
        the declared duration (before 90 % of it, less 0.1 s), as a cut-off download does."""
        self.decode_at([0.0, self.duration + 1.0])  # a time past the end decodes to the last frame
        if self.last_frame_time < 0.9 * self.duration - 0.1:
            raise DecodeError(
                f"{self.path}: frames stop at {self.last_frame_time:.2f} s of {self.duration:.2f} s"
            )

    def _frames(self, sorted_times: np.ndarray) -> Iterator[av.VideoFrame]:
        """Decode forward from the current position, skipping every non-reference frame that no
        sample time needs (a frame is needed when a time falls between its pts and the next
        frame's pts). Reference frames are always decoded, so the frames returned are exactly
        those of a full decode. Single-threaded decoding only; frame threads decode everything.
        """
        context = self._stream.codec_context
        context.skip_frame = "DEFAULT"
        if self._multi_thread:
            for packet in self._container.demux(self._stream):
                yield from packet.decode()
            return
        ticks = [self._start_pts + t / self._seconds_per_tick for t in sorted_times]
        seen: List[int] = []  # sorted pts of every packet read so far
        ahead: collections.deque = collections.deque()
        for packet in self._container.demux(self._stream):
            if packet.pts is not None:
                bisect.insort(seen, packet.pts)
            ahead.append(packet)
            if len(ahead) > _LOOKAHEAD:
                yield from self._decode_packet(ahead.popleft(), seen, ticks)
        while ahead:
            yield from self._decode_packet(ahead.popleft(), seen, ticks)

    def _decode_packet(self, packet: av.Packet, seen: List[int], ticks: List[float]) -> Iterator[av.VideoFrame]:
        """Decode one packet, telling the codec to skip it when it is a non-reference frame that
        covers none of the sample times (``ticks``, in stream time base)."""
        needed = True
        if packet.pts is not None and packet.size:
            rank = bisect.bisect_left(seen, packet.pts)
            tick_eps = _TIME_EPS / self._seconds_per_tick
            low = packet.pts - tick_eps if rank > 0 else -math.inf  # the first frame covers earlier times
            high = seen[rank + 1] - tick_eps if rank + 1 < len(seen) else math.inf
            first = bisect.bisect_left(ticks, low)
            needed = first < len(ticks) and ticks[first] < high
        self._stream.codec_context.skip_frame = "DEFAULT" if needed else "NONREF"
        return packet.decode()

    def _decode_sorted(self, sorted_times: np.ndarray, out: _FrameBuffer, seek: bool) -> Optional[_FrameBuffer]:
        """Write into ``out`` the frame covering every sorted time; None when a seek overshot the
        first time. Times past the last frame take the last frame."""
        first = float(sorted_times[0])
        self._seek(first if seek else 0.0)
        self._fresh = False
        prev = None
        prev_time = 0.0
        step = 1.0 / float(self._stream.average_rate or 30)
        for frame in self._frames(sorted_times):
            self.decoded_frames += 1
            t = (frame.pts - self._start_pts) * self._seconds_per_tick if frame.pts is not None else prev_time + step
            if prev is None and seek and first > 0 and t > first + _TIME_EPS:
                return None
            # Times before this frame belong to the previous frame (or, at the start, to this one).
            covered = bisect.bisect_left(sorted_times, t - _TIME_EPS, lo=out.assigned)
            if covered > out.assigned:
                out.put(self._to_rgb(prev if prev is not None else frame), covered - out.assigned)
            if out.assigned == len(sorted_times):
                break
            prev, prev_time = frame, t
        self.last_frame_time = prev_time
        if prev is not None and out.assigned < len(sorted_times):
            out.put(self._to_rgb(prev), len(sorted_times) - out.assigned)
        return out


class FrameFolderReader:
    """A folder of image frames (sorted by name) played at a fixed frame rate."""

    def __init__(self, path: str, fps: float):
        self.path = path
        if not os.path.isdir(path):
            raise DecodeError(f"{path}: frame folder not found")
        self._files = sorted(f for f in os.listdir(path) if f.lower().endswith(_FRAME_SUFFIXES))
        if not self._files:
            raise DecodeError(f"{path}: no image frames in folder")
        self._fps = float(fps)
        self.duration = len(self._files) / self._fps

    def __enter__(self) -> "FrameFolderReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release; present for the reader interface."""

    def _load(self, name: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        full = os.path.join(self.path, name)
        try:
            with Image.open(full) as img:
                return np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise _as_decode_error(full, err) from None

    def verify(self) -> None:
        """Load every frame; raise DecodeError naming the first unreadable one."""
        for name in self._files:
            self._load(name)

    def decode_at(self, times: Sequence[float]) -> DecodedFrames:
        """Load the frames covering ``times``: frame i spans ``[i / fps, (i + 1) / fps)``."""
        times = np.asarray(times, dtype=np.float64)
        if times.size == 0:
            raise ValueError("decode_at needs at least one time")
        wanted = np.clip(np.floor(times * self._fps + _TIME_EPS), 0, len(self._files) - 1).astype(np.int64)
        order = np.argsort(wanted, kind="stable")
        out = _FrameBuffer(self.path, order)
        for number, count in zip(*np.unique(wanted[order], return_counts=True)):
            out.put(self._load(self._files[number]), int(count))
        return out.result()


def check_video(path: str, input_format: str = "video") -> Optional[str]:
    """Read all of ``path``; return None when it reads fully, else the reason it is broken."""
    try:
        with open_video(path, input_format) as reader:
            reader.verify()
    except DecodeError as err:
        message = str(err)
        return message[len(path) + 2 :] if message.startswith(path + ": ") else message
    return None


def open_video(path: str, input_format: str = "video", multi_thread: bool = False, frames_fps: float = 30.0):
    """Open a video file (``video``) or a frame folder (``frames``) for decoding."""
    if input_format == "frames":
        return FrameFolderReader(path, frames_fps)
    return VideoReader(path, multi_thread=multi_thread)
