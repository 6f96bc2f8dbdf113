"""A synthetic data folder shaped for a config, for speed measurements without the real data.

Loader throughput depends on the video files (size, codec, length), not on what they show or
how they are labelled; the model needs lists, class names and the M3A lexicons of the right
shapes. :func:`make_shaped_dataset` writes all of them for an M-MiT-style config (lists named
``{split}-{DATA.MMIT_VERSION}.csv``) so that ``build_model(cfg)`` and the loader run unchanged
with ``DATA.PATH_TO_DATA_DIR`` set to the folder. Layout (``V`` = DATA.MMIT_VERSION, ``N`` =
MODEL.NUM_CLASSES)::

    videos/video_NNNN.mp4           generated H.264 + AAC videos (m3a.datasets.benchmark)
    {train,val,test}-V.csv          every video, 1-3 random labels each (1 without DATA.MULTI_LABEL;
                                    val and test list the same videos as train: the folder is for
                                    speed, not accuracy)
    categories-V.txt                class_000 ... (N names)
    mmit-m3a/graph-adj-V.npz        psi over the training labels (N, N)
    mmit-m3a/text-lexicon-V.npz     random (N, M3A.TEXT_VEC_SIZE or 300)
    mmit-m3a/audio-lexicon-V.npz    one random M3A.AUDIO_VEC_SIZE feature per class
    README.txt                      what was asked for; written first, so a rerun can resume
    .complete                       written last

Everything is drawn from ``seed``. The loader reads no audio stream (the audio modality enters as
lexicon node features); the videos carry AAC audio anyway, as M-MiT's do.
"""
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
from fvcore.common.config import CfgNode

from m3a.datasets.benchmark import generate_videos
from m3a.prep.audio_lexicon import assemble_audio_lexicon
from m3a.utils import lexicon
from m3a.utils.file_io import atomic_write_text, write_lines

SPLITS = ("train", "val", "test")
COMPLETE_MARKER = ".complete"
README = "README.txt"
# Text lexicon width when the config takes it from the file (M3A.TEXT_VEC_SIZE 0): GloVe's.
DEFAULT_TEXT_WIDTH = 300


class ShapedDataError(ValueError):
    """The output folder holds something else than the requested data set."""


def draw_labels(videos: int, num_classes: int, seed: int, most: int = 3) -> List[Tuple[int, ...]]:
    """1 to ``most`` distinct random labels per video (sorted), deterministic from ``seed``."""
    rng = np.random.default_rng([seed, 1])
    counts = rng.integers(1, min(most, num_classes) + 1, size=videos)
    return [tuple(sorted(int(c) for c in rng.choice(num_classes, size=k, replace=False))) for k in counts]


def describe(cfg: CfgNode, videos: int, seconds: float, short_side: int, aspect: float, seed: int) -> str:
    """README text: what the folder holds; equal texts mean equal requests."""
    m3a = cfg.M3A
    return (
        "m3a shaped data set (synthetic; written by tools/make_shaped_data.py) for speed measurements\n"
        f"{videos} videos: {seconds:g} s, short side {short_side} px, aspect {aspect:.3f}, 30 fps, H.264 + AAC\n"
        f"version {cfg.DATA.MMIT_VERSION}, {cfg.MODEL.NUM_CLASSES} classes, 1-3 random labels per video, "
        f"seed {seed}\n"
        f"lexicons: text width {m3a.TEXT_VEC_SIZE or DEFAULT_TEXT_WIDTH}, audio width {m3a.AUDIO_VEC_SIZE}\n"
        "val and test list the same videos as train; labels and lexicons are random.\n"
    )


def _check_folder(out_dir: str, readme: str) -> bool:
    """True when ``out_dir`` already holds this data set complete; raise when it holds another
    one or anything else; False when it is empty or holds this one interrupted."""
    if not os.path.isdir(out_dir) or not os.listdir(out_dir):
        return False
    path = os.path.join(out_dir, README)
    theirs = open(path, encoding="utf-8").read() if os.path.isfile(path) else None
    if theirs != readme:
        what = "another shaped data set" if theirs and theirs.startswith("m3a shaped") else "other files"
        raise ShapedDataError(f"{out_dir} holds {what}; remove it or choose another folder")
    return os.path.isfile(os.path.join(out_dir, COMPLETE_MARKER))


