#!/usr/bin/env python3
"""Visualisations of the paper: Grad-CAM heat-maps, t-SNE of relation-learner embeddings, AP boosts.

Subcommands:
  apboost  --pred MODEL.npz --baseline BASE.npz --cfg FILE | --class-names FILE  --out DIR
  gradcam  --cfg FILE --checkpoint CKPT VIDEO --classes NAME|INDEX ... --out DIR [KEY VALUE ...]
  tsne     --cfg FILE --checkpoint CKPT --out DIR [--classes ...] [KEY VALUE ...]

Every subcommand writes PNG files (gradcam also an mp4) under --out and, with --tensorboard DIR,
the same images as TensorBoard image summaries.
"""
import argparse
import logging
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from m3a.config import ConfigError, load_config  # noqa: E402
from m3a.utils.class_names import load_class_names, read_class_names  # noqa: E402


def _class_names(args, num_classes: int):
    if args.class_names:
        return read_class_names(args.class_names, num_classes)
    if args.cfg:
        cfg = load_config(args.cfg, args.opts)
        cfg.MODEL.NUM_CLASSES = num_classes
        return load_class_names(cfg)
    return [str(i) for i in range(num_classes)]


def run_apboost(args) -> int:
    """Per-class AP boost of --pred over --baseline: PNG bar chart and CSV."""
    from m3a.visualization.ap_boost import compute_ap_boost, load_predictions, plot_ap_boost, write_ap_boost_csv

    model, baseline = load_predictions(args.pred), load_predictions(args.baseline)
    names = _class_names(args, model.scores.shape[1])
    boost = compute_ap_boost(model, baseline)
    png = os.path.join(args.out, "ap_boost.png")
    shown = plot_ap_boost(boost, names, png, top=args.top)
    write_ap_boost_csv(boost, names, os.path.join(args.out, "ap_boost.csv"))
    mean = 100.0 * float(np.nanmean(boost.delta))
    print(f"wrote {png} ({len(shown)} classes shown) and ap_boost.csv; mean AP boost {mean:+.2f} points")
    _tensorboard(args, pngs={"ap_boost": png})
    return 0


def _tensorboard(args, pngs=None, frames=None) -> None:
    if args.tensorboard:
        from m3a.visualization.tensorboard_vis import write_images

        write_images(args.tensorboard, pngs=pngs, frames=frames)
        print(f"wrote TensorBoard images to {args.tensorboard}")


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options of every subcommand."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, cfg_required: bool):
        sp.add_argument("--cfg", required=cfg_required, help="config file (YAML)")
        sp.add_argument("--out", required=True, help="output folder")
        sp.add_argument("--tensorboard", default="", help="also write the images to this TensorBoard log folder")
        sp.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")

    ap = sub.add_parser("apboost", help="per-class AP boost between two test_predictions.npz files")
    ap.add_argument("--pred", required=True, help="test_predictions.npz of the model")
    ap.add_argument("--baseline", required=True, help="test_predictions.npz of the baseline")
    ap.add_argument("--class-names", default="", help="class names file (default: from --cfg)")
    ap.add_argument("--top", type=int, default=None, help="show only the TOP largest gains and TOP largest drops")
    common(ap, cfg_required=False)
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    handlers = {"apboost": run_apboost}
    try:
        return handlers[args.command](args)
    except (ConfigError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
