#!/usr/bin/env python3
"""Visualisations of the paper: Grad-CAM heat-maps, t-SNE of relation-learner embeddings, AP boosts.

Subcommands:
  apboost  --pred MODEL.npz --baseline BASE.npz [--cfg FILE | --class-names FILE] --out DIR [--top K]
  gradcam  [--cfg FILE] --checkpoint CKPT --video VIDEO [--classes NAME,INDEX,...] --out DIR [KEY VALUE ...]
  tsne     [--cfg FILE] --checkpoint CKPT [--video VIDEO] [--classes NAME,...] --out DIR [KEY VALUE ...]

gradcam and tsne read the config, class names and lexicons stored in a checkpoint of this project;
--cfg is needed only for other checkpoints (e.g. the published .pyth files).

Every subcommand writes PNG files (gradcam also an mp4) under --out and, with --tensorboard DIR,
the same images as TensorBoard image summaries. Options may come in any order; KEY VALUE config
overrides come last (an option after them, e.g. --out DIR, is still read as the option).
Each subcommand's --help shows an example.
"""
import argparse
import logging
import os
import sys

import numpy as np


from m3a.config import ConfigError, load_config
from m3a.datasets.decoder import DecodeError
from m3a.utils.checkpoint import CheckpointError
from m3a.utils.class_names import load_class_names, read_class_names
from m3a.utils.cli import parse_with_overrides
from m3a.utils.file_io import atomic_path

EXAMPLE_NOTE = "after `make demo`; apboost also needs the baseline run of MODEL_ZOO.md"
_CKPT = "output/demo/checkpoints/checkpoint_epoch_00024.pyth"
EXAMPLES = {
    "apboost": "  python tools/visualize.py apboost --pred output/demo/test_predictions.npz \\\n"
               "      --baseline output/demo_baseline/test_predictions.npz \\\n"
               "      --class-names demo_data/categories-demo.txt --out vis/demo",
    "gradcam": f"  python tools/visualize.py gradcam --checkpoint {_CKPT} \\\n"
               "      --video demo_data/videos/test/test-0000.mp4 --out vis/demo",
    "tsne": f"  python tools/visualize.py tsne --checkpoint {_CKPT} \\\n"
            "      --video demo_data/videos/test/test-0000.mp4 --out vis/demo",
}


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


def _load(args):
    """Config, class names and the model loaded from --checkpoint (eval mode); without --cfg the
    checkpoint's own config, class names and lexicons are used."""
    from m3a.engine.predict import load_trained_model

    cfg = load_config(args.cfg, args.opts) if args.cfg else None
    trained = load_trained_model(args.checkpoint, cfg, args.opts)
    names = trained.class_names
    if args.class_names:
        names = read_class_names(args.class_names, trained.cfg.MODEL.NUM_CLASSES)
    return trained.cfg, names, trained.model


def _class_indices(tokens, names):
    """Class indices from names or numbers given on the command line."""
    out = []
    for tok in [t.strip() for t in tokens.split(",") if t.strip()]:
        if tok.isdigit() and int(tok) < len(names):
            out.append(int(tok))
        elif tok in names:
            out.append(names.index(tok))
        else:
            raise ValueError(f"unknown class '{tok}' (give a class name or an index below {len(names)})")
    return out


