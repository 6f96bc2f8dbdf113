"""Person-cropped RGB videos, as EPAM-Net's authors prepared their data: one box per video
around every person's joints in every frame (``m3a.datasets.pose.person_box``: 25 % padding,
square, clipped to the image; the whole frame when the joints span under 10 pixels), each frame
cut to it and resized to ``size`` x ``size``, written as H.264 at the source frame rate.
Use such videos with ``POSE.VIDEOS_CROPPED True``.
"""
import os
from typing import Sequence, Tuple

import av
import numpy as np

from m3a.datasets.pose import Box, person_box
from m3a.prep.transcode import DONE, FAILED, SKIPPED
from m3a.utils.file_io import atomic_path
from m3a.utils.video_writer import add_h264_stream


def video_box(keypoints: np.ndarray, img_shape: Sequence[int], frame_shape: Sequence[int]) -> Box:
    """The person box over all frames of ``keypoints`` (pixels of ``img_shape`` (H, W)) in the
    pixels of frames of ``frame_shape`` (H, W) (videos may be stored at another size)."""
    x0, y0, x1, y1 = person_box(keypoints, img_shape)
    sy, sx = frame_shape[0] / img_shape[0], frame_shape[1] / img_shape[1]
    return (int(x0 * sx), int(y0 * sy), max(int(x1 * sx), int(x0 * sx) + 1),
            max(int(y1 * sy), int(y0 * sy) + 1))


def crop_person_video(
    src_path: str, dst_path: str, keypoints: np.ndarray, img_shape: Sequence[int],
    size: int = 224, crf: int = 18,
) -> str:
    """Write ``dst_path``: every frame of ``src_path`` cut to the video's person box and resized
    (bilinear) to ``size`` x ``size``; atomic; ``skipped`` when ``dst_path`` exists."""
    if os.path.exists(dst_path):
        return SKIPPED
    with av.open(src_path) as src, atomic_path(dst_path) as tmp:
        stream = src.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 30
        shape = (stream.codec_context.height, stream.codec_context.width)
        x0, y0, x1, y1 = video_box(keypoints, img_shape, shape)
        with av.open(tmp, "w", format="mp4") as out:
            vout = add_h264_stream(out, rate, size, size, options={"crf": str(crf)})
            for index, frame in enumerate(src.decode(stream)):
                rgb = frame.to_ndarray(format="rgb24")[y0:y1, x0:x1]
                cut = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                scaled = cut.reformat(width=size, height=size, format="yuv420p",
                                      interpolation="BILINEAR")
                scaled.pts = index
                out.mux(vout.encode(scaled))
            out.mux(vout.encode(None))
    return DONE


def crop_job(job: tuple) -> Tuple[str, str]:
    """One video for a process pool: ``job`` holds :func:`crop_person_video`'s arguments; returns
    its status and ``""``, or ``FAILED`` and ``"<source>: <error>"`` for an unreadable video."""
    try:
        return crop_person_video(*job), ""
    except (av.error.FFmpegError, OSError, IndexError) as err:
        return FAILED, f"{job[0]}: {err}"
