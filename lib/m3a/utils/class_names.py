"""Class names in label order, from DATA.CLASS_NAMES_FILE or the data folder's category file.

A names file has one class per line in label order. M-MiT's own files append the label index
(``name,index``, ``name index`` or ``name<TAB>index``); such a trailing index is checked against
the line's position and dropped. Blank lines are ignored.
"""
import logging
import os
import re
from typing import List, Optional

from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)

_TRAILING_INDEX = re.compile(r"^(.*\S)[,\t ]+(\d+)$")


def read_class_names(path: str, num_classes: Optional[int] = None) -> List[str]:
    """Names from ``path`` in label order.

    Raises FileNotFoundError for a missing file and ValueError naming ``path:line`` for a
    duplicate name, a trailing index that disagrees with the line's position, or (when
    ``num_classes`` is given) a count other than ``num_classes``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"class-name file not found: {path}")
    with open(path) as f:
        numbered = [(n, line.strip()) for n, line in enumerate(f, start=1) if line.strip()]
    names: List[str] = []
    for number, line in numbered:
        match = _TRAILING_INDEX.match(line)
        if match:
            line = match.group(1).strip()
            if int(match.group(2)) != len(names):
                raise ValueError(f"{path}:{number}: index {match.group(2)} but this is class {len(names)}")
        if line in names:
            raise ValueError(f"{path}:{number}: duplicate class name '{line}'")
        names.append(line)
    if num_classes is not None and len(names) != num_classes:
        raise ValueError(f"{path}: {len(names)} class names, expected {num_classes} (MODEL.NUM_CLASSES)")
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
        raise ValueError(f"{path}: {len(names)} class names, more than MODEL.NUM_CLASSES {num_classes}")
    if len(names) < num_classes:
        logger.warning("%s: %d class names for %d classes; the rest are named by index", path, len(names), num_classes)
    return names + [str(i) for i in range(len(names), num_classes)]