def run_gradcam(args) -> int:
    """Grad-CAM heat-maps of chosen classes over one test view of a video: PNG grid and mp4."""
    from m3a.engine.predict import load_video_views, score_views
    from m3a.visualization import gradcam

    cfg, names, model = _load(args)
    views = load_video_views(cfg, args.video)
    if not 0 <= args.view < len(views):
        raise ValueError(f"--view must be below {len(views)} (TEST.NUM_ENSEMBLE_VIEWS x NUM_SPATIAL_CROPS)")
    device = next(model.parameters()).device
    if args.classes:
        classes = _class_indices(args.classes, names)
    else:  # the video's top-k predictions
        scores = score_views(model, views, cfg.DATA.ENSEMBLE_METHOD)
        classes = scores.topk(min(args.topk, len(names))).indices.tolist()
    clip = views[args.view : args.view + 1].to(device)
    cam = gradcam.GradCAM(model, head_act=cfg.MODEL.HEAD_ACT)
    cams, scores = cam(clip, classes)
    empty = gradcam.empty_maps(cams)
    frames = gradcam.clip_to_uint8(views[args.view], cfg.DATA.MEAN, cfg.DATA.STD)
    labels = [f"{names[c]} ({s:.2f})" + (" - empty map" if e else "")
              for c, s, e in zip(classes, scores.tolist(), empty)]
    overlays = {label: gradcam.overlay(frames, m.cpu().numpy()) for label, m in zip(labels, cams)}
    stem = os.path.splitext(os.path.basename(args.video))[0]
    png = os.path.join(args.out, f"{stem}_gradcam.png")
    mp4 = os.path.join(args.out, f"{stem}_gradcam.mp4")
    gradcam.save_gradcam_grid(frames, overlays, png, title=os.path.basename(args.video))
    fps = cfg.DATA.TARGET_FPS / cfg.DATA.SAMPLING_RATE
    captions = [f"{s:.2f} " + ("empty: " if e else "") + names[c] for c, s, e in zip(classes, scores.tolist(), empty)]
    video = gradcam.label_panels([frames, *overlays.values()], ["input", *captions])
    gradcam.write_mp4(video, mp4, fps=fps)
    with atomic_path(os.path.join(args.out, f"{stem}_gradcam.npy")) as tmp:
        np.save(tmp, cams.cpu().numpy())
    steps = " x ".join(str(n) for n in cam.feature_shape[1:])
    print(f"Grad-CAM on {cam.layer_name} (T' x H' x W' = {steps} for a clip of {' x '.join(map(str, clip.shape[2:]))}; "
          "maps scaled by their common maximum)")
    for c, score, m, e in zip(classes, scores.tolist(), cams, empty):
        peak = "empty map: no positive evidence for this class in the clip" if e else f"peak {float(m.max()):.2f}"
        print(f"  {names[c]}: score {score:.4f}, {peak}")
    print(f"wrote {png}, {mp4} and {stem}_gradcam.npy for classes {', '.join(names[c] for c in classes)}")
    _tensorboard(args, pngs={f"gradcam/{stem}": png}, frames={f"gradcam_video/{stem}": video}, cfg=cfg)
    return 0


def run_tsne(args) -> int:
    """t-SNE of every relation learner's node embeddings, one panel per layer, one PNG per modality."""
    import torch

    from m3a.engine.predict import load_video_views
    from m3a.visualization.tsne import embed_2d, layer_titles, node_embeddings, plot_tsne_layers

    cfg, names, model = _load(args)
    features = None
    if not args.video and "RGB" in cfg.M3A.MODAL_TYPE.split("_"):
        print("warning: no --video: the RGB relation learner needs a clip feature, so tsne_rgb.png is not "
              "drawn (give --video VIDEO to draw it)", file=sys.stderr)
    if args.video:
        views = load_video_views(cfg, args.video)
        with torch.no_grad():
            features = model.pooled_features(views.to(next(model.parameters()).device)).mean(0)
    layers = node_embeddings(model, features)
    if not layers:
        raise ValueError("no node embeddings: the RGB learner needs a VIDEO (--video)")
    highlight = _class_indices(args.classes, names) if args.classes else []
    written = {}
    for modality, embs in layers.items():
        points = [embed_2d(e, seed=cfg.RNG_SEED) for e in embs]
        png = os.path.join(args.out, f"tsne_{modality.lower()}.png")
        plot_tsne_layers(points, layer_titles(len(points)), names, png, highlight,
                         suptitle=f"{modality} relation learner ({cfg.M3A.MODE})")
        with atomic_path(os.path.join(args.out, f"tsne_{modality.lower()}.npz")) as tmp:
            np.savez(tmp, *points)
        written[f"tsne/{modality}"] = png
    print(f"wrote {', '.join(written.values())}")
    _tensorboard(args, pngs=written, cfg=cfg)
    return 0


