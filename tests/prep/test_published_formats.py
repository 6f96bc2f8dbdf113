"""The published pickle formats load through the restricted unpickler; code-running pickles do not."""
import os
import pickle
import struct
from collections import OrderedDict

import numpy as np
import pytest

from m3a.utils.lexicon import LexiconError, load_audio_lexicon, load_graph_adj, load_text_lexicon
from m3a.utils.safe_pickle import UnsafePickleError, load_pickle


def _numpy1_style(data: bytes) -> bytes:
    """Rewrite a small protocol-4 pickle to name numpy 1.x modules (as the published files do)."""
    out = data.replace(b"\x8c\x16numpy._core.multiarray", b"\x8c\x15numpy.core.multiarray")
    assert out[2] == 0x95 and struct.unpack("<Q", data[3:11])[0] == len(data) - 11  # one frame
    return out[:3] + struct.pack("<Q", len(out) - 11) + out[11:]


def _published_audio():
    rng = np.random.default_rng(0)
    return {
        "label": OrderedDict([("dog+barking", ["v/1.mp4", "v/2.mp4"]), ("singing", ["v/2.mp4"])]),
        "audio": {k: rng.standard_normal(384).astype(np.float32) for k in ("v/1.mp4", "v/2.mp4")},
    }


@pytest.mark.parametrize("numpy1", [False, True])
def test_published_pickles_load(tmp_path, numpy1):
    psi = np.array([[0.0, 0.5], [1.0, 0.0]])
    text = np.arange(6, dtype=np.float64).reshape(2, 3)
    audio = _published_audio()
    for name, value in (("graph-adj", psi), ("text-lexicon", text), ("audio-lexicon", audio)):
        data = pickle.dumps(value, protocol=4)
        (tmp_path / f"{name}-v1.pkl").write_bytes(_numpy1_style(data) if numpy1 else data)
    np.testing.assert_array_equal(load_graph_adj(str(tmp_path / "graph-adj-v1.pkl"), 2), psi)
    np.testing.assert_array_equal(load_text_lexicon(str(tmp_path / "text-lexicon-v1.pkl"), 2), text)
    lex = load_audio_lexicon(str(tmp_path / "audio-lexicon-v1.pkl"), 2)
    assert isinstance(lex["label"], OrderedDict) and lex["label"] == audio["label"]
    for key, feat in audio["audio"].items():
        assert lex["audio"][key].dtype == np.float32
        np.testing.assert_array_equal(lex["audio"][key], feat)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "graph-adj-v1.pkl"
    path.write_bytes(pickle.dumps({"psi": _Exploit(marker)}, protocol=4))
    with pytest.raises(UnsafePickleError, match="refusing to load '(posix|os|nt)\\.system'"):
        load_pickle(str(path))
    with pytest.raises(LexiconError):
        load_graph_adj(str(path))
    assert not marker.exists()
    # The same payload through plain pickle would run the command: the refusal is what saves us.
    pickle.loads(path.read_bytes())
    assert marker.exists()
