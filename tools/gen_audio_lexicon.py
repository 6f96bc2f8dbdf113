#!/usr/bin/env python3
"""Build the audio lexicon: per clip 3 VGGish embeddings (384-d), PCA-whitened, grouped by class.

Examples (Mini M-MiT with the VGGish weights of the PyTorch port, see PREPARATION.md; the demo):
  python tools/gen_audio_lexicon.py --list data/mmit/train-mini.csv --videos-root data/mmit/videos256 \\
      --class-names data/mmit/categories-mini.txt --out data/mmit/mmit-m3a/audio-lexicon-mini.npz \\
      --vggish data/weights/vggish-10086976.pth --pca data/weights/vggish_pca_params-970ea276.pth \\
      --legacy-pickle --workers 8
  python tools/gen_audio_lexicon.py --list demo_data/train-demo.csv --videos-root demo_data \\
      --class-names demo_data/categories-demo.txt --out demo_data/mmit-m3a/audio-lexicon-demo.npz
Without --vggish a weight-free log-mel statistics embedder is used (demos only; a warning says
so). Silent clips (RMS < --silence-rms), videos without audio and unreadable ones are skipped and
counted. Per-clip features are cached in --cache-dir (default OUT.parts/): re-run to resume.
Every class needs at least one kept clip unless --on-empty zeros.
"""
import argparse
import logging
import os
import sys


from collections import Counter

import numpy as np

from m3a.utils.lexicon import LexiconError, save_audio_lexicon
from m3a.datasets.video_list import ListFormatError, read_video_list
from m3a.prep.audio_features import KEPT, compute_clip_features
from m3a.prep.audio_lexicon import assemble_audio_lexicon
from m3a.utils.class_names import read_class_names


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", required=True, help="training list 'path,label[,label...]'")
    parser.add_argument("--videos-root", required=True, help="folder the list's video paths are relative to")
    parser.add_argument("--class-names", required=True, help="category names, one per line in label order")
    parser.add_argument("--out", required=True, help="output .npz (or .pkl for the published format only)")
    parser.add_argument("--vggish", default=None, help="VGGish state dict (.pth, features.*/embeddings.*)")
    parser.add_argument("--pca", default=None,
                        help="VGGish PCA params (.pth/.npz: pca_eigen_vectors, pca_means)")
    parser.add_argument("--legacy-pickle", action="store_true", help="also write the published pickle (.pkl)")
    parser.add_argument("--audio-root", default=None,
                        help="read AUDIO_ROOT/<path>.wav (tools/extract_audio.py) instead of the videos")
    parser.add_argument("--separator", default=",", help="list separator between path and labels")
    parser.add_argument("--examples-per-clip", type=int, default=3,
                        help="0.96 s examples per clip (default 3)")
    parser.add_argument("--silence-rms", type=float, default=1e-3, help="clips below this RMS are dropped")
    parser.add_argument("--no-whiten", action="store_true", help="skip PCA whitening")
    parser.add_argument("--on-empty", choices=("error", "zeros"), default="error",
                        help="a class without any kept clip: fail (default) or give it a zero feature")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--cache-dir", default=None,
                        help="resumable per-clip feature cache (default OUT.parts)")
    return parser.parse_args(argv)


def _clips(args, num_classes):
    entries = read_video_list(args.list, args.separator, num_classes=num_classes, multi_label=True)
    merged = {}  # a path listed twice serves the labels of both lines
    for entry in entries:
        merged.setdefault(entry.path, {}).update(dict.fromkeys(entry.labels))
    labels = {path: list(found) for path, found in merged.items()}
    if args.audio_root:
        media = {p: os.path.join(args.audio_root, p + ".wav") for p in labels}
    else:
        media = {p: os.path.join(args.videos_root, p) for p in labels}
    return labels, media


def main(argv=None) -> int:
    """Compute clip features, assemble, whiten and write the lexicon."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        names = read_class_names(args.class_names)
        labels, media = _clips(args, len(names))
        results, errors = compute_clip_features(
            list(media.items()), args.vggish, args.pca, args.examples_per_clip, args.silence_rms,
            workers=args.workers, cache_dir=args.cache_dir or args.out + ".parts",
        )
        kept = [k for k in labels if results[k][0] == KEPT]
        dim = 128 * args.examples_per_clip
        features = np.stack([results[k][1] for k in kept]) if kept else np.zeros((0, dim))
        lexicon = assemble_audio_lexicon(
            kept, features, [labels[k] for k in kept], names, not args.no_whiten, args.on_empty
        )
        save_audio_lexicon(args.out, lexicon)
        if args.legacy_pickle and not args.out.endswith(".pkl"):
            save_audio_lexicon(os.path.splitext(args.out)[0] + ".pkl", lexicon)
    except (ListFormatError, LexiconError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = Counter(status for status, _ in results.values())
    sizes = [len(v) for v in lexicon["label"].values()]
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    for message in errors:
        print(f"unreadable: {message}")
    print(f"{len(names)} classes, clips per class min {min(sizes)} / median {int(np.median(sizes))} "
          f"/ max {max(sizes)}; features {features.shape[1]}-d; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
