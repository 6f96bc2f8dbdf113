#!/usr/bin/env python3
"""Benchmarks of m3a components; each is a subcommand (``benchmark.py data --help``).

data: clips per second of our training path (selective decoding + crop-region transform) and
videos per second of our multi-view test path (one decoding pass per video), each against the
plain approach on the same files in the same run (training: decode the whole video, then sample
a clip; testing: decode the whole video again for every view). Both run in this process with
one torch thread, as in a loader worker. The plain paths use the same codec threading, RGB
conversion and uint8 resize kernel, so the ratios measure the decoding strategy (and, for
training, resizing only the crop region).

Then, when they are installed (``pip install -e .[bench]``; a note says why one is skipped),
torchcodec and decord decode the same clips of the same files with one thread each, followed by
our transforms, and each ratio ours / theirs is printed with whether their frames are identical
to ours. The last line printed is ``train_speedup=<x> test_speedup=<y>`` followed by
``train_vs_<anchor>=<x> test_vs_<anchor>=<y>`` for every anchor measured (> 1: ours is faster).

Videos come from the training list of the config (TRAIN.DATASET, first --videos entries), or
are generated with --make (H.264 mp4 files, libx264's default settings unless said):
short (3 s, 128-px short side, 4:3; like the demo data), mmit (3 s, 256 px, 4:3; like M-MiT
rescaled to 256), long (10 s, 256 px, 4:3) or 720p (3 s, 1280x720, no B-frames).

With --training-copy [SIZE], training copies of the same videos are written as
``tools/rescale_videos.py --training-copy`` writes them (short side SIZE, default 160) and our
training clips/s on them is compared with the originals (``copy_speedup`` in the last line).

metrics: seconds of our class-wise and sample-wise mAP (m3a.utils.metrics) against
scikit-learn's average_precision_score called per class / per video, on the same model-like
scores (float32, rounded to 3 decimals so that many tie; --videos x --classes, default 10,000 x
313 as the M-MiT validation set), with the largest difference between the two results. The
last line is ``class_speedup=<x> sample_speedup=<y>``.

models: for every --cfg, parameters, GFLOPs (fvcore, one clip at the test size), CPU training and
inference clips/s (synthetic clips of --batch items, --threads torch threads) and, with
--data-dir, the test class-wise and sample-wise mAP after training with the engine (--epochs,
the same schedule for every config) into <out>/<name>. Writes <out>/models.md (markdown table)
and <out>/models.png (mAP against GFLOPs); the last line is ``<name>_gflops=<x>
<name>_map_class=<y> <name>_map_sample=<z> ...``.

train: clips per second of the engine's training step (forward, loss, backward, optimizer step)
fed by the real loader (DATA_LOADER.NUM_WORKERS workers, or --workers), against the same step
replaying the first batch from memory, and their ratio (how much of the step's speed the loader
keeps); --compare measures model speed switches on the replayed batch (channels_last, bf16,
fp16 on CUDA, compile; combine with +). The loader alone (no step) is measured too. The last line
is ``real_clips_per_s=<a> synthetic_clips_per_s=<b> loader_ratio=<a/b> loader_only_clips_per_s=<c>
workers=<n>`` followed by ``<switch>_speedup=<x>``.

Options may come in any order; KEY VALUE config overrides come last.

Examples (the second and the last after `make demo`):
  python tools/benchmark.py data --make short --videos 2 --rounds 1
  python tools/benchmark.py data --cfg configs/demo/demo.yaml --videos 4 DATA.PATH_TO_DATA_DIR demo_data
  python tools/benchmark.py metrics --videos 2000
  python tools/benchmark.py models --cfg configs/demo/families/video_resnet_fc.yaml \
      --cfg configs/demo/families/video_resnet_gcn.yaml --data-dir demo_data --epochs 2
"""
import argparse
import os
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np
import torch
from tqdm import tqdm

from m3a.config import ConfigError, load_config
from m3a.datasets import benchmark, decoder_anchors
from m3a.datasets.decoder import check_video
from m3a.datasets.video_dataset import ClipLoader, build_dataset
from m3a.datasets.video_list import ListFormatError
from m3a.engine import throughput
from m3a.prep.transcode import TRAINING_COPY, TRAINING_COPY_SIZE, rescale_video
from m3a.utils import distributed as du
from m3a.utils import metrics
from m3a.utils.cli import parse_with_overrides

