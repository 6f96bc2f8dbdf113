#!/usr/bin/env python3
"""Compute the label co-occurrence matrix psi of a training list (the graph adjacency input).

psi_ij = count(i and j in one video) / count(i), psi_ii = 0 (DESIGN.md section 1). Example:
  python tools/gen_graph_adj.py --list data/mmit/train-v1.csv --num-classes 313 \\
      --out data/mmit/mmit-m3a/graph-adj-v1.npz --threshold 0.4
FILE ending in .npz holds array 'psi'; FILE ending in .pkl is the published pickle (float64
ndarray). --threshold T also prints how many edges psi_ij >= T survive (the model thresholds
psi itself at M3A.GRAPH_THRESHOLD; the file always holds the raw psi).
"""
import argparse
import sys


import numpy as np

from m3a.utils.lexicon import compute_psi, save_graph_adj
from m3a.datasets.video_list import ListFormatError, read_video_list


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--list", required=True, help="training list 'path,label[,label...]'")
    parser.add_argument("--num-classes", type=int, required=True, help="number of classes N")
    parser.add_argument("--out", required=True, help="output .npz (array 'psi') or .pkl (published format)")
    parser.add_argument("--separator", default=",", help="list separator between path and labels")
    parser.add_argument("--threshold", type=float, default=None, help="also report edges with psi >= T")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Count co-occurrences and write psi."""
    args = parse_args(argv)
    if not args.out.endswith((".npz", ".pkl")):
        print(f"error: --out must end in .npz or .pkl, got '{args.out}'", file=sys.stderr)
        return 2
    try:
        entries = read_video_list(args.list, args.separator, num_classes=args.num_classes, multi_label=True)
    except ListFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    psi = compute_psi((e.labels for e in entries), args.num_classes)
    save_graph_adj(args.out, psi)
    pairs = int(np.count_nonzero(psi))
    print(f"wrote {args.out}: {args.num_classes} classes, {len(entries)} videos, {pairs} non-zero psi_ij")
    if args.threshold is not None:
        off_diagonal = ~np.eye(args.num_classes, dtype=bool)
        edges = int(np.count_nonzero((psi >= args.threshold) & off_diagonal))
        print(f"threshold {args.threshold}: {edges} directed edges (psi_ij >= {args.threshold}, i != j)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
