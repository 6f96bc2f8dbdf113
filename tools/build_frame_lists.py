#!/usr/bin/env python3
"""Build frame-folder lists (``path num_frames label``) from the official annotation files.

Examples:
  python tools/build_frame_lists.py ssv2 --annotations data/ssv2/labels \\
      --frames-root data/ssv2/frames --out-dir data/ssv2
  python tools/build_frame_lists.py jester --annotations data/jester \\
      --frames-root data/jester/frames --out-dir data/jester
  python tools/build_frame_lists.py egogesture --labels-root data/ego/labels-final-revised1 \\
      --frames-root data/ego/frames --clips-root data/ego/clips --out-dir data/ego --published-splits

Writes OUT_DIR/train.csv, val.csv, test.csv (the lists TRAIN.DATASET kinetics reads with
DATA.LIST_FORMAT frame_folder) and OUT_DIR/classes.txt (DATA.CLASS_NAMES_FILE). List paths are
relative to --frames-root (EgoGesture: --clips-root), which is the config's DATA.PATH_PREFIX.
SSv2 and Jester have no public test labels: test.csv is the validation list (where both papers
report). Videos whose frame folder is missing or empty are left out and counted.
EgoGesture gets one folder of links per gesture under --clips-root; --all-frames keeps the last
two annotated frames that the published lists drop; --published-splits trains on the train + val
subjects and validates on the test subjects, as the published run did.
"""
import argparse
import os
import sys

from m3a.prep import frame_lists as fl


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="dataset", required=True)
    for name, files in (("ssv2", "something-something-v2-{labels,train,validation}.json"),
                        ("jester", "jester-v1-{labels,train,validation}.csv")):
        p = sub.add_parser(name, help=f"lists from {files}")
        p.add_argument("--annotations", required=True, help=f"folder holding {files}")
        p.add_argument("--frames-root", required=True, help="folder of the per-video frame folders <id>/")
        p.add_argument("--out-dir", required=True, help="folder for train.csv, val.csv, test.csv, classes.txt")
    p = sub.add_parser("egogesture", help="lists from the per-subject/scene GroupG.csv files")
    p.add_argument("--labels-root", required=True, help="folder of SubjectNN/SceneK/GroupG.csv")
    p.add_argument("--frames-root", required=True, help="folder of SubjectNN/SceneK/Color/rgbG/")
    p.add_argument("--clips-root", required=True, help="folder for the per-gesture folders of frame links")
    p.add_argument("--out-dir", required=True, help="folder for train.csv, val.csv, test.csv, classes.txt")
    p.add_argument("--all-frames", action="store_true", help="keep frames end-1 and end (dropped as published)")
    p.add_argument("--published-splits", action="store_true",
                   help="train on train + val subjects, validate on test subjects (the published run)")
    return parser.parse_args(argv)


def _labelled_splits(args):
    """Classes and, per split, the (id, label) videos of SSv2 / Jester."""
    if args.dataset == "ssv2":
        name = "something-something-v2-{}.json"
        classes = fl.ssv2_classes(os.path.join(args.annotations, name.format("labels")))
        read = fl.ssv2_videos
    else:
        name = "jester-v1-{}.csv"
        classes = fl.jester_classes(os.path.join(args.annotations, name.format("labels")))
        read = fl.jester_videos
    splits = {split: read(os.path.join(args.annotations, name.format(official)), classes)
              for split, official in (("train", "train"), ("val", "validation"))}
    return classes, splits


def build(args) -> str:
    """Write the lists; return a summary line per split."""
    lines = []
    if args.dataset == "egogesture":
        classes = [str(i) for i in range(1, 84)]
        for split, subjects in fl.split_subjects(args.published_splits).items():
            entries, missing = fl.egogesture_entries(args.labels_root, args.frames_root, args.clips_root,
                                                     subjects, published_frames=not args.all_frames)
            fl.write_list(os.path.join(args.out_dir, f"{split}.csv"), entries)
            lines.append(f"{split}: {len(entries)} gestures, {len(missing)} without frames")
    else:
        classes, splits = _labelled_splits(args)
        splits["test"] = splits["val"]
        for split, videos in splits.items():
            entries, missing = fl.folder_entries(videos, args.frames_root)
            fl.write_list(os.path.join(args.out_dir, f"{split}.csv"), entries)
            lines.append(f"{split}: {len(entries)} videos, {len(missing)} without frames")
    fl.write_class_names(os.path.join(args.out_dir, "classes.txt"), classes)
    return "\n".join(lines + [f"{len(classes)} classes"])


def main(argv=None) -> int:
    """Build the lists; one-line error and exit status 2 for unreadable annotations."""
    args = parse_args(argv)
    try:
        print(build(args))
    except (fl.AnnotationError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
