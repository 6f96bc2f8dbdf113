"""Frame-folder lists (``path num_frames label``, DATA.LIST_FORMAT frame_folder) built from the
official annotation files of Something-Something V2, 20BN-Jester and EgoGesture.

- SSv2: ``something-something-v2-labels.json`` (template -> index) and the train / validation
  JSON files (``id``, ``template`` with ``[something]`` placeholders); a video's frames are in
  ``FRAMES/<id>/``. Classes are numbered as in the labels file (TSM's convention).
- Jester: ``jester-v1-labels.csv`` (one class per line, numbered in file order) and the
  ``id;label`` train / validation CSV files; frames in ``FRAMES/<id>/``.
- EgoGesture: ``LABELS/SubjectNN/SceneK/GroupG.csv`` (or ``groupG.csv``), header-less rows
  ``class,start,end`` (class 1-based, frames 1-based); frames in
  ``FRAMES/SubjectNN/SceneK/Color/rgbG/{:06d}.jpg``. Every gesture becomes a folder of links to
  its frames (``CLIPS/SubjectNN/SceneK/rgbG/NNN_start_end/``), label ``class - 1``. The published
  lists take frames ``start .. end - 2`` (``published_frames``) and drop rows without a start.
"""
import csv
import json
import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

from m3a.utils.file_io import write_lines

# Files counted as frames.
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
# EgoGesture's official subject split.
EGOGESTURE_SUBJECTS = {
    "train": (3, 4, 5, 6, 8, 10, 15, 16, 17, 20, 21, 22, 23, 25, 26, 27, 30, 32, 36, 38, 39, 40, 42, 43,
              44, 45, 46, 48, 49, 50),
    "val": (1, 7, 12, 13, 24, 29, 33, 34, 35, 37),
    "test": (2, 9, 11, 14, 18, 19, 28, 31, 41, 47),
}


