"""Text lexicon: one vector per class name from GloVe, BERT, CLIP's text encoder, or a weight-free
hashed fallback.

Class names are split into words on ``+``, ``/``, ``_`` and whitespace, lowercased, and the word
vectors averaged (DESIGN.md section 4). With GloVe a hyphenated word missing from the vocabulary
is split on ``-`` as well; words still missing are reported, and a name with no known word gets
a zero vector (with a warning). With CLIP (:func:`clip_lexicon`) the name's words, joined by
spaces, fill a prompt template and the row is the text encoder's L2-normalised embedding.
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

METHODS = ("auto", "glove", "bert", "clip", "hashed")
# Prompt of a class name for --method clip ({} = the name's words joined by spaces).
DEFAULT_CLIP_PROMPT = "a video of a person {}."
# Prompts encoded per forward of CLIP's text encoder.
CLIP_BATCH = 64
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


def _zip_member(path: str, names: List[str], dim: Optional[int]) -> str:
    texts = [n for n in names if n.endswith(".txt")]
    sized = [n for n in texts if dim is not None and n.endswith(f".{dim}d.txt")]
    if len(sized) == 1 or len(texts) == 1:
        return (sized or texts)[0]
    raise TextLexiconError(f"{path}: cannot tell which of {texts} holds {dim}-d vectors")


def _glove_lines(path: str, dim: Optional[int] = None) -> Iterator[str]:
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            member = _zip_member(path, archive.namelist(), dim)
            with archive.open(member) as raw:
                yield from io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f


def read_glove(path: str, words: Iterable[str], dim: Optional[int] = None) -> Dict[str, np.ndarray]:
    """Vectors of the requested words from a GloVe ``.txt`` or ``.zip``.

    In a zip holding several sizes (``glove.6B.zip``) the member ``*.{dim}d.txt`` is read.
    """
    if not os.path.isfile(path):
        raise TextLexiconError(f"GloVe file not found: {path}")
    wanted = set(words)
    found: Dict[str, np.ndarray] = {}
    for number, line in enumerate(_glove_lines(path, dim), start=1):
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
    vectors = read_glove(glove, candidates, dim)
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


_TEXT_EXTRA = "pip install -e .[text]"


def bert_lexicon(class_names: Sequence[str], model_path: Optional[str]) -> np.ndarray:
    """(N, hidden) embeddings of the names (words joined by spaces) from a local model folder.

    A sentence-transformers folder (one with ``modules.json``, e.g. all-MiniLM-L6-v2) runs
    through sentence-transformers with its own pooling and normalisation; any other
    transformers folder (BERT and the like) is mean-pooled over its non-padding tokens.
    Nothing is fetched from a model hub.
    """
    if not model_path:
        raise TextLexiconError("method 'bert' needs a local model path (--bert-model)")
    if not os.path.isdir(model_path):
        raise TextLexiconError(f"--bert-model: model folder not found: {model_path}")
    sentences = [" ".join(split_name(n)) for n in class_names]
    if os.path.isfile(os.path.join(model_path, "modules.json")):
        return _sentence_transformer_embeddings(model_path, sentences)
    return _mean_pooled_embeddings(model_path, sentences)


def _sentence_transformer_embeddings(model_path: str, sentences: List[str]) -> np.ndarray:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TextLexiconError(
            f"{model_path} is a sentence-transformers model (modules.json); it needs the "
            f"'sentence-transformers' package ({_TEXT_EXTRA})"
        ) from None
    model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    logger.info("text lexicon: sentence-transformers model %s", model_path)
    return np.asarray(model.encode(sentences, convert_to_numpy=True), dtype=np.float64)


def _mean_pooled_embeddings(model_path: str, sentences: List[str]) -> np.ndarray:
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        raise TextLexiconError(f"method 'bert' needs the 'transformers' package ({_TEXT_EXTRA})") from None
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    model = AutoModel.from_pretrained(model_path, local_files_only=True).eval()
    logger.info("text lexicon: transformers model %s, mean-pooled over tokens", model_path)
    with torch.no_grad():
        batch = tokenizer(sentences, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
    return pooled.numpy().astype(np.float64)


def clip_prompts(class_names: Sequence[str], prompt: str = DEFAULT_CLIP_PROMPT) -> List[str]:
    """The prompt of each class: ``prompt`` with ``{}`` replaced by the name's words (split on
    ``+``, ``/``, ``_`` and spaces, lower-cased) joined by spaces."""
    if "{}" not in prompt:
        raise TextLexiconError(f"the CLIP prompt must contain {{}} for the class name, got {prompt!r}")
    return [prompt.replace("{}", " ".join(split_name(n)) or n) for n in class_names]


def load_openai_clip(path: str):
    """OpenAI's CLIP (image and text encoders) with the weights of a local release file: a
    TorchScript archive (``ViT-B-16.pt``, read without running its code) or a plain state dict
    in OpenAI's layout; the architecture is read off the weights. Nothing is downloaded."""
    import torch

    from m3a.models.clip.model import CLIP, convert_openai_state, spec_of_state
    from m3a.utils.checkpoint import CheckpointError, extract_state, read_checkpoint

    if not path:
        raise TextLexiconError("method 'clip' needs a local OpenAI CLIP file (--clip-weights)")
    try:
        state, _ = convert_openai_state(extract_state(read_checkpoint(path), path))
        model = CLIP(spec_of_state(state))
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except (CheckpointError, ValueError, RuntimeError) as err:
        raise TextLexiconError(f"--clip-weights {path}: {str(err).splitlines()[0]}") from None
    logger.info("text lexicon: CLIP text encoder of %s (%d-d)", path, model.spec.embed_dim)
    return model.eval().to(torch.float32)


