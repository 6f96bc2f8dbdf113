"""Class names in label order, from DATA.CLASS_NAMES_FILE or the data folder's category file.

Format (blank lines are ignored, spaces around a line are stripped):

- **plain**: one name per line, in label order; the whole line is the name, so a name may
  contain spaces, commas and end in a number (``top 10``);
- **indexed** (M-MiT's own ``moments_categories.txt``): every line is ``name,index``,
  ``name<TAB>index`` or ``name index`` and the indices are exactly 0..N-1 (in any order); the
  names are put in index order and the indices dropped.

A file is read as indexed only when *every* line ends in such an index, together they are
0..N-1 and the names before them are distinct; otherwise it is plain. A file in which some line
ends in ``,number`` or ``<TAB>number`` but that is not a complete indexed file is an error (a
broken index column) naming the first offending line, never a guess.
"""
import logging
import os
import re
from typing import List, Optional, Tuple

from fvcore.common.config import CfgNode

from m3a.utils.errors import InputError

logger = logging.getLogger(__name__)

_TRAILING_INDEX = re.compile(r"^(.*?\S)\s*([,\t]| +)\s*(\d+)$")


class ClassNamesError(InputError):
    """A malformed class-names file; the message names the file and the line."""


def _split_index(line: str) -> Optional[Tuple[str, str, int]]:
    """(name, separator, index) of a line ending in an index, else None."""
    match = _TRAILING_INDEX.match(line)
    if not match:
        return None
    return match.group(1), match.group(2)[:1], int(match.group(3))


def _index_problem(split: List[Tuple[int, Optional[Tuple[str, str, int]]]]) -> Optional[Tuple[int, str]]:
    """(line number, problem) of the first line that keeps ``split`` from indexing 0..N-1."""
    seen = {}
    for number, parts in split:
        if parts is None:
            return number, "no index at the end of the line"
        index = parts[2]
        if index >= len(split):
            return number, f"index {index} is outside 0..{len(split) - 1}"
        if index in seen:
            return number, f"index {index} repeats line {seen[index]}"
        seen[index] = number
    return None


def _indexed_names(path: str, numbered: List[Tuple[int, str]]) -> Optional[List[Tuple[int, str]]]:
    """(line number, name) in index order when the lines form an indexed file, else None.

    Space-separated trailing numbers make a file indexed only when they are 0..N-1 and the names
    before them are distinct; an index column (``,N`` / ``<TAB>N``) on any line must be complete
    (else ClassNamesError naming the first offending line).
    """
    split = [(number, _split_index(line)) for number, line in numbered]
    has_column = any(parts is not None and parts[1] in ",\t" for _, parts in split)
    problem = _index_problem(split)
    if problem is None:
        by_index = {parts[2]: (number, parts[0]) for number, parts in split}
        names = [by_index[i] for i in range(len(split))]
        if has_column or len({name for _, name in names}) == len(names):
            return names
    elif has_column:
        raise ClassNamesError(
            f"{path}:{problem[0]}: {problem[1]}; a file with an index column needs 'name,index' on "
            "every line with the indices 0..N-1 (or write one plain name per line)"
        )
    return None


def read_class_names(path: str, num_classes: Optional[int] = None) -> List[str]:
    """Names from ``path`` in label order (see the module docstring for the format).

    Raises FileNotFoundError for a missing file and ClassNamesError naming ``path:line`` for a
    duplicate name or a broken index column, or (when ``num_classes`` is given) naming ``path``
    for a count other than ``num_classes``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"class-name file not found: {path}")
    with open(path) as f:
        numbered = [(n, line.strip()) for n, line in enumerate(f, start=1) if line.strip()]
    ordered = _indexed_names(path, numbered) or numbered
    seen = {}
    for number, name in ordered:
        if name in seen:
            raise ClassNamesError(f"{path}:{number}: duplicate class name '{name}' (also on line {seen[name]})")
        seen[name] = number
    names = [name for _, name in ordered]
    if num_classes is not None and len(names) != num_classes:
        raise ClassNamesError(f"{path}: {len(names)} class names, expected {num_classes} (MODEL.NUM_CLASSES)")
    return names


def class_names_path(cfg: CfgNode) -> str:
    """DATA.CLASS_NAMES_FILE, else ``{PATH_TO_DATA_DIR}/categories-{MMIT_VERSION}.txt``."""
    if cfg.DATA.CLASS_NAMES_FILE:
        return cfg.DATA.CLASS_NAMES_FILE
    return os.path.join(cfg.DATA.PATH_TO_DATA_DIR, f"categories-{cfg.DATA.MMIT_VERSION}.txt")


def load_class_names(cfg: CfgNode) -> List[str]:
    """MODEL.NUM_CLASSES names for ``cfg``'s data set; label indices stand in where none are known.

    A configured DATA.CLASS_NAMES_FILE must exist (FileNotFoundError naming the key). Without
    one and without ``categories-{MMIT_VERSION}.txt``, or with a file shorter than the class
    count (logged), the missing names are the label indices as strings.
    """
    path = class_names_path(cfg)
    if not os.path.isfile(path):
        if cfg.DATA.CLASS_NAMES_FILE:
            raise FileNotFoundError(f"DATA.CLASS_NAMES_FILE not found: {path}")
        return [str(i) for i in range(cfg.MODEL.NUM_CLASSES)]
    names = read_class_names(path)
    num_classes = cfg.MODEL.NUM_CLASSES
    if len(names) > num_classes:
        raise ClassNamesError(f"{path}: {len(names)} class names, more than MODEL.NUM_CLASSES {num_classes}")
    if len(names) < num_classes:
        logger.warning("%s: %d class names for %d classes; the rest are named by index", path, len(names), num_classes)
    return names + [str(i) for i in range(len(names), num_classes)]
