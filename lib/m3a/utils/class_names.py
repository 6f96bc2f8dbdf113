"""Class names in label order, from DATA.CLASS_NAMES_FILE or the data folder's category file."""
import os
import re
from typing import List

from fvcore.common.config import CfgNode

_INDEXED = re.compile(r"^(.*?)[,\t ](\d+)$")


def class_names_path(cfg: CfgNode) -> str:
    """DATA.CLASS_NAMES_FILE, else ``{PATH_TO_DATA_DIR}/categories-{MMIT_VERSION}.txt``."""
    if cfg.DATA.CLASS_NAMES_FILE:
        return cfg.DATA.CLASS_NAMES_FILE
    return os.path.join(cfg.DATA.PATH_TO_DATA_DIR, f"categories-{cfg.DATA.MMIT_VERSION}.txt")


def read_class_names(path: str, num_classes: int) -> List[str]:
    """Read one name per line (optionally ``name,index`` / ``name index`` as in M-MiT's files).

    Indexed lines are placed at their index. Raises ValueError naming the file and line when the
    file does not give exactly ``num_classes`` distinct positions.
    """
    if not os.path.isfile(path):
        raise ValueError(f"class names file not found: {path}")
    names: List[str] = []
    slots = {}
    with open(path) as f:
        lines = [ln.strip() for ln in f]
    lines = [ln for ln in lines if ln]
    indexed = all(_INDEXED.match(ln) for ln in lines)
    for lineno, line in enumerate(lines, 1):
        if indexed:
            name, idx = _INDEXED.match(line).groups()
            if int(idx) in slots or int(idx) >= num_classes:
                raise ValueError(f"{path}:{lineno}: index {idx} repeated or not below {num_classes}")
            slots[int(idx)] = name.strip()
        else:
            names.append(line)
    if indexed:
        names = [slots.get(i, "") for i in range(num_classes)]
    if len(names) != num_classes or not all(names):
        raise ValueError(f"{path}: expected {num_classes} class names, found {len([n for n in names if n])}")
    return names


def load_class_names(cfg: CfgNode) -> List[str]:
    """Class names of ``cfg``'s data set in label order."""
    return read_class_names(class_names_path(cfg), cfg.MODEL.NUM_CLASSES)
