"""Inputs of the relation learners read from ``DATA.PATH_TO_DATA_DIR/mmit-m3a``.

The graph adjacency and the text/audio lexicons are loaded with :mod:`m3a.utils.lexicon`
(our ``.npz`` or the published ``.pkl``); only those a configuration needs are read.
"""
import random
from typing import Dict, List

import numpy as np
import torch
from fvcore.common.config import CfgNode

from m3a.utils.lexicon import (
    LexiconError,
    lexicon_path,
    load_audio_lexicon,
    load_graph_adj,
    load_text_lexicon,
)


def modal_list(cfg: CfgNode) -> List[str]:
    """The modalities of ``M3A.MODAL_TYPE`` in order (``RGB_AUDIO`` -> [RGB, AUDIO])."""
    return cfg.M3A.MODAL_TYPE.split("_")


def needed_kinds(cfg: CfgNode) -> List[str]:
    """Lexicon kinds the configuration reads: graph-adj, audio-lexicon, text-lexicon."""
    mods = modal_list(cfg)
    kinds = ["graph-adj"] if cfg.M3A.MODE == "GRAPH" else []
    if "AUDIO" in mods or "AUDIOTEXT" in mods:
        kinds.append("audio-lexicon")
    if "TEXT" in mods or "AUDIOTEXT" in mods:
        kinds.append("text-lexicon")
    return kinds


def load_m3a_inputs(cfg: CfgNode) -> Dict[str, object]:
    """Load the artefacts the M3A head needs: ``psi`` (N, N), ``text`` (N, Q), ``audio`` (dict).

    Raises LexiconError naming the missing or malformed file.
    """
    n = cfg.MODEL.NUM_CLASSES
    data_dir, version = cfg.DATA.PATH_TO_DATA_DIR, cfg.DATA.MMIT_VERSION
    out: Dict[str, object] = {}
    for kind in needed_kinds(cfg):
        path = lexicon_path(data_dir, kind, version)
        if kind == "graph-adj":
            out["psi"] = load_graph_adj(path, n)
        elif kind == "text-lexicon":
            out["text"] = load_text_lexicon(path, n)
            if cfg.M3A.TEXT_VEC_SIZE and out["text"].shape[1] != cfg.M3A.TEXT_VEC_SIZE:
                raise LexiconError(
                    f"{path}: text vectors have width {out['text'].shape[1]}, "
                    f"M3A.TEXT_VEC_SIZE is {cfg.M3A.TEXT_VEC_SIZE}"
                )
        else:
            out["audio"] = load_audio_lexicon(path, n)
            out["audio_path"] = path
    return out


class AudioBank:
    """The audio lexicon as a feature bank (M, P) plus the per-class member lists.

    Node feature of class j: draw ``synonym_size`` members of class j uniformly (with
    replacement), then one of those uniformly -- the release's draw order with Python's
    ``random`` (all classes' synonym lists first, then one pick per class), so that ``fixed``
    with RNG_SEED reproduces the released models' node features exactly.
    """

    def __init__(self, lexicon: dict, vec_size: int, path: str = "audio lexicon") -> None:
        labels = lexicon["label"]
        classes = list(labels)
        if all(isinstance(c, (int, np.integer)) for c in classes):
            classes = sorted(classes)
        keys = list(lexicon["audio"])
        index = {k: i for i, k in enumerate(keys)}
        self.members = [[index[k] for k in labels[c]] for c in classes]
        bank = np.stack([np.asarray(lexicon["audio"][k], np.float32).reshape(-1) for k in keys])
        if bank.shape[1] != vec_size:
            raise LexiconError(
                f"{path}: audio features have width {bank.shape[1]}, "
                f"M3A.AUDIO_VEC_SIZE is {vec_size}"
            )
        self.bank = torch.from_numpy(bank)

    def draw(self, rng: random.Random, synonym_size: int) -> torch.Tensor:
        """Bank row of each class's node feature (N,) drawn with ``rng``."""
        synonyms = [
            [m[rng.randint(0, len(m) - 1)] for _ in range(synonym_size)] for m in self.members
        ]
        return torch.tensor([s[rng.randint(0, synonym_size - 1)] for s in synonyms])


def seeded_draw(bank: AudioBank, seed: int, synonym_size: int) -> torch.Tensor:
    """The ``fixed`` choice: one draw from a Python RNG seeded with ``seed``."""
    return bank.draw(random.Random(seed), synonym_size)


