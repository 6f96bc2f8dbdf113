"""Taking one file out of a downloaded ZIP archive (e.g. what a Dropbox folder link answers with).

The member is chosen by glob patterns matched against the members' file names (without their
folders); exactly one regular file must match, otherwise the error names the members. The
member's name inside the archive never becomes a path: the caller names the output file, so an
archive cannot write outside it (no path traversal, no links). The member's declared size is
checked against a limit before anything is written. zipfile never reads past the declared size,
so data that inflates to more is cut there and refused by zipfile's CRC check ("Bad CRC-32");
data that ends before it is refused by counting the bytes written. The member is written to a
temporary file renamed to the destination on success, so a failed extraction leaves no file.
Encrypted members are refused.
"""
import fnmatch
import os
import zipfile
from typing import List, Optional, Sequence, Union

from m3a.utils.download import CHUNK_SIZE, DownloadError
from m3a.utils.file_io import atomic_path

# Members that archivers add beside the real files (macOS resource forks).
_IGNORED_FOLDERS = ("__MACOSX/",)


class ZipMemberError(DownloadError):
    """An archive that is not a ZIP, or has none / several / an unusable member to extract."""


def as_patterns(member: Union[str, Sequence[str]]) -> List[str]:
    """``member`` (one glob pattern or a list of them) as a non-empty list of patterns."""
    patterns = [member] if isinstance(member, str) else list(member) if isinstance(member, (list, tuple)) else []
    if not patterns or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise ValueError(f"member must be a glob pattern or a list of them, got {member!r}")
    return patterns


def archive_files(archive: str) -> List[zipfile.ZipInfo]:
    """The regular files of the ZIP ``archive`` (no folders, no ``__MACOSX/`` entries)."""
    if not zipfile.is_zipfile(archive):
        with open(archive, "rb") as f:
            head = f.read(16)
        raise ZipMemberError(f"{archive}: not a ZIP archive ({os.path.getsize(archive)} bytes starting {head!r})")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ZipMemberError(f"{archive}: unreadable ZIP archive: {err}") from None
    return [i for i in infos if not i.is_dir() and not i.filename.startswith(_IGNORED_FOLDERS)]


def select_member(archive: str, member: Union[str, Sequence[str]]) -> zipfile.ZipInfo:
    """The one regular file of ``archive`` whose file name matches a pattern of ``member``."""
    patterns = as_patterns(member)
    files = archive_files(archive)
    chosen = [i for i in files if any(fnmatch.fnmatchcase(os.path.basename(i.filename), p) for p in patterns)]
    if len(chosen) == 1:
        return chosen[0]
    names = ", ".join(f"{i.filename} ({i.file_size} bytes)" for i in files[:20]) or "none"
    more = f" and {len(files) - 20} more" if len(files) > 20 else ""
    what = "no member matches" if not chosen else f"{len(chosen)} members match"
    raise ZipMemberError(f"{archive}: {what} {' or '.join(patterns)}; its files: {names}{more}")


def extract_member(
    archive: str, member: Union[str, Sequence[str]], dest: str, max_size: int = 0, size: Optional[int] = None,
) -> zipfile.ZipInfo:
    """Write the member of ``archive`` chosen by ``member`` (see :func:`select_member`) to ``dest``.

    ``size``: the member's exact size in bytes (another size is refused); ``max_size``: the
    largest member accepted (0: no limit). ``dest`` is written atomically: after a failure it
    is left as it was.
    """
    info = select_member(archive, member)
    if info.flag_bits & 0x1:
        raise ZipMemberError(f"{archive}: {info.filename} is encrypted")
    if size is not None and info.file_size != size:
        raise ZipMemberError(f"{archive}: {info.filename} has {info.file_size} bytes, the manifest says {size}")
    if max_size and info.file_size > max_size:
        raise ZipMemberError(
            f"{archive}: {info.filename} has {info.file_size} bytes, more than the size limit of {max_size} bytes"
        )
    try:
        with atomic_path(dest) as tmp:
            _copy_counted(archive, info, tmp)
    except ZipMemberError:
        raise
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError) as err:
        raise ZipMemberError(f"{archive}: cannot extract {info.filename}: {err}") from None
    return info


def _copy_counted(archive: str, info: zipfile.ZipInfo, dest: str) -> None:
    written = 0
    with zipfile.ZipFile(archive) as zf, zf.open(info) as src, open(dest, "wb") as out:
        for block in iter(lambda: src.read(CHUNK_SIZE), b""):
            written += len(block)
            out.write(block)
    if written != info.file_size:
        raise ZipMemberError(f"{archive}: {info.filename} holds {written} bytes, not its declared {info.file_size}")
