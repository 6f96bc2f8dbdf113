#!/usr/bin/env python3
"""Generate the m3a demo data set: synthetic multi-action videos with sound, their lists, class
names, co-occurrence graph and text/audio lexicons (see m3a.prep.demo_data for the layout).
With --kind motion: the motion-direction data set instead (frame folders whose classes differ
only in the direction of motion; see m3a.prep.motion_demo).

Examples: python tools/make_demo_data.py --out demo_data
          python tools/make_demo_data.py --kind motion --out demo_motion
"""
import argparse
import logging
import os
import sys

from tqdm import tqdm

from m3a.prep.demo_render import MAX_CLASSES


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Generate the synthetic demo data set used by `make demo`: H.264/AAC .mp4 "
        "videos, each showing 1-3 co-occurring 'actions' (a coloured shape moving in a "
        "class-specific way and making a class-specific sound), the lists "
        "{train,val,test}-demo.csv, categories-demo.txt, mmit-m3a/{graph-adj,text-lexicon,"
        "audio-lexicon}-demo.npz and README.txt. The same seed gives the same data set. "
        "'.complete' is written last, once everything is in place.")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--kind", choices=("actions", "motion"), default="actions",
                        help="actions: the multi-action videos with sound (default); motion: frame "
                        "folders of 6 classes that differ only in the direction of motion")
    parser.add_argument("--clips-per-class", type=int, default=60,
                        help="motion: clips per class, split 60/15/25 into train/val/test (default 60)")
    parser.add_argument("--frames", type=int, default=24, help="motion: frames per clip (default 24)")
    parser.add_argument("--videos", type=int, default=300,
                        help="number of videos, split ~70/15/15 into train/val/test (default 300)")
    parser.add_argument("--classes", type=int, default=10,
                        help=f"number of action classes, 1..{MAX_CLASSES} (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="video length in seconds, >= 1 (default 3)")
    parser.add_argument("--size", type=int, default=None,
                        help="actions: short side in pixels (even), frames 4:3 landscape (default "
                        "128); motion: side of the square frames (default 64)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8),
                        help="parallel encoding processes (default: the number of CPUs, up to 8)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Generate the data set; return the exit status."""
    args = parse_args(argv)
    if args.kind == "motion":
        return make_motion(args)
    args.size = 128 if args.size is None else args.size
    from m3a.prep.demo_data import make_demo_dataset, plan_videos  # heavy imports after --help

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        plan_videos(args.videos, args.classes, args.seed)  # validate before any work
        with tqdm(total=args.videos, desc="demo videos", unit="video") as bar:
            summary = make_demo_dataset(
                args.out, args.videos, args.classes, seed=args.seed, duration=args.duration,
                size=args.size, workers=max(1, args.workers), progress=lambda: bar.update(1))
    except (ValueError, OSError) as err:
        print(f"make_demo_data: error: {err}", file=sys.stderr)
        return 2
    print(f"demo data set ready in {args.out}: {summary['num_train']} train, "
          f"{summary['num_val']} val, {summary['num_test']} test videos, "
          f"{len(summary['class_names'])} classes")
    return 0


def make_motion(args: argparse.Namespace) -> int:
    """Generate the motion-direction data set; return the exit status."""
    from m3a.prep.motion_demo import CLASSES, make_motion_dataset

    try:
        counts = make_motion_dataset(args.out, args.clips_per_class, args.frames,
                                     64 if args.size is None else args.size, args.seed)
    except (ValueError, OSError) as err:
        print(f"make_demo_data: error: {err}", file=sys.stderr)
        return 2
    print(f"motion demo data set ready in {args.out}: {counts['train']} train, {counts['val']} val, "
          f"{counts['test']} test clips, {len(CLASSES)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
