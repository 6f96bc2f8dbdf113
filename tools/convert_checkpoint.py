#!/usr/bin/env python3
"""Convert a checkpoint (published .pyth, VMZ/torchvision-layout .pth, DDP state dict) to ours.

The model of --cfg (default: the config stored in the checkpoint) says which layouts it knows and
maps the keys; the weights are checked against it: shape mismatches fail, missing and unexpected
keys are reported. Writes OUT (atomically) as ``{'model_state', 'epoch', 'cfg'}`` with our key
names.

--base FILE (repeatable) loads FILE into the model first, then INPUT on top, and OUT holds every
key of the model (a key in none of the files is an error, never written untrained): the way to complete a checkpoint that holds only part of a model, such as an
M2CLIP release checkpoint (its trainable adapter keys only) over OpenAI's CLIP file, so that
testing (which loads strictly) can use it.
"""
import argparse
import logging
import sys
from typing import Optional, Set


import torch

from m3a.config import ConfigError, load_config
from m3a.utils.lexicon import LexiconError
from m3a.utils.checkpoint import (
    CheckpointError,
    convert_for,
    extract_state,
    load_checkpoint,
    read_checkpoint,
    recorded_epoch,
    unwrap_model,
)
from m3a.utils.cli import parse_with_overrides
from m3a.utils.file_io import atomic_path


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(
        description="Map a published / VMZ / DDP checkpoint to the m3a state-dict layout.",
        epilog="Options may come before or after INPUT OUTPUT; KEY VALUE overrides come last. Example "
               "(after `make demo`):\n  python tools/convert_checkpoint.py "
               "output/demo/checkpoints/checkpoint_epoch_00024.pyth output/demo/converted.pyth "
               "--cfg configs/demo/demo.yaml DATA.PATH_TO_DATA_DIR demo_data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="checkpoint to convert (.pyth, .pth, bare state dict)")
    parser.add_argument("output", help="where to write the converted .pyth")
    parser.add_argument("--cfg", default=None,
                        help="config YAML of the target model (default: the config stored in the "
                             "checkpoint); its model maps the keys and checks the shapes")
    parser.add_argument("--base", action="append", default=[], metavar="FILE",
                        help="checkpoint loaded into the model before INPUT (repeatable, in order); "
                             "OUTPUT then holds every key of the model, e.g. OpenAI's ViT-B-16.pt "
                             "under an M2CLIP release checkpoint of adapter keys only")
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE",
                        help="config overrides of the target model's config, after INPUT OUTPUT")
    return parse_with_overrides(parser, sys.argv[1:] if argv is None else argv)


def _target_model(args, ckpt, raw):
    """The model of --cfg, or of the config stored in the checkpoint, and where it came from."""
    from m3a.config.loading import config_from_text
    from m3a.models import build_model

    if args.cfg:
        cfg, source = load_config(args.cfg, args.opts), args.cfg
    elif raw is not ckpt and isinstance(ckpt.get("cfg"), str) and ckpt["cfg"].strip():
        cfg = config_from_text(ckpt["cfg"], f"{args.input} (stored config)", args.opts)
        source = "the checkpoint's config"
    else:
        raise CheckpointError(f"{args.input}: the checkpoint holds no config; give --cfg")
    cfg.LOG_MODEL_INFO = False
    inputs = ckpt.get("model_inputs") if raw is not ckpt else None
    return build_model(cfg, inputs=inputs or None), source


def _load_bases(paths, model) -> Optional[Set[str]]:
    """Load each --base file into ``model`` in order; return the model keys none of them held
    (None without bases)."""
    not_held = None
    for path in paths:
        info = load_checkpoint(path, model)
        lacking = set(info["missing_keys"])
        not_held = lacking if not_held is None else not_held & lacking
        print(f"base {path}: {info['layout']} layout, {len(info['unexpected_keys'])} unexpected keys")
    return not_held


def main(argv=None) -> int:
    """Convert, optionally check against --cfg, write atomically; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        ckpt = read_checkpoint(args.input)
        raw = extract_state(ckpt, args.input)
        model, source = _target_model(args, ckpt, raw)
        state, layout = convert_for(model, raw)
        not_held = _load_bases(args.base, model)
        info = load_checkpoint(args.input, model)
        missing = [k for k in info["missing_keys"] if not_held is None or k in not_held]
        print(f"checked against {source}: {len(missing)} missing, "
              f"{len(info['unexpected_keys'])} unexpected keys")
        if args.base:
            if missing:  # the whole model would be written, these keys with their initial values
                raise CheckpointError(
                    f"{args.input}: {len(missing)} model key(s) are in neither it nor the --base files, "
                    f"so the output would hold them untrained: {', '.join(missing[:10])}"
                    + (f", ... and {len(missing) - 10} more" if len(missing) > 10 else ""))
            state = unwrap_model(model).state_dict()
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
