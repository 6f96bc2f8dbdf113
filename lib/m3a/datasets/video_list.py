"""Reading video lists: the entry type, line iteration and label checks shared by every format.

``read_video_list`` parses ``path,label[,label...]`` (M-MiT) or ``path label`` (Kinetics style);
the formats a dataset can name (DATA.LIST_FORMAT) are in ``m3a.datasets.list_formats``.
"""
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

from m3a.utils.errors import InputError


class ListFormatError(InputError):
    """A malformed list line; the message names the file, the line number and the text."""


@dataclass(frozen=True)
class VideoEntry:
    """One line of a list: the video path (as written), its 0-based labels and, when the list
    gives it, the number of frames (of a frame folder)."""

    path: str
    labels: Tuple[int, ...]
    num_frames: Optional[int] = None


def list_lines(path: str) -> Iterator[Tuple[int, str]]:
    """Yield ``(line number, raw text)`` of every non-blank line (a UTF-8 byte-order mark is
    dropped); ListFormatError when the file is missing or is not UTF-8 text."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ListFormatError(f"list file not found: {path}") from None
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ListFormatError(f"{path}:{line}: not UTF-8 text (byte {err.start}: {err.reason}); "
                              "is this a list file?") from None
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            yield number, raw


def parse_labels(texts: Sequence[str], where: str, raw: str, num_classes: Optional[int]) -> Tuple[int, ...]:
    """Integer labels in ``[0, num_classes)`` from ``texts``; ``where`` (``file:line: ``) and
    ``raw`` (the line) name the place in a ListFormatError."""
    try:
        labels = tuple(int(t) for t in texts)
    except ValueError:
        raise ListFormatError(f"{where}labels must be integers, got '{raw}'") from None
    for label in labels:
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise ListFormatError(f"{where}label {label} is outside [0, {num_classes}) in '{raw}'")
    return labels


def _parse_line(line: str, separator: str, multi_label: bool) -> Tuple[str, List[str]]:
    if multi_label:
        parts = line.split(separator) if separator.strip() else line.split()
        return parts[0].strip(), [p.strip() for p in parts[1:] if p.strip()]
    parts = line.rsplit(separator, 1) if separator.strip() else line.rsplit(None, 1)
    return parts[0].strip(), [p.strip() for p in parts[1:]]


def read_video_list(
    path: str,
    separator: str = ",",
    num_classes: Optional[int] = None,
    multi_label: bool = True,
) -> List[VideoEntry]:
    """Parse a list file; raise ListFormatError naming ``path:line`` for any malformed line.

    Blank lines are ignored. Every other line needs a path and at least one integer label in
    ``[0, num_classes)`` (exactly one label when ``multi_label`` is False; the path is then
    everything before the last separator, so it may contain the separator, e.g. spaces).
    """
    entries = []
    for number, raw in list_lines(path):
        video, label_texts = _parse_line(raw.strip(), separator, multi_label)
        where = f"{path}:{number}: "
        if not video or not label_texts:
            raise ListFormatError(f"{where}expected 'path{separator}label...', got '{raw}'")
        if not multi_label and len(label_texts) != 1:
            raise ListFormatError(f"{where}expected one label, got '{raw}'")
        entries.append(VideoEntry(video, parse_labels(label_texts, where, raw, num_classes)))
    return entries