def _tensorboard(args, pngs=None, frames=None, cfg=None) -> None:
    """Write the images to --tensorboard, or to the config's log folder when TENSORBOARD.ENABLE."""
    log_dir = args.tensorboard
    if not log_dir and cfg is not None and cfg.TENSORBOARD.ENABLE:
        log_dir = cfg.TENSORBOARD.LOG_DIR or os.path.join(cfg.OUTPUT_DIR, "runs")
    if log_dir:
        from m3a.visualization.tensorboard_vis import write_images

        write_images(log_dir, pngs=pngs, frames=frames)
        print(f"wrote TensorBoard images to {log_dir}")


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options of every subcommand."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    subparsers = {}

    def common(sp):
        sp.add_argument("--cfg", default="",
                        help="config file (YAML); gradcam/tsne default to the checkpoint's own")
        sp.add_argument("--out", required=True, help="output folder")
        sp.add_argument("--tensorboard", default="", help="also write the images to this TensorBoard log folder "
                        "(default with TENSORBOARD.ENABLE True: TENSORBOARD.LOG_DIR or OUTPUT_DIR/runs)")
        sp.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, after the options")
        subparsers[sp.prog.split()[-1]] = sp

    def add(name, help_text, example):
        return sub.add_parser(name, help=help_text, description=help_text, epilog=f"Example ({EXAMPLE_NOTE}):\n"
                              + example, formatter_class=argparse.RawDescriptionHelpFormatter)

    ap = add("apboost", "per-class AP boost between two test_predictions.npz files", EXAMPLES["apboost"])
    ap.add_argument("--pred", required=True, help="test_predictions.npz of the model")
    ap.add_argument("--baseline", required=True, help="test_predictions.npz of the baseline")
    ap.add_argument("--class-names", default="", help="class names file (default: from --cfg)")
    ap.add_argument("--top", type=int, default=None, help="show only the TOP largest gains and TOP largest drops")
    common(ap)

    gc = add("gradcam", "Grad-CAM heat-maps of chosen classes over a video's frames", EXAMPLES["gradcam"])
    gc.add_argument("--checkpoint", required=True, help="checkpoint to visualise")
    gc.add_argument("--video", required=True, help="video file")
    gc.add_argument("--classes", default="", help="comma-separated class names or indices (default: the top-k predicted)")
    gc.add_argument("--topk", type=int, default=3, help="classes to show when --classes is not given")
    gc.add_argument("--view", type=int, default=0, help="which test view (clip x crop) to explain (default 0)")
    gc.add_argument("--class-names", default="", help="class names file (default: from the config)")
    common(gc)

    ts = add("tsne", "t-SNE of the relation learners' node embeddings per layer (Fig. 4)", EXAMPLES["tsne"])
    ts.add_argument("--checkpoint", required=True, help="checkpoint to visualise")
    ts.add_argument("--video", default="", help="video whose clip feature feeds the RGB learner (needed for RGB)")
    ts.add_argument("--classes", default="", help="comma-separated classes to highlight (green, numbered)")
    ts.add_argument("--class-names", default="", help="class names file (default: from the config)")
    common(ts)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in subparsers:
        return p.parse_args(argv)  # --help, or the error naming the subcommands
    args = parse_with_overrides(subparsers[argv[0]], argv[1:])
    args.command = argv[0]
    return args


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    handlers = {"apboost": run_apboost, "gradcam": run_gradcam, "tsne": run_tsne}
    try:
        return handlers[args.command](args)
    except (ConfigError, ValueError, OSError, DecodeError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