# --make name -> (seconds, short side, aspect ratio, B-frames (None: libx264's default)).
GENERATED = benchmark.GENERATED


def _add_data_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "data", help="decoding/loading speed against the plain approach", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cfg", default=None, help="config YAML (DATA, TEST and TRAIN.DATASET keys are used)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. DATA.NUM_FRAMES 8")
    parser.add_argument("--videos", type=int, default=8, help="number of videos to measure on (default 8)")
    parser.add_argument("--make", choices=sorted(GENERATED), default=None,
                        help="generate the videos instead of reading the training list (see above)")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds over the videos (default 2)")
    parser.add_argument("--keep", default=None, help="folder for generated videos (default: a temporary one)")
    parser.add_argument("--training-copy", type=int, nargs="?", const=TRAINING_COPY_SIZE, default=None,
                        metavar="SIZE", help=f"also measure training copies (short side SIZE, default "
                        f"{TRAINING_COPY_SIZE})")
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
    with tempfile.TemporaryDirectory(prefix="m3a-bench-") as tmp:
        if args.make is not None:
            seconds, short, aspect, bframes = GENERATED[args.make]
            folder = args.keep or tmp
            os.makedirs(folder, exist_ok=True)
            generated = benchmark.generate_videos(folder, args.videos, seconds, short, aspect=aspect, bframes=bframes)
            paths = list(tqdm(generated, total=args.videos, desc=f"writing {seconds:g}-s videos", unit="video"))
            source = (
                f"{len(paths)} generated {seconds:g}-s videos, short side {short} px, aspect {aspect:.2f}, 30 fps"
                + (", no B-frames" if bframes == 0 else "")
            )
        else:
            paths = _list_videos(cfg, args.videos)
            source = f"{len(paths)} videos of the {cfg.TRAIN.DATASET} training list"
        if not paths:
            print("error: no decodable videos to measure", file=sys.stderr)
            return 2
        copies = _training_copies(paths, args.training_copy, tmp) if args.training_copy else None
        return _measure(cfg, paths, source, args.rounds, copies)


def _training_copies(paths: List[str], size: int, tmp: str) -> Dict[str, str]:
    """Write a training copy of every video into ``tmp``; return {original: copy}."""
    copies = {}
    for i, path in enumerate(tqdm(paths, desc="writing training copies", unit="video")):
        copies[path] = os.path.join(tmp, "copies", f"{i:04d}.mp4")
        rescale_video(path, copies[path], size, TRAINING_COPY, copy_small=False)
    return copies


def _measure_copies(clips: ClipLoader, copies: Dict[str, str], rounds: int) -> float:
    """Print and return our training clips/s on the training copies over that on the originals."""
    paths = list(copies)
    original, copy = benchmark.compare(clips.train_clip, lambda p: clips.train_clip(copies[p]), paths, rounds)
    ratio = copy.per_second / original.per_second
    size = sum(os.path.getsize(c) for c in copies.values()) / sum(os.path.getsize(p) for p in paths)
    print(
        f"training copies: ours {original.per_second:.1f} clips/s on the originals, {copy.per_second:.1f} on the "
        f"copies, x{ratio:.2f} (one core each; copies {size:.2f}x the originals' bytes)"
    )
    return ratio


def _measure(cfg, paths: List[str], source: str, rounds: int, copies: Optional[Dict[str, str]] = None) -> int:
    data, test = cfg.DATA, cfg.TEST
    print(f"videos: {source}")
    print(
        f"clips: {data.NUM_FRAMES} frames every {data.SAMPLING_RATE} at {data.TARGET_FPS} fps; train crop "
        f"{data.TRAIN_CROP_SIZE} (jitter {list(data.TRAIN_JITTER_SCALES)}); test {test.NUM_ENSEMBLE_VIEWS} x "
        f"{test.NUM_SPATIAL_CROPS} views of {data.TEST_CROP_SIZE}"
    )
    torch.manual_seed(cfg.RNG_SEED)
    clips = ClipLoader(cfg)
    train = lambda p: benchmark.plain_train_clip(p, cfg)  # noqa: E731
    test_views = lambda p: benchmark.plain_test_views(p, cfg)  # noqa: E731
    ratios = {}
    ratios["train_speedup"], ratios["test_speedup"] = _compare_paths(clips, "plain", train, test_views, paths, cfg,
                                                                     rounds)
    anchors, missing = decoder_anchors.available_anchors()
    for name, why in missing.items():
        print(f"note: {name} not measured: {why}")
    for name, reader in anchors.items():
        same = decoder_anchors.same_frames_as_ours(reader, cfg, paths[0])
        print(f"{name}: frames {'identical to' if same else 'DIFFERENT from'} ours at the test clip times")
        train = decoder_anchors.anchor_train_clip(reader, cfg)
        test_views = decoder_anchors.anchor_test_views(reader, cfg)
        ratios[f"train_vs_{name}"], ratios[f"test_vs_{name}"] = _compare_paths(
            clips, name, train, test_views, paths, cfg, rounds
        )
    if copies:
        ratios["copy_speedup"] = _measure_copies(clips, copies, rounds)
    print(" ".join(f"{key}={value:.2f}" for key, value in ratios.items()))
    return 0


