"""Command line of tools/run_net.py: arguments, config loading, expected-error handling."""
import argparse
import sys
from typing import Callable, List, Optional, Tuple, Type

from fvcore.common.config import CfgNode

from m3a.config.loading import ConfigError, load_config

DESCRIPTION = """Train and/or test an m3a model.

Trains when TRAIN.ENABLE is True, then tests when TEST.ENABLE is True (both default to True).
Any config key can be overridden after the options (options first!) as KEY VALUE pairs, e.g.
  run_net.py --cfg configs/demo/demo.yaml NUM_GPUS 0 OUTPUT_DIR out/demo SOLVER.MAX_EPOCH 2

Launch styles:
  one process (CPU with NUM_GPUS 0, or one GPU):   run_net.py --cfg FILE
  one node, N GPUs:                                run_net.py --cfg FILE NUM_GPUS N
  K nodes (run on every node, i = 0..K-1):         run_net.py --cfg FILE --num_shards K \\
        --shard_id i --init_method tcp://HOST0:PORT NUM_GPUS N
  torchrun (one process per GPU, any number of nodes):
        torchrun --nproc_per_node N [--nnodes K --node_rank i --master_addr HOST0 \\
        --master_port PORT] run_net.py --cfg FILE NUM_GPUS N
  several CPU processes (gloo DDP):                run_net.py --cfg FILE NUM_GPUS 0 NUM_CPU_PROCESSES 2

Validation only (score one checkpoint on the validation list; writes OUTPUT_DIR/val_metrics.json):
  run_net.py --cfg FILE --validate CHECKPOINT [KEY VALUE ...]
"""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of run_net.py."""
    parser = argparse.ArgumentParser(
        prog="run_net.py", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cfg", dest="cfg_file", help="YAML config file (keys of lib/m3a/config/defaults.py)"
    )
    parser.add_argument(
        "--list-models", action="store_true",
        help="print the registered compositions, backbones, necks and heads (the values of "
             "MODEL.MODEL_NAME / BACKBONE / NECK / HEAD) and exit",
    )
    parser.add_argument(
        "--validate", metavar="CHECKPOINT", default=None,
        help="only score CHECKPOINT on the validation list (strict loading, the metrics of the val phase; "
             "writes OUTPUT_DIR/val_metrics.json); no training, no testing",
    )
    parser.add_argument(
        "--num_shards", type=int, default=None, help="number of nodes of a --init_method run (sets NUM_SHARDS)"
    )
    parser.add_argument(
        "--shard_id", type=int, default=None, help="index of this node, 0..num_shards-1 (sets SHARD_ID)"
    )
    parser.add_argument(
        "--init_method",
        default=None,
        help="rendezvous address of rank 0 for spawned processes (default: tcp://MASTER_ADDR:MASTER_PORT "
        "when MASTER_PORT is set, else a free port of this machine, logged; needed with --num_shards > 1)",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides, e.g. SOLVER.BASE_LR 0.01"
    )
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse run_net.py's command line (--cfg is required unless --list-models)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.cfg_file and not args.list_models:
        parser.error("the following arguments are required: --cfg")
    return args


def list_models_text() -> str:
    """The registered model components: one line per config key with its valid values."""
    from m3a.models.build import list_components

    return "\n".join(f"{key}: {', '.join(names)}" for key, names in list_components().items())


def load_config_from_args(args: argparse.Namespace) -> CfgNode:
    """Load ``--cfg`` with the KEY VALUE overrides and the shard options; raise ConfigError."""
    misplaced = [o for o in args.opts or [] if o.startswith("--")]
    if misplaced:
        raise ConfigError(f"option {misplaced[0]} must come before the KEY VALUE overrides")
    cfg = load_config(args.cfg_file, args.opts or [])
    if args.num_shards is not None:
        cfg.NUM_SHARDS = args.num_shards
    if args.shard_id is not None:
        cfg.SHARD_ID = args.shard_id
    if not 0 <= cfg.SHARD_ID < cfg.NUM_SHARDS:
        raise ConfigError(f"--shard_id must be in [0, {cfg.NUM_SHARDS}), got {cfg.SHARD_ID}")
    return cfg


INTERRUPTED_EXIT_CODE = 130  # as a shell reports a command stopped by Ctrl-C (128 + SIGINT)
MAX_ERROR_CHARS = 500


def expected_errors() -> Tuple[Type[BaseException], ...]:
    """Exceptions that mean bad input (reported in one line) rather than a bug."""
    from m3a.utils.checkpoint import CheckpointError
    from m3a.utils.errors import InputError

    return (ConfigError, InputError, CheckpointError, FileNotFoundError)


def _worker_error_text(text: str) -> str:
    """The original message of an error a DataLoader worker re-raised with its traceback."""
    if not (text.startswith("Caught ") and "Original Traceback" in text):
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    name, sep, message = last.partition(": ")
    return message if sep and " " not in name else last


def error_message(err: BaseException) -> str:
    """One-line ``error: ...`` text of an expected error (cut at MAX_ERROR_CHARS characters)."""
    if isinstance(err, FileNotFoundError) and err.filename:
        return f"error: {err.strerror or 'file not found'}: {err.filename}"
    lines = _worker_error_text(str(err).strip()).splitlines()
    text = lines[0] if lines else type(err).__name__
    if len(text) > MAX_ERROR_CHARS:
        text = f"{text[:MAX_ERROR_CHARS]}... ({len(text) - MAX_ERROR_CHARS} more characters)"
    return f"error: {text}"


def interrupted_message(cfg: Optional[CfgNode]) -> str:
    """The line printed when Ctrl-C stops a run: how to continue from its newest checkpoint."""
    if cfg is None or not cfg.TRAIN.ENABLE:
        return "interrupted"
    from m3a.utils.checkpoint import get_last_checkpoint

    last = get_last_checkpoint(cfg.OUTPUT_DIR)
    if last is None:
        return "interrupted before the first checkpoint; re-running the same command starts training from epoch 1"
    if not cfg.TRAIN.AUTO_RESUME:
        return (f"interrupted; add TRAIN.AUTO_RESUME True to the same command to resume from {last} "
                "(as it is, re-running starts anew)")
    return f"interrupted; re-run the same command to resume from {last}"


class GuardedJob:
    """Picklable job wrapper: an expected error exits with code 2 after one ``error:`` line
    (printed by the first process of each node only, so a node reports it once); Ctrl-C exits
    quietly with code 130 (the launching process prints how to resume)."""

    def __init__(self, func: Callable[[CfgNode], object]):
        self.func = func

    def __call__(self, cfg: CfgNode) -> None:
        try:
            self.func(cfg)
        except expected_errors() as err:
            from m3a.utils import distributed as du

            if du.get_local_rank() == 0:
                print(error_message(err), file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None
