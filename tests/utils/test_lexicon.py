"""Lexicon files: psi by hand, round trips in both formats, restricted unpickling."""
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from m3a.utils import lexicon
from m3a.utils.safe_pickle import UnsafePickleError, load_pickle


def test_psi_hand_counted():
    videos = [[0, 1], [0, 1, 2], [0], [2, 1], [1]]
    psi = lexicon.compute_psi(videos, 4)
    # count(0)=3, count(1)=4, count(2)=2; pairs: (0,1)=2, (0,2)=1, (1,2)=2
    expected = np.array([
        [0, 2 / 3, 1 / 3, 0],
        [2 / 4, 0, 2 / 4, 0],
        [1 / 2, 2 / 2, 0, 0],
        [0, 0, 0, 0],
    ])
    np.testing.assert_allclose(psi, expected)


def _audio_lexicon():
    rng = np.random.default_rng(0)
    feats = {f"clip{i}": rng.standard_normal(384).astype(np.float32) for i in range(4)}
    label = OrderedDict([("run", ["clip0", "clip1"]), ("jump", ["clip1", "clip2"]), ("swim", ["clip3"])])
    return {"label": label, "audio": feats}


@pytest.mark.parametrize("ext", [".npz", ".pkl"])
def test_round_trip(tmp_path, ext):
    psi = lexicon.compute_psi([[0, 1], [1, 2]], 3)
    text = np.random.default_rng(1).standard_normal((3, 300))
    audio = _audio_lexicon()
    lexicon.save_graph_adj(str(tmp_path / f"g{ext}"), psi)
    lexicon.save_text_lexicon(str(tmp_path / f"t{ext}"), text)
    lexicon.save_audio_lexicon(str(tmp_path / f"a{ext}"), audio)
    np.testing.assert_array_equal(lexicon.load_graph_adj(str(tmp_path / f"g{ext}"), 3), psi)
    np.testing.assert_array_equal(lexicon.load_text_lexicon(str(tmp_path / f"t{ext}"), 3), text)
    back = lexicon.load_audio_lexicon(str(tmp_path / f"a{ext}"), 3)
    assert list(back["label"].items()) == list(audio["label"].items())
    for key, value in audio["audio"].items():
        np.testing.assert_array_equal(back["audio"][key], value)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{n}{ext}" for n in "gta")  # no temp files left


def test_lexicon_path_prefers_npz_and_names_missing(tmp_path):
    (tmp_path / "mmit-m3a").mkdir()
    with pytest.raises(lexicon.LexiconError, match="text-lexicon-v1"):
        lexicon.lexicon_path(str(tmp_path), "text-lexicon", "v1")
    lexicon.save_text_lexicon(str(tmp_path / "mmit-m3a" / "text-lexicon-v1.pkl"), np.eye(2))
    assert lexicon.lexicon_path(str(tmp_path), "text-lexicon", "v1").endswith(".pkl")
    lexicon.save_text_lexicon(str(tmp_path / "mmit-m3a" / "text-lexicon-v1.npz"), np.eye(2))
    assert lexicon.lexicon_path(str(tmp_path), "text-lexicon", "v1").endswith(".npz")


def test_wrong_class_count_is_named(tmp_path):
    path = str(tmp_path / "t.npz")
    lexicon.save_text_lexicon(path, np.zeros((4, 300)))
    with pytest.raises(lexicon.LexiconError, match="t.npz"):
        lexicon.load_text_lexicon(path, 5)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil(), protocol=4))
    with pytest.raises(UnsafePickleError, match="evil.pkl"):
        load_pickle(str(path))


def test_restricted_unpickler_loads_published_structures(tmp_path):
    path = tmp_path / "audio.pkl"
    with open(path, "wb") as f:
        pickle.dump(_audio_lexicon(), f, protocol=4)
    data = load_pickle(str(path))
    assert isinstance(data["label"], OrderedDict) and data["audio"]["clip0"].dtype == np.float32
