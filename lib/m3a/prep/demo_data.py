"""The embedded demo data set: short synthetic multi-action videos with sound, plus everything M3A
needs to train on them (lists, class names, co-occurrence graph, text and audio lexicons).

Each video (H.264 + AAC in ``.mp4``) shows 1-3 co-occurring demo actions (see
:mod:`m3a.prep.demo_render`): class ``c`` is the primary action; its partner ``c ^ 1`` joins with
probability ``PAIR_PROB`` and a random other class with probability ``EXTRA_PROB``, so the
co-occurrence graph psi links the pairs. About 5 % of the videos carry no audio stream. Everything
is drawn from ``seed``; each video has its own generator, so the output does not depend on the
number of worker processes. The lexicons are built by the project's own lexicon code from the
generated training videos, exactly as for real data.

Layout under ``out_dir`` (``VERSION`` = ``demo``)::

    videos/{train,val,test}/{split}-NNNN.mp4
    {train,val,test}-demo.csv              path,label[,label...]  (0-based, paths relative)
    categories-demo.txt                    one class name per line, in label order
    mmit-m3a/graph-adj-demo.npz            psi over the training list
    mmit-m3a/text-lexicon-demo.npz         hashed word vectors of the class names (N, 300)
    mmit-m3a/audio-lexicon-demo.npz        384-d log-mel features of the training clips
    README.txt                             what was generated and how
    .complete                              written last: the set is complete
"""
import logging
import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from m3a.utils import lexicon
from m3a.prep.audio_embedding import build_audio_embedder
from m3a.prep.audio_io import read_audio
from m3a.prep.audio_lexicon import build_audio_lexicon
from m3a.prep.demo_render import (ActionInstance, DemoAction, demo_actions, render_audio,
                                  render_video)
from m3a.prep.text_embedding import build_text_lexicon
from m3a.utils.file_io import atomic_write_text
from m3a.utils.parallel import parallel_imap
from m3a.utils.video_writer import write_h264

logger = logging.getLogger(__name__)

VERSION = "demo"
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}
FPS = 30
SAMPLE_RATE = 16000
# Probability that the partner class (c ^ 1) co-occurs with a primary class c.
PAIR_PROB = 0.75
# Probability that one more, random class joins a video.
EXTRA_PROB = 0.25
# Fraction of videos written without an audio stream.
NO_AUDIO_FRACTION = 0.05
COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class VideoSpec:
    """One demo video: its index (which seeds its rendering), split, path, labels and sound."""

    index: int
    split: str
    path: str
    labels: Tuple[int, ...]
    has_audio: bool


def _split_sizes(videos: int) -> Dict[str, int]:
    val = max(1, int(round(videos * SPLIT_FRACTIONS["val"])))
    test = max(1, int(round(videos * SPLIT_FRACTIONS["test"])))
    return {"train": videos - val - test, "val": val, "test": test}


def _draw_labels(primary: int, num_classes: int, rng: np.random.Generator) -> Tuple[int, ...]:
    labels = [primary]
    partner = primary ^ 1
    if partner < num_classes and rng.uniform() < PAIR_PROB:
        labels.append(partner)
    others = [c for c in range(num_classes) if c not in labels]
    if others and rng.uniform() < EXTRA_PROB:
        labels.append(int(rng.choice(others)))
    return tuple(labels)


def _choose_no_audio(specs: List[VideoSpec], num_classes: int,
                     rng: np.random.Generator) -> set:
    """Indices of videos to write without audio, keeping >= 2 sounding train clips per class."""
    target = max(1, int(round(len(specs) * NO_AUDIO_FRACTION)))
    train_audio = np.zeros(num_classes, dtype=np.int64)
    for spec in specs:
        if spec.split == "train":
            train_audio[list(spec.labels)] += 1
    chosen = set()
    for index in rng.permutation(len(specs)):
        if len(chosen) == target:
            break
        spec = specs[index]
        if spec.split == "train":
            if np.any(train_audio[list(spec.labels)] <= 2):
                continue
            train_audio[list(spec.labels)] -= 1
        chosen.add(spec.index)
    return chosen


