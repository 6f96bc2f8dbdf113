"""Temporal samplers: dense gives exactly the clip times of before the registry; tsn's segments."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from m3a.config import ConfigError
from m3a.datasets.benchmark import decode_all
from m3a.datasets.decoder import FrameFolderReader, VideoReader
from m3a.datasets.temporal_sampler import (
    TEMPORAL_SAMPLER_REGISTRY,
    DenseSampler,
    TsnSampler,
    build_temporal_sampler,
    clip_span,
    clip_times,
    random_clip_start,
    uniform_clip_starts,
)
from m3a.datasets.video_dataset import ClipLoader, build_dataset
from tests.datasets.conftest import small_cfg, write_list

with open(os.path.join(os.path.dirname(__file__), "dense_times_reference.json")) as _f:
    REFERENCE_CASES = json.load(_f)["cases"]  # computed by the code before the sampler registry


def _frame_indices(times, num_frames: int, fps: float = 10.0):
    """Frames a folder of ``num_frames`` at ``fps`` gives for ``times`` (the folder reader's rule)."""
    return np.clip(np.floor(np.asarray(times) * fps + 1e-6), 0, num_frames - 1).astype(int).tolist()


def test_registered_names():
    assert sorted(name for name, _ in TEMPORAL_SAMPLER_REGISTRY) == ["dense", "tsn", "tsn_rounded", "tsn_tsm"]


def test_clip_sampling_positions():
    span = clip_span(8, 2, 30)
    assert span == pytest.approx(16 / 30)
    assert uniform_clip_starts(3.0, span, 1) == [pytest.approx((3.0 - span) / 2)]
    starts = uniform_clip_starts(3.0, span, 5)
    assert starts[0] == 0.0 and starts[-1] == pytest.approx(3.0 - span)
    np.testing.assert_allclose(np.diff(starts), (3.0 - span) / 4)
    np.testing.assert_allclose(clip_times(1.0, 4, 2, 30), [1.0, 1 + 2 / 30, 1 + 4 / 30, 1 + 6 / 30])
    gen = torch.Generator().manual_seed(0)
    draws = [random_clip_start(3.0, span, gen) for _ in range(200)]
    assert 0.0 <= min(draws) and max(draws) <= 3.0 - span and max(draws) - min(draws) > 1.5
    assert random_clip_start(0.2, span, gen) == 0.0


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=lambda c: f"{c['num_frames']}x{c['sampling_rate']}")
def test_dense_gives_exactly_the_times_of_before(case):
    cfg = small_cfg("", NUM_FRAMES=case["num_frames"], SAMPLING_RATE=case["sampling_rate"], TARGET_FPS=case["target_fps"])
    cfg.TEST.NUM_ENSEMBLE_VIEWS = case["num_ensemble_views"]
    sampler = build_temporal_sampler(cfg)
    assert isinstance(sampler, DenseSampler)
    assert [c.tolist() for c in sampler.test_times(case["duration"])] == case["test_clips"]
    torch.manual_seed(7)  # training clips draw from torch's global generator, as before
    assert [sampler.train_times(case["duration"]).tolist() for _ in range(2)] == case["train_clips_seed7"]
    torch.manual_seed(7)
    assert [sampler.val_times(case["duration"]).tolist() for _ in range(2)] == case["train_clips_seed7"]


def test_tsn_frame_indices_by_hand():
    # 10 frames, 4 segments of 2.5 frames: [0, 2.5), [2.5, 5), [5, 7.5), [7.5, 10).
    sampler, n = TsnSampler(num_segments=4, num_views=1), 10
    duration = n / 10.0
    assert _frame_indices(sampler.val_times(duration), n) == [1, 3, 6, 8]
    assert [_frame_indices(c, n) for c in sampler.test_times(duration)] == [[1, 3, 6, 8]]
    # Two views at 1/4 and 3/4 of every segment.
    two = TsnSampler(num_segments=4, num_views=2).test_times(duration)
    assert [_frame_indices(c, n) for c in two] == [[0, 3, 5, 8], [1, 4, 6, 9]]
    # 12 frames, 3 views: every frame once.
    three = TsnSampler(num_segments=4, num_views=3).test_times(1.2)
    assert [_frame_indices(c, 12) for c in three] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    # Training, seed 0: offsets (float64) 0.9701, 0.7078, 0.4594, 0.9207 then 0.6450, 0.7911, 0.1786, 0.3511.
    gen = torch.Generator().manual_seed(0)
    assert _frame_indices(sampler.train_times(duration, gen), n) == [2, 4, 6, 9]
    assert _frame_indices(sampler.train_times(duration, gen), n) == [1, 4, 5, 8]
    # Fewer frames than segments: frames repeat, spread over the video.
    assert _frame_indices(sampler.val_times(0.3), 3) == [0, 1, 1, 2]


