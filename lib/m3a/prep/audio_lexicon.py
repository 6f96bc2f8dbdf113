"""Building the audio lexicon: per-clip VGGish features (3 x 128 = 384-d), PCA-whitened, by class.

Choices made here (DESIGN.md section 4 leaves them open):
- A clip is silent when the RMS of its 16 kHz waveform is below ``silence_rms``; silent clips
  are dropped and counted.
- A clip yields ``examples_per_clip`` examples: evenly spaced over its examples when it has more,
  repeated cyclically when it has fewer (a clip under 0.96 s is tiled to one full example first).
- PCA whitening (centre, project on the principal axes, divide by the axis std, sklearn's
  ``PCA(whiten=True)`` convention) is fitted on the kept clips. With fewer clips than dimensions
  only ``rank`` axes carry variance: those are whitened and the remaining dimensions are zero, so
  the feature keeps its 384 dimensions.
- A class without any non-silent clip raises AudioLexiconError naming it (``on_empty="error"``,
  the default); ``on_empty="zeros"`` gives it one all-zero feature under the key
  ``<empty>/<class name>`` instead (zero is the whitened mean) and logs a warning.
"""
import logging
from collections import OrderedDict
from typing import List, Sequence, Tuple

import numpy as np

from m3a.prep.logmel import SAMPLE_RATE, WINDOW_LENGTH, EXAMPLE_FRAMES, HOP_LENGTH

logger = logging.getLogger(__name__)

EMPTY_KEY_PREFIX = "<empty>/"


class AudioLexiconError(ValueError):
    """The audio lexicon cannot be built as asked (e.g. a class has no non-silent clip)."""


def waveform_rms(waveform: np.ndarray) -> float:
    """Root-mean-square amplitude of a waveform (0 for an empty one)."""
    wav = np.asarray(waveform, dtype=np.float64)
    return float(np.sqrt(np.mean(wav**2))) if wav.size else 0.0


def clip_feature(
    waveform: np.ndarray,
    embedder,
    examples_per_clip: int = 3,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Concatenate ``examples_per_clip`` example embeddings of one clip into a float32 vector."""
    wav = np.asarray(waveform, dtype=np.float32)
    example_samples = WINDOW_LENGTH + HOP_LENGTH * (EXAMPLE_FRAMES - 1)  # at 16 kHz
    min_samples = int(np.ceil(example_samples * sample_rate / SAMPLE_RATE))
    if 0 < wav.size < min_samples:
        wav = np.tile(wav, int(np.ceil(min_samples / wav.size)))
    emb = embedder.embed(wav, sample_rate)
    if emb.shape[0] == 0:
        raise AudioLexiconError("clip yields no audio example (empty waveform)")
    if emb.shape[0] >= examples_per_clip:
        pick = np.round(np.linspace(0, emb.shape[0] - 1, examples_per_clip)).astype(int)
    else:
        pick = np.arange(examples_per_clip) % emb.shape[0]
    return emb[pick].reshape(-1).astype(np.float32)


def _sign_fix(vt: np.ndarray) -> np.ndarray:
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    return vt * signs[:, None]


def pca_whiten(features: np.ndarray, rel_tol: float = 1e-10) -> np.ndarray:
    """PCA-whiten rows of (M, D): unit variance along each principal axis; zero-pad to D dims."""
    x = np.asarray(features, dtype=np.float64)
    m, d = x.shape
    if m < 2:
        logger.warning("PCA whitening needs at least 2 clips, got %d: features are only centred", m)
        return np.zeros_like(x, dtype=np.float32)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    variance = s**2 / (m - 1)
    rank = int(np.sum(variance > rel_tol * max(variance.max(), np.finfo(float).tiny)))
    if rank < d:
        logger.info("PCA whitening: %d clips give %d axes with variance for %d dims; "
                    "the other %d dims are zero", m, rank, d, d - rank)
    vt = _sign_fix(vt[:rank])
    out = np.zeros((m, d), dtype=np.float64)
    out[:, :rank] = centred @ vt.T / np.sqrt(variance[:rank])
    return out.astype(np.float32)


def assemble_audio_lexicon(
    keys: Sequence[str],
    features: np.ndarray,
    label_lists: Sequence[Sequence[int]],
    class_names: Sequence[str],
    whiten: bool = True,
    on_empty: str = "error",
) -> dict:
    """Whiten per-clip features and group them by class (many-to-many) into the published dict."""
    if on_empty not in ("error", "zeros"):
        raise ValueError(f"on_empty must be 'error' or 'zeros', got '{on_empty}'")
    if len(set(keys)) != len(keys):
        raise AudioLexiconError("audio keys must be unique")
    feats = np.asarray(features, dtype=np.float32).reshape(len(keys), -1)
    if whiten and len(keys):
        feats = pca_whiten(feats)
    label = OrderedDict((name, []) for name in class_names)
    names = list(class_names)
    for key, labels in zip(keys, label_lists):
        for lab in dict.fromkeys(int(x) for x in labels):
            if not 0 <= lab < len(names):
                raise AudioLexiconError(f"clip '{key}': label {lab} outside [0, {len(names)})")
            label[names[lab]].append(key)
    audio = {k: feats[i] for i, k in enumerate(keys)}
    empty = [name for name, ks in label.items() if not ks]
    if empty and on_empty == "error":
        raise AudioLexiconError(
            f"{len(empty)} class(es) have no non-silent audio clip: {', '.join(empty[:10])}"
            + (" ..." if len(empty) > 10 else "")
        )
    dim = feats.shape[1] if feats.size else 0
    for name in empty:
        logger.warning("class '%s' has no non-silent audio clip: using an all-zero feature", name)
        key = EMPTY_KEY_PREFIX + name
        label[name].append(key)
        audio[key] = np.zeros(dim, dtype=np.float32)
    return {"label": label, "audio": audio}


def build_audio_lexicon(
    clips: List[Tuple[str, np.ndarray, List[int]]],
    class_names: List[str],
    embedder,
    examples_per_clip: int = 3,
    silence_rms: float = 1e-3,
    whiten: bool = True,
    sample_rate: int = SAMPLE_RATE,
    on_empty: str = "error",
) -> dict:
    """Build ``{'label': OrderedDict(class -> [keys]), 'audio': {key: float32 (384,)}}`` from clips.

    ``clips`` holds (key, mono waveform at ``sample_rate``, labels); silent clips are dropped
    (the count is logged). See the module docstring for the exact choices.
    """
    keys, feats, label_lists = [], [], []
    silent = 0
    for key, waveform, labels in clips:
        if waveform_rms(waveform) < silence_rms:
            silent += 1
            continue
        keys.append(key)
        feats.append(clip_feature(waveform, embedder, examples_per_clip, sample_rate))
        label_lists.append(labels)
    logger.info("audio lexicon: %d clips kept, %d silent clips dropped (RMS < %g)",
                len(keys), silent, silence_rms)
    dim = examples_per_clip * 128
    matrix = np.stack(feats) if feats else np.zeros((0, dim), np.float32)
    return assemble_audio_lexicon(keys, matrix, label_lists, class_names, whiten, on_empty)
