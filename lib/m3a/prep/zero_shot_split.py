"""Held-out class split of a multi-label list data set, for zero-shot evaluation by class name.

From the lists ``{train,val,test}-{version}.csv`` (``path,label[,label...]``) and
``categories-{version}.txt`` of a data set, :func:`write_zero_shot_split` writes, in the same
folder (so the list paths stay valid):

- ``{train,val,test}-seen.csv`` and ``categories-seen.txt``: every video with its seen labels,
  renumbered over the seen classes; the held-out labels are dropped, and a video that shows only
  held-out classes is left out. A held-out class's name and labels never reach training, but its
  objects do appear, unnamed, in training videos that also show a seen class;
- ``test-heldout.csv`` and ``categories-heldout.txt``: the validation and test videos (never
  trained on) that show a held-out class, labelled with their held-out classes only, renumbered
  over the held-out names.

Zero-shot transfer by name can only beat chance through words a held-out name shares with the
seen names (a text tower trained from scratch has never seen its other words):
:func:`check_held_out` refuses a held-out class that shares none. :func:`without_word_sharers`
marks the held-out videos in which no seen class sharing a word with their held-out classes
appears: on the others a model can be right by recognising that seen class.
"""
import os
from typing import Dict, List, Sequence, Tuple

from m3a.datasets.video_list import read_video_list
from m3a.utils.class_names import read_class_names
from m3a.utils.file_io import write_lines

SPLITS = ("train", "val", "test")
# The splits whose videos the held-out list takes (no training video).
HELD_OUT_SOURCES = ("val", "test")
SEEN, HELD_OUT = "seen", "heldout"

Row = Tuple[str, List[int]]


def read_list(path: str, num_classes: int) -> List[Row]:
    """Rows (path, labels) of a ``path,label[,label...]`` list, read as the data sets read it
    (``read_video_list``: ListFormatError naming ``path:line`` for a malformed line)."""
    return [(e.path, list(e.labels)) for e in read_video_list(path, ",", num_classes, multi_label=True)]


def _words(name: str) -> set:
    return set(name.lower().split())


def shared_words(names: Sequence[str], held_out: Sequence[int]) -> Dict[int, List[str]]:
    """For each held-out class, the words of its name that occur in a seen class's name."""
    seen_words = set().union(*(_words(n) for c, n in enumerate(names) if c not in held_out))
    return {c: [w for w in names[c].lower().split() if w in seen_words] for c in held_out}


def check_held_out(names: Sequence[str], held_out: Sequence[int]) -> None:
    """ValueError unless ``held_out`` lists distinct valid classes, holds out at least two and
    leaves at least two seen, and every held-out name shares a word with a seen name."""
    if len(set(held_out)) != len(held_out) or not all(0 <= c < len(names) for c in held_out):
        raise ValueError(f"held-out classes must be distinct labels in [0, {len(names)}), got {list(held_out)}")
    if len(held_out) < 2 or len(names) - len(held_out) < 2:
        raise ValueError(f"need at least 2 held-out and 2 seen classes; got {len(held_out)} held out of {len(names)}")
    lonely = [names[c] for c, words in shared_words(names, held_out).items() if not words]
    if lonely:
        raise ValueError(f"held-out class names share no word with the seen ones (zero-shot could only guess): "
                         f"{lonely}")


def split_row(labels: Sequence[int], held_out: Sequence[int], num_classes: int) -> Tuple[List[int], List[int]]:
    """(seen labels renumbered over the seen classes, held-out labels renumbered in
    ``held_out`` order) of one video."""
    seen_index = {c: i for i, c in enumerate(c for c in range(num_classes) if c not in held_out)}
    held_index = {c: i for i, c in enumerate(held_out)}
    return ([seen_index[c] for c in labels if c in seen_index],
            sorted(held_index[c] for c in labels if c in held_index))


def without_word_sharers(names: Sequence[str], held_out: Sequence[int], labels: Sequence[int]) -> bool:
    """True when a video with (original) ``labels`` shows no seen class whose name shares a word
    with one of the video's held-out classes."""
    held_words = set().union(*(_words(names[c]) for c in labels if c in held_out))
    return not any(_words(names[c]) & held_words for c in labels if c not in held_out)


def chance_top1(rows: Sequence[Row], num_names: int) -> float:
    """Expected top-1 accuracy of a uniformly random class: the mean fraction of names that are
    right for a video."""
    return sum(len(labels) / num_names for _, labels in rows) / len(rows) if rows else float("nan")


def _write_rows(path: str, rows: Sequence[Row]) -> None:
    write_lines(path, [",".join([p] + [str(c) for c in labels]) for p, labels in rows])


def write_zero_shot_split(data_dir: str, held_out: Sequence[int], version: str = "demo") -> Dict[str, object]:
    """Write the seen and held-out lists (module docstring) into ``data_dir``; return a summary:
    the names of both sets, video counts, the zero-shot chance level and, for each held-out
    video, whether it shows no seen class sharing a word with its held-out classes."""
    names = read_class_names(os.path.join(data_dir, f"categories-{version}.txt"))
    check_held_out(names, held_out)
    held_rows: List[Row] = []
    alone: List[bool] = []
    counts: Dict[str, int] = {}
    for split in SPLITS:
        seen_rows = []
        for path, labels in read_list(os.path.join(data_dir, f"{split}-{version}.csv"), len(names)):
            seen, held = split_row(labels, held_out, len(names))
            if seen:
                seen_rows.append((path, seen))
            if held and split in HELD_OUT_SOURCES:
                held_rows.append((path, held))
                alone.append(without_word_sharers(names, held_out, labels))
        _write_rows(os.path.join(data_dir, f"{split}-{SEEN}.csv"), seen_rows)
        counts[split] = len(seen_rows)
    if not held_rows:
        raise ValueError(f"{data_dir}: no validation or test video shows a held-out class")
    _write_rows(os.path.join(data_dir, f"test-{HELD_OUT}.csv"), held_rows)
    seen_names = [n for c, n in enumerate(names) if c not in held_out]
    held_names = [names[c] for c in held_out]
    write_lines(os.path.join(data_dir, f"categories-{SEEN}.txt"), seen_names)
    write_lines(os.path.join(data_dir, f"categories-{HELD_OUT}.txt"), held_names)
    return {"seen_names": seen_names, "held_out_names": held_names, "seen_videos": counts,
            "held_out_rows": held_rows, "held_out_alone": alone, "chance": chance_top1(held_rows, len(held_names))}
