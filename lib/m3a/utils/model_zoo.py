"""The model-zoo manifest (configs/model_zoo.yaml) and verified downloads of its entries.

Entries without a published SHA-256 are verified by "trust on first download": the first
download records the file's hash in ``FILE.sha256`` (``sha256sum`` format) beside the file,
and every later call checks the file against that record.

An entry with ``member`` names a file inside the ZIP archive its link answers with (a Dropbox
folder link): the archive is downloaded to ``FILE.zip``, the member is extracted to ``FILE``
(``m3a.utils.archive``: one matching member, bounded, atomic rename) and the archive removed.
Its ``sha256`` (published or trusted on first download) and ``size`` are those of the extracted
file: Dropbox builds folder archives on the fly, so the archive's own bytes need not repeat.
"""
import dataclasses
import os
import re
from typing import Dict, List, Optional, Union

import yaml

from m3a.utils.archive import as_patterns, extract_member
from m3a.utils.download import Downloader, DownloadError, DownloadResult, existing_file, sha256_file
from m3a.utils.file_io import atomic_path, atomic_write_text

REPO_ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
DEFAULT_MANIFEST = os.path.join(REPO_ROOT, "configs", "model_zoo.yaml")
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
    member: Optional[Union[str, List[str]]] = None  # glob pattern(s): the file to take out of a ZIP answer


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
        member = fields.get("member")
        if member is not None:
            try:
                as_patterns(member)
            except ValueError as err:
                raise ManifestError(f"{path}: entry '{name}': {err}") from None
        entries[name] = ZooEntry(name=name, **{k: fields[k] for k in _FIELDS if k != "sha256"}, sha256=sha, size=size,
                                 member=member)
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
    if not expected:
        record_hash(out, result.sha256)
    return result


def record_hash(path: str, sha256: str) -> None:
    """Record ``sha256`` as the trusted hash of ``path`` (``FILE.sha256``, sha256sum format)."""
    atomic_write_text(recorded_hash_path(path), f"{sha256}  {os.path.basename(path)}\n")


def fetch_member(
    url: str, out: str, member: Union[str, List[str]], sha256: str, downloader: Downloader,
    size: Optional[int] = None,
) -> DownloadResult:
    """Download the ZIP archive ``url`` answers with to ``out``.zip, extract its file matching
    ``member`` to ``out`` and verify it against ``sha256`` (and ``size``), or against/recording
    the trusted hash; the archive is removed afterwards (also when it is unusable)."""
    expected = sha256 or read_recorded_hash(out)
    result = existing_file(out, expected)
    if result is None:
        archive = out + ".zip"
        downloader.fetch(url, archive)  # bounded by the downloader's max_size; a complete leftover is reused
        try:
            with atomic_path(out) as tmp:
                extract_member(archive, member, tmp, downloader.max_size, size)
                actual = sha256_file(tmp)
                if expected and actual != expected:
                    os.replace(tmp, out + ".corrupt")
                    raise DownloadError(f"SHA-256 mismatch for {out}: expected {expected}, got {actual}; "
                                        f"the extracted file was moved to {out}.corrupt")
        finally:
            os.remove(archive)
        result = DownloadResult(out, actual, bool(expected), downloaded=True)
    if not expected:  # neither published nor recorded: trust this first download
        record_hash(out, result.sha256)
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
    if entry.member is not None:
        return fetch_member(entry.url, entry_path(entry, folder), entry.member, entry.sha256, downloader, entry.size)
    return fetch_verified(entry.url, entry_path(entry, folder), entry.sha256, downloader, entry.size)


def config_path(entry: ZooEntry) -> Optional[str]:
    """The entry's config file (a relative name is relative to the repository root), or None."""
    if not entry.config:
        return None
    return entry.config if os.path.isabs(entry.config) else os.path.join(REPO_ROOT, entry.config)

