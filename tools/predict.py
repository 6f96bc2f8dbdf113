#!/usr/bin/env python3
"""Predict the top-k actions of one or more videos with a trained model.

Each video is decoded once into TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views whose
scores are combined by DATA.ENSEMBLE_METHOD. Class names come from DATA.CLASS_NAMES_FILE or
{DATA.PATH_TO_DATA_DIR}/categories-{DATA.MMIT_VERSION}.txt (the M3A lexicons are read from
DATA.PATH_TO_DATA_DIR/mmit-m3a; the videos' own audio tracks are not used).

Example:
  python tools/predict.py --cfg configs/Mmit/v1/R2PLUS1D_T_VAT.yaml \\
      --checkpoint checkpoints/mmit-v1-t-vat.pyth video1.mp4 video2.mp4 --topk 5 \\
      DATA.PATH_TO_DATA_DIR /data/mmit
A video that cannot be decoded is reported (the others still print) and the exit status is 1.
"""
import argparse
import json
import logging
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

_CFG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)+$")


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options; trailing KEY VALUE pairs override the config."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cfg", required=True, help="config file (YAML) of the model")
    p.add_argument("--checkpoint", required=True, help="checkpoint (.pyth of this project or of the release)")
    p.add_argument("--topk", type=int, default=5, help="classes to show per video (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--device", default="", help="torch device (default: cuda if NUM_GPUS > 0 and available, else cpu)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="VIDEO [VIDEO ...] followed by KEY VALUE overrides")
    args = p.parse_args(argv)
    split = next((i for i, a in enumerate(args.rest) if _CFG_KEY.match(a) and not os.path.exists(a)), len(args.rest))
    args.videos, args.opts = args.rest[:split], args.rest[split:]
    if not args.videos:
        p.error("name at least one VIDEO")
    if args.topk < 1:
        p.error("--topk must be at least 1")
    return args


def main(argv=None) -> int:
    """Entry point; returns 0 when every video was scored, 1 otherwise."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s")
    from m3a.config import ConfigError, load_config
    from m3a.utils.lexicon import LexiconError
    from m3a.engine.predict import inference_device, load_model, predict_videos
    from m3a.utils.class_names import load_class_names

    try:
        cfg = load_config(args.cfg, args.opts)
        cfg.LOG_MODEL_INFO = False
        names = load_class_names(cfg)
        model = load_model(cfg, args.checkpoint, inference_device(cfg, args.device))
    except (ConfigError, LexiconError, ValueError, KeyError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    results = predict_videos(cfg, model, args.videos, names, args.topk)
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
