"""Tests of the demo data set generator (m3a.prep.demo_data / demo_render)."""
import hashlib
import math
import os
from collections import Counter

import av
import numpy as np
import pytest

from m3a.utils import lexicon
from m3a.datasets.video_list import read_video_list
from m3a.prep import demo_data, demo_render
from m3a.prep.audio_io import has_audio_stream, read_audio


def _entries(summary, split):
    return read_video_list(summary[f"{split}_list"], num_classes=len(summary["class_names"]))


def _all_entries(summary):
    return [e for split in demo_data.SPLITS for e in _entries(summary, split)]


def _md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Planning: labels, splits, audio presence
# ---------------------------------------------------------------------------------------------
def test_plan_splits_balanced_primaries_and_pair_rates():
    specs = demo_data.plan_videos(2000, 10, seed=3)
    sizes = Counter(s.split for s in specs)
    assert sizes == {"train": 1400, "val": 300, "test": 300}
    for split in demo_data.SPLITS:
        primaries = Counter(s.labels[0] for s in specs if s.split == split)
        assert max(primaries.values()) - min(primaries.values()) <= 1  # balanced per split
    with_partner = np.mean([s.labels[0] ^ 1 in s.labels for s in specs])
    assert abs(with_partner - demo_data.PAIR_PROB) < 0.04
    assert all(1 <= len(s.labels) <= 3 and len(set(s.labels)) == len(s.labels) for s in specs)
    assert sum(not s.has_audio for s in specs) == round(2000 * demo_data.NO_AUDIO_FRACTION)
    assert len({s.path for s in specs}) == len(specs)


def test_plan_keeps_sounding_training_clips_for_every_class():
    for seed in range(5):
        specs = demo_data.plan_videos(24, 4, seed)
        counts = Counter(c for s in specs if s.split == "train" and s.has_audio for c in s.labels)
        assert all(counts[c] >= 2 for c in range(4))
        assert sum(not s.has_audio for s in specs) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psi_of_a_full_size_plan_links_the_pairs(seed):
    specs = demo_data.plan_videos(300, 10, seed)
    psi = lexicon.compute_psi([s.labels for s in specs if s.split == "train"], 10)
    for c in range(10):
        assert psi[c, c ^ 1] >= 0.5
        others = [psi[c, j] for j in range(10) if j not in (c, c ^ 1)]
        assert max(others) < 0.3


def test_plan_is_deterministic_and_seed_dependent():
    assert demo_data.plan_videos(60, 6, 7) == demo_data.plan_videos(60, 6, 7)
    assert demo_data.plan_videos(60, 6, 7) != demo_data.plan_videos(60, 6, 8)


@pytest.mark.parametrize("videos, classes", [(2, 4), (30, 0), (30, demo_render.MAX_CLASSES + 1)])
def test_plan_rejects_bad_sizes(videos, classes):
    with pytest.raises(ValueError):
        demo_data.plan_videos(videos, classes, 0)


def test_frame_size():
    assert demo_data.frame_size(128) == (170, 128)
    assert demo_data.frame_size(64) == (86, 64)
    with pytest.raises(ValueError):
        demo_data.frame_size(63)