def _compare_paths(clips: ClipLoader, name: str, train, test_views, paths: List[str], cfg, rounds: int):
    """Measure our training and test paths against ``name``'s on ``paths``; print and return
    the two ratios ours / theirs."""
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    ours, theirs = benchmark.compare(clips.train_clip, train, paths, rounds)
    train_ratio = ours.per_second / theirs.per_second
    print(f"train: ours {ours.per_second:.1f} clips/s, {name} {theirs.per_second:.1f} clips/s, x{train_ratio:.2f}")
    ours, theirs = benchmark.compare(clips.test_views, test_views, paths, rounds)
    test_ratio = ours.per_second / theirs.per_second
    print(
        f"test ({views} views): ours {ours.per_second:.2f} videos/s, {name} {theirs.per_second:.2f} videos/s, "
        f"x{test_ratio:.2f}"
    )
    return train_ratio, test_ratio


def _add_metrics_parser(subparsers) -> None:
    parser = subparsers.add_parser("metrics", help="mAP speed against scikit-learn's per-class loop")
    parser.add_argument("--videos", type=int, default=10000, help="videos (rows; default 10000)")
    parser.add_argument("--classes", type=int, default=313, help="classes (columns; default 313)")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls of ours, the best counts (default 5)")
    parser.set_defaults(run=run_metrics)


def run_metrics(args: argparse.Namespace) -> int:
    """The ``metrics`` subcommand."""
    torch.set_num_threads(1)
    scores, labels = benchmark.metric_inputs(args.videos, args.classes)
    distinct = len(np.unique(scores))
    print(f"scores: {args.videos} videos x {args.classes} classes, float32, {distinct} distinct values; "
          f"{labels.sum() / args.videos:.2f} labels per video")
    ratios = {}
    for name, ours, reference in (
        ("class", metrics.map_class, benchmark.sklearn_map_class),
        ("sample", metrics.map_sample, benchmark.sklearn_map_sample),
    ):
        ours_time, ours_value = benchmark.best_time(lambda: ours(scores, labels), args.rounds)
        ref_time, ref_value = benchmark.best_time(lambda: reference(scores, labels), 1)
        ratios[f"{name}_speedup"] = ref_time / ours_time
        print(f"map_{name}: ours {ours_time * 1e3:.1f} ms, sklearn loop {ref_time * 1e3:.0f} ms, "
              f"x{ref_time / ours_time:.0f}; |difference| {abs(ours_value - ref_value):.1e}")
    print(" ".join(f"{key}={value:.1f}" for key, value in ratios.items()))
    return 0


def _add_models_parser(subparsers) -> None:
    parser = subparsers.add_parser("models", help="parameters, GFLOPs, CPU speed and mAP of several configs")
    parser.add_argument("--cfg", action="append", required=True, help="config YAML of one model (repeat the option)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides applied to every config")
    parser.add_argument("--data-dir", default=None,
                        help="data set (DATA.PATH_TO_DATA_DIR): train and test every config on it")
    parser.add_argument("--epochs", type=int, default=None, help="SOLVER.MAX_EPOCH of every config (default: each "
                                                                 "config's own)")
    parser.add_argument("--out", default="output/compare", help="output folder (default output/compare)")
    parser.add_argument("--batch", type=int, default=8, help="clips per timed step (default 8)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of this process, for the timed steps and the training (default 1: on a "
                             "shared machine extra threads wait on each other; the loader workers decode alongside)")
    parser.set_defaults(run=run_models)