def test_tsn_times_for_a_video_duration_by_hand():
    sampler = TsnSampler(num_segments=4, num_views=2)
    np.testing.assert_allclose(sampler.val_times(2.0), [0.25, 0.75, 1.25, 1.75])
    test = sampler.test_times(2.0)
    np.testing.assert_allclose(test[0], [0.125, 0.625, 1.125, 1.625])
    np.testing.assert_allclose(test[1], [0.375, 0.875, 1.375, 1.875])
    gen = torch.Generator().manual_seed(0)
    np.testing.assert_allclose(
        sampler.train_times(3.0, gen), [0.75 * 0.9700530018065531, 0.75 * 1.707819864399788,
                                        0.75 * 2.45938294312745087, 0.75 * 3.9207476841219603]
    )


def test_tsn_training_draws_cover_each_segment_and_stay_inside():
    sampler, gen = TsnSampler(num_segments=4, num_views=1), torch.Generator().manual_seed(1)
    draws = np.array([_frame_indices(sampler.train_times(1.2, gen), 12) for _ in range(300)])
    for i in range(4):
        assert sorted(set(draws[:, i])) == [3 * i, 3 * i + 1, 3 * i + 2]


def _jpeg(folder: str, index: int) -> torch.Tensor:
    with Image.open(os.path.join(folder, f"{index + 1:05d}.jpg")) as img:
        return torch.from_numpy(np.array(img.convert("RGB")))


def test_tsn_on_a_real_frame_folder_uses_the_list_frame_count(video_dir):
    folder = os.path.join(video_dir, "frames_a")  # 40 JPEG frames
    cfg = small_cfg(video_dir, INPUT_FORMAT="frames", FRAMES_FPS=10, TEMPORAL_SAMPLER="tsn")
    clips = ClipLoader(cfg)
    with FrameFolderReader(folder, 10) as reader:
        for num_frames, expected in [(None, [5, 15, 25, 35]), (40, [5, 15, 25, 35]), (20, [2, 7, 12, 17])]:
            got = reader.decode_at(clips.sampler.val_times(clips.duration(reader, num_frames))).gather()
            assert torch.equal(got, torch.stack([_jpeg(folder, i) for i in expected])), num_frames
        views = [reader.decode_at(c).gather() for c in clips.sampler.test_times(clips.duration(reader, 40))]
    for view, expected in zip(views, [[2, 12, 22, 32], [7, 17, 27, 37]]):
        assert torch.equal(view, torch.stack([_jpeg(folder, i) for i in expected]))


def test_tsn_on_a_real_video(video_dir):
    path = os.path.join(video_dir, "a.mp4")  # 90 frames at 30 fps: 3 s
    frames, _, duration = decode_all(path)
    sampler = TsnSampler(num_segments=4, num_views=1)
    with VideoReader(path) as reader:
        got = reader.decode_at(sampler.val_times(reader.duration)).gather()
    assert duration == 3.0 and torch.equal(got, frames[[11, 33, 56, 78]])  # floor(30 * (i + 0.5) * 0.75)


def test_tsn_dataset_items(tmp_path, video_dir):
    write_list(os.path.join(tmp_path, "test-t.csv"), {"a.mp4": (1,)})
    cfg = small_cfg(str(tmp_path), PATH_PREFIX=video_dir, TEMPORAL_SAMPLER="tsn", NUM_FRAMES=8)
    views, _, _, ok = build_dataset("mmit", cfg, "test")[0]
    assert ok and views.shape == (6, 3, 8, 40, 40)
    write_list(os.path.join(tmp_path, "train-t.csv"), {"a.mp4": (1,)})
    frames, *_ = build_dataset("mmit", cfg, "train")[0]
    assert frames.shape == (3, 8, 32, 32)


def test_unknown_sampler_lists_the_valid_ones():
    cfg = small_cfg("", TEMPORAL_SAMPLER="uniform")
    with pytest.raises(ConfigError, match="DATA.TEMPORAL_SAMPLER must be one of dense, tsn, tsn_rounded, tsn_tsm, got 'uniform'"):
        ClipLoader(cfg)


def _tsm(num_segments=8, num_views=10, fps=10.0):
    from m3a.datasets.temporal_sampler import TsmSampler

    return TsmSampler(num_segments=num_segments, num_views=num_views, fps=fps)