# ---------------------------------------------------------------------------------------------
# Rendering: shapes, motions, sounds
# ---------------------------------------------------------------------------------------------
def test_class_names_share_words_within_pairs():
    actions = demo_render.demo_actions(demo_render.MAX_CLASSES)
    names = [a.name for a in actions]
    assert len(set(names)) == len(names)
    assert len({a.rgb for a in actions}) == len(actions)
    for k in range(len(actions) // 2):
        assert actions[2 * k].shape == actions[2 * k + 1].shape
        assert actions[2 * k].shape in names[2 * k].split()


@pytest.mark.parametrize("shape", demo_render.SHAPES)
def test_sprites_are_antialiased_masks_of_sensible_area(shape):
    sprite = demo_render.shape_sprite(shape)
    assert sprite.min() == 0.0 and sprite.max() == 1.0
    if shape != "square":  # the square's edges fall exactly on pixel boundaries
        assert np.any((sprite > 0.0) & (sprite < 1.0))  # soft edges
    inner = sprite[1:-2, 1:-2]
    assert 0.15 < inner.mean() < 0.6
    assert np.all(sprite[0] == 0) and np.all(sprite[-2:] == 0)


def _instance(motion, width=170, height=128, seed=0):
    action = demo_render.DemoAction("red", (225, 35, 35), "bar", motion, 440.0)
    return demo_render.ActionInstance.draw(action, width, height, np.random.default_rng(seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_motions_move_the_right_way(seed):
    t = np.arange(90) / 30.0
    span = lambda v: float(np.ptp(v))  # noqa: E731
    x, y, r, a = _instance("sliding", seed=seed).pose(t)
    assert span(x) > 60 and span(y) == 0 and span(r) == 0
    x, y, r, a = _instance("bouncing", seed=seed).pose(t)
    assert span(y) > 50 and span(x) == 0
    x, y, r, a = _instance("spinning", seed=seed).pose(t)
    assert span(a) > 4.0 and span(x) == 0 and span(y) == 0
    x, y, r, a = _instance("growing", seed=seed).pose(t)
    assert r.max() / r.min() > 2.0 and span(x) == 0
    inst = _instance("circling", seed=seed)
    x, y, r, a = inst.pose(t)
    assert inst.period < 3.0  # a full orbit: its centre is the middle of the bounding box
    centre = ((x.max() + x.min()) / 2, (y.max() + y.min()) / 2)
    distance = np.hypot(x - centre[0], y - centre[1])
    assert distance.min() > 25 and np.ptp(distance) < 1.0
    x, y, r, a = _instance("falling", seed=seed).pose(t)
    steps = np.diff(y)
    assert np.sum(steps > 0) >= 85 and span(x) == 0  # moves down, wrapping at most twice
    for motion in ("sliding", "bouncing", "spinning", "growing", "circling"):
        x, y, r, _ = _instance(motion, seed=seed).pose(t)
        assert np.all(x - r >= 0) and np.all(x + r <= 170)
        assert np.all(y - r >= 0) and np.all(y + r <= 128)


def _peak_frequency(waveform, rate=16000):
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(waveform.size)))
    return np.fft.rfftfreq(waveform.size, 1.0 / rate)[np.argmax(spectrum)]


@pytest.mark.parametrize("label", range(10))
def test_each_class_sounds_at_its_own_pitch(label):
    action = demo_render.demo_actions(10)[label]
    rng = np.random.default_rng(label)
    instance = demo_render.ActionInstance.draw(action, 170, 128, rng)
    audio = demo_render.render_audio([instance], 48000, 16000, rng)
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    peak = _peak_frequency(audio)
    if action.motion == "falling":  # a whistle from 1.5 f down to f
        assert action.frequency * 0.97 < peak < action.frequency * 1.53
    else:
        assert peak == pytest.approx(action.frequency, rel=0.04)


def test_render_video_draws_the_class_colours():
    actions = demo_render.demo_actions(4)
    rng = np.random.default_rng(5)
    instances = [demo_render.ActionInstance.draw(actions[c], 86, 64, rng) for c in (0, 2)]
    frames = demo_render.render_video(instances, 20, 30, 86, 64, rng)
    assert frames.shape == (20, 64, 86, 3) and frames.dtype == np.uint8
    counts = [_colour_pixels(frames, a.rgb) for a in actions]
    assert counts[0] > 20 * 15 and counts[2] > 20 * 15
    assert counts[1] == 0 and counts[3] == 0


def _colour_pixels(frames, rgb, tolerance=50.0):
    distance = np.linalg.norm(frames.astype(np.float32) - np.asarray(rgb, np.float32), axis=-1)
    return int(np.sum(distance < tolerance))


# ---------------------------------------------------------------------------------------------
# The generated tiny data set (session fixture from tests/conftest.py)
# ---------------------------------------------------------------------------------------------
def test_tiny_set_files_and_lists(tiny_demo_summary, tiny_demo_dir):
    names = tiny_demo_summary["class_names"]
    assert len(names) == 4
    counts = {split: len(_entries(tiny_demo_summary, split)) for split in demo_data.SPLITS}
    assert counts == {"train": 16, "val": 4, "test": 4}
    for entry in _all_entries(tiny_demo_summary):
        assert not os.path.isabs(entry.path) and entry.path.endswith(".mp4")
        assert os.path.isfile(os.path.join(tiny_demo_dir, entry.path))
        assert len(set(entry.labels)) == len(entry.labels)
    with open(os.path.join(tiny_demo_dir, "categories-demo.txt")) as f:
        assert f.read().splitlines() == names
    with open(tiny_demo_summary["readme"]) as f:
        readme = f.read()
    assert "16 train, 4 val, 4 test" in readme and all(n in readme for n in names)
    marker = os.path.join(tiny_demo_dir, demo_data.COMPLETE_MARKER)
    newest = max(os.path.getmtime(os.path.join(root, n))
                 for root, _, files in os.walk(tiny_demo_dir) for n in files
                 if n != demo_data.COMPLETE_MARKER)
    assert os.path.getmtime(marker) >= newest


def test_tiny_set_videos_are_real_h264_aac_mp4s(tiny_demo_summary, tiny_demo_dir):
    silent = set(tiny_demo_summary["no_audio"])
    assert len(silent) == 1
    actions = demo_render.demo_actions(4)
    for entry in _all_entries(tiny_demo_summary):
        path = os.path.join(tiny_demo_dir, entry.path)
        with av.open(path) as container:
            assert container.format.name.startswith("mov,mp4")
            video = container.streams.video[0]
            assert video.codec_context.name == "h264"
            assert video.codec_context.pix_fmt == "yuv420p"
            assert (video.width, video.height) == (86, 64)
            assert video.average_rate == 30
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video)])
            assert float(video.duration * video.time_base) == pytest.approx(1.5, abs=0.04)
        assert frames.shape == (45, 64, 86, 3)
        for label in entry.labels:  # every action's object is visible in the decoded frames
            assert _colour_pixels(frames, actions[label].rgb) > 45 * 8, (entry, label)
        for label in set(range(4)) - set(entry.labels):
            assert _colour_pixels(frames, actions[label].rgb) < 45, (entry, label)
        assert has_audio_stream(path) == (entry.path not in silent)
        if entry.path not in silent:
            with av.open(path) as container:
                audio = container.streams.audio[0]
                assert audio.codec_context.name == "aac"
                assert audio.rate == 16000 and audio.layout.nb_channels == 1
            waveform = read_audio(path)
            assert waveform.size == pytest.approx(1.5 * 16000, rel=0.1)
            assert np.sqrt(np.mean(waveform**2)) > 0.02


