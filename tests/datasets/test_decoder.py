"""Selective decoding against full decoding, pts-based resampling, clamping and broken files."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from m3a.datasets.decoder import DecodeError, FrameFolderReader, VideoReader
from m3a.datasets.temporal_sampler import clip_span, clip_times, uniform_clip_starts
from m3a.datasets.benchmark import decode_all, sample_frames
from tests.datasets.conftest import BROKEN, GOOD_VIDEOS, ODD_VIDEOS, VFR_PTS


@pytest.mark.parametrize("name", sorted({**GOOD_VIDEOS, **ODD_VIDEOS}))
def test_selective_decoding_equals_full_decoding(video_dir, name):
    path = os.path.join(video_dir, name)
    frames, times, duration = decode_all(path)
    requests = [
        clip_times(0.0, 8, 2, 30),
        clip_times(duration * 0.6, 4, 3, 30),
        clip_times(duration - 0.05, 3, 1, 30),  # runs past the end: clamps to the last frame
        np.array([duration * 0.7, 0.01, duration * 0.3, duration * 0.7]),  # unsorted, repeated
    ]
    for request in requests:
        with VideoReader(path) as reader:
            got = reader.decode_at(request).gather()
        assert torch.equal(got, sample_frames(frames, times, request))


def test_later_clip_decodes_only_from_the_previous_keyframe(video_dir):
    path = os.path.join(video_dir, "a.mp4")  # 90 frames, keyframe every 12 frames
    with VideoReader(path) as reader:
        reader.decode_at(clip_times(2.0, 4, 2, 30))  # frames 60..66
        # keyframe at frame 60, decode through frame 67 (the frame after the last sample)
        assert reader.decoded_frames == 8


@pytest.mark.parametrize(
    "request_times, decoded_below",
    [
        (clip_times(1.0, 4, 2, 30), 38),  # frames 30..36; decoding reaches frame 37
        (clip_times(0.0, 4, 8, 30), 26),  # frames 0, 8, 16, 24; decoding reaches frame 25
    ],
    ids=["preroll_skips_non_reference_frames", "frames_between_sparse_samples_are_skipped"],
)
def test_skipped_frames_do_not_change_the_clip(video_dir, request_times, decoded_below):
    path = os.path.join(video_dir, "c.mp4")  # 45 frames, one keyframe, B-frames
    with VideoReader(path) as reader:
        got = reader.decode_at(request_times).gather()
        assert reader.decoded_frames < decoded_below
    frames, times, _ = decode_all(path)
    assert torch.equal(got, sample_frames(frames, times, request_times))


def test_reader_reuse_decodes_the_same_frames(video_dir):
    path = os.path.join(video_dir, "d.mp4")
    with VideoReader(path) as reader:
        late = reader.decode_at(clip_times(1.5, 4, 2, 30)).gather()
        early = reader.decode_at(clip_times(0.0, 4, 2, 30)).gather()
    frames, times, _ = decode_all(path)
    assert torch.equal(early, sample_frames(frames, times, clip_times(0.0, 4, 2, 30)))
    assert torch.equal(late, sample_frames(frames, times, clip_times(1.5, 4, 2, 30)))


def test_variable_frame_rate_uses_presentation_times(video_dir):
    path = os.path.join(video_dir, "vfr.mp4")
    frames, times, _ = decode_all(path)
    np.testing.assert_allclose(times, np.array(VFR_PTS) / 1000.0, atol=1e-3)
    sample = clip_times(0.2, 16, 3, 30)  # 10 samples per second over 1.6 s
    # Expected frame per sample from the known pts (last frame shown at or before the time).
    expected_rows = np.searchsorted(np.array(VFR_PTS) / 1000.0, sample + 1e-6, side="right") - 1
    with VideoReader(path) as reader:
        got = reader.decode_at(sample).gather()
    assert torch.equal(got, frames[torch.from_numpy(expected_rows)])
    # Counting frames instead of using pts would pick different frames here.
    assert not np.array_equal(expected_rows, np.round(sample * 30).astype(int))


def test_video_shorter_than_one_clip_is_padded_with_its_last_frame(video_dir):
    path = os.path.join(video_dir, "short.mp4")  # 9 frames = 0.3 s
    frames, _, _ = decode_all(path)
    with VideoReader(path) as reader:
        assert reader.duration == pytest.approx(0.3, abs=1e-3)
        start = uniform_clip_starts(reader.duration, clip_span(8, 2, 30), 3)
        assert start == [0.0, 0.0, 0.0]
        got = reader.decode_at(clip_times(0.0, 8, 2, 30)).gather()
    assert got.shape == (8, 64, 64, 3)
    assert torch.equal(got[:5], frames[[0, 2, 4, 6, 8]])
    assert all(torch.equal(got[i], frames[8]) for i in range(5, 8))


def test_odd_tiny_resolution(video_dir):
    with VideoReader(os.path.join(video_dir, "odd.mp4")) as reader:
        got = reader.decode_at(clip_times(0.1, 4, 2, 30)).gather()
    assert got.shape == (4, 17, 33, 3) and got.dtype == torch.uint8


def test_multi_threaded_decoding_gives_the_same_frames(video_dir):
    path = os.path.join(video_dir, "a.mp4")
    request = clip_times(1.1, 8, 2, 30)
    with VideoReader(path) as reader:
        single = reader.decode_at(request).gather()
    with VideoReader(path, multi_thread=True) as reader:
        multi = reader.decode_at(request).gather()
    assert torch.equal(single, multi)


@pytest.mark.parametrize("name", BROKEN)
def test_broken_files_raise_decode_error_naming_the_file(video_dir, name):
    path = os.path.join(video_dir, name)
    with pytest.raises(DecodeError, match=name):
        with VideoReader(path) as reader:
            reader.decode_at([0.0])


def test_frame_folder_reader(video_dir):
    folder = os.path.join(video_dir, "frames_a")
    reader = FrameFolderReader(folder, fps=10)
    assert reader.duration == pytest.approx(4.0)
    got = reader.decode_at([0.0, 0.25, 0.1, 9.0])
    expected = [np.asarray(Image.open(os.path.join(folder, f"{i:05d}.jpg"))) for i in (1, 3, 2, 40)]
    for row, image in zip(got.gather(), expected):
        assert np.array_equal(row.numpy(), image)
    assert got.frames.shape[0] == 4
    with pytest.raises(DecodeError, match="not found"):
        FrameFolderReader(os.path.join(video_dir, "nope"), fps=10)
