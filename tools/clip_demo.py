#!/usr/bin/env python3
"""M2CLIP demo on the CPU: train a small CLIP-style video-text model with M2CLIP's losses on the
demo videos, then recognise class names it never saw (zero-shot transfer by name).

The classes of a 12-class demo data set are split into seen and held-out ones
(m3a.prep.zero_shot_split; the held-out names share their shape and motion words with seen
names, never their colour). configs/demo/M2CLIP_DEMO.yaml trains on the seen classes' labels
only; the tool tests top-1 on the seen classes, then scores the held-out videos against the
held-out names alone (TEST.ZERO_SHOT, run_net.py's zero-shot test mode) and prints that top-1
next to chance. Results: <out>/clip_demo.json; runs: <out>/train, <out>/zero_shot.

Example: python tools/clip_demo.py --data demo_clip --out output/demo_clip
"""
import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from m3a.config import ConfigError, load_config
from m3a.engine.test_loop import PREDICTIONS_FILE, trained_model_source
from m3a.engine.test_loop import test as run_test
from m3a.engine.train_loop import train
from m3a.models.m2clip_head import prompt_vocab
from m3a.prep.zero_shot_split import HELD_OUT, SEEN, chance_top1, read_list, write_zero_shot_split
from m3a.utils.class_names import ClassNamesError
from m3a.utils.cli import parse_with_overrides
from m3a.utils.file_io import atomic_write_text
from m3a.utils.metrics import topk_accuracy

DEFAULT_HELD_OUT = (7, 9, 11)  # white star bouncing, lime bar growing, brown diamond falling


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Options, then KEY VALUE config overrides (applied to training and both tests)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True,
                        help="a demo data set with 12 classes (python tools/make_demo_data.py --classes 12 --out DIR)")
    parser.add_argument("--out", default="output/demo_clip", help="output folder (default output/demo_clip)")
    parser.add_argument("--cfg", default="configs/demo/M2CLIP_DEMO.yaml",
                        help="config (default configs/demo/M2CLIP_DEMO.yaml)")
    parser.add_argument("--held-out", type=int, nargs="+", default=list(DEFAULT_HELD_OUT),
                        help="labels of the held-out classes (default 7 9 11)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the loader workers decode alongside; on a busy machine a "
                        "second thread slows the steps down)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides")
    return parse_with_overrides(parser, list(sys.argv[1:] if argv is None else argv))


def alone_result(out_dir: str, summary: Dict) -> Dict[str, float]:
    """Zero-shot top-1 and chance on the held-out videos that show no seen class sharing a word
    with their held-out classes (rows of the held-out list, by the predictions' indices); None
    for both when there is no such video."""
    with np.load(os.path.join(out_dir, PREDICTIONS_FILE)) as f:
        scores, labels, indices = f["scores"], f["labels"], f["indices"]
    keep = np.array([summary["held_out_alone"][i] for i in indices], dtype=bool)
    rows = [r for r, alone in zip(summary["held_out_rows"], summary["held_out_alone"]) if alone]
    if not keep.any():
        return {"videos": 0, "top1": None, "chance": None}
    return {"videos": int(keep.sum()), "top1": topk_accuracy(scores[keep], labels[keep], 1),
            "chance": chance_top1(rows, len(summary["held_out_names"]))}


def run(args: argparse.Namespace) -> Dict:
    """Split, train, test the seen classes, test the held-out names zero-shot; the results."""
    if not os.path.isfile(os.path.join(args.data, ".complete")):
        raise FileNotFoundError(f"{args.data}: no complete demo data set; make one with "
                                f"python tools/make_demo_data.py --classes 12 --out {args.data}")
    summary = write_zero_shot_split(args.data, args.held_out)
    prompt = load_config(args.cfg, args.opts).M2CLIP.PROMPT
    vocab = prompt_vocab([prompt.format(n) for n in summary["seen_names"]])
    common = ["DATA.PATH_TO_DATA_DIR", args.data, "M2CLIP.MLM.VOCAB_SIZE", str(len(vocab))]

    def cfg_for(version: str, names: List[str], out: str, extra: Sequence[str] = ()):
        return load_config(args.cfg, list(args.opts) + common + [
            "DATA.MMIT_VERSION", version, "MODEL.NUM_CLASSES", str(len(names)),
            "OUTPUT_DIR", os.path.join(args.out, out), *extra])

    cfg = cfg_for(SEEN, summary["seen_names"], "train")
    num_seen = len(summary["seen_names"])
    seen_chance = chance_top1(read_list(os.path.join(args.data, f"test-{SEEN}.csv"), num_seen), num_seen)
    seen = run_test(cfg, train(cfg))
    checkpoint = trained_model_source(cfg)[0]  # this run's last epoch, not an earlier run's newer file
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: the trained model was not saved (keep TRAIN.CHECKPOINT_PERIOD "
                                f"dividing SOLVER.MAX_EPOCH); the zero-shot test loads it")
    zero_cfg = cfg_for(HELD_OUT, summary["held_out_names"], "zero_shot", [
        "TRAIN.ENABLE", "False", "TEST.ZERO_SHOT", "True", "TEST.CHECKPOINT_FILE_PATH", checkpoint])
    zero = run_test(zero_cfg)
    return {
        "seen": {"names": summary["seen_names"], "videos": seen["num_videos"], "top1": seen["top1"],
                 "map_class": seen["map_class"], "chance": seen_chance},
        "zero_shot": {"names": summary["held_out_names"], "videos": zero["num_videos"], "top1": zero["top1"],
                      "chance": summary["chance"], "without_word_sharers": alone_result(zero_cfg.OUTPUT_DIR, summary)},
        "checkpoint": checkpoint,
    }


def report(result: Dict) -> str:
    """The lines the tool prints."""
    seen, zero = result["seen"], result["zero_shot"]
    alone = zero["without_word_sharers"]
    return "\n".join([
        f"seen classes ({len(seen['names'])}): top-1 {seen['top1']:.3f} on {seen['videos']} test videos "
        f"(chance {seen['chance']:.3f}), class-wise mAP {seen['map_class']:.3f}",
        f"zero-shot, held-out names ({', '.join(zero['names'])}): top-1 {zero['top1']:.3f} on {zero['videos']} "
        f"videos (chance {zero['chance']:.3f})",
        f"  of which {alone['videos']} show no seen class sharing a word with their held-out classes" + (
            f": top-1 {alone['top1']:.3f} (chance {alone['chance']:.3f})" if alone["videos"] else ""),
        f"seen_top1={seen['top1']:.4f} zero_shot_top1={zero['top1']:.4f} zero_shot_chance={zero['chance']:.4f}",
    ])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; return the exit status."""
    args = parse_args(argv)
    if args.threads < 1:
        print("clip_demo: error: --threads must be at least 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    try:
        result = run(args)
    except (ConfigError, ClassNamesError, FileNotFoundError, ValueError) as err:
        print(f"clip_demo: error: {err}", file=sys.stderr)
        return 2
    atomic_write_text(os.path.join(args.out, "clip_demo.json"), json.dumps(result, indent=2) + "\n")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
