"""Charades (Sigurdsson et al., ECCV 2016) annotations -> multi-label video lists.

The official annotation download (``Charades.zip``) holds:

- ``Charades_v1_classes.txt``: one ``cNNN name`` line per class (``c000 Holding some clothes``;
  157 classes); class ``cNNN`` becomes label ``NNN``.
- ``Charades_v1_train.csv`` / ``Charades_v1_test.csv``: a header row, then one row per video with
  the columns ``id, subject, scene, quality, relevance, verified, script, objects, descriptions,
  actions, length`` (free-text fields are quoted and may hold commas). ``actions`` is empty or a
  ``;``-separated list of ``cNNN start end`` intervals (seconds); only ``id`` and ``actions`` are
  read.

A video's labels are the classes of all its intervals, each once, in increasing order: intervals
that overlap or repeat a class add nothing. A video without any interval cannot be written (an
``mmit_csv`` line needs a label) and is skipped and counted; Charades' own evaluation gives such
test videos the lowest score for every class, which leaves every class's AP as if they were
absent, so skipping them keeps class-wise mAP the field's. Times must be numbers; their order and
range are not checked (only video-level labels are kept).
"""
import csv
import io
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from m3a.utils.errors import InputError

# The columns the conversion reads; the other official columns are allowed and ignored.
REQUIRED_COLUMNS = ("id", "actions")
CLASSES_FILE = "Charades_v1_classes.txt"
SPLIT_FILES = {"train": "Charades_v1_train.csv", "test": "Charades_v1_test.csv"}
_CLASS_LINE = re.compile(r"^(c\d+)\s+(\S.*)$")
_ID = re.compile(r"^[A-Za-z0-9_-]+$")


class CharadesError(InputError):
    """A malformed Charades annotation file; the message names the file and the line."""


@dataclass
class Video:
    """One labelled video: its id and sorted labels, and how many intervals it had."""

    video_id: str
    labels: Tuple[int, ...]
    intervals: int


@dataclass
class SplitResult:
    """The labelled videos of one split and the ids of those skipped for having no action."""

    videos: List[Video] = field(default_factory=list)
    without_actions: List[str] = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        """Video-level labels written (each class once per video)."""
        return sum(len(v.labels) for v in self.videos)

    @property
    def num_intervals(self) -> int:
        """Action intervals read from the labelled videos."""
        return sum(v.intervals for v in self.videos)


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise CharadesError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise CharadesError(f"{path}: not UTF-8 text ({err.reason})") from None


def read_classes(path: str) -> Dict[str, Tuple[int, str]]:
    """``{class id: (label, name)}`` of a ``Charades_v1_classes.txt``; the ids must be ``c000``
    to ``cN-1`` (any order), each once."""
    classes: Dict[str, Tuple[int, str]] = {}
    lines: Dict[int, int] = {}
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        match = _CLASS_LINE.match(line.strip())
        if not match:
            raise CharadesError(f"{path}:{number}: expected 'cNNN class name', got '{line.strip()}'")
        class_id, name = match.group(1), match.group(2).strip()
        label = int(class_id[1:])
        if label in lines:
            raise CharadesError(f"{path}:{number}: class {class_id} is also on line {lines[label]}")
        lines[label] = number
        classes[class_id] = (label, name)
    if not classes:
        raise CharadesError(f"{path}: no classes")
    missing = sorted(set(range(len(classes))) - set(lines))
    if missing:
        extra = max(lines)
        raise CharadesError(f"{path}:{lines[extra]}: class ids must be c000 to c{len(classes) - 1:03d}; "
                            f"c{missing[0]:03d} is missing and c{extra:03d} is present")
    return classes


def class_names(classes: Dict[str, Tuple[int, str]]) -> List[str]:
    """The class names in label order."""
    return [name for _, name in sorted(classes.values())]


def parse_actions(text: str, classes: Dict[str, Tuple[int, str]], where: str) -> Tuple[Tuple[int, ...], int]:
    """(sorted distinct labels, number of intervals) of an ``actions`` field; ``where``
    (``file:line: ``) starts every error."""
    labels = set()
    items = [item.strip() for item in text.split(";") if item.strip()]
    for item in items:
        parts = item.split()
        if len(parts) != 3:
            raise CharadesError(f"{where}action '{item}' is not 'cNNN start end'")
        class_id, start, end = parts
        if class_id not in classes:
            raise CharadesError(f"{where}unknown class id '{class_id}' in action '{item}' "
                                f"(not in {CLASSES_FILE})")
        try:
            float(start), float(end)
        except ValueError:
            raise CharadesError(f"{where}action '{item}': start and end must be numbers") from None
        labels.add(classes[class_id][0])
    return tuple(sorted(labels)), len(items)


def _records(path: str):
    """(first line number, header-keyed row) of every non-blank record of a CSV file."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise CharadesError(f"{path}:1: empty file, expected a header row") from None
    except csv.Error as err:
        raise CharadesError(f"{path}:1: {err}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CharadesError(f"{path}:1: header has no column {', '.join(repr(c) for c in missing)} "
                            f"(columns: {', '.join(header)})")
    last = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise CharadesError(f"{path}:{last + 1}: {err}") from None
        first, last = last + 1, reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CharadesError(f"{path}:{first}: {len(row)} fields, the header has {len(header)} "
                                "(is a free-text field missing its quotes?)")
        yield first, dict(zip(header, row))


def read_split(path: str, classes: Dict[str, Tuple[int, str]]) -> SplitResult:
    """The videos of ``Charades_v1_{train,test}.csv`` with their labels; videos without actions
    are only counted. CharadesError naming ``file:line`` for a malformed row, an unknown class
    id or a repeated video id."""
    result = SplitResult()
    seen: Dict[str, int] = {}
    for number, row in _records(path):
        where = f"{path}:{number}: "
        video_id = row["id"].strip()
        if not _ID.match(video_id):
            raise CharadesError(f"{where}video id must be letters, digits, '-' or '_', got '{video_id}'")
        if video_id in seen:
            raise CharadesError(f"{where}video {video_id} is also on line {seen[video_id]}")
        seen[video_id] = number
        labels, intervals = parse_actions(row["actions"], classes, where)
        if labels:
            result.videos.append(Video(video_id, labels, intervals))
        else:
            result.without_actions.append(video_id)
    return result


def list_lines(videos: Sequence[Video], video_dir: str, ext: str) -> List[str]:
    """``path,label[,label...]`` lines, the path ``video_dir/<id><ext>``."""
    lines = []
    for video in videos:
        path = os.path.join(video_dir, video.video_id + ext) if video_dir else video.video_id + ext
        lines.append(",".join([path.replace(os.sep, "/"), *map(str, video.labels)]))
    return lines
