#!/usr/bin/env python3
"""Convert a checkpoint (published .pyth, VMZ/torchvision-layout .pth, DDP state dict) to ours.

Writes OUT (atomically) as ``{'model_state', 'epoch', 'cfg'}`` with our key names. With --cfg the
weights are also checked against that model: shape mismatches fail, missing and unexpected keys
are reported.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

import torch  # noqa: E402

from m3a.config import ConfigError, load_config  # noqa: E402
from m3a.utils.lexicon import LexiconError  # noqa: E402
from m3a.utils.checkpoint import (  # noqa: E402
    CheckpointError,
    convert_state_dict,
    extract_state,
    load_checkpoint,
    read_checkpoint,
    recorded_epoch,
)
from m3a.utils.file_io import atomic_path  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description="Map a published / VMZ / DDP checkpoint to the m3a state-dict layout.",
    )
    parser.add_argument("input", help="checkpoint to convert (.pyth, .pth, bare state dict)")
    parser.add_argument("output", help="where to write the converted .pyth")
    parser.add_argument("--cfg", default=None,
                        help="config YAML of the target model: check keys and shapes against it")
    parser.add_argument("opts", nargs="*", default=[],
                        help="KEY VALUE config overrides used with --cfg")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Convert, optionally check against --cfg, write atomically; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        ckpt = read_checkpoint(args.input)
        raw = extract_state(ckpt, args.input)
        state, layout = convert_state_dict(raw)
        if args.cfg:
            from m3a.models import build_model

            cfg = load_config(args.cfg, args.opts)
            cfg.LOG_MODEL_INFO = False
            info = load_checkpoint(args.input, build_model(cfg))
            print(f"checked against {args.cfg}: {len(info['missing_keys'])} missing, "
                  f"{len(info['unexpected_keys'])} unexpected keys")
        cfg_text = "" if raw is ckpt or not isinstance(ckpt.get("cfg"), str) else ckpt["cfg"]
        out = {"model_state": state, "epoch": recorded_epoch(ckpt, raw), "cfg": cfg_text}
        with atomic_path(args.output) as tmp:
            torch.save(out, tmp)
    except (CheckpointError, ConfigError, LexiconError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {len(state)} tensors ({layout} layout -> m3a)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
