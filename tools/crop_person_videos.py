#!/usr/bin/env python3
"""Cut the RGB videos of an annotation pickle to their persons, as EPAM-Net's data was made: one
box per video around every person's joints in all frames (25 % padding, square, clipped), every
frame cut to it and resized to --size x --size (H.264, source frame rate). Example:
  python tools/crop_person_videos.py --ann /data/ntu/ntu60_2d.pkl --videos /data/ntu/videos \\
      --out /data/ntu/cropped --workers 8
writes cropped/<frame_dir>_rgb.mp4 for videos/<frame_dir>_rgb.avi; train with
POSE.VIDEOS_CROPPED True, POSE.VIDEO_TEMPLATE "{}_rgb.mp4" and DATA.PATH_PREFIX .../cropped.
Existing outputs are skipped (re-run to resume); a video that cannot be read is reported and
the others are still written (exit status 1) and the failures listed in --failed-list (default
OUT/failed.txt). --workers crops several videos at once.
"""
import argparse
import os
import sys

from m3a.datasets.pose import PoseDataError, load_annotations
from m3a.prep.media_files import run_media_jobs
from m3a.prep.person_crop import DONE, SKIPPED, crop_job


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ann", required=True, help="annotation pickle (PoseC3D format)")
    parser.add_argument("--videos", required=True, help="folder of the source videos")
    parser.add_argument("--out", required=True, help="folder of the cropped videos")
    parser.add_argument("--template", default="{}_rgb.avi", help="source video of a frame_dir")
    parser.add_argument("--out-template", default="{}_rgb.mp4", help="output video of a frame_dir")
    parser.add_argument("--size", type=int, default=224, help="output width and height")
    parser.add_argument("--split", default=None, help="only the samples of this split")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--failed-list", default=None,
                        help="write the videos that failed here (default OUT/failed.txt)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Crop every sample's video."""
    args = parse_args(argv)
    try:
        annotations = load_annotations(args.ann, args.split)
    except (PoseDataError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    jobs = [(os.path.join(args.videos, args.template.format(ann["frame_dir"])),
             os.path.join(args.out, args.out_template.format(ann["frame_dir"])),
             ann["keypoint"], ann["img_shape"], args.size) for ann in annotations]
    failed_list = args.failed_list or os.path.join(args.out, "failed.txt")
    run = run_media_jobs(crop_job, jobs, [a["frame_dir"] for a in annotations], args.workers, "cropping",
                         failed_list)
    for line in run.failures:
        print(f"failed: {line}", file=sys.stderr)
    count = lambda status: len(run.paths.get(status, []))  # noqa: E731
    print(f"{count(DONE)} videos cropped, {count(SKIPPED)} already there, {len(run.failures)} failed -> {args.out}"
          + (f" (failures listed in {failed_list})" if run.failures else ""))
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
