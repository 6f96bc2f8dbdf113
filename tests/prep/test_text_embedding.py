"""Text lexicon: GloVe (.txt and .zip), the hashed fallback, and the method errors."""
import logging
import zipfile

import numpy as np
import pytest

from m3a.prep.text_embedding import (
    TextLexiconError,
    build_text_lexicon,
    hashed_word_vector,
    split_name,
)

GLOVE = {
    "dog": [1.0, 0.0, 0.0, 2.0],
    "barking": [0.0, 1.0, 0.0, 0.0],
    "playing": [0.0, 0.0, 1.0, 1.0],
    "music": [2.0, 2.0, 2.0, 2.0],
    "hand": [1.0, 1.0, 0.0, 0.0],
    "shaking": [0.0, 3.0, 0.0, 1.0],
}


@pytest.fixture()
def glove_txt(tmp_path):
    path = tmp_path / "glove.test.4d.txt"
    lines = ["the 9 9 9 9"] + [f"{w} " + " ".join(str(x) for x in v) for w, v in GLOVE.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_split_name():
    assert split_name("Dog+barking") == ["dog", "barking"]
    assert split_name("playing music/dancing_x") == ["playing", "music", "dancing", "x"]


def test_glove_averages_words(glove_txt, tmp_path, caplog):
    names = ["dog+barking", "playing/music", "hand-shaking", "dog unicorn", "zzz"]
    with caplog.at_level(logging.WARNING):
        lex = build_text_lexicon(names, glove=glove_txt, dim=4)
    assert lex.dtype == np.float64 and lex.shape == (5, 4)
    np.testing.assert_allclose(lex[0], [0.5, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(lex[1], [1.0, 1.0, 1.5, 1.5])
    np.testing.assert_allclose(lex[2], [0.5, 2.0, 0.0, 0.5])  # hyphenated: split on '-'
    np.testing.assert_allclose(lex[3], GLOVE["dog"])
    np.testing.assert_allclose(lex[4], 0.0)
    assert "unicorn" in caplog.text and "zzz" in caplog.text
    zpath = str(tmp_path / "glove.zip")
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(glove_txt, "glove.test.4d.txt")
    np.testing.assert_array_equal(build_text_lexicon(names, glove=zpath, method="glove", dim=4), lex)
    # A zip with several sizes (like glove.6B.zip): the member named *.{dim}d.txt is used.
    multi = str(tmp_path / "glove.6B.zip")
    with zipfile.ZipFile(multi, "w") as z:
        z.writestr("glove.test.2d.txt", "dog 7 7\nbarking 7 7\n")
        z.write(glove_txt, "glove.test.4d.txt")
    np.testing.assert_array_equal(build_text_lexicon(names[:1], glove=multi, dim=4), lex[:1])
    np.testing.assert_array_equal(build_text_lexicon(names[:1], glove=multi, dim=2), [[7.0, 7.0]])
    with pytest.raises(TextLexiconError, match="cannot tell"):
        build_text_lexicon(names[:1], glove=multi, dim=3)


def test_glove_dimension_mismatch(glove_txt):
    with pytest.raises(TextLexiconError, match="4 dims"):
        build_text_lexicon(["dog"], glove=glove_txt, dim=300)


def test_hashed_fallback_is_deterministic_and_related(caplog):
    with caplog.at_level(logging.WARNING):
        lex = build_text_lexicon(["dog+barking", "dog+running", "raining"], method="auto")
    assert "fallback" in caplog.text
    assert lex.shape == (3, 300) and lex.dtype == np.float64
    again = build_text_lexicon(["dog+barking", "dog+running", "raining"], method="hashed")
    np.testing.assert_array_equal(lex, again)
    dog = hashed_word_vector("Dog")
    np.testing.assert_array_equal(dog, hashed_word_vector("dog"))
    assert abs(np.linalg.norm(dog) - 1) < 1e-12
    np.testing.assert_allclose(lex[0], (dog + hashed_word_vector("barking")) / 2)
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert cos(lex[0], lex[1]) > 0.3 > abs(cos(lex[0], lex[2]))


def test_method_errors(tmp_path):
    with pytest.raises(TextLexiconError, match="GloVe file"):
        build_text_lexicon(["a"], method="glove")
    with pytest.raises(TextLexiconError, match="not found"):
        build_text_lexicon(["a"], glove=str(tmp_path / "none.txt"))
    with pytest.raises(TextLexiconError, match="model path"):
        build_text_lexicon(["a"], method="bert")
    with pytest.raises(TextLexiconError, match="unknown method"):
        build_text_lexicon(["a"], method="word2vec")
