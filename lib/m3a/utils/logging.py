"""Logging set-up: INFO to stdout and OUTPUT_DIR/stdout.log on rank 0, errors only elsewhere.

Records logged with ``extra=FILE_ONLY`` (e.g. the full config) go to the log file only, so the
terminal stays short.

Training and evaluation statistics are logged as one JSON object per line (``json_stats: {...}``)
and appended to ``OUTPUT_DIR/json_stats.log`` so tools and tests can parse them.
"""
import json
import logging
import os
import sys
from typing import Dict, Optional

from m3a.utils import distributed as du

_HANDLER_FLAG = "_m3a_handler"
JSON_STATS_FILE = "json_stats.log"
STDOUT_LOG_FILE = "stdout.log"
FILE_ONLY = {"file_only": True}


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


def setup_logging(output_dir: Optional[str] = None) -> None:
    """Route the root logger: rank 0 logs INFO to stdout (and ``output_dir``/stdout.log)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("[%(asctime)s][%(levelname)s] %(name)s: %(message)s", "%m/%d %H:%M:%S")
    handlers = []
    if du.is_master_proc():
        root.setLevel(logging.INFO)
        handlers.append(logging.StreamHandler(sys.stdout))
        handlers[-1].addFilter(_not_file_only)
        if output_dir:
            os.makedirs(output_dir, exist_ok=True)
            handlers.append(logging.FileHandler(os.path.join(output_dir, STDOUT_LOG_FILE)))
    else:
        root.setLevel(logging.ERROR)
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].addFilter(_not_file_only)
    for handler in handlers:
        handler.setFormatter(fmt)
        setattr(handler, _HANDLER_FLAG, True)
        root.addHandler(handler)


def _round(value):
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def log_json_stats(stats: Dict, output_dir: Optional[str] = None) -> None:
    """Log ``stats`` as one JSON line and (rank 0) append it to ``output_dir``/json_stats.log."""
    if not du.is_master_proc():
        return
    line = json.dumps({k: _round(v) for k, v in stats.items()}, sort_keys=True)
    logging.getLogger("m3a.stats").info("json_stats: %s", line)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, JSON_STATS_FILE), "a") as f:
            f.write(line + "\n")


def read_json_stats(output_dir: str, kind: Optional[str] = None) -> list:
    """Read ``output_dir``/json_stats.log, keeping entries whose ``_type`` is ``kind`` (all if None)."""
    path = os.path.join(output_dir, JSON_STATS_FILE)
    entries = []
    with open(path) as f:
        for line in f:
            if line.strip():
                entry = json.loads(line)
                if kind is None or entry.get("_type") == kind:
                    entries.append(entry)
    return entries
