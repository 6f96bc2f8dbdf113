"""Per-example audio embedders: VGGish (with user-supplied weights) or a weight-free fallback."""
import logging
from typing import Optional

import numpy as np
import torch

from m3a.prep.logmel import log_mel_examples

logger = logging.getLogger(__name__)


class LogMelStatsEmbedder:
    """Fallback embedder: per-mel-band mean and std of each 96x64 log-mel example (128-d).

    Deterministic and needs no weights; used when no VGGish weights are given. It is not VGGish:
    lexicons built with it are only for demos and tests.
    """

    name = "logmel-stats"

    def embed(self, waveform: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
        """(k, 128) float32 embeddings of the waveform's k log-mel examples."""
        examples = log_mel_examples(waveform, sample_rate)
        feats = np.concatenate([examples.mean(axis=1), examples.std(axis=1)], axis=1)
        return feats.astype(np.float32).reshape(-1, 128)


class VGGishEmbedder:
    """VGGish embeddings of log-mel examples, optionally PCA-post-processed (8-bit values)."""

    name = "vggish"

    def __init__(self, weights: str, pca_params: Optional[str] = None, batch_size: int = 64):
        from m3a.prep.vggish import load_postprocessor, load_vggish

        self.model = load_vggish(weights)
        self.postprocessor = load_postprocessor(pca_params) if pca_params else None
        self.batch_size = batch_size

    @torch.no_grad()
    def embed(self, waveform: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
        """(k, 128) float32 embeddings of the waveform's k log-mel examples."""
        examples = torch.from_numpy(log_mel_examples(waveform, sample_rate))
        outputs = [
            self.model(examples[i : i + self.batch_size].unsqueeze(1)).numpy()
            for i in range(0, examples.shape[0], self.batch_size)
        ]
        emb = np.concatenate(outputs) if outputs else np.zeros((0, 128), np.float32)
        if self.postprocessor is not None:
            emb = self.postprocessor(emb)
        return emb.astype(np.float32)


def build_audio_embedder(weights: Optional[str] = None, pca_params: Optional[str] = None):
    """VGGish when ``weights`` is given, otherwise the log-mel statistics fallback (with a warning)."""
    if weights:
        return VGGishEmbedder(weights, pca_params)
    if pca_params:
        raise ValueError("VGGish PCA parameters given without VGGish weights")
    logger.warning(
        "no VGGish weights given: using the fallback log-mel statistics embedder "
        "(per-band mean and std, 128-d); it is NOT VGGish, fine for demos only"
    )
    return LogMelStatsEmbedder()
