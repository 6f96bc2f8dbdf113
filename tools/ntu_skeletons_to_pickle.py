#!/usr/bin/env python3
"""Convert NTU RGB+D ``.skeleton`` files to one 2D annotation pickle (the PoseC3D / MMAction2
format that m3a's skeleton datasets read): ``dict(split=..., annotations=[...])``.

Keypoints are the Kinect joints' colour-frame pixels (1920 x 1080) mapped to COCO-17 (nose =
head; eyes and ears missing, score 0); scores 1 tracked, 0.5 inferred. Splits: ntu60 gives
xsub_train/xsub_val and xview_train/xview_val, ntu120 xsub_* and xset_*. Example:
  python tools/ntu_skeletons_to_pickle.py --skeletons /data/nturgb+d_skeletons \\
      --benchmark ntu60 --out /data/ntu/ntu60_2d.pkl
Files whose frames hold no body are skipped and counted; a malformed file stops the run with
its name and line.
"""
import argparse
import glob
import os
import pickle
import sys

from m3a.prep.ntu_skeleton import (
    BENCHMARKS, SkeletonFormatError, benchmark_splits, in_benchmark, skeleton_annotation,
)
from m3a.utils.file_io import atomic_path


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skeletons", required=True, help="folder of .skeleton files")
    parser.add_argument("--out", required=True, help="output .pkl")
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="ntu60",
                        help="ntu60 (actions 1-60, xsub/xview) or ntu120 (xsub/xset)")
    parser.add_argument("--max-persons", type=int, default=2, help="bodies kept per sample")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Read every .skeleton file of the benchmark and write the pickle."""
    args = parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.skeletons, "*.skeleton")))
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    paths = [p for p, n in zip(paths, names) if in_benchmark(n, args.benchmark)]
    if not paths:
        print(f"error: no {args.benchmark} .skeleton files in {args.skeletons}", file=sys.stderr)
        return 2
    annotations, empty = [], []
    try:
        for path in paths:
            ann = skeleton_annotation(path, args.max_persons)
            (annotations.append(ann) if ann is not None else empty.append(path))
    except (SkeletonFormatError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    splits = benchmark_splits([a["frame_dir"] for a in annotations], args.benchmark)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as f:
        pickle.dump({"split": splits, "annotations": annotations}, f, protocol=4)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    print(f"wrote {args.out}: {len(annotations)} samples ({sizes}); "
          f"{len(empty)} file(s) without a body skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
