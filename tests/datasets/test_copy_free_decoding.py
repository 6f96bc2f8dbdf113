"""Decoding straight into one preallocated tensor gives the frames plain PyAV gives, bit for bit,
on the demo videos and on a 720p file, for training clips and for all test views of a video."""
import glob
import os
from typing import List, Tuple

import av
import numpy as np
import pytest
import torch

from m3a.datasets import transform
from m3a.datasets.decoder import DecodeError, VideoReader
from m3a.datasets.temporal_sampler import clip_span, clip_times, uniform_clip_starts
from m3a.datasets.video_dataset import ClipLoader
from m3a.utils.synthetic_video import synthetic_frame
from m3a.utils.video_writer import write_h264
from tests.datasets.conftest import small_cfg


def plain_pyav_frames(path: str) -> Tuple[List[np.ndarray], np.ndarray]:
    """Every frame of ``path`` as ``frame.to_ndarray(format="rgb24")`` and its time (s)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        frames, times = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float((frame.pts - start) * stream.time_base))
    return frames, np.asarray(times)


def sampled(frames: List[np.ndarray], frame_times: np.ndarray, times) -> torch.Tensor:
    """The frames the sampler asks for: the last frame at or before each time, clamped."""
    rows = np.searchsorted(frame_times, np.asarray(times) + 1e-6, side="right") - 1
    return torch.from_numpy(np.stack([frames[r] for r in np.clip(rows, 0, len(frames) - 1)]))


def request_sets(duration: float) -> List[np.ndarray]:
    """Training clips at several positions, and all test clips of 3 x 8-frame views together."""
    train = [clip_times(duration * f, 8, 2, 30) for f in (0.0, 0.37, 0.8)]
    starts = uniform_clip_starts(duration, clip_span(8, 8, 30), 3)
    return train + [np.concatenate([clip_times(s, 8, 8, 30) for s in starts])]


@pytest.fixture(scope="module")
def demo_videos(tiny_demo_dir) -> List[str]:
    return sorted(glob.glob(os.path.join(tiny_demo_dir, "**", "*.mp4"), recursive=True))[:4]


def _check_video(path: str) -> None:
    frames, frame_times = plain_pyav_frames(path)
    with VideoReader(path) as reader:
        for times in request_sets(reader.duration):
            decoded = reader.decode_at(times)
            got = decoded.gather()
            assert torch.equal(got, sampled(frames, frame_times, times)), (path, times)
            if decoded.in_request_order:  # every frame used once: the decoded tensor is the clip
                assert got is decoded.frames


def test_demo_videos_decode_to_the_plain_pyav_frames(demo_videos):
    assert len(demo_videos) == 4
    for path in demo_videos:
        _check_video(path)


def test_720p_video_decodes_to_the_plain_pyav_frames(hd_video):
    _check_video(hd_video)


def test_a_clip_of_distinct_frames_is_written_in_place_in_request_order(hd_video):
    times = clip_times(0.9, 8, 2, 30)
    with VideoReader(hd_video) as reader:
        decoded = reader.decode_at(times[::-1].copy())  # unsorted: rows still follow the request
    assert decoded.in_request_order and decoded.frames.shape == (8, 720, 1280, 3)
    assert decoded.gather() is decoded.frames
    assert decoded.frames.is_contiguous()
    frames, frame_times = plain_pyav_frames(hd_video)
    assert torch.equal(decoded.frames, sampled(frames, frame_times, times[::-1]))


def test_frames_shared_by_several_times_are_stored_once(video_dir):
    path = os.path.join(video_dir, "a.mp4")
    times = np.array([1.0, 0.2, 1.0, 1.01, 0.5, 0.21, 5.0, 9.0])  # 0.2/0.21 and 1.0/1.01: one frame each
    with VideoReader(path) as reader:
        decoded = reader.decode_at(times)
    assert not decoded.in_request_order
    assert decoded.frames.shape[0] == 4  # frames 6, 15, 30 and the last one
    assert decoded.index.tolist() == [0, 1, 0, 0, 2, 1, 3, 3]  # rows in order of first request
    frames, frame_times = plain_pyav_frames(path)
    assert torch.equal(decoded.gather(), sampled(frames, frame_times, times))
    assert torch.equal(decoded.gather([4, 0]), sampled(frames, frame_times, times[[4, 0]]))


def test_oversampled_clip_repeats_frames_exactly(video_dir):
    path = os.path.join(video_dir, "d.mp4")
    times = clip_times(0.5, 8, 1, 60)  # 60 samples per second from a 30-fps video
    with VideoReader(path) as reader:
        decoded = reader.decode_at(times)
    assert decoded.frames.shape[0] == 4
    frames, frame_times = plain_pyav_frames(path)
    assert torch.equal(decoded.gather(), sampled(frames, frame_times, times))


def _reference_views(path: str, cfg) -> torch.Tensor:
    """Test views from plain PyAV frames, one clip at a time, through the same transforms."""
    data, test = cfg.DATA, cfg.TEST
    frames, frame_times = plain_pyav_frames(path)
    duration = VideoReader(path).duration
    views = []
    for times in ClipLoader(cfg).test_clip_times(duration):
        prepared = transform.prepare_test_frames(sampled(frames, frame_times, times), data.TEST_CROP_SIZE,
                                                 data.MEAN, data.STD)
        clip = prepared.transpose(0, 1)
        size = data.TEST_CROP_SIZE
        for y, x in transform.uniform_crop_offsets(*prepared.shape[-2:], size, test.NUM_SPATIAL_CROPS):
            views.append(clip[:, :, y : y + size, x : x + size])
    return torch.stack(views)


@pytest.mark.parametrize("views, frames", [(3, 8), (10, 4)], ids=["3x3_views", "10x3_overlapping_views"])
def test_720p_test_views_equal_view_by_view_reference(hd_video, views, frames):
    cfg = small_cfg(os.path.dirname(hd_video), NUM_FRAMES=frames, SAMPLING_RATE=4, TEST_CROP_SIZE=64)
    cfg.TEST.NUM_ENSEMBLE_VIEWS = views
    got = ClipLoader(cfg).test_views(hd_video)
    assert got.shape == (views * 3, 3, frames, 64, 64)
    assert torch.equal(got, _reference_views(hd_video, cfg))


def test_cut_views_slices_consecutive_rows_and_gathers_others():
    prepared = torch.arange(6 * 3 * 4 * 6, dtype=torch.float32).view(6, 3, 4, 6)
    consecutive = transform.clip_frames(prepared, torch.tensor([2, 3, 4]))
    assert consecutive.data_ptr() == prepared[2].data_ptr()  # a view, no copy
    assert torch.equal(transform.clip_frames(prepared, torch.tensor([4, 1])), prepared[[4, 1]])
    views = transform.cut_views(prepared, [torch.tensor([0, 1]), torch.tensor([5, 2])], 4, 3)
    assert torch.equal(views[4], prepared[[5, 2]].transpose(0, 1)[:, :, :, 1:5])


def test_a_frame_size_change_is_a_decode_error_naming_both_sizes(tmp_path):
    parts = []
    for height, width in ((64, 96), (48, 64)):  # MPEG-TS segments may simply be concatenated
        path = str(tmp_path / f"{width}.ts")
        write_h264(path, (synthetic_frame(i, height, width) for i in range(15)), 30, width, height,
                   container_format="mpegts")
        parts.append(open(path, "rb").read())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    with VideoReader(str(joined)) as reader:
        with pytest.raises(DecodeError, match=r"joined\.ts: frame size changes from 96x64 to 64x48"):
            reader.decode_at([0.0, 5.0])  # from the first frame to the last
