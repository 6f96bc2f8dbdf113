#!/usr/bin/env python3
"""Benchmarks of m3a components; each is a subcommand (``benchmark.py data --help``).

data: clips per second of our training path (selective decoding + crop-region transform) and
videos per second of our multi-view test path (one decoding pass per video), each against the
plain approach on the same files in the same run (training: decode the whole video, then sample
a clip; testing: decode the whole video again for every view). Both run in this process with
one torch thread, as in a loader worker. The plain paths use the same codec threading, RGB
conversion and uint8 resize kernel, so the ratios measure the decoding strategy (and, for
training, resizing only the crop region). The last line printed is
``train_speedup=<x.xx> test_speedup=<y.yy>``.

Videos come from the training list of the config (TRAIN.DATASET, first --videos entries), or
are generated with --make-long (10 s, 256-px short side) or --make-short (3 s, 128 px; like the
demo data) as H.264 mp4 files with libx264's default settings. Options may come in any order;
KEY VALUE config overrides come last.

Examples (the second after `make demo`):
  python tools/benchmark.py data --make-short --videos 2 --rounds 1
  python tools/benchmark.py data --cfg configs/demo/demo.yaml --videos 4 DATA.PATH_TO_DATA_DIR demo_data
"""
import argparse
import os
import sys
import tempfile
from typing import List, Optional

import torch
from tqdm import tqdm

from m3a.config import ConfigError, load_config
from m3a.datasets.decoder import check_video
from m3a.datasets.video_dataset import ClipLoader, build_dataset
from m3a.datasets.video_list import ListFormatError
from m3a.utils import benchmark
from m3a.utils.cli import parse_with_overrides

GENERATED = {"long": (10.0, 256), "short": (3.0, 128)}


def _add_data_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "data", help="decoding/loading speed against the plain approach", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cfg", default=None, help="config YAML (DATA, TEST and TRAIN.DATASET keys are used)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. DATA.NUM_FRAMES 8")
    parser.add_argument("--videos", type=int, default=8, help="number of videos to measure on (default 8)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--make-long", action="store_true", help="generate 10-s videos with a 256-px short side")
    group.add_argument("--make-short", action="store_true", help="generate 3-s videos with a 128-px short side")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds over the videos (default 2)")
    parser.add_argument("--keep", default=None, help="folder for generated videos (default: a temporary one)")
    parser.set_defaults(run=run_data)
    return parser


def _list_videos(cfg, count: int) -> List[str]:
    paths = build_dataset(cfg.TRAIN.DATASET, cfg, "train").paths[:count]
    good = []
    for path in tqdm(paths, desc="checking videos", unit="video"):
        reason = check_video(path, cfg.DATA.INPUT_FORMAT)
        if reason is None:
            good.append(path)
        else:
            print(f"skipping broken video {path}: {reason}")
    return good


def run_data(args: argparse.Namespace) -> int:
    """The ``data`` subcommand."""
    cfg = load_config(args.cfg, args.opts)
    torch.set_num_threads(1)
    kind = "long" if args.make_long else "short" if args.make_short else None
    with tempfile.TemporaryDirectory(prefix="m3a-bench-") as tmp:
        if kind is not None:
            seconds, short = GENERATED[kind]
            folder = args.keep or tmp
            os.makedirs(folder, exist_ok=True)
            generated = benchmark.generate_videos(folder, args.videos, seconds, short)
            paths = list(tqdm(generated, total=args.videos, desc=f"writing {seconds:g}-s videos", unit="video"))
            source = f"{len(paths)} generated {seconds:g}-s videos, short side {short} px, 30 fps"
        else:
            paths = _list_videos(cfg, args.videos)
            source = f"{len(paths)} videos of the {cfg.TRAIN.DATASET} training list"
        if not paths:
            print("error: no decodable videos to measure", file=sys.stderr)
            return 2
        return _measure(cfg, paths, source, args.rounds)


def _measure(cfg, paths: List[str], source: str, rounds: int) -> int:
    data, test = cfg.DATA, cfg.TEST
    clips = ClipLoader(cfg)
    views = test.NUM_ENSEMBLE_VIEWS * test.NUM_SPATIAL_CROPS
    print(f"videos: {source}")
    print(
        f"clips: {data.NUM_FRAMES} frames every {data.SAMPLING_RATE} at {data.TARGET_FPS} fps; train crop "
        f"{data.TRAIN_CROP_SIZE} (jitter {list(data.TRAIN_JITTER_SCALES)}); test {test.NUM_ENSEMBLE_VIEWS} x "
        f"{test.NUM_SPATIAL_CROPS} views of {data.TEST_CROP_SIZE}"
    )
    torch.manual_seed(cfg.RNG_SEED)
    ours, plain = benchmark.compare(clips.train_clip, lambda p: benchmark.plain_train_clip(p, cfg), paths, rounds)
    train = ours.per_second / plain.per_second
    print(f"train: ours {ours.per_second:.1f} clips/s, plain {plain.per_second:.1f} clips/s, x{train:.2f}")
    ours, plain = benchmark.compare(clips.test_views, lambda p: benchmark.plain_test_views(p, cfg), paths, rounds)
    test_ratio = ours.per_second / plain.per_second
    print(
        f"test ({views} views): ours {ours.per_second:.2f} videos/s, plain {plain.per_second:.2f} videos/s, "
        f"x{test_ratio:.2f}"
    )
    print(f"train_speedup={train:.2f} test_speedup={test_ratio:.2f}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the subcommand and run it; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_parser = _add_data_parser(subparsers)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["data"]:  # options in any order, KEY VALUE overrides last
        args = parse_with_overrides(data_parser, argv[1:])
        args.command = "data"
    else:
        args = parser.parse_args(argv)
    if getattr(args, "videos", 1) < 1 or getattr(args, "rounds", 1) < 1:
        parser.error("--videos and --rounds must be at least 1")
    try:
        return args.run(args)
    except (ConfigError, ListFormatError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
