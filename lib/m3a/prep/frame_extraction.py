"""Decode videos into folders of JPEG frames with PyAV (the frame folders of DATA.INPUT_FORMAT
frames and the frame_folder lists): ``OUT/<video path without extension>/000001.jpg`` ...,
every decoded frame at its native rate, optionally resized. A folder appears only once all of
its frames are written (they go to a temporary folder that is renamed), so an interrupted run
leaves no partial folder and a re-run skips the finished videos.
"""
import os
import shutil
import tempfile
from typing import Optional, Tuple

import av
from PIL import Image

from m3a.prep.transcode import DONE, FAILED, SKIPPED


def frame_size(width: int, height: int, short_side: int = 0, target_height: int = 0) -> Tuple[int, int]:
    """(width, height) after scaling the short side to ``short_side`` or the height to
    ``target_height`` (aspect kept, rounded); unchanged when both are 0."""
    if target_height:
        scale = target_height / height
    elif short_side:
        scale = short_side / min(width, height)
    else:
        return width, height
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def extract_frames(
    src: str, dst: str, short_side: int = 0, height: int = 0, quality: int = 95,
    template: str = "{:06d}.jpg",
) -> str:
    """Write the frames of ``src`` as ``dst/template.format(i)`` (i from 1); return ``done``, or
    ``skipped`` when ``dst`` already exists. Raises ValueError for a video without frames."""
    if os.path.isdir(dst):
        return SKIPPED
    parent = os.path.dirname(os.path.abspath(dst))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        count = _write_frames(src, tmp, short_side, height, quality, template)
        if count == 0:
            raise ValueError("no decodable video frames")
        os.chmod(tmp, 0o755)
        os.rename(tmp, dst)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    return DONE


def _write_frames(src: str, folder: str, short_side: int, height: int, quality: int, template: str) -> int:
    count = 0
    size: Optional[Tuple[int, int]] = None
    with av.open(src) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        for frame in container.decode(video=0):
            image = frame.to_image()
            if size is None:
                size = frame_size(image.width, image.height, short_side, height)
            if size != (image.width, image.height):
                image = image.resize(size, Image.BILINEAR)
            count += 1
            image.save(os.path.join(folder, template.format(count)), quality=quality)
    return count


def extract_frames_job(job: Tuple[str, str, int, int, int, str]) -> Tuple[str, str]:
    """Worker entry for extract_frames: (status, error message or "")."""
    src = job[0]
    try:
        return extract_frames(*job), ""
    except (OSError, av.FFmpegError, ValueError) as err:
        return FAILED, f"{src}: {err}"