def plan_videos(videos: int, classes: int, seed: int) -> List[VideoSpec]:
    """Labels, splits and audio presence of every demo video (deterministic from ``seed``)."""
    if videos < 3:
        raise ValueError(f"need at least 3 videos (one per split), got {videos}")
    demo_actions(classes)  # validates the class count
    rng = np.random.default_rng([seed, 0])
    specs = []
    for split in SPLITS:
        size = _split_sizes(videos)[split]
        # Primary classes balanced within each split: concatenated permutations of the classes.
        rounds = -(-size // classes)
        primaries = np.concatenate([rng.permutation(classes) for _ in range(rounds)])[:size]
        for number, primary in enumerate(primaries):
            labels = _draw_labels(int(primary), classes, rng)
            path = f"videos/{split}/{split}-{number:04d}.mp4"
            specs.append(VideoSpec(len(specs), split, path, labels, True))
    silent = _choose_no_audio(specs, classes, rng)
    return [VideoSpec(s.index, s.split, s.path, s.labels, s.index not in silent) for s in specs]


def encode_mp4(path: str, frames: np.ndarray, fps: int, audio: Optional[np.ndarray],
               sample_rate: int = SAMPLE_RATE) -> None:
    """Write RGB frames (T, H, W, 3) uint8 as H.264/yuv420p (+ mono AAC when ``audio``) to
    ``path`` atomically. The bytes are reproducible: encoding is single-threaded and x264's
    macroblock tree is off (with the x264 of PyAV 18's wheels its assembly gave run-to-run
    different bytes for some videos)."""
    height, width = frames.shape[1:3]
    options = {"crf": "20", "preset": "veryfast", "g": str(fps), "threads": "1",
               "x264-params": "mbtree=0"}
    write_h264(path, frames, fps, width, height, audio=audio, sample_rate=sample_rate, options=options)


@dataclass(frozen=True)
class _VideoJob:
    out_dir: str
    spec: VideoSpec
    actions: Tuple[DemoAction, ...]
    seed: int
    duration: float
    width: int
    height: int


def _make_video(job: _VideoJob) -> str:
    """Render and encode one video (runs in a worker process)."""
    rng = np.random.default_rng([job.seed, 1, job.spec.index])
    instances = [ActionInstance.draw(job.actions[c], job.width, job.height, rng)
                 for c in job.spec.labels]
    num_frames = int(round(job.duration * FPS))
    frames = render_video(instances, num_frames, FPS, job.width, job.height, rng)
    audio = None
    if job.spec.has_audio:
        audio = render_audio(instances, int(round(job.duration * SAMPLE_RATE)), SAMPLE_RATE, rng)
    encode_mp4(os.path.join(job.out_dir, job.spec.path), frames, FPS, audio)
    return job.spec.path


def frame_size(size: int) -> Tuple[int, int]:
    """(width, height) of a 4:3 landscape frame with short side ``size`` (both even)."""
    if size < 16 or size % 2:
        raise ValueError(f"short side must be an even number >= 16, got {size}")
    width = int(round(size * 4 / 3 / 2)) * 2
    return width, size


def _list_text(specs: Sequence[VideoSpec]) -> str:
    return "".join(",".join([s.path, *map(str, s.labels)]) + "\n" for s in specs)


def _read_clip_audio(args: Tuple[str, str]) -> Optional[np.ndarray]:
    """Decode one clip's audio at 16 kHz (runs in a worker process)."""
    return read_audio(os.path.join(*args), sample_rate=SAMPLE_RATE)


def build_demo_lexicons(out_dir: str, class_names: Sequence[str],
                        train: Sequence[VideoSpec], workers: int = 1) -> Dict[str, str]:
    """Build psi, the text and the audio lexicon from the training videos with the project's
    lexicon code; return their paths."""
    folder = os.path.join(out_dir, "mmit-m3a")
    paths = {kind: os.path.join(folder, f"{kind}-{VERSION}.npz") for kind in lexicon.KINDS}
    psi = lexicon.compute_psi([s.labels for s in train], len(class_names))
    lexicon.save_graph_adj(paths["graph-adj"], psi)
    text = build_text_lexicon(list(class_names), method="hashed")
    lexicon.save_text_lexicon(paths["text-lexicon"], text)
    waveforms = list(parallel_imap(_read_clip_audio, [(out_dir, s.path) for s in train], workers,
                                   chunksize=1, disable_progress=True))
    clips = [(s.path, wave, list(s.labels)) for s, wave in zip(train, waveforms)
             if wave is not None]
    audio = build_audio_lexicon(clips, list(class_names), build_audio_embedder())
    lexicon.save_audio_lexicon(paths["audio-lexicon"], audio)
    return paths


def _readme(specs: Sequence[VideoSpec], actions: Sequence[DemoAction], seed: int,
            duration: float, width: int, height: int) -> str:
    counts = {split: sum(s.split == split for s in specs) for split in SPLITS}
    per_class = np.zeros(len(actions), dtype=np.int64)
    for spec in specs:
        per_class[list(spec.labels)] += 1
    silent = [s.path for s in specs if not s.has_audio]
    lines = [
        "m3a demo data set (synthetic; generated by tools/make_demo_data.py)",
        "",
        f"{len(specs)} videos: {counts['train']} train, {counts['val']} val, {counts['test']} "
        f"test; {len(actions)} classes; seed {seed}.",
        f"Each video: {duration:g} s, {FPS} fps, {width}x{height}, H.264 (yuv420p) in .mp4, with",
        f"a mono AAC track at {SAMPLE_RATE} Hz, except {len(silent)} video(s) without an audio "
        "stream:",
        *[f"  {p}" for p in silent],
        "",
        "A video shows 1-3 actions over a softly textured, noisy background (a grey object that",
        "belongs to no class wanders through about a third of them). An action is an object of a",
        "class-specific colour and shape moving in a class-specific way, and it makes a sound",
        "that follows its motion (a steady tone while sliding, a knock at each bounce, tremolo",
        "while spinning, louder while growing, vibrato while circling, a downward whistle while",
        "falling) at a class-specific pitch. The soundtrack is the mix of the actions' sounds.",
        "",
        f"Labels: a primary class c (balanced per split); its partner c^1 joins with probability "
        f"{PAIR_PROB},",
        f"and one random other class with probability {EXTRA_PROB}. The pairs (2k, 2k+1) share "
        "their shape",
        "and a word of their names, so the co-occurrence graph and the text lexicon carry signal.",
        "",
        "label  videos  pitch(Hz)  name",
        *[f"{c:5d}  {per_class[c]:6d}  {a.frequency:9.1f}  {a.name}"
          for c, a in enumerate(actions)],
        "",
        "Files: {train,val,test}-demo.csv (path,label[,label...], 0-based labels, paths relative",
        "to this folder), categories-demo.txt (class names in label order), mmit-m3a/ with",
        "graph-adj-demo.npz (psi over the training list), text-lexicon-demo.npz (hashed word",
        "vectors of the names, 300-d) and audio-lexicon-demo.npz (384-d log-mel embeddings of",
        "the training clips, PCA-whitened, grouped by class).",
    ]
    return "\n".join(lines) + "\n"


def make_demo_dataset(out_dir: str, videos: int, classes: int, seed: int = 0,
                      duration: float = 3.0, size: int = 128, workers: int = 1,
                      progress: Optional[Callable[[], None]] = None) -> dict:
    """Generate the demo data set under ``out_dir`` (see the module docstring) and return a
    summary: paths of the lists, class names file and lexicons, class names and counts.

    ``progress`` is called once per finished video. ``.complete`` is written last.
    """
    if duration < 1.0:
        raise ValueError(f"duration must be at least 1 s (one audio example), got {duration}")
    width, height = frame_size(size)
    actions = demo_actions(classes)
    names = [a.name for a in actions]
    specs = plan_videos(videos, classes, seed)
    os.makedirs(out_dir, exist_ok=True)
    marker = os.path.join(out_dir, COMPLETE_MARKER)
    if os.path.exists(marker):
        os.remove(marker)
    for split in SPLITS:
        os.makedirs(os.path.join(out_dir, "videos", split), exist_ok=True)
    jobs = [_VideoJob(out_dir, s, tuple(actions), seed, duration, width, height) for s in specs]
    logger.info("rendering %d videos of %d classes into %s", len(jobs), classes, out_dir)
    for _ in parallel_imap(_make_video, jobs, workers, chunksize=1, disable_progress=True):
        if progress:
            progress()
    summary = {"out_dir": out_dir, "class_names": names, "num_videos": len(specs),
               "no_audio": [s.path for s in specs if not s.has_audio]}
    for split in SPLITS:
        chosen = [s for s in specs if s.split == split]
        summary[f"{split}_list"] = os.path.join(out_dir, f"{split}-{VERSION}.csv")
        summary[f"num_{split}"] = len(chosen)
        atomic_write_text(summary[f"{split}_list"], _list_text(chosen))
    summary["categories"] = os.path.join(out_dir, f"categories-{VERSION}.txt")
    atomic_write_text(summary["categories"], "\n".join(names) + "\n")
    logger.info("building psi and the text and audio lexicons")
    paths = build_demo_lexicons(out_dir, names, [s for s in specs if s.split == "train"], workers)
    summary.update({kind.replace("-", "_"): path for kind, path in paths.items()})
    summary["readme"] = os.path.join(out_dir, "README.txt")
    atomic_write_text(summary["readme"], _readme(specs, actions, seed, duration, width, height))
    atomic_write_text(marker, f"{len(specs)} videos, {classes} classes, seed {seed}\n")
    return summary
