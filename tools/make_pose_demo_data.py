#!/usr/bin/env python3
"""Generate the EPAM-Net demo data: stick figures whose limb motions are 4 classes (arms up,
squat, jumping jack, clap), with COCO-17 keypoints in the PoseC3D annotation format
(pose_demo_2d.pkl, splits train / val), matching 96 x 96 mp4 videos and the class names
(classes.txt). Example:
  python tools/make_pose_demo_data.py --out pose_demo_data
  python tools/run_net.py --cfg configs/EPAM/DEMO_EPAM.yaml DATA.PATH_TO_DATA_DIR pose_demo_data \\
      DATA.CLASS_NAMES_FILE pose_demo_data/classes.txt OUTPUT_DIR output/pose_demo
"""
import argparse
import sys

from m3a.prep.pose_demo import make_pose_demo


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--samples-per-class", type=int, default=24, help="samples of each class")
    parser.add_argument("--size", type=int, default=96, help="video width and height")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Write the data set."""
    args = parse_args(argv)
    if args.samples_per_class < 2 or args.size < 32:
        print("error: --samples-per-class must be >= 2 and --size >= 32", file=sys.stderr)
        return 2
    sizes = make_pose_demo(args.out, args.samples_per_class, args.size, args.seed)
    print(f"wrote {args.out}: {sizes['train']} training and {sizes['val']} validation samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
