"""Which media files a tool works on (the paths of a list, or every video under a folder), and
running one job per file with a summary of the outcomes."""
import argparse
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from m3a.datasets.video_list import ListFormatError, read_video_list
from m3a.prep.transcode import FAILED
from m3a.utils.file_io import atomic_write_text
from m3a.utils.parallel import parallel_imap

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg")


def list_media(videos_root: str, list_path: Optional[str] = None, separator: str = ",") -> List[str]:
    """Relative paths: the unique paths of ``list_path``, else all video files under the root."""
    if not os.path.isdir(videos_root):
        raise FileNotFoundError(f"videos root not found: {videos_root}")
    if list_path:
        entries = read_video_list(list_path, separator=separator, multi_label=True)
        return list(dict.fromkeys(e.path for e in entries))
    found = []
    for folder, dirs, files in os.walk(videos_root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(VIDEO_EXTENSIONS) and not name.startswith(".tmp-"):
                found.append(os.path.relpath(os.path.join(folder, name), videos_root))
    return found


def add_media_arguments(parser: argparse.ArgumentParser, videos_help: str, out_help: str) -> None:
    """The options every per-video tool shares: where the videos are, where outputs go, which videos
    (a list), how many processes, and where failures are listed."""
    parser.add_argument("--videos-root", required=True, help=videos_help)
    parser.add_argument("--out-root", required=True, help=out_help)
    parser.add_argument("--list", default=None, help="only the videos of this list 'path,label...'")
    parser.add_argument("--separator", default=",", help="list separator between path and labels")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--failed-list", default=None,
                        help="write failed videos here (default OUT_ROOT/failed.txt)")


def media_paths_or_none(args: argparse.Namespace) -> Optional[List[str]]:
    """:func:`list_media` for the options of :func:`add_media_arguments`; on a missing root or a
    bad list, print the error to stderr and return None (the tool then exits with status 2)."""
    try:
        return list_media(args.videos_root, args.list, args.separator)
    except (ListFormatError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def failed_list_path(args: argparse.Namespace) -> str:
    """Where the failures of a run are listed: ``--failed-list`` or OUT_ROOT/failed.txt."""
    return args.failed_list or os.path.join(args.out_root, "failed.txt")


@dataclass
class MediaRun:
    """Outcome of one job per media file: the files (relative paths) that ended in each status and
    the error messages of the failed ones."""

    paths: Dict[str, List[str]]
    failures: List[str]

    def summary(self) -> str:
        """``status: count`` for every status, or ``no videos found``."""
        return ", ".join(f"{status}: {len(paths)}" for status, paths in sorted(self.paths.items())) or "no videos found"

    def report(self, failed_list: str) -> str:
        """The summary line, and a line naming ``failed_list`` when some files failed."""
        lines = [self.summary()]
        if self.failures:
            lines.append(f"{len(self.failures)} failed, listed in {failed_list}")
        return "\n".join(lines)


def run_media_jobs(
    job: Callable[[tuple], Tuple[str, str]],
    jobs: Sequence[tuple],
    paths: Sequence[str],
    workers: int,
    desc: str,
    failed_list: str,
) -> MediaRun:
    """Run ``job`` (returning status and error message) on ``jobs``, one per file of ``paths``, in
    ``workers`` processes; write the failed ones' messages to ``failed_list`` when there are any."""
    by_status: Dict[str, List[str]] = defaultdict(list)
    failures = []
    for path, (status, message) in zip(paths, parallel_imap(job, jobs, workers, desc=desc)):
        by_status[status].append(path)
        if status == FAILED:
            failures.append(message)
    if failures:
        atomic_write_text(failed_list, "".join(m + "\n" for m in failures))
    return MediaRun(dict(by_status), failures)
