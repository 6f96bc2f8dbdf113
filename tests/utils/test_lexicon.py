"""Lexicon files: psi by hand, round trips in both formats, restricted unpickling."""
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from m3a.utils import lexicon
from m3a.utils.safe_pickle import PickleLoadError, UnsafePickleError, load_pickle


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


def _call(module, name, args):
    """A protocol-2 pickle whose result is ``module.name(*args)`` (args pickled as plain data)."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + pickle.dumps(args, protocol=2)[2:-1] + b"R."


_NDARRAY = b"cnumpy\nndarray\n"
HOSTILE = {
    "bytes-1e11": (_call("builtins", "bytes", (10**11,)), "builtins.bytes\\(\\) asks for 100000000000 bytes"),
    "reconstruct-1e12": (
        b"\x80\x02cnumpy._core.multiarray\n_reconstruct\n(" + _NDARRAY + pickle.dumps((10**6, 10**6), 2)[2:-1]
        + pickle.dumps(b"b", 2)[2:-1] + b"tR.",
        "_reconstruct\\(\\) asks for 1000000000000 bytes"),
    "ndarray-8e10": (_call("numpy", "ndarray", ((10**5, 10**5), "f8")),
                     "numpy.ndarray\\(\\) asks for 80000000000 bytes"),
    "object-dtype": (_call("numpy", "dtype", ("O8", False, True)), "object arrays are not plain data"),
    "value-error": (_call("builtins", "int", ("not a number",)), "ValueError: invalid literal"),
    "type-error": (_call("builtins", "dict", (5,)), "TypeError"),
    "digits": (_call("builtins", "int", ("9" * 5000,)), "ValueError: Exceeds the limit"),
    "str-of-list": (_call("builtins", "str", ([1, 2],)), "refusing str\\(\\) of a list"),
    "truncated": (pickle.dumps(np.eye(3), protocol=4)[:-20], "not a loadable plain-data pickle"),
    "empty": (b"", "EOFError"),
    "code": (pickle.dumps(_Evil(), protocol=4), "refusing to load '(posix|os|nt).system'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_pickles_become_lexicon_errors(tmp_path, case):
    data, message = HOSTILE[case]
    path = tmp_path / f"text-lexicon-{case}.pkl"
    path.write_bytes(data)
    with pytest.raises(lexicon.LexiconError, match=f"text-lexicon-{case}.pkl: .*{message}") as err:
        lexicon.load_text_lexicon(str(path))
    assert "\n" not in str(err.value)


def test_allocation_cap_counts_every_array_state(tmp_path):
    """20 arrays rebuilt from one memoised 1 MiB buffer cost 20 MiB, not 1 MiB."""
    # The same state BUILT into 20 fresh arrays: the data is pickled once and copied 20 times.
    state = np.zeros(1 << 17).__reduce__()[2]
    path = tmp_path / "many.pkl"
    rebuild = b"cnumpy._core.multiarray\n_reconstruct\n(" + _NDARRAY + b"K\x00\x85C\x01btR"
    body = b"\x80\x02" + pickle.dumps(state, protocol=2)[2:-1] + b"q\xff" + b"0("
    body += (rebuild + b"h\xffb") * 20 + b"l."
    path.write_bytes(body)
    assert len(path.read_bytes()) < (1 << 20) + 2000
    loaded = load_pickle(str(path), max_bytes=32 << 20)
    assert len(loaded) == 20 and all(a.shape == (1 << 17,) for a in loaded)
    with pytest.raises(PickleLoadError, match="array state asks for 1048576 bytes; .* at most 10485760 bytes"):
        load_pickle(str(path), max_bytes=10 << 20)


@pytest.mark.parametrize("value, message", [
    ("abc", "expected a numeric matrix"),
    ([[1.0, 2.0], [3.0]], "expected a numeric matrix"),
    ({"label": ["run"], "audio": {}}, "expected a dict with 'label' and 'audio' dicts"),
    ({"label": {"run": [["clip0"]]}, "audio": {}}, "class 'run' must list its audio keys as strings"),
])
def test_malformed_lexicon_structures_are_named(tmp_path, value, message):
    path = tmp_path / "lex.pkl"
    path.write_bytes(pickle.dumps(value, protocol=4))
    load = lexicon.load_audio_lexicon if isinstance(value, dict) else lexicon.load_text_lexicon
    with pytest.raises(lexicon.LexiconError, match=f"lex.pkl: {message}"):
        load(str(path))
