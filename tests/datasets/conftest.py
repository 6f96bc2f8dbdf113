"""Session fixtures: real small H.264 videos (good and broken), lists and configs over them."""
import os
from typing import Dict

import pytest

from m3a.config.defaults import get_cfg
from m3a.utils.synthetic_video import write_audio_only, write_video

NUM_CLASSES = 5

# name -> write_video keyword arguments (all 30 fps H.264).
GOOD_VIDEOS = {
    "a.mp4": dict(num_frames=90, height=96, width=128, audio=True, gop=12, seed=1),
    "b.mp4": dict(num_frames=60, height=128, width=96, gop=10, seed=2),
    "c.mp4": dict(num_frames=45, height=64, width=80, audio=True, seed=3),
    "d.mp4": dict(num_frames=75, height=72, width=128, gop=20, seed=4),
}
# Variable frame rate: uneven gaps between presentation times (ms).
VFR_PTS = [int(i * 33.3) + (i % 4) * 9 + (i // 15) * 40 for i in range(50)]
ODD_VIDEOS = {
    "vfr.mp4": dict(num_frames=len(VFR_PTS), height=64, width=96, pts_ms=VFR_PTS, gop=8, audio=True, seed=5),
    "short.mp4": dict(num_frames=9, height=64, width=64, seed=6),  # 0.3 s: shorter than one clip
    "odd.mp4": dict(num_frames=30, height=17, width=33, pix_fmt="yuv444p", seed=7),
}


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> str:
    """A folder of real mp4 files: good ones, odd-but-valid ones and broken ones."""
    root = str(tmp_path_factory.mktemp("videos"))
    for name, kwargs in {**GOOD_VIDEOS, **ODD_VIDEOS}.items():
        write_video(os.path.join(root, name), **kwargs)
    open(os.path.join(root, "empty.mp4"), "wb").close()
    with open(os.path.join(root, "a.mp4"), "rb") as f:
        data = f.read()
    with open(os.path.join(root, "truncated.mp4"), "wb") as f:
        f.write(data[: len(data) // 2])
    write_audio_only(os.path.join(root, "audio_only.mp4"))
    frames_dir = os.path.join(root, "frames_a")
    os.makedirs(frames_dir)
    _write_jpeg_frames(frames_dir, 40)
    return root


def _write_jpeg_frames(folder: str, count: int) -> None:
    from PIL import Image

    from m3a.utils.synthetic_video import synthetic_frame

    for i in range(count):
        Image.fromarray(synthetic_frame(i, 48, 64, seed=9)).save(os.path.join(folder, f"{i + 1:05d}.jpg"), quality=95)


BROKEN = ["missing.mp4", "empty.mp4", "truncated.mp4", "audio_only.mp4"]


def write_list(path: str, rows: Dict[str, tuple], separator: str = ",") -> str:
    """Write a list file ``path<sep>label<sep>label...`` per row."""
    with open(path, "w") as f:
        for video, labels in rows.items():
            f.write(separator.join([video] + [str(label) for label in labels]) + "\n")
    return path


def small_cfg(data_dir: str, **data):
    """A config for tiny clips over ``data_dir`` (4 frames, stride 2, crop 32, 2 x 3 test views)."""
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = NUM_CLASSES
    cfg.DATA.PATH_TO_DATA_DIR = data_dir
    cfg.DATA.MMIT_VERSION = "t"
    cfg.DATA.NUM_FRAMES = 4
    cfg.DATA.SAMPLING_RATE = 2
    cfg.DATA.TARGET_FPS = 30
    cfg.DATA.TRAIN_JITTER_SCALES = [40, 48]
    cfg.DATA.TRAIN_CROP_SIZE = 32
    cfg.DATA.TEST_CROP_SIZE = 40
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 2
    cfg.TEST.NUM_SPATIAL_CROPS = 3
    cfg.TRAIN.BATCH_SIZE = 2
    cfg.TEST.BATCH_SIZE = 2
    cfg.DATA_LOADER.NUM_WORKERS = 0
    for key, value in data.items():
        cfg.DATA[key] = value
    return cfg


# A 2-s 1280x720 H.264 file without B-frames (every frame is a reference; keyframe each second),
# the kind of file where copies of decoded frames cost most.
HD_VIDEO = dict(num_frames=60, height=720, width=1280, bframes=0, gop=30, audio=True, seed=11)


@pytest.fixture(scope="session")
def hd_video(tmp_path_factory) -> str:
    """Path of a generated 2-s 720p mp4 (HD_VIDEO)."""
    return write_video(str(tmp_path_factory.mktemp("hd") / "hd720.mp4"), **HD_VIDEO)
