#!/usr/bin/env python3
"""Decode every video of a list in parallel and report the broken ones.

Each line of LIST is ``path<SEP>label...`` (the M-MiT / Kinetics list formats); relative paths
are resolved against --prefix (default: the list's folder). Every video is decoded to its end;
missing, empty, truncated or undecodable files and files without a video stream are broken.

Exit status: 0 when every video decodes, 1 when some are broken, 2 for a bad list or arguments.

Example (the demo's test list):
  python tools/check_videos.py demo_data/test-demo.csv --workers 2
"""
import argparse
import os
import sys
from typing import List, Optional, Tuple

from m3a.datasets.decoder import check_video
from m3a.datasets.video_list import ListFormatError, read_video_list
from m3a.utils.file_io import atomic_write_text
from m3a.utils.parallel import parallel_imap


def _parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("list", metavar="LIST", help="video list file (path,label[,label...] per line)")
    parser.add_argument("--out", help="write the broken videos here, one 'path<TAB>reason' per line (atomic)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decoding processes (default: all cores)")
    parser.add_argument("--separator", default=",", help="separator between path and labels (default ','; use ' ' for Kinetics style)")
    parser.add_argument("--prefix", default=None, help="folder that relative paths are resolved against (default: the list's folder)")
    parser.add_argument("--format", choices=("video", "frames"), default="video", help="video files or folders of JPEG frames")
    return parser.parse_args(argv)


def _check(job: Tuple[str, str]) -> Optional[str]:
    path, input_format = job
    return check_video(path, input_format)


def main(argv: Optional[List[str]] = None) -> int:
    """Check the videos of a list; return the exit status."""
    args = _parse_args(argv)
    try:
        entries = read_video_list(args.list, args.separator)
    except ListFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    prefix = args.prefix if args.prefix is not None else os.path.dirname(os.path.abspath(args.list))
    jobs = [(os.path.join(prefix, e.path), args.format) for e in entries]
    chunksize = max(1, min(16, len(jobs) // (8 * args.workers)))
    reasons = parallel_imap(_check, jobs, args.workers, desc="checking videos", chunksize=chunksize, unit="video")
    broken = [(path, reason) for (path, _), reason in zip(jobs, reasons) if reason is not None]
    if args.out:
        atomic_write_text(args.out, "".join(f"{path}\t{reason}\n" for path, reason in broken))
    for path, reason in broken[:20]:
        print(f"broken: {path}: {reason}")
    if len(broken) > 20:
        print(f"... and {len(broken) - 20} more")
    where = f" (listed in {args.out})" if args.out else ""
    print(f"checked {len(jobs)} videos: {len(jobs) - len(broken)} ok, {len(broken)} broken{where}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
