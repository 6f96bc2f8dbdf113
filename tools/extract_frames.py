#!/usr/bin/env python3
"""Decode videos into folders of JPEG frames (for DATA.INPUT_FORMAT frames), with PyAV.

Example (Something-Something V2 the way TSM / ACTION-Net extracted it: native frame rate,
height 256):
  python tools/extract_frames.py --videos-root data/ssv2/videos --out-root data/ssv2/frames \\
      --height 256 --workers 8
Every video under --videos-root (or of --list) becomes OUT_ROOT/<relative path without
extension>/000001.jpg, 000002.jpg, ... (--template). Finished folders are skipped, so re-running
resumes an interrupted run; a folder only appears complete. Failures are listed, not fatal.
"""
import argparse
import os
import sys

from m3a.prep.frame_extraction import extract_frames_job
from m3a.prep.media_files import add_media_arguments, failed_list_path, media_paths_or_none, run_media_jobs


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_media_arguments(parser, "folder of the source videos", "folder for the frame folders (same relative paths)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--short-side", type=int, default=0, help="resize the short side to this (0 = keep)")
    size.add_argument("--height", type=int, default=0, help="resize the height to this (0 = keep)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1-95 (default 95)")
    parser.add_argument("--template", default="{:06d}.jpg", help="frame file names, 1-based (default {:06d}.jpg)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Extract every video and print a summary."""
    args = parse_args(argv)
    if not 1 <= args.quality <= 95 or args.short_side < 0 or args.height < 0:
        print("error: --quality must be in 1..95 and sizes >= 0", file=sys.stderr)
        return 2
    paths = media_paths_or_none(args)
    if paths is None:
        return 2
    jobs = [(os.path.join(args.videos_root, p), os.path.join(args.out_root, os.path.splitext(p)[0]),
             args.short_side, args.height, args.quality, args.template) for p in paths]
    failed_list = failed_list_path(args)
    run = run_media_jobs(extract_frames_job, jobs, paths, args.workers, "extracting frames", failed_list)
    print(run.report(failed_list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
