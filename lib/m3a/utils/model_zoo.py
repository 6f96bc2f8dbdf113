"""The model-zoo manifest (configs/model_zoo.yaml) and verified downloads of its entries.

Entries without a published SHA-256 are verified by "trust on first download": the first
download records the file's hash in ``FILE.sha256`` (``sha256sum`` format) beside the file,
and every later call checks the file against that record.
"""
import dataclasses
import os
import re
from typing import Dict, Optional

import yaml

from m3a.utils.download import Downloader, DownloadResult
from m3a.utils.file_io import atomic_write_text

DEFAULT_MANIFEST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "model_zoo.yaml")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = ("title", "dataset", "num_classes", "backbone", "config", "m3a", "published", "url", "sha256", "filename")


class ManifestError(ValueError):
    """A malformed or missing model-zoo manifest or entry."""


@dataclasses.dataclass
class ZooEntry:
    """One published checkpoint: how to build it, what it scored, where to fetch it."""

    name: str
    title: str
    dataset: str
    num_classes: int
    backbone: str
    config: Optional[str]
    m3a: Optional[dict]
    published: dict
    url: Optional[str]
    sha256: str
    filename: str
    size: Optional[int] = None  # exact size in bytes, when known: a download of any other size fails


def load_manifest(path: str = DEFAULT_MANIFEST) -> Dict[str, ZooEntry]:
    """Read the manifest at ``path`` into {name: ZooEntry}; raise ManifestError naming bad fields."""
    path = os.path.normpath(path)
    if not os.path.isfile(path):
        raise ManifestError(f"model-zoo manifest not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ManifestError(f"{path}: expected a non-empty 'models' mapping")
    entries = {}
    for name, fields in models.items():
        missing = [k for k in _FIELDS if k not in (fields or {})]
        if missing:
            raise ManifestError(f"{path}: entry '{name}' lacks field(s) {', '.join(missing)}")
        sha = (fields["sha256"] or "").strip().lower()
        if sha and not _HEX64.match(sha):
            raise ManifestError(f"{path}: entry '{name}': sha256 must be 64 hex digits or empty")
        size = fields.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise ManifestError(f"{path}: entry '{name}': size must be a positive number of bytes, got {size!r}")
        entries[name] = ZooEntry(name=name, **{k: fields[k] for k in _FIELDS if k != "sha256"}, sha256=sha, size=size)
    return entries


def recorded_hash_path(path: str) -> str:
    """Where the trust-on-first-download hash of ``path`` is recorded."""
    return path + ".sha256"


def read_recorded_hash(path: str) -> str:
    """The hash recorded for ``path`` by an earlier download, or "" if none."""
    record = recorded_hash_path(path)
    if not os.path.isfile(record):
        return ""
    with open(record) as f:
        first = f.read().split()
    return first[0].lower() if first and _HEX64.match(first[0].lower()) else ""


def fetch_verified(
    url: str, out: str, sha256: str, downloader: Downloader, size: Optional[int] = None
) -> DownloadResult:
    """Download ``url`` to ``out`` against ``sha256`` (and ``size``), or against/recording the trusted hash."""
    expected = sha256 or read_recorded_hash(out)
    result = downloader.fetch(url, out, expected, size)
    if not sha256 and not expected:
        atomic_write_text(recorded_hash_path(out), f"{result.sha256}  {os.path.basename(out)}\n")
    return result


def entry_path(entry: ZooEntry, folder: str) -> str:
    """Where ``entry`` is stored under ``folder``; ManifestError if its filename leads elsewhere.

    The name must be relative, without ``..`` parts, and must still lie inside ``folder`` once
    symbolic links are resolved (a link in the folder pointing outside is refused too).
    """
    name = entry.filename
    refuse = f"{entry.name}: filename '{name}' must be a relative name inside the download folder {folder}"
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        raise ManifestError(refuse)
    if os.path.isabs(name) or ".." in re.split(r"[\\/]", name):
        raise ManifestError(refuse)
    root = os.path.realpath(folder)
    target = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, target]) != root or target == root:
        raise ManifestError(f"{refuse} (it resolves to {target})")
    return os.path.join(folder, name)


def download_entry(entry: ZooEntry, folder: str, downloader: Downloader) -> DownloadResult:
    """Download one manifest entry into ``folder`` and verify it (see ``entry_path``)."""
    if not entry.url:
        raise ManifestError(f"{entry.name}: no download URL (not published in the material we have)")
    return fetch_verified(entry.url, entry_path(entry, folder), entry.sha256, downloader, entry.size)

