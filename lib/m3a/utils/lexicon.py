"""The three per-class artefacts of M3A: graph adjacency (psi), text lexicon and audio lexicon.

Files live in ``DATA.PATH_TO_DATA_DIR/mmit-m3a/{graph-adj,text-lexicon,audio-lexicon}-{VERSION}``.
Published files are pickles (read with a restricted unpickler); files we write are ``.npz``:
- graph-adj: array ``psi`` (N, N) float64.
- text-lexicon: array ``lexicon`` (N, Q) float64.
- audio-lexicon: ``class_names`` (N,), ``keys`` (M,), ``features`` (M, P) float32 and the
  many-to-many membership as pairs ``member_class`` (E,) / ``member_key`` (E,) of indices.
In memory the audio lexicon is the published dict
``{'label': OrderedDict(class -> [audio keys]), 'audio': {audio key -> float32 (P,)}}``.
"""
import os
import pickle
from collections import OrderedDict
from typing import Dict, Iterable, Sequence

import numpy as np

from m3a.utils.errors import InputError
from m3a.utils.file_io import atomic_path
from m3a.utils.safe_pickle import PickleLoadError, load_pickle

KINDS = ("graph-adj", "text-lexicon", "audio-lexicon")


class LexiconError(InputError):
    """A missing or malformed lexicon file; the message names the file."""


class LexiconNotFoundError(LexiconError):
    """The lexicon file is not there at all (neither ``.npz`` nor ``.pkl``), e.g. no data folder yet."""


def lexicon_path(data_dir: str, kind: str, version: str) -> str:
    """Path of an artefact, preferring our ``.npz`` and falling back to the published ``.pkl``."""
    if kind not in KINDS:
        raise ValueError(f"unknown lexicon kind '{kind}', expected one of {KINDS}")
    stem = os.path.join(data_dir, "mmit-m3a", f"{kind}-{version}")
    for ext in (".npz", ".pkl"):
        if os.path.isfile(stem + ext):
            return stem + ext
    raise LexiconNotFoundError(f"{kind} file not found: {stem}.npz or {stem}.pkl")


def compute_psi(label_sets: Iterable[Sequence[int]], num_classes: int) -> np.ndarray:
    """psi_ij = count(i and j in one video) / count(i), with psi_ii = 0 (DESIGN.md section 1)."""
    counts = np.zeros((num_classes, num_classes), dtype=np.float64)
    for labels in label_sets:
        idx = np.unique(np.asarray(labels, dtype=np.int64))
        counts[np.ix_(idx, idx)] += 1.0
    occurrences = np.diag(counts).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        psi = counts / occurrences[:, None]
    psi[~np.isfinite(psi)] = 0.0
    np.fill_diagonal(psi, 0.0)
    return psi


def _load_npz(path: str) -> Dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as err:  # OSError, ValueError, zipfile.BadZipFile, MemoryError, ...
        raise LexiconError(f"{path}: cannot read: {type(err).__name__}: {err}") from None


def _load_any(path: str, npz_key: str):
    if path.endswith(".npz"):
        data = _load_npz(path)
        if npz_key not in data:
            raise LexiconError(f"{path}: missing array '{npz_key}'")
        return data[npz_key]
    try:
        return load_pickle(path)
    except OSError as err:
        raise LexiconError(f"{path}: cannot read: {err}") from None
    except PickleLoadError as err:  # its message starts with the path
        raise LexiconError(f"cannot read lexicon: {err}") from None


def _as_matrix(value, path: str, rows: int = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64) if not isinstance(value, dict) else None
    except (TypeError, ValueError, OverflowError) as err:
        raise LexiconError(f"{path}: expected a numeric matrix, got {type(value).__name__}: {err}") from None
    if arr is None or arr.ndim != 2 or (rows is not None and arr.shape[0] != rows):
        shape = None if arr is None else arr.shape
        raise LexiconError(f"{path}: expected a ({rows or 'N'}, ...) matrix, got {shape}")
    return arr


