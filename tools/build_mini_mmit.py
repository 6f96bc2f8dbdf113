#!/usr/bin/env python3
"""Build the Mini M-MiT training list (drop videos without audio, cap each category).

Example:
  python tools/build_mini_mmit.py --list data/mmit/train-v1.csv --videos-root data/mmit/videos \\
      --out data/mmit/train-mini.csv --per-class 300 --seed 0 --workers 8
Categories are grouped by the FIRST label of each line. Probing results are cached in
--probe-cache (default: OUT.probe.tsv), so an interrupted run resumes.
"""
import argparse
import os
import sys


from m3a.datasets.video_list import ListFormatError
from m3a.utils.class_names import read_class_names
from m3a.prep.mini_mmit import (
    NO_AUDIO,
    UNREADABLE,
    build_mini_list,
    probe_videos,
    read_list_lines,
)
from m3a.utils.file_io import atomic_write_text


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", required=True, help="training list 'path,label[,label...]'")
    parser.add_argument("--videos-root", required=True, help="folder the list's video paths are relative to")
    parser.add_argument("--out", required=True, help="output list (same format, input line order)")
    parser.add_argument("--per-class", type=int, default=300, help="max videos per category (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-category random draw")
    parser.add_argument("--workers", type=int, default=1, help="processes probing videos")
    parser.add_argument("--separator", default=",", help="list separator between path and labels")
    parser.add_argument("--probe-cache", default=None, help="resumable probe results (default OUT.probe.tsv)")
    parser.add_argument("--dropped-list", default=None,
                        help="also write videos without audio / unreadable here")
    parser.add_argument("--class-names", default=None, help="category names to show in the summary")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Probe, select, write the list and print the per-category summary."""
    args = parse_args(argv)
    try:
        lines = read_list_lines(args.list, args.separator)
        names = read_class_names(args.class_names) if args.class_names else None
        if not os.path.isdir(args.videos_root):
            raise FileNotFoundError(f"videos root not found: {args.videos_root}")
        cache = args.probe_cache or args.out + ".probe.tsv"
        status = probe_videos([ln.entry.path for ln in lines], args.videos_root, args.workers, cache)
        kept, summary = build_mini_list(lines, status, args.per_class, args.seed)
        atomic_write_text(args.out, "".join(ln.text + "\n" for ln in kept))
        if args.dropped_list:
            dropped = [f"{p}\t{s}\n" for p, s in status.items() if s in (NO_AUDIO, UNREADABLE)]
            atomic_write_text(args.dropped_list, "".join(dropped))
    except (ListFormatError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary.table(names))
    print(f"wrote {len(kept)} of {len(lines)} videos to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