def test_tsn_tsm_indices_by_hand():
    sampler = _tsm()
    # 20 frames, 8 segments: a = 2, frame 2i or 2i + 1; frames 16-19 are never taken.
    gen = torch.Generator().manual_seed(0)
    draws = np.array([sampler.train_indices(20, gen) for _ in range(300)])
    for i in range(8):
        assert sorted(set(draws[:, i])) == [2 * i, 2 * i + 1]
    # Validation: tick 2.5, int(1.25 + 2.5 i).
    assert sampler.val_indices(20).tolist() == [1, 3, 6, 8, 11, 13, 16, 18]
    assert sampler.val_indices(9).tolist() == [0, 1, 2, 3, 5, 6, 7, 8]  # tick 1.125: int(0.5625 + 1.125 i)
    # The released rules for short folders: fewer frames than segments -> frame 0 T times (train);
    # at most T frames -> frame 0 T times (validation), while training takes 0..7 for n = 8.
    assert sampler.train_indices(5, gen).tolist() == [0] * 8
    assert sampler.val_indices(5).tolist() == [0] * 8 and sampler.val_indices(8).tolist() == [0] * 8
    assert sampler.train_indices(8, gen).tolist() == list(range(8))
    # Times are frame centres at FRAMES_FPS: the folder reader takes exactly those frames.
    assert _frame_indices(sampler.val_times(2.0), 20) == [1, 3, 6, 8, 11, 13, 16, 18]
    assert _frame_indices(sampler.val_times(0.5), 5) == [0] * 8