class AnnotationError(ValueError):
    """An official annotation file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class FrameEntry:
    """One line of a frame-folder list."""

    path: str
    num_frames: int
    label: int

    def line(self) -> str:
        """``path num_frames label``."""
        return f"{self.path} {self.num_frames} {self.label}"


def count_frames(folder: str) -> int:
    """Number of image files in ``folder`` (0 when it does not exist)."""
    if not os.path.isdir(folder):
        return 0
    return sum(1 for name in os.listdir(folder) if name.lower().endswith(FRAME_SUFFIXES))


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise AnnotationError(f"{path}: cannot read JSON: {err}") from None


def _template_name(template: str) -> str:
    return template.replace("[", "").replace("]", "")


def ssv2_classes(labels_json: str) -> List[str]:
    """Class names in index order of ``something-something-v2-labels.json``."""
    labels = _read_json(labels_json)
    if not isinstance(labels, dict):
        raise AnnotationError(f"{labels_json}: expected an object of 'template': 'index'")
    order = sorted(labels.items(), key=lambda item: int(item[1]))
    if [int(i) for _, i in order] != list(range(len(order))):
        raise AnnotationError(f"{labels_json}: indices must be 0 .. {len(order) - 1}")
    return [name for name, _ in order]


def ssv2_videos(split_json: str, classes: Sequence[str]) -> List[Tuple[str, int]]:
    """(video id, label) of a train / validation JSON file."""
    index = {name: i for i, name in enumerate(classes)}
    videos = []
    for number, item in enumerate(_read_json(split_json), 1):
        try:
            name = _template_name(item["template"])
            videos.append((str(item["id"]), index[name]))
        except (KeyError, TypeError):
            raise AnnotationError(f"{split_json}: entry {number} has no known 'id' and 'template': {item}") from None
    return videos


def jester_classes(labels_csv: str) -> List[str]:
    """Class names of ``jester-v1-labels.csv``, one per line, in file order."""
    return [row for _, row in _lines(labels_csv)]


def jester_videos(split_csv: str, classes: Sequence[str]) -> List[Tuple[str, int]]:
    """(video id, label) of an ``id;label`` CSV file."""
    index = {name: i for i, name in enumerate(classes)}
    videos = []
    for number, row in _lines(split_csv):
        video, _, name = row.partition(";")
        if name not in index:
            raise AnnotationError(f"{split_csv}:{number}: expected 'id;label' with a known label, got '{row}'")
        videos.append((video, index[name]))
    return videos


def _lines(path: str) -> Iterable[Tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            rows = [(n, line.strip()) for n, line in enumerate(f, 1)]
    except OSError as err:
        raise AnnotationError(f"{path}: cannot read: {err}") from None
    return [(n, row) for n, row in rows if row]


def folder_entries(videos: Sequence[Tuple[str, int]], frames_root: str) -> Tuple[List[FrameEntry], List[str]]:
    """List entries of videos whose frame folder ``frames_root/<id>`` holds frames, and the ids
    of those without frames."""
    entries, missing = [], []
    for video, label in videos:
        n = count_frames(os.path.join(frames_root, video))
        if n:
            entries.append(FrameEntry(video, n, label))
        else:
            missing.append(video)
    return entries, missing


def write_list(path: str, entries: Sequence[FrameEntry]) -> None:
    """Write a frame-folder list atomically."""
    write_lines(path, (e.line() for e in entries))


def write_class_names(path: str, classes: Sequence[str]) -> None:
    """One class name per line, in label order (DATA.CLASS_NAMES_FILE)."""
    write_lines(path, classes)


# ---------------------------------------------------------------------------------------------
# EgoGesture
# ---------------------------------------------------------------------------------------------
_GROUP = re.compile(r"[Gg]roup(\d+)\.csv")


def egogesture_gestures(labels_root: str, subject: int) -> List[Tuple[str, int, int, int, int]]:
    """(scene folder, group, class, start, end) of every annotated gesture of a subject, in
    scene / group / row order; rows without a start are dropped."""
    subject_dir = os.path.join(labels_root, f"Subject{subject:02d}")
    if not os.path.isdir(subject_dir):
        raise AnnotationError(f"{subject_dir}: subject folder not found")
    gestures = []
    for scene in sorted(os.listdir(subject_dir)):
        scene_dir = os.path.join(subject_dir, scene)
        groups = sorted((int(m.group(1)), name) for name in os.listdir(scene_dir) if (m := _GROUP.fullmatch(name)))
        for group, name in groups:
            for cls, start, end in _gesture_rows(os.path.join(scene_dir, name)):
                gestures.append((scene, group, cls, start, end))
    return gestures


def _gesture_rows(path: str) -> List[Tuple[int, int, int]]:
    rows = []
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), 1):
            fields = [x.strip() for x in row]
            if not fields or not any(fields):
                continue
            if len(fields) < 3:
                raise AnnotationError(f"{path}:{number}: expected 'class,start,end', got '{','.join(row)}'")
            if fields[1] in ("", "nan", "NaN"):
                continue
            try:
                rows.append((int(float(fields[0])), int(float(fields[1])), int(float(fields[2]))))
            except ValueError:
                raise AnnotationError(
                    f"{path}:{number}: expected integers 'class,start,end', got '{','.join(row)}'"
                ) from None
    return rows


def egogesture_entries(
    labels_root: str, frames_root: str, clips_root: str, subjects: Sequence[int],
    published_frames: bool = True,
) -> Tuple[List[FrameEntry], List[str]]:
    """List entries of the gestures of ``subjects`` (clip folders of frame links under
    ``clips_root``, created when missing), and the gestures whose frames are missing."""
    entries, missing = [], []
    for subject in subjects:
        for scene, group, cls, start, end in egogesture_gestures(labels_root, subject):
            last = end - 2 if published_frames else end
            src = os.path.join(frames_root, f"Subject{subject:02d}", scene, "Color", f"rgb{group}")
            rel = os.path.join(f"Subject{subject:02d}", scene, f"rgb{group}", f"{cls:03d}_{start:06d}_{end:06d}")
            frames = [os.path.join(src, f"{i:06d}.jpg") for i in range(start, last + 1)]
            if not frames or not all(os.path.isfile(p) for p in frames):
                missing.append(rel)
                continue
            link_frames(frames, os.path.join(clips_root, rel))
            entries.append(FrameEntry(rel, len(frames), cls - 1))
    return entries, missing


def link_frames(frames: Sequence[str], folder: str) -> None:
    """Make ``folder`` hold relative links ``000001.jpg`` ... to ``frames`` (kept if present)."""
    os.makedirs(folder, exist_ok=True)
    for i, src in enumerate(frames, 1):
        dst = os.path.join(folder, f"{i:06d}{os.path.splitext(src)[1]}")
        if not os.path.lexists(dst):
            os.symlink(os.path.relpath(src, folder), dst)


def split_subjects(published: bool) -> Dict[str, Tuple[int, ...]]:
    """Subjects of our train / val / test lists: the official split, or with ``published`` the
    published ACTION-Net run's (train on train + val subjects, validate and test on test)."""
    s = EGOGESTURE_SUBJECTS
    if published:
        return {"train": s["train"] + s["val"], "val": s["test"], "test": s["test"]}
    return dict(s)