def clip_lexicon(class_names: Sequence[str], weights: Optional[str], prompt: str = DEFAULT_CLIP_PROMPT) -> np.ndarray:
    """(N, embed_dim) L2-normalised CLIP text embeddings of the classes' prompts
    (:func:`clip_prompts`), from the local CLIP file ``weights`` (:func:`load_openai_clip`)."""
    import torch

    from m3a.models.clip.tokenizer import tokenize

    texts = clip_prompts(class_names, prompt)
    model = load_openai_clip(weights)
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), CLIP_BATCH):
            tokens = tokenize(texts[start:start + CLIP_BATCH], model.spec.context_length, truncate=True)
            emb = model.encode_text(tokens)
            rows.append(emb / emb.norm(dim=-1, keepdim=True))
    if not rows:
        return np.zeros((0, model.spec.embed_dim))
    return torch.cat(rows).double().numpy()


def build_text_lexicon(
    class_names: List[str],
    glove: Optional[str] = None,
    method: str = "auto",
    dim: int = 300,
    bert_model: Optional[str] = None,
    clip_weights: Optional[str] = None,
    prompt: str = DEFAULT_CLIP_PROMPT,
) -> np.ndarray:
    """(N, dim) float64 text lexicon of the class names.

    ``method``: ``glove`` (needs ``glove``), ``hashed`` (weight-free fallback, logged as such),
    ``bert`` (needs a local ``bert_model`` and transformers/sentence-transformers; its width is
    the model's, ``dim`` is not used), ``clip`` (CLIP's text encoder on ``prompt``, weights from
    the local file ``clip_weights``; its width is CLIP's embedding width) or ``auto`` (GloVe when
    a file is given, else hashed).
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
    if method == "clip":
        return clip_lexicon(class_names, clip_weights, prompt)
    logger.warning(
        "text lexicon: using the fallback hashed word vectors (%d-d, no pretrained weights); "
        "it is NOT GloVe, fine for demos only", dim
    )
    return hashed_lexicon(class_names, dim)
