#!/usr/bin/env python3
"""Predict the top-k actions of one or more videos with a trained model.

Each video is decoded once into TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views whose
scores are combined by DATA.ENSEMBLE_METHOD (the videos' own audio tracks are not used).

A checkpoint written by this project holds its config, class names and the M3A lexicons, so
--checkpoint alone is enough: no data folder is needed. For other checkpoints (e.g. the
published .pyth files) give --cfg; class names then come from DATA.CLASS_NAMES_FILE or
{DATA.PATH_TO_DATA_DIR}/categories-{DATA.MMIT_VERSION}.txt and the lexicons from
DATA.PATH_TO_DATA_DIR/mmit-m3a.

Options may come in any order before or after the videos; KEY VALUE config overrides come last.

Examples (the first after `make demo`):
  python tools/predict.py --checkpoint output/demo/checkpoints/checkpoint_epoch_00024.pyth \\
      demo_data/videos/test/test-0000.mp4 demo_data/videos/test/test-0001.mp4 --topk 2
  python tools/predict.py --cfg configs/Mmit/v1/R2PLUS1D_T_VAT.yaml \\
      --checkpoint checkpoints/mmit-v1-t-vat.pyth --topk 5 video1.mp4 video2.mp4 \\
      DATA.PATH_TO_DATA_DIR /data/mmit
A video that cannot be decoded is reported (the others still print) and the exit status is 1.
"""
import argparse
import json
import logging
import sys

from m3a.utils.cli import parse_with_overrides


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options; trailing KEY VALUE pairs override the config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", default="", help="config file (YAML) of the model (default: the config "
                   "stored in the checkpoint)")
    p.add_argument("--checkpoint", required=True, help="checkpoint (.pyth of this project or of the release)")
    p.add_argument("--topk", type=int, default=5, help="classes to show per video (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--device", default="", help="torch device (default: cuda if NUM_GPUS > 0 and available, else cpu)")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files to score")
    p.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, after the videos")
    args = parse_with_overrides(p, sys.argv[1:] if argv is None else argv)
    if args.topk < 1:
        p.error("--topk must be at least 1")
    return args


def main(argv=None) -> int:
    """Entry point; returns 0 when every video was scored, 1 otherwise."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s")
    from m3a.config import ConfigError, load_config
    from m3a.utils.lexicon import LexiconError
    from m3a.engine.predict import load_trained_model, predict_videos

    try:
        cfg = load_config(args.cfg, args.opts) if args.cfg else None
        trained = load_trained_model(args.checkpoint, cfg, args.opts, args.device)
    except (ConfigError, LexiconError, ValueError, KeyError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    results = predict_videos(trained.cfg, trained.model, args.videos, trained.class_names, args.topk)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        for r in results:
            if not r.ok:
                continue
            print(r.video)
            for item in r.topk:
                print(f"  {item['score']:.4f}  {item['name']} ({item['index']})")
    for r in results:
        if not r.ok:
            print(f"error: {r.error}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