def load_graph_adj(path: str, num_classes: int = None) -> np.ndarray:
    """Load psi (N, N) float64 from a ``.npz`` or published ``.pkl``."""
    psi = _as_matrix(_load_any(path, "psi"), path, num_classes)
    if psi.shape[0] != psi.shape[1]:
        raise LexiconError(f"{path}: graph adjacency must be square, got {psi.shape}")
    return psi


def load_text_lexicon(path: str, num_classes: int = None) -> np.ndarray:
    """Load the text lexicon (N, Q) float64 from a ``.npz`` or published ``.pkl``."""
    return _as_matrix(_load_any(path, "lexicon"), path, num_classes)


def _audio_from_npz(path: str) -> dict:
    data = _load_npz(path)
    for key in ("class_names", "keys", "features", "member_class", "member_key"):
        if key not in data:
            raise LexiconError(f"{path}: missing array '{key}'")
    keys = [str(k) for k in data["keys"]]
    label = OrderedDict((str(c), []) for c in data["class_names"])
    names = list(label)
    for c, k in zip(data["member_class"], data["member_key"]):
        label[names[int(c)]].append(keys[int(k)])
    audio = {k: data["features"][i].astype(np.float32) for i, k in enumerate(keys)}
    return {"label": label, "audio": audio}


def load_audio_lexicon(path: str, num_classes: int = None) -> dict:
    """Load the audio lexicon as the published dict (see module docstring) and check it."""
    lex = _audio_from_npz(path) if path.endswith(".npz") else _load_any(path, "")
    if not isinstance(lex, dict) or not isinstance(lex.get("label"), dict) or not isinstance(lex.get("audio"), dict):
        raise LexiconError(f"{path}: expected a dict with 'label' and 'audio' dicts")
    if num_classes is not None and len(lex["label"]) != num_classes:
        raise LexiconError(f"{path}: {len(lex['label'])} classes, expected {num_classes}")
    for cls, keys in lex["label"].items():
        if not isinstance(keys, (list, tuple)) or not all(isinstance(k, str) for k in keys):
            raise LexiconError(f"{path}: class '{cls}' must list its audio keys as strings")
        if not keys:
            raise LexiconError(f"{path}: class '{cls}' has no audio feature")
        missing = [k for k in keys if k not in lex["audio"]]
        if missing:
            raise LexiconError(f"{path}: class '{cls}' names unknown audio key '{missing[0]}'")
    return lex


def save_graph_adj(path: str, psi: np.ndarray) -> None:
    """Write psi atomically: ``.npz`` (array ``psi``) or the published pickle for ``.pkl``."""
    _save(path, np.asarray(psi, dtype=np.float64), "psi")


def save_text_lexicon(path: str, lexicon: np.ndarray) -> None:
    """Write the text lexicon atomically: ``.npz`` (array ``lexicon``) or published ``.pkl``."""
    _save(path, np.asarray(lexicon, dtype=np.float64), "lexicon")


def save_audio_lexicon(path: str, lexicon: dict) -> None:
    """Write the audio lexicon dict atomically, as ``.npz`` or as the published ``.pkl``."""
    if path.endswith(".pkl"):
        _save(path, lexicon, None)
        return
    keys = list(lexicon["audio"])
    index = {k: i for i, k in enumerate(keys)}
    pairs = [(c, index[k]) for c, ks in enumerate(lexicon["label"].values()) for k in ks]
    arrays = {
        "class_names": np.array([str(c) for c in lexicon["label"]]),
        "keys": np.array(keys),
        "features": np.stack([np.asarray(lexicon["audio"][k], np.float32) for k in keys]),
        "member_class": np.array([p[0] for p in pairs], dtype=np.int64),
        "member_key": np.array([p[1] for p in pairs], dtype=np.int64),
    }
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def _save(path: str, value, npz_key) -> None:
    with atomic_path(path) as tmp:
        if path.endswith(".pkl"):
            with open(tmp, "wb") as f:
                pickle.dump(value, f, protocol=4)
        else:
            np.savez(tmp, **{npz_key: value})