def test_tsn_tsm_test_clips_are_training_draws_seeded_per_item():
    sampler = _tsm(num_segments=4, num_views=3)
    clips = sampler.test_times(2.0, torch.Generator().manual_seed(1))  # 20 frames: a = 5
    assert len(clips) == 3
    for clip in clips:
        assert [f // 5 for f in _frame_indices(clip, 20)] == [0, 1, 2, 3]
    assert len({tuple(c) for c in clips}) > 1  # the views differ
    again = sampler.test_times(2.0, torch.Generator().manual_seed(1))
    assert all(np.array_equal(a, b) for a, b in zip(clips, again))
    cfg = small_cfg("", INPUT_FORMAT="frames", FRAMES_FPS=10, TEMPORAL_SAMPLER="tsn_tsm", NUM_FRAMES=4)
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 3
    loader = ClipLoader(cfg)
    first = [c.tolist() for c in loader.test_clip_times(2.0, seed_key=5)]
    assert first == [c.tolist() for c in ClipLoader(cfg).test_clip_times(2.0, seed_key=5)]
    assert first != [c.tolist() for c in loader.test_clip_times(2.0, seed_key=6)]
    cfg.DATA.INPUT_FORMAT = "video"  # videos: frames counted at TARGET_FPS
    assert build_temporal_sampler(cfg).fps == cfg.DATA.TARGET_FPS


def test_tsn_tsm_on_a_real_frame_folder(tmp_path, video_dir):
    with open(os.path.join(tmp_path, "test.csv"), "w") as f:
        f.write("frames_a 40 1\n")
    cfg = small_cfg(str(tmp_path), PATH_PREFIX=video_dir, INPUT_FORMAT="frames", FRAMES_FPS=10,
                    TEMPORAL_SAMPLER="tsn_tsm", LIST_FORMAT="frame_folder", MULTI_LABEL=False)
    cfg.TEST.NUM_SPATIAL_CROPS = 1
    folder = os.path.join(video_dir, "frames_a")
    with FrameFolderReader(folder, 10) as reader:
        got = reader.decode_at(ClipLoader(cfg).sampler.val_times(4.0)).gather()
    assert torch.equal(got, torch.stack([_jpeg(folder, i) for i in [5, 15, 25, 35]]))  # int(5 + 10 i)
    dataset = build_dataset("kinetics", cfg, "test")
    views, _, _, ok = dataset[0]
    assert ok and views.shape == (2, 3, 4, 40, 40) and not torch.equal(views[0], views[1])
    assert torch.equal(views, build_dataset("kinetics", cfg, "test")[0][0])  # seeded by (RNG_SEED, index)


def _rounded(num_segments=8, fps=10.0):
    from m3a.datasets.temporal_sampler import RoundedTsnSampler

    return RoundedTsnSampler(num_segments=num_segments, num_views=1, fps=fps)


# n frames -> (segment starts, segment ends), s = (n - 1) / 8, round() sending halves to even.
ROUNDED_SEGMENTS = {
    33: ([0, 4, 8, 12, 16, 20, 24, 28], [4, 8, 12, 16, 20, 24, 28, 32]),  # s = 4
    20: ([0, 2, 5, 7, 10, 12, 14, 17], [2, 5, 7, 10, 12, 14, 17, 19]),  # s = 2.375; 9.5 -> 10
    21: ([0, 2, 5, 8, 10, 12, 15, 18], [2, 5, 8, 10, 12, 15, 18, 20]),  # s = 2.5; 2.5 -> 2, 7.5 -> 8, 12.5 -> 12
    8: ([0, 1, 2, 3, 4, 4, 5, 6], [1, 2, 3, 4, 4, 5, 6, 7]),  # s = 0.875; 3.5 -> 4
    5: ([0, 0, 1, 2, 2, 2, 3, 4], [0, 1, 2, 2, 2, 3, 4, 4]),  # shorter than T: s = 0.5
    1: ([0] * 8, [0] * 8),
}


def test_tsn_rounded_segments_and_middle_frames_by_hand():
    sampler = _rounded()
    for count, (starts, ends) in ROUNDED_SEGMENTS.items():
        got = sampler.segment_bounds(count)
        assert (got[0].tolist(), got[1].tolist()) == (starts, ends), count
    middle = {33: [2, 6, 10, 14, 18, 22, 26, 30], 20: [1, 3, 6, 8, 11, 13, 15, 18],
              21: [1, 3, 6, 9, 11, 13, 16, 19], 8: [0, 1, 2, 3, 4, 4, 5, 6], 5: [0, 0, 1, 2, 2, 2, 3, 4], 1: [0] * 8}
    for count, expected in middle.items():
        assert sampler.val_indices(count).tolist() == expected, count
        # Times are frame centres at the counting rate: the folder reader takes exactly those frames.
        assert _frame_indices(sampler.val_times(count / 10.0), count) == expected, count
        assert [_frame_indices(c, count) for c in sampler.test_times(count / 10.0)] == [expected]


def test_tsn_rounded_training_draws_by_hand_and_over_each_whole_segment():
    sampler = _rounded()
    # Seed 0's float64 draws 0.9701, 0.7078, 0.4594, 0.9207, 0.6450, 0.7911, 0.1786, 0.3511 times
    # the segment widths 3, 4, 3, 4, 3, 3, 4, 3 of 20 frames, floored: 2, 2, 1, 3, 1, 2, 0, 1.
    assert sampler.train_indices(20, torch.Generator().manual_seed(0)).tolist() == [2, 4, 6, 10, 11, 14, 14, 18]
    assert sampler.train_indices(20, torch.Generator().manual_seed(0)).tolist() == [2, 4, 6, 10, 11, 14, 14, 18]
    gen = torch.Generator().manual_seed(3)
    for count in (20, 5):
        starts, ends = ROUNDED_SEGMENTS[count]
        draws = np.array([sampler.train_indices(count, gen) for _ in range(400)])
        for i in range(8):  # every frame of the segment, both ends included, and no other
            assert sorted(set(draws[:, i])) == list(range(starts[i], ends[i] + 1)), (count, i)
    assert sampler.train_indices(1, gen).tolist() == [0] * 8
    times = sampler.train_times(2.0, torch.Generator().manual_seed(0))  # 20 frames at 10 fps
    assert _frame_indices(times, 20) == [2, 4, 6, 10, 11, 14, 14, 18]


def test_tsn_rounded_config_counts_frames_and_takes_one_test_clip():
    cfg = small_cfg("", INPUT_FORMAT="frames", FRAMES_FPS=10, TEMPORAL_SAMPLER="tsn_rounded", NUM_FRAMES=8)
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 3
    with pytest.raises(ConfigError, match="tsn_rounded takes one test clip .*NUM_ENSEMBLE_VIEWS must be 1, got 3"):
        ClipLoader(cfg)
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 1
    assert build_temporal_sampler(cfg).fps == 10
    cfg.DATA.INPUT_FORMAT = "video"
    cfg.DATA.TARGET_FPS = 12
    sampler = build_temporal_sampler(cfg)
    assert sampler.fps == 12 and sampler.frame_count(33 / 12.0) == 33


def test_tsn_rounded_on_a_real_frame_folder_and_video(tmp_path, video_dir):
    folder = os.path.join(video_dir, "frames_a")  # 40 JPEG frames: s = 39 / 4 = 9.75, 19.5 -> 20
    cfg = small_cfg(video_dir, INPUT_FORMAT="frames", FRAMES_FPS=10, TEMPORAL_SAMPLER="tsn_rounded")
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 1
    clips = ClipLoader(cfg)
    with FrameFolderReader(folder, 10) as reader:
        got = reader.decode_at(clips.sampler.val_times(clips.duration(reader, 40))).gather()
    assert torch.equal(got, torch.stack([_jpeg(folder, i) for i in [5, 15, 24, 34]]))
    path = os.path.join(video_dir, "a.mp4")  # 90 frames at 30 fps: s = 22.25, 44.5 -> 44
    frames, _, _ = decode_all(path)
    cfg.DATA.INPUT_FORMAT = "video"
    with VideoReader(path) as reader:
        got = reader.decode_at(ClipLoader(cfg).sampler.val_times(reader.duration)).gather()
    assert torch.equal(got, frames[[11, 33, 55, 78]])
