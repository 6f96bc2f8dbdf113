#!/usr/bin/env python3
"""Build the Charades lists and class names from the official annotation files.

Example (Charades.zip extracted to data/charades/Charades, the 480p videos to
data/charades/Charades_v1_480):
  python tools/build_charades_lists.py --annotations data/charades/Charades --out-dir data/charades

Reads ANNOTATIONS/Charades_v1_classes.txt ('c000 Holding some clothes', 157 classes; cNNN is
label NNN) and ANNOTATIONS/Charades_v1_{train,test}.csv (columns id, ..., actions, ...; actions
is 'c092 11.90 21.20;c147 0.00 12.60' or empty) and writes, atomically and only when every file
reads without error:
  OUT_DIR/train.csv              from Charades_v1_train.csv
  OUT_DIR/test.csv, val.csv      from Charades_v1_test.csv (the set the field reports on; val.csv
                                 is the same list, for validation during training)
  OUT_DIR/categories-VERSION.txt the class names in label order (DATA.MMIT_VERSION VERSION)
Lines are 'VIDEO_DIR/<id>EXT,label[,label...]' (the charades dataset's mmit_csv format; paths
relative to DATA.PATH_PREFIX, by default the data folder). A video's labels are the classes of
all its action intervals, each once (overlapping or repeated intervals add nothing). Videos
without any action are skipped and counted: a list line needs a label, and Charades' own
evaluation ranks such test videos last for every class, so class-wise mAP is the same without
them. An unknown class id, a malformed row or a missing column stops the tool with an error
naming file:line; nothing is written then.
Prints one summary line per split and the commands that build the graph adjacency and the text
lexicon from the outputs.
"""
import argparse
import os
import sys

from m3a.prep import charades
from m3a.utils.file_io import write_lines


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotations", required=True,
                        help=f"folder holding {charades.CLASSES_FILE} and Charades_v1_{{train,test}}.csv")
    parser.add_argument("--out-dir", required=True, help="folder for the lists and the class names (the data folder)")
    parser.add_argument("--video-dir", default="Charades_v1_480",
                        help="folder of the videos, relative to the data folder, written before every "
                             "id (default Charades_v1_480; '' for none)")
    parser.add_argument("--ext", default=".mp4", help="video file extension (default .mp4)")
    parser.add_argument("--version", default="charades",
                        help="DATA.MMIT_VERSION of the configs: names categories-VERSION.txt and the "
                             "lexicons (default charades)")
    return parser.parse_args(argv)


def split_summary(split: str, result: charades.SplitResult, num_classes: int) -> str:
    """One line: videos, labels, intervals, skipped videos and classes without a video."""
    present = {label for video in result.videos for label in video.labels}
    return (f"{split}: {len(result.videos)} videos, {result.num_labels} labels from "
            f"{result.num_intervals} action intervals; skipped {len(result.without_actions)} videos "
            f"without actions; {num_classes - len(present)} of {num_classes} classes have no video")


def next_commands(out_dir: str, version: str, num_classes: int) -> str:
    """The commands that build the graph adjacency and the GloVe text lexicon."""
    m3a_dir = os.path.join(out_dir, "mmit-m3a")
    return "\n".join([
        "next, the M3A inputs (graph adjacency; text lexicon, GloVe 6B 300-d):",
        f"  python tools/gen_graph_adj.py --list {os.path.join(out_dir, 'train.csv')} --num-classes {num_classes} "
        f"--out {os.path.join(m3a_dir, f'graph-adj-{version}.npz')} --threshold 0.4",
        f"  python tools/gen_text_lexicon.py --class-names {os.path.join(out_dir, f'categories-{version}.txt')} "
        f"--out {os.path.join(m3a_dir, f'text-lexicon-{version}.npz')} --glove data/glove/glove.6B.zip",
    ])


def build(args: argparse.Namespace) -> str:
    """Read every annotation file, then write the outputs; return the summary."""
    classes = charades.read_classes(os.path.join(args.annotations, charades.CLASSES_FILE))
    splits = {split: charades.read_split(os.path.join(args.annotations, name), classes)
              for split, name in charades.SPLIT_FILES.items()}
    lists = {split: charades.list_lines(result.videos, args.video_dir, args.ext) for split, result in splits.items()}
    lists["val"] = lists["test"]
    for split, lines in lists.items():
        write_lines(os.path.join(args.out_dir, f"{split}.csv"), lines)
    write_lines(os.path.join(args.out_dir, f"categories-{args.version}.txt"), charades.class_names(classes))
    lines = [split_summary(split, result, len(classes)) for split, result in splits.items()]
    lines.append(f"{len(classes)} classes -> {os.path.join(args.out_dir, f'categories-{args.version}.txt')}; "
                 f"lists train.csv, val.csv (= test.csv), test.csv in {args.out_dir}")
    return "\n".join(lines + [next_commands(args.out_dir, args.version, len(classes))])


def main(argv=None) -> int:
    """Build the lists; a one-line error and exit status 2 for a bad annotation file."""
    args = parse_args(argv)
    try:
        print(build(args))
    except (charades.CharadesError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
