"""Mini M-MiT: keep videos with an audio stream, then at most ``per_class`` videos per category.

A video's category is the FIRST label of its list line (DESIGN.md section 4). Categories with
more than ``per_class`` videos keep a seeded random subset (numpy ``default_rng(seed)``, one
draw per category in increasing label order); the others keep all their videos. The output
keeps the input's line order and text.
"""
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from m3a.datasets.video_list import VideoEntry, read_video_list
from m3a.prep.audio_io import has_audio_stream
from m3a.utils.parallel import parallel_imap

logger = logging.getLogger(__name__)

AUDIO, NO_AUDIO, UNREADABLE = "audio", "no-audio", "unreadable"


@dataclass(frozen=True)
class ListLine:
    """One non-blank list line: its text as written and the parsed entry."""

    text: str
    entry: VideoEntry


def read_list_lines(path: str, separator: str = ",") -> List[ListLine]:
    """Parse a multi-label list (errors name ``file:line``) keeping each line's original text."""
    entries = read_video_list(path, separator=separator, multi_label=True)
    with open(path) as f:
        texts = [line.rstrip("\r\n") for line in f if line.strip()]
    return [ListLine(t, e) for t, e in zip(texts, entries)]


def probe_audio(video_path: str) -> str:
    """``audio``, ``no-audio`` or ``unreadable`` (missing or undecodable container)."""
    import av

    try:
        return AUDIO if has_audio_stream(video_path) else NO_AUDIO
    except (OSError, av.FFmpegError, ValueError):
        return UNREADABLE


def _read_probe_cache(path: str) -> Dict[str, str]:
    if not path or not os.path.isfile(path):
        return {}
    cache = {}
    with open(path) as f:
        for line in f:
            video, sep, status = line.rstrip("\n").rpartition("\t")
            if sep and status in (AUDIO, NO_AUDIO, UNREADABLE):
                cache[video] = status
    return cache


def probe_videos(
    paths: Sequence[str],
    videos_root: str,
    workers: int = 1,
    cache_path: Optional[str] = None,
) -> Dict[str, str]:
    """Probe every list path (joined to ``videos_root``) for an audio stream.

    Results are appended to ``cache_path`` (``path<TAB>status`` lines) as they come, so an
    interrupted run resumes where it stopped.
    """
    status = _read_probe_cache(cache_path)
    todo = [p for p in dict.fromkeys(paths) if p not in status]
    if status:
        logger.info("probe cache %s: %d videos already probed, %d to go", cache_path, len(status), len(todo))
    full = [os.path.join(videos_root, p) for p in todo]
    cache_file = open(cache_path, "a") if cache_path else None
    try:
        for video, result in zip(todo, parallel_imap(probe_audio, full, workers, desc="probing audio")):
            status[video] = result
            if cache_file is not None:
                cache_file.write(f"{video}\t{result}\n")
                cache_file.flush()
    finally:
        if cache_file is not None:
            cache_file.close()
    return status


def select_mini(
    first_labels: Sequence[int],
    keep: Sequence[bool],
    per_class: int = 300,
    seed: int = 0,
) -> List[int]:
    """Indices (in input order) kept: among ``keep`` ones, at most ``per_class`` per first label."""
    by_class: Dict[int, List[int]] = {}
    for index, (label, ok) in enumerate(zip(first_labels, keep)):
        if ok:
            by_class.setdefault(int(label), []).append(index)
    rng = np.random.default_rng(seed)
    chosen: List[int] = []
    for label in sorted(by_class):
        members = by_class[label]
        if len(members) > per_class:
            pick = rng.choice(len(members), size=per_class, replace=False)
            members = [members[i] for i in sorted(pick)]
        chosen.extend(members)
    return sorted(chosen)


@dataclass
class MiniSummary:
    """Per-category counts (by first label): listed, with audio, kept."""

    listed: Counter
    with_audio: Counter
    kept: Counter
    no_audio: int
    unreadable: int

    def table(self, class_names: Optional[Sequence[str]] = None) -> str:
        """Plain-text table, one category per line, and a total line."""
        rows = [f"{'label':>5}  {'listed':>7}  {'audio':>7}  {'kept':>6}  name"]
        for label in sorted(self.listed):
            name = class_names[label] if class_names and label < len(class_names) else ""
            rows.append(f"{label:>5}  {self.listed[label]:>7}  {self.with_audio[label]:>7}  "
                        f"{self.kept[label]:>6}  {name}")
        rows.append(f"total  {sum(self.listed.values()):>7}  {sum(self.with_audio.values()):>7}  "
                    f"{sum(self.kept.values()):>6}  ({len(self.kept)} categories kept, "
                    f"{self.no_audio} without audio, {self.unreadable} unreadable)")
        return "\n".join(rows)


def build_mini_list(
    lines: Sequence[ListLine],
    status: Dict[str, str],
    per_class: int = 300,
    seed: int = 0,
) -> "tuple[List[ListLine], MiniSummary]":
    """Apply the Mini M-MiT rule to parsed lines given each path's probe status."""
    first = [line.entry.labels[0] for line in lines]
    keep = [status.get(line.entry.path) == AUDIO for line in lines]
    chosen = select_mini(first, keep, per_class, seed)
    summary = MiniSummary(
        listed=Counter(first),
        with_audio=Counter(f for f, k in zip(first, keep) if k),
        kept=Counter(first[i] for i in chosen),
        no_audio=sum(status.get(line.entry.path) == NO_AUDIO for line in lines),
        unreadable=sum(status.get(line.entry.path, UNREADABLE) == UNREADABLE for line in lines),
    )
    return [lines[i] for i in chosen], summary
