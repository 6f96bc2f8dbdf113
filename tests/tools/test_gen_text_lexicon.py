"""tools/gen_text_lexicon.py with a small GloVe file and the hashed fallback."""
import numpy as np

from m3a.utils.lexicon import load_text_lexicon
from m3a.prep.text_embedding import hashed_word_vector
from tests.tools.conftest import run_tool


def test_glove_and_hashed(tmp_path):
    names = tmp_path / "categories-t.txt"
    names.write_text("dog+barking,0\nrain storm,1\n")  # M-MiT's 'name,index' form is accepted
    glove = tmp_path / "glove.txt"
    glove.write_text("dog 1 0 0\nbarking 0 1 0\nrain 0 0 1\nstorm 1 1 1\n")
    proc = run_tool("gen_text_lexicon", "--class-names", names, "--out", tmp_path / "t.pkl",
                    "--glove", glove, "--dim", 3)
    assert "2 classes x 3 dims" in proc.stdout
    np.testing.assert_allclose(load_text_lexicon(str(tmp_path / "t.pkl"), 2),
                               [[0.5, 0.5, 0], [0.5, 0.5, 1]])
    proc = run_tool("gen_text_lexicon", "--class-names", names, "--out", tmp_path / "h.npz")
    assert "fallback" in proc.stderr
    lex = load_text_lexicon(str(tmp_path / "h.npz"), 2)
    np.testing.assert_allclose(lex[0], (hashed_word_vector("dog") + hashed_word_vector("barking")) / 2)


def test_missing_glove_is_a_one_line_error(tmp_path):
    names = tmp_path / "n.txt"
    names.write_text("a\n")
    proc = run_tool("gen_text_lexicon", "--class-names", names, "--out", tmp_path / "t.npz",
                    "--glove", tmp_path / "nope.txt", check=False)
    assert proc.returncode == 2 and "GloVe file not found" in proc.stderr and "Traceback" not in proc.stderr