def run_models(args: argparse.Namespace) -> int:
    """The ``models`` subcommand."""
    from m3a.engine.compare import compare_models, markdown_table, summary_line, write_outputs

    if min(args.batch, args.steps, args.threads, 1 if args.epochs is None else args.epochs) < 1:
        print("error: --batch, --steps, --threads and --epochs must be at least 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    results = compare_models(args.cfg, args.opts, args.data_dir, args.epochs, args.out, args.batch, args.steps)
    written = write_outputs(results, args.out)
    print("\n" + markdown_table(results).rstrip())
    print("wrote " + " and ".join(written.values()))
    print(summary_line(results))
    return 0


TRAIN_EXAMPLE = """Example (after `make demo`):
  python tools/benchmark.py train --cfg configs/demo/demo.yaml --iters 4 --warmup 1 --rounds 1 \\
      DATA.PATH_TO_DATA_DIR demo_data
"""


def _add_train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="training clips/s on the real loader against replayed input; speed switches",
        description=throughput.__doc__ + "\n" + TRAIN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cfg", required=True, help="training config YAML")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. TRAIN.BATCH_SIZE 8")
    parser.add_argument("--workers", type=int, default=None,
                        help="loader workers (default: the config's DATA_LOADER.NUM_WORKERS)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the training process (default: as tools/run_net.py trains; on CPU "
                        "that is the cores less one per loader worker, at least 1, unless OMP_NUM_THREADS is set)")
    parser.add_argument("--iters", type=int, default=20, help="measured iterations per block (default 20)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="unmeasured iterations at the start of every block (default 5)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of alternating real / replayed blocks (default 2)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="SWITCH",
                        help=f"speed switches to measure on the replayed batch: {', '.join(throughput.SWITCHES)} "
                        "(combine with +, e.g. channels_last+bf16)")
    parser.set_defaults(run=run_train)
    return parser


def run_train(args: argparse.Namespace) -> int:
    """The ``train`` subcommand."""
    if args.iters < 1 or args.warmup < 0 or (args.workers is not None and args.workers < 0):
        raise ValueError("--iters must be at least 1, --warmup and --workers at least 0")
    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be at least 1")
    opts = list(args.opts) + ([] if args.workers is None else ["DATA_LOADER.NUM_WORKERS", str(args.workers)])
    opts += ["LOG_MODEL_INFO", "False"]
    for spec in args.compare:
        throughput.switch_overrides(spec)  # an unknown switch fails before anything is built
    make_cfg = lambda extra: load_config(args.cfg, opts + list(extra))  # noqa: E731
    cfg = make_cfg(())
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    else:
        du.set_cpu_threads(cfg, 1)  # as tools/run_net.py trains
    print(throughput.describe(cfg))
    print(f"{args.rounds} round(s) of {args.warmup} warm-up + {args.iters} measured iterations per block")
    report = throughput.measure(make_cfg, args.compare, args.warmup, args.iters, args.rounds,
                                on_block=lambda name: print(f"  measuring: {name}", flush=True))
    base = report.synthetic
    print(f"loader alone ({cfg.DATA_LOADER.NUM_WORKERS} workers, no training step): {report.loader.per_second:.1f} clips/s")
    print(f"real input (loader, {cfg.DATA_LOADER.NUM_WORKERS} workers): {report.real.per_second:.1f} clips/s")
    print(f"replayed batch (in memory): {base.per_second:.1f} clips/s; loader keeps x{report.loader_ratio:.2f}")
    for name, result in report.switches.items():
        print(f"{name}: {result.per_second:.1f} clips/s on the replayed batch, x{result.per_second / base.per_second:.2f}; "
              f"mean loss of the last 5 steps {throughput.mean_loss(result):.5f} (without: {throughput.mean_loss(base):.5f})")
    pairs = throughput.summary_pairs(report, cfg.DATA_LOADER.NUM_WORKERS)
    print(" ".join(f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}" for key, value in pairs.items()))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the subcommand and run it; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_parser = _add_data_parser(subparsers)
    _add_metrics_parser(subparsers)
    _add_models_parser(subparsers)
    with_overrides = {"data": data_parser, "train": _add_train_parser(subparsers)}
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in with_overrides:  # options in any order, KEY VALUE overrides last
        args = parse_with_overrides(with_overrides[argv[0]], argv[1:])
        args.command = argv[0]
    else:
        args = parser.parse_args(argv)
    if min(getattr(args, key, 1) for key in ("videos", "rounds", "classes")) < 1:
        parser.error("--videos, --classes and --rounds must be at least 1")
    try:
        return args.run(args)
    except (ConfigError, ListFormatError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
