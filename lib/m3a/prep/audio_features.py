"""Per-clip audio features for the audio lexicon, computed in worker processes with a resumable cache.

The cache is a folder of ``part-NNNNN.npz`` files (``keys``, ``status``, ``features``), each
written atomically once ``chunk_size`` clips are done; a re-run loads them and skips those clips.
Each part also records the settings that produced it (embedder, examples per clip, silence
threshold, sample rate); a cache made with other settings is refused. Where the audio was
decoded from (the video or a wav extracted from it) is not part of the settings: both hold the
same 16 kHz audio. Unreadable clips are not cached, so a re-run tries them again.
"""
import glob
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from m3a.prep.audio_lexicon import clip_feature, waveform_rms
from m3a.utils.file_io import atomic_path
from m3a.utils.parallel import parallel_imap

logger = logging.getLogger(__name__)

KEPT, SILENT, NO_AUDIO, UNREADABLE = "kept", "silent", "no-audio", "unreadable"

_EMBEDDER = None
_SETTINGS: dict = {}


def _init_worker(weights: Optional[str], pca: Optional[str], settings: dict) -> None:
    from m3a.prep.audio_embedding import build_audio_embedder

    global _EMBEDDER, _SETTINGS
    _EMBEDDER = build_audio_embedder(weights, pca)
    _SETTINGS = settings


def _clip_job(job: Tuple[str, str]) -> Tuple[str, str, Optional[np.ndarray], str]:
    import av

    from m3a.prep.audio_io import read_audio

    key, path = job
    rate = _SETTINGS["sample_rate"]
    try:
        waveform = read_audio(path, rate)
    except (OSError, av.FFmpegError, ValueError) as err:
        return key, UNREADABLE, None, f"{path}: {err}"
    if waveform is None:
        return key, NO_AUDIO, None, ""
    if waveform.size == 0 or waveform_rms(waveform) < _SETTINGS["silence_rms"]:
        return key, SILENT, None, ""
    feature = clip_feature(waveform, _EMBEDDER, _SETTINGS["examples_per_clip"], rate)
    return key, KEPT, feature, ""


class FeatureCache:
    """Folder of finished chunks of clip results (see the module docstring)."""

    def __init__(self, folder: str, signature: str, dim: int):
        self.folder, self.signature, self.dim = folder, signature, dim
        os.makedirs(folder, exist_ok=True)
        self.results: Dict[str, Tuple[str, Optional[np.ndarray]]] = {}
        self.parts = sorted(glob.glob(os.path.join(folder, "part-[0-9][0-9][0-9][0-9][0-9].npz")))
        for part in self.parts:
            with np.load(part, allow_pickle=False) as data:
                if str(data["signature"]) != signature:
                    raise ValueError(
                        f"{part}: cached with other settings ({data['signature']}); "
                        f"delete {folder} or pass another --cache-dir"
                    )
                for key, status, feat in zip(data["keys"], data["status"], data["features"]):
                    self.results[str(key)] = (str(status), feat if status == KEPT else None)
        self.pending: List[Tuple[str, str, Optional[np.ndarray]]] = []

    def add(self, key: str, status: str, feature: Optional[np.ndarray], chunk_size: int) -> None:
        """Record one clip; write a part when ``chunk_size`` clips are pending."""
        self.results[key] = (status, feature)
        self.pending.append((key, status, feature))
        if len(self.pending) >= chunk_size:
            self.flush()

    def flush(self) -> None:
        """Write the pending clips as the next part file."""
        if not self.pending:
            return
        number = 1 + max((int(os.path.basename(p)[5:10]) for p in self.parts), default=-1)
        path = os.path.join(self.folder, f"part-{number:05d}.npz")
        feats = np.stack([f if f is not None else np.zeros(self.dim, np.float32) for _, _, f in self.pending])
        with atomic_path(path) as tmp:
            np.savez(
                tmp,
                keys=np.array([k for k, _, _ in self.pending]),
                status=np.array([s for _, s, _ in self.pending]),
                features=feats.astype(np.float32),
                signature=np.array(self.signature),
            )
        self.parts.append(path)
        self.pending = []


def compute_clip_features(
    clips: Sequence[Tuple[str, str]],
    weights: Optional[str] = None,
    pca: Optional[str] = None,
    examples_per_clip: int = 3,
    silence_rms: float = 1e-3,
    sample_rate: int = 16000,
    workers: int = 1,
    cache_dir: Optional[str] = None,
    chunk_size: int = 500,
) -> Tuple[Dict[str, Tuple[str, Optional[np.ndarray]]], List[str]]:
    """Status and feature of every (key, media path) clip, plus error messages of unreadable ones."""
    settings = dict(examples_per_clip=examples_per_clip, silence_rms=silence_rms, sample_rate=sample_rate)
    embedder_name = "logmel-stats"
    if weights:
        embedder_name = f"vggish:{os.path.basename(weights)}:{os.path.basename(pca or '')}"
    signature = f"{embedder_name}|examples={examples_per_clip}|rms={silence_rms}|rate={sample_rate}"
    dim = examples_per_clip * 128
    cache = FeatureCache(cache_dir, signature, dim) if cache_dir else None
    results = dict(cache.results) if cache else {}
    todo = [c for c in clips if c[0] not in results]
    if cache and results:
        logger.info("feature cache %s: %d clips done, %d to go", cache_dir, len(results), len(todo))
    errors = []
    if not todo:
        return results, errors
    try:
        for key, status, feature, message in parallel_imap(
            _clip_job, todo, workers, desc="audio features",
            initializer=_init_worker, initargs=(weights, pca, settings),
        ):
            results[key] = (status, feature)
            if message:
                errors.append(message)
            if cache and status != UNREADABLE:  # unreadable clips are retried on the next run
                cache.add(key, status, feature, chunk_size)
    finally:  # keep what is done, also when interrupted
        if cache:
            cache.flush()
    return results, errors
