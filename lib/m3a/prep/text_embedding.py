"""Text lexicon: one vector per class name from GloVe, BERT, or a weight-free hashed fallback.

Class names are split into words on ``+``, ``/``, ``_`` and whitespace, lowercased, and the word
vectors averaged (DESIGN.md section 4). With GloVe a hyphenated word missing from the vocabulary
is split on ``-`` as well; words still missing are reported, and a name with no known word gets
a zero vector (with a warning).
"""
import hashlib
import io
import logging
import os
import re
import zipfile
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

METHODS = ("auto", "glove", "bert", "hashed")
_SPLIT = re.compile(r"[+/_\s]+")


class TextLexiconError(ValueError):
    """The text lexicon cannot be built (missing file, wrong dimension, missing package)."""


def split_name(name: str) -> List[str]:
    """Lowercased words of a class name split on ``+``, ``/``, ``_`` and whitespace."""
    return [w for w in _SPLIT.split(name.strip().lower()) if w]


def hashed_word_vector(word: str, dim: int = 300) -> np.ndarray:
    """Deterministic unit vector of a word, seeded by the SHA-256 of its lowercased text."""
    seed = int.from_bytes(hashlib.sha256(word.lower().encode("utf-8")).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dim)
    return vec / np.linalg.norm(vec)


def hashed_lexicon(class_names: Sequence[str], dim: int = 300) -> np.ndarray:
    """(N, dim) mean of hashed word vectors per name: names sharing words are related."""
    rows = []
    for name in class_names:
        words = split_name(name) or [name]
        rows.append(np.mean([hashed_word_vector(w, dim) for w in words], axis=0))
    return np.stack(rows).astype(np.float64) if rows else np.zeros((0, dim))


def _glove_lines(path: str) -> Iterator[str]:
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith(".txt")]
            if not members:
                raise TextLexiconError(f"{path}: no .txt file inside the zip")
            with archive.open(members[0]) as raw:
                yield from io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f


def read_glove(path: str, words: Iterable[str]) -> Dict[str, np.ndarray]:
    """Vectors of the requested words from a GloVe ``.txt`` (or a ``.zip`` holding one)."""
    if not os.path.isfile(path):
        raise TextLexiconError(f"GloVe file not found: {path}")
    wanted = set(words)
    found: Dict[str, np.ndarray] = {}
    for number, line in enumerate(_glove_lines(path), start=1):
        word, _, rest = line.rstrip("\n").partition(" ")
        if word not in wanted or word in found:
            continue
        try:
            found[word] = np.array(rest.split(" "), dtype=np.float64)
        except ValueError:
            raise TextLexiconError(f"{path}:{number}: not a GloVe line (word then numbers)") from None
        if len(found) == len(wanted):
            break
    dims = {v.size for v in found.values()}
    if len(dims) > 1:
        raise TextLexiconError(f"{path}: vectors of different sizes {sorted(dims)}")
    return found


def glove_lexicon(class_names: Sequence[str], glove: str, dim: int = 300) -> np.ndarray:
    """(N, dim) mean GloVe vector of each name's words; OOV words are logged."""
    name_words = [split_name(n) for n in class_names]
    candidates = {w for words in name_words for w in words}
    candidates |= {p for w in candidates if "-" in w for p in w.split("-") if p}
    vectors = read_glove(glove, candidates)
    if vectors and next(iter(vectors.values())).size != dim:
        size = next(iter(vectors.values())).size
        raise TextLexiconError(f"{glove}: vectors have {size} dims, expected {dim}")
    rows, oov, empty = [], set(), []
    for name, words in zip(class_names, name_words):
        vecs = []
        for word in words:
            parts = [word] if word in vectors else [p for p in word.split("-") if p]
            for part in parts:
                if part in vectors:
                    vecs.append(vectors[part])
                else:
                    oov.add(part)
        if not vecs:
            empty.append(name)
        rows.append(np.mean(vecs, axis=0) if vecs else np.zeros(dim))
    if oov:
        logger.warning("%d word(s) not in GloVe: %s", len(oov), ", ".join(sorted(oov)))
    for name in empty:
        logger.warning("class '%s' has no word in GloVe: zero text vector", name)
    return np.stack(rows).astype(np.float64) if rows else np.zeros((0, dim))


def bert_lexicon(class_names: Sequence[str], model_path: Optional[str]) -> np.ndarray:
    """(N, hidden) sentence embeddings of the names (words joined by spaces) from a local model."""
    if not model_path:
        raise TextLexiconError("method 'bert' needs a local model path (--bert-model)")
    sentences = [" ".join(split_name(n)) for n in class_names]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        SentenceTransformer = None
    if SentenceTransformer is not None:
        model = SentenceTransformer(model_path, device="cpu")
        return np.asarray(model.encode(sentences, convert_to_numpy=True), dtype=np.float64)
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise TextLexiconError(
            "method 'bert' needs 'sentence-transformers' or 'transformers' "
            "(pip install -e .[text])"
        ) from None
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()
    with torch.no_grad():
        batch = tokenizer(sentences, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
    return pooled.numpy().astype(np.float64)


def build_text_lexicon(
    class_names: List[str],
    glove: Optional[str] = None,
    method: str = "auto",
    dim: int = 300,
    bert_model: Optional[str] = None,
) -> np.ndarray:
    """(N, dim) float64 text lexicon of the class names.

    ``method``: ``glove`` (needs ``glove``), ``hashed`` (weight-free fallback, logged as such),
    ``bert`` (needs a local ``bert_model`` and transformers/sentence-transformers; its width is
    the model's, ``dim`` is not used) or ``auto`` (GloVe when a file is given, else hashed).
    """
    if method not in METHODS:
        raise TextLexiconError(f"unknown method '{method}', expected one of {METHODS}")
    if method == "auto":
        method = "glove" if glove else "hashed"
    if method == "glove":
        if not glove:
            raise TextLexiconError("method 'glove' needs a GloVe file (--glove)")
        return glove_lexicon(class_names, glove, dim)
    if method == "bert":
        return bert_lexicon(class_names, bert_model)
    logger.warning(
        "text lexicon: using the fallback hashed word vectors (%d-d, no pretrained weights); "
        "it is NOT GloVe, fine for demos only", dim
    )
    return hashed_lexicon(class_names, dim)
