"""List formats by name (DATA.LIST_FORMAT): how the lines of a video list become entries.

- ``mmit_csv``: ``path,label[,label...]`` split on DATA.PATH_LABEL_SEPARATOR (M-MiT, Charades).
- ``path_label``: ``path label``, whitespace-separated, one label; the path is everything before
  the last whitespace, so it may contain spaces (Kinetics, SSv2, M2CLIP lists).
- ``frame_folder``: ``path num_frames label [label...]``, whitespace-separated: a folder of
  frames, its frame count and its label(s) (TSN, TSM, ACTION-Net lists). The path is the first
  field, so it cannot contain spaces.

Labels are 0-based integers in ``[0, MODEL.NUM_CLASSES)``.
"""
from typing import List

from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry

from m3a.config import ConfigError
from m3a.datasets.video_list import ListFormatError, VideoEntry, list_lines, parse_labels, read_video_list

LIST_FORMAT_REGISTRY = Registry("LIST_FORMAT")
LIST_FORMAT_REGISTRY.__doc__ = """List formats by name. Each entry is called as ``fn(path, cfg)``
with the list file and the config, and returns one ``VideoEntry`` (path as written, 0-based
labels, ``num_frames`` or None) per non-blank line; a malformed line raises ListFormatError
naming ``file:line`` and the line's text."""


@LIST_FORMAT_REGISTRY.register()
def mmit_csv(path: str, cfg: CfgNode) -> List[VideoEntry]:
    """``path,label[,label...]`` with DATA.PATH_LABEL_SEPARATOR between the fields."""
    return read_video_list(path, cfg.DATA.PATH_LABEL_SEPARATOR, cfg.MODEL.NUM_CLASSES, multi_label=True)


@LIST_FORMAT_REGISTRY.register()
def path_label(path: str, cfg: CfgNode) -> List[VideoEntry]:
    """``path label``: one label after the last whitespace; the path may contain spaces."""
    return read_video_list(path, " ", cfg.MODEL.NUM_CLASSES, multi_label=False)


@LIST_FORMAT_REGISTRY.register()
def frame_folder(path: str, cfg: CfgNode) -> List[VideoEntry]:
    """``path num_frames label [label...]``, whitespace-separated; num_frames a positive integer."""
    entries = []
    for number, raw in list_lines(path):
        fields = raw.split()
        where = f"{path}:{number}: "
        if len(fields) < 3:
            raise ListFormatError(f"{where}expected 'path num_frames label [label...]', got '{raw}'")
        if not fields[1].isdigit() or int(fields[1]) < 1:
            raise ListFormatError(f"{where}num_frames must be a positive integer, got '{raw}'")
        labels = parse_labels(fields[2:], where, raw, cfg.MODEL.NUM_CLASSES)
        entries.append(VideoEntry(fields[0], labels, int(fields[1])))
    return entries


def list_format_names() -> List[str]:
    """Names of the registered list formats, sorted."""
    return sorted(name for name, _ in LIST_FORMAT_REGISTRY)


def resolve_list_format(cfg: CfgNode, default: str) -> str:
    """DATA.LIST_FORMAT, or ``default`` (the dataset's own format) when it is empty.

    Raises ConfigError listing the valid names when the format is not registered.
    """
    name = cfg.DATA.LIST_FORMAT or default
    if name not in LIST_FORMAT_REGISTRY:
        raise ConfigError(f"DATA.LIST_FORMAT must be one of {', '.join(list_format_names())} (or empty for "
                          f"the dataset's own format), got '{name}'")
    return name


def read_list(path: str, cfg: CfgNode, default: str) -> List[VideoEntry]:
    """Read the list ``path`` in DATA.LIST_FORMAT (``default`` when empty)."""
    return LIST_FORMAT_REGISTRY.get(resolve_list_format(cfg, default))(path, cfg)