def write_lexicons(out_dir: str, cfg: CfgNode, labels: Sequence[Tuple[int, ...]], seed: int) -> None:
    """psi over ``labels`` and random text/audio lexicons of the config's widths, written with
    the project's lexicon writers."""
    n, version = cfg.MODEL.NUM_CLASSES, cfg.DATA.MMIT_VERSION
    rng = np.random.default_rng([seed, 2])
    names = [f"class_{c:03d}" for c in range(n)]
    stem = os.path.join(out_dir, "mmit-m3a")
    lexicon.save_graph_adj(os.path.join(stem, f"graph-adj-{version}.npz"), lexicon.compute_psi(labels, n))
    width = cfg.M3A.TEXT_VEC_SIZE or DEFAULT_TEXT_WIDTH
    lexicon.save_text_lexicon(os.path.join(stem, f"text-lexicon-{version}.npz"), rng.standard_normal((n, width)))
    audio = rng.standard_normal((n, cfg.M3A.AUDIO_VEC_SIZE)).astype(np.float32)
    audio_lexicon = assemble_audio_lexicon([f"synthetic-{c:03d}" for c in range(n)], audio, [[c] for c in range(n)],
                                           names, whiten=False)
    lexicon.save_audio_lexicon(os.path.join(stem, f"audio-lexicon-{version}.npz"), audio_lexicon)
    write_lines(os.path.join(out_dir, f"categories-{version}.txt"), names)


def make_shaped_dataset(cfg: CfgNode, out_dir: str, videos: int, seconds: float, short_side: int,
                        aspect: float, seed: int = 0, progress: Optional[Callable[[], None]] = None,
                        workers: int = 1) -> bool:
    """Write the folder (see the module docstring); return False when it was already complete.

    An interrupted run resumes (finished videos are kept); a folder holding anything else is
    refused with :class:`ShapedDataError`. ``progress`` is called once per video; ``workers``
    processes encode the videos.
    """
    if videos < 1:
        raise ShapedDataError(f"need at least 1 video, got {videos}")
    if cfg.MODEL.NUM_CLASSES < 1:
        raise ShapedDataError(f"MODEL.NUM_CLASSES must be at least 1, got {cfg.MODEL.NUM_CLASSES}")
    if cfg.TRAIN.DATASET.lower() != "mmit" or cfg.DATA.LIST_FORMAT not in ("", "mmit_csv"):
        raise ShapedDataError(f"only M-MiT-style configs (TRAIN.DATASET mmit, mmit_csv lists) are supported, got "
                              f"TRAIN.DATASET {cfg.TRAIN.DATASET} DATA.LIST_FORMAT '{cfg.DATA.LIST_FORMAT}'")
    readme = describe(cfg, videos, seconds, short_side, aspect, seed)
    if _check_folder(out_dir, readme):
        return False
    os.makedirs(os.path.join(out_dir, "mmit-m3a"), exist_ok=True)
    atomic_write_text(os.path.join(out_dir, README), readme)
    folder = os.path.join(out_dir, "videos")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for path in generate_videos(folder, videos, seconds, short_side, aspect=aspect, skip_existing=True,
                                workers=workers):
        paths.append(os.path.relpath(path, out_dir))
        if progress:
            progress()
    labels = draw_labels(videos, cfg.MODEL.NUM_CLASSES, seed, 3 if cfg.DATA.MULTI_LABEL else 1)
    rows = [cfg.DATA.PATH_LABEL_SEPARATOR.join([p, *map(str, lab)]) for p, lab in zip(paths, labels)]
    for split in SPLITS:
        write_lines(os.path.join(out_dir, f"{split}-{cfg.DATA.MMIT_VERSION}.csv"), rows)
    write_lexicons(out_dir, cfg, labels, seed)
    atomic_write_text(os.path.join(out_dir, COMPLETE_MARKER), f"{videos} videos, {cfg.MODEL.NUM_CLASSES} classes\n")
    return True
