#!/usr/bin/env python3
"""Write a synthetic data folder shaped for a config, to measure training speed without the real
data (e.g. M-MiT on a machine without it): --videos generated videos like M-MiT's (3 s, 256-px
short side, 4:3, H.264 + AAC; the generator of `benchmark.py data --make mmit`), lists over the
config's MODEL.NUM_CLASSES with 1-3 random labels per video, class names and random lexicons /
graph of the config's widths (see m3a.prep.shaped_data for the layout). Then set
DATA.PATH_TO_DATA_DIR to the folder. An interrupted run resumes when rerun with the same request;
a folder holding anything else is refused. '.complete' is written last.

Options may come in any order; KEY VALUE config overrides come last.

Example (then `benchmark.py train ... DATA.PATH_TO_DATA_DIR shaped_mmit`, see GETTING_STARTED section 9):
  python tools/make_shaped_data.py --cfg configs/Mmit/R2PLUS1D_GRAPH_8x2.yaml --out shaped_mmit --videos 16
"""
import argparse
import sys
from typing import List, Optional

from tqdm import tqdm

from m3a.config import ConfigError, load_config
from m3a.datasets.benchmark import GENERATED
from m3a.prep.shaped_data import ShapedDataError, make_shaped_dataset
from m3a.utils.cli import parse_with_overrides

KIND = "mmit"


def main(argv: Optional[List[str]] = None) -> int:
    """Write the folder; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfg", required=True, help="config YAML the folder is shaped for")
    parser.add_argument("--out", required=True, help="output folder (created; an incomplete one of the same "
                                                     "request is resumed)")
    parser.add_argument("--videos", type=int, default=64, help="number of videos (default 64)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes encoding the videos (default 1; one video takes about 0.6 s of a core)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the labels and lexicons (default 0)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides, e.g. MODEL.NUM_CLASSES 10")
    args = parse_with_overrides(parser, list(sys.argv[1:] if argv is None else argv))
    seconds, short, aspect, _ = GENERATED[KIND]
    try:
        cfg = load_config(args.cfg, args.opts)
        with tqdm(total=args.videos, desc=f"writing {seconds:g}-s {short}-px videos", unit="video") as bar:
            wrote = make_shaped_dataset(cfg, args.out, args.videos, seconds, short, aspect, args.seed,
                                        progress=lambda: bar.update(1), workers=max(1, args.workers))
    except (ConfigError, ShapedDataError, OSError) as err:
        print(f"make_shaped_data: error: {err}", file=sys.stderr)
        return 2
    state = "written" if wrote else "already complete"
    print(f"{args.out}: {args.videos} videos, {cfg.MODEL.NUM_CLASSES} classes, version {cfg.DATA.MMIT_VERSION}: "
          f"{state}; use DATA.PATH_TO_DATA_DIR {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
