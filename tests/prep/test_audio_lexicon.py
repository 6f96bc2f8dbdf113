"""Audio lexicon building: silence dropping, 3-example features, whitening, many-to-many grouping."""
import logging

import numpy as np
import pytest
from sklearn.decomposition import PCA

from m3a.utils.lexicon import load_audio_lexicon, save_audio_lexicon
from m3a.prep.audio_embedding import LogMelStatsEmbedder
from m3a.prep.audio_lexicon import (
    AudioLexiconError,
    build_audio_lexicon,
    clip_feature,
    pca_whiten,
)
from tests.prep.media import tone

CLASSES = ["dog+barking", "singing", "rain"]


def _clips():
    return [
        ("a.mp4", tone(3.0, 300.0), [0]),
        ("b.mp4", tone(3.0, 900.0), [0, 1]),
        ("c.mp4", np.zeros(48000, np.float32), [2]),  # silent
        ("d.mp4", tone(3.0, 2000.0, amplitude=0.2), [2, 1]),
        ("e.mp4", tone(1.5, 4000.0), [1]),
    ]


def test_lexicon_groups_many_to_many_and_drops_silence(caplog):
    with caplog.at_level(logging.INFO):
        lex = build_audio_lexicon(_clips(), CLASSES, LogMelStatsEmbedder())
    assert "1 silent clips dropped" in caplog.text
    assert list(lex["label"]) == CLASSES
    assert lex["label"]["dog+barking"] == ["a.mp4", "b.mp4"]
    assert lex["label"]["singing"] == ["b.mp4", "d.mp4", "e.mp4"]
    assert lex["label"]["rain"] == ["d.mp4"]
    assert sorted(lex["audio"]) == ["a.mp4", "b.mp4", "d.mp4", "e.mp4"]
    for feat in lex["audio"].values():
        assert feat.dtype == np.float32 and feat.shape == (384,)


def test_whitened_features_match_sklearn_and_keep_384_dims():
    lex = build_audio_lexicon(_clips(), CLASSES, LogMelStatsEmbedder())
    raw = build_audio_lexicon(_clips(), CLASSES, LogMelStatsEmbedder(), whiten=False)
    keys = sorted(raw["audio"])
    x = np.stack([raw["audio"][k] for k in keys]).astype(np.float64)
    ref = PCA(n_components=3, whiten=True, svd_solver="full").fit_transform(x)
    ours = np.stack([lex["audio"][k] for k in keys])
    np.testing.assert_allclose(np.abs(ours[:, :3]), np.abs(ref), rtol=1e-3, atol=1e-3)
    assert np.all(ours[:, 3:] == 0)  # 4 clips: rank 3, the other dims are zero


def test_pca_whiten_full_rank_gives_identity_covariance():
    x = np.random.default_rng(0).standard_normal((200, 6)) @ np.diag([5, 4, 3, 2, 1, 0.5])
    w = pca_whiten(x).astype(np.float64)
    np.testing.assert_allclose(np.cov(w, rowvar=False), np.eye(6), atol=1e-4)
    ref = PCA(whiten=True).fit_transform(x)
    np.testing.assert_allclose(np.abs(w), np.abs(ref), atol=1e-4)


def test_clip_feature_repeats_or_spreads_examples():
    emb = LogMelStatsEmbedder()
    long = np.concatenate([tone(0.96, f) for f in (300, 600, 900, 1200, 1500)] + [tone(0.02, 50)])
    feat = clip_feature(long, emb, 3)
    per_example = emb.embed(long)
    assert per_example.shape[0] == 5
    np.testing.assert_array_equal(feat.reshape(3, 128), per_example[[0, 2, 4]])
    short = tone(1.5, 700)  # one example -> repeated 3 times
    f = clip_feature(short, emb, 3).reshape(3, 128)
    assert np.array_equal(f[0], f[1]) and np.array_equal(f[0], f[2])
    tiny = tone(0.3, 700)  # shorter than one example: tiled up to one
    assert clip_feature(tiny, emb, 3).shape == (384,)


def test_empty_class_is_an_error_naming_it_or_zero_fallback():
    clips = [c for c in _clips() if c[0] != "d.mp4"]
    with pytest.raises(AudioLexiconError, match="rain"):
        build_audio_lexicon(clips, CLASSES, LogMelStatsEmbedder())
    lex = build_audio_lexicon(clips, CLASSES, LogMelStatsEmbedder(), on_empty="zeros")
    (key,) = lex["label"]["rain"]
    assert np.all(lex["audio"][key] == 0) and lex["audio"][key].shape == (384,)


@pytest.mark.parametrize("ext", [".npz", ".pkl"])
def test_lexicon_round_trips_through_files(tmp_path, ext):
    lex = build_audio_lexicon(_clips(), CLASSES, LogMelStatsEmbedder())
    path = str(tmp_path / f"audio-lexicon-t{ext}")
    save_audio_lexicon(path, lex)
    back = load_audio_lexicon(path, num_classes=3)
    assert back["label"] == lex["label"]
    for key, feat in lex["audio"].items():
        np.testing.assert_array_equal(back["audio"][key], feat)


def test_feature_cache_resumes_and_refuses_other_settings(tmp_path):
    from m3a.prep.audio_features import KEPT, SILENT, compute_clip_features
    from tests.prep.media import write_wav

    clips = []
    for i, amp in enumerate((0.3, 0.0, 0.5)):
        path = write_wav(str(tmp_path / f"{i}.wav"), tone(1.2, 400 + 100 * i, amplitude=amp))
        clips.append((f"clip{i}", path))
    cache = str(tmp_path / "cache")
    first, errors = compute_clip_features(clips[:2], cache_dir=cache, chunk_size=1)
    assert errors == [] and [first[k][0] for k in ("clip0", "clip1")] == [KEPT, SILENT]
    # Delete the first part: the next part must not overwrite the remaining one.
    (tmp_path / "cache" / "part-00000.npz").unlink()
    second, _ = compute_clip_features(clips + [("gone", str(tmp_path / "none.wav"))], cache_dir=cache)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["part-00001.npz", "part-00002.npz"]
    np.testing.assert_array_equal(second["clip0"][1], first["clip0"][1])
    assert second["clip2"][0] == KEPT and second["gone"][0] == "unreadable"
    with pytest.raises(ValueError, match="other settings"):
        compute_clip_features(clips, cache_dir=cache, silence_rms=0.1)