def test_tiny_set_lexicons(tiny_demo_summary, tiny_demo_dir):
    train = _entries(tiny_demo_summary, "train")
    psi = lexicon.load_graph_adj(lexicon.lexicon_path(tiny_demo_dir, "graph-adj", "demo"), 4)
    np.testing.assert_array_equal(psi, lexicon.compute_psi([e.labels for e in train], 4))
    for c in range(4):
        assert psi[c, c ^ 1] >= 0.4  # the pairs pass the published threshold
        assert psi[c, c ^ 1] > max(psi[c, j] for j in range(4) if j not in (c, c ^ 1))

    text = lexicon.load_text_lexicon(lexicon.lexicon_path(tiny_demo_dir, "text-lexicon", "demo"), 4)
    assert text.shape == (4, 300)
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    cosine = unit @ unit.T
    assert cosine[0, 1] > cosine[0, 2] + 0.2 and cosine[2, 3] > cosine[1, 2] + 0.2

    audio = lexicon.load_audio_lexicon(
        lexicon.lexicon_path(tiny_demo_dir, "audio-lexicon", "demo"), 4)
    assert list(audio["label"]) == tiny_demo_summary["class_names"]
    sounding = [e for e in train if e.path not in tiny_demo_summary["no_audio"]]
    assert sorted(audio["audio"]) == sorted(e.path for e in sounding)
    for feature in audio["audio"].values():
        assert feature.shape == (384,) and feature.dtype == np.float32
    for c, name in enumerate(audio["label"]):
        assert sorted(audio["label"][name]) == sorted(e.path for e in sounding if c in e.labels)


def test_same_seed_gives_identical_files_whatever_the_workers(tiny_demo_summary, tmp_path):
    again = demo_data.make_demo_dataset(str(tmp_path), workers=2, **tiny_demo_summary["config"])
    first_dir, second_dir = tiny_demo_summary["out_dir"], again["out_dir"]
    for entry in _all_entries(tiny_demo_summary):
        first, second = os.path.join(first_dir, entry.path), os.path.join(second_dir, entry.path)
        assert _md5(first) == _md5(second)
    for name in ("train-demo.csv", "val-demo.csv", "test-demo.csv", "categories-demo.txt",
                 "README.txt"):
        assert _md5(os.path.join(first_dir, name)) == _md5(os.path.join(second_dir, name))
    for kind in lexicon.KINDS:
        first = np.load(lexicon.lexicon_path(first_dir, kind, "demo"))
        second = np.load(lexicon.lexicon_path(second_dir, kind, "demo"))
        assert first.files == second.files
        for key in first.files:
            np.testing.assert_array_equal(first[key], second[key])


def test_another_seed_gives_other_videos(tmp_path):
    first = demo_data.make_demo_dataset(str(tmp_path / "a"), 6, 2, seed=1, duration=1.0, size=32)
    second = demo_data.make_demo_dataset(str(tmp_path / "b"), 6, 2, seed=2, duration=1.0, size=32)
    paths = [e.path for e in _all_entries(first)]
    assert paths == [e.path for e in _all_entries(second)]
    differ = [_md5(os.path.join(first["out_dir"], p)) != _md5(os.path.join(second["out_dir"], p))
              for p in paths]
    assert all(differ)


def test_short_durations_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="duration"):
        demo_data.make_demo_dataset(str(tmp_path), 6, 2, duration=0.5)
    assert not os.path.exists(os.path.join(tmp_path, demo_data.COMPLETE_MARKER))


def test_encode_mp4_round_trip(tmp_path):
    frames = np.zeros((12, 32, 48, 3), dtype=np.uint8)
    frames[:, 8:24, 10:30] = (200, 40, 40)
    audio = (0.5 * np.sin(2 * math.pi * 1000 * np.arange(8000) / 16000)).astype(np.float32)
    path = str(tmp_path / "clip.mp4")
    demo_data.encode_mp4(path, frames, 24, audio)
    with av.open(path) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 6
    waveform = read_audio(path)
    assert _peak_frequency(waveform) == pytest.approx(1000, abs=10)
    assert [n for n in os.listdir(tmp_path)] == ["clip.mp4"]  # no temporary file left
