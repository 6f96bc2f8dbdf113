#!/usr/bin/env python3
"""Re-encode videos so their short side is --size pixels (H.264 + AAC audio), with PyAV.

Example:
  python tools/rescale_videos.py --videos-root data/mmit/videos --out-root data/mmit/videos256 \\
      --list data/mmit/train-v1.csv --size 256 --workers 8
Without --list every video file under --videos-root is converted. Outputs keep the relative
path; files already present in --out-root are skipped (re-run to resume). Videos whose short
side is already <= --size are copied unless --upscale. Failures are listed, not fatal.

--training-copy writes copies for training that decode several times faster: short side 160
unless --size says otherwise (the top of the M-MiT recipe's scale jitter), a keyframe every 16
frames (a random clip decodes from a nearby keyframe) and x264's fastdecode tuning (larger
files); audio kept. Every video is re-encoded, small ones at their own size. Test on the
original videos (or 256-px copies): the test views scale the short side to TEST_CROP_SIZE.
"""
import argparse
import os
import sys


from m3a.prep.media_files import add_media_arguments, failed_list_path, media_paths_or_none, run_media_jobs
from m3a.prep.transcode import TRAINING_COPY, TRAINING_COPY_SIZE, Encoding, rescale_job


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_media_arguments(parser, "folder of the source videos",
                        "folder for the rescaled videos (same relative paths)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"target short side in pixels (default 256; {TRAINING_COPY_SIZE} with --training-copy)")
    parser.add_argument("--crf", type=int, default=23, help="x264 constant rate factor (default 23)")
    parser.add_argument("--upscale", action="store_true", help="also re-encode videos smaller than --size")
    parser.add_argument("--training-copy", action="store_true",
                        help="fast-decoding training copies (see above)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Convert every video and print a summary."""
    args = parse_args(argv)
    paths = media_paths_or_none(args)
    if paths is None:
        return 2
    if args.training_copy:
        size = args.size or TRAINING_COPY_SIZE
        encoding = Encoding(args.crf, TRAINING_COPY.keyframe_interval, TRAINING_COPY.fast_decode)
    else:
        size, encoding = args.size or 256, Encoding(args.crf)
    jobs = [
        (os.path.join(args.videos_root, p), os.path.join(args.out_root, p), size, encoding, args.upscale,
         not args.training_copy)
        for p in paths
    ]
    failed_list = failed_list_path(args)
    run = run_media_jobs(rescale_job, jobs, paths, args.workers, "rescaling", failed_list)
    print(run.report(failed_list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
