"""Text lexicon from local transformer models: a tiny BERT built here (random weights, saved
with save_pretrained) read through transformers, and the same network packed as a
sentence-transformers folder. Nothing is fetched from a model hub."""
import os
import subprocess
import sys

import numpy as np
import pytest

# Set before transformers/huggingface_hub are imported (they read it once): no hub look-ups.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
sentence_transformers = pytest.importorskip("sentence_transformers")
import torch  # noqa: E402

from m3a.prep.text_embedding import TextLexiconError, build_text_lexicon  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "dog", "barking", "playing", "guitar", "hand", "shaking"]
NAMES = ["dog+barking", "playing/guitar", "hand_shaking", "dog"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> str:
    """A 1-layer, 16-wide BERT with a WordPiece vocabulary of the test words."""
    out = str(tmp_path_factory.mktemp("tiny_bert"))
    vocab = os.path.join(out, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("\n".join(WORDS) + "\n")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32)
    transformers.BertModel(config).eval().save_pretrained(out)
    transformers.BertTokenizerFast(vocab_file=vocab).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def sentence_dir(bert_dir, tmp_path_factory) -> str:
    """The same BERT with mean pooling, saved as a sentence-transformers folder (modules.json)."""
    try:  # sentence-transformers >= 6 moved the module classes
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer

    out = str(tmp_path_factory.mktemp("tiny_sentence_model"))
    word = Transformer(bert_dir)
    pooling = Pooling(16, pooling_mode="mean")
    sentence_transformers.SentenceTransformer(modules=[word, pooling], device="cpu").save(out)
    return out


def unpadded_means(bert_dir: str, sentences) -> np.ndarray:
    """Each sentence alone (no padding): mean of its last hidden states over all its tokens."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(bert_dir)
    model = transformers.AutoModel.from_pretrained(bert_dir).eval()
    rows = []
    with torch.no_grad():
        for sentence in sentences:
            hidden = model(**tokenizer(sentence, return_tensors="pt")).last_hidden_state[0]
            rows.append(hidden.mean(0).numpy())
    return np.stack(rows)


def test_transformers_folder_is_mean_pooled_without_padding_leaking(bert_dir):
    lex = build_text_lexicon(NAMES, method="bert", bert_model=bert_dir)
    assert lex.shape == (4, 16) and lex.dtype == np.float64
    want = unpadded_means(bert_dir, ["dog barking", "playing guitar", "hand shaking", "dog"])
    np.testing.assert_allclose(lex, want, atol=1e-5)
    assert not np.allclose(lex[0], lex[3])


def test_sentence_transformers_folder_gives_the_same_vectors(bert_dir, sentence_dir):
    assert os.path.isfile(os.path.join(sentence_dir, "modules.json"))
    via_sentence = build_text_lexicon(NAMES, method="bert", bert_model=sentence_dir)
    via_transformers = build_text_lexicon(NAMES, method="bert", bert_model=bert_dir)
    np.testing.assert_allclose(via_sentence, via_transformers, atol=1e-5)


def test_missing_package_or_folder_is_a_clear_error(bert_dir, sentence_dir, tmp_path, monkeypatch):
    with pytest.raises(TextLexiconError, match="model folder not found"):
        build_text_lexicon(NAMES, method="bert", bert_model=str(tmp_path / "nowhere"))
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(TextLexiconError, match=r"sentence-transformers.*pip install -e \.\[text\]"):
        build_text_lexicon(NAMES, method="bert", bert_model=sentence_dir)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(TextLexiconError, match=r"'transformers' package \(pip install -e \.\[text\]\)"):
        build_text_lexicon(NAMES, method="bert", bert_model=bert_dir)


def test_gen_text_lexicon_tool_with_bert(bert_dir, tmp_path):
    names = tmp_path / "categories.txt"
    names.write_text("".join(f"{n}\n" for n in NAMES))
    out = tmp_path / "text-lexicon.npz"
    run = subprocess.run(
        [sys.executable, "tools/gen_text_lexicon.py", "--class-names", str(names), "--out", str(out),
         "--method", "bert", "--bert-model", bert_dir],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    from m3a.utils.lexicon import load_text_lexicon

    lex = load_text_lexicon(str(out))
    np.testing.assert_allclose(lex, build_text_lexicon(NAMES, method="bert", bert_model=bert_dir), atol=1e-6)
