#!/usr/bin/env python3
"""Train and/or test an m3a model (see --help and GETTING_STARTED.md)."""
import logging
import os
import sys

import torch.multiprocessing as mp

from m3a.engine.run import train_and_test, validation_job
from m3a.utils import distributed as du
from m3a.utils.logging import setup_logging
from m3a.utils.parser import (
    INTERRUPTED_EXIT_CODE,
    GuardedJob,
    error_message,
    expected_errors,
    interrupted_message,
    list_models_text,
    load_config_from_args,
    parse_args,
)


def _interrupted(cfg) -> int:
    """Print (once per run) how to continue after Ctrl-C; return the exit code 130."""
    if os.environ.get("RANK", "0") == "0":
        print(interrupted_message(cfg), file=sys.stderr, flush=True)
    return INTERRUPTED_EXIT_CODE


def main() -> int:
    """Parse the command line, then launch training/testing in every process."""
    args = parse_args()
    if args.list_models:
        print(list_models_text())
        return 0
    # When one worker stops on an expected error, torch warns that it terminates the others.
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    setup_logging()  # the launcher's own lines (e.g. the rendezvous port it picked)
    cfg = None
    try:
        cfg = load_config_from_args(args)
        job = train_and_test
        if args.validate:  # score one checkpoint on the validation list; nothing is trained or tested
            cfg.TRAIN.ENABLE, cfg.TEST.ENABLE = False, False
            job = validation_job(args.validate)
        du.launch_job(cfg, GuardedJob(job), init_method=args.init_method)
    except expected_errors() as err:
        print(error_message(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(cfg)
    except SystemExit as err:  # from GuardedJob in this process
        if err.code == INTERRUPTED_EXIT_CODE:
            return _interrupted(cfg)
        raise
    except mp.ProcessExitedException as err:
        if err.exit_code == INTERRUPTED_EXIT_CODE or err.signal_name == "SIGINT":
            return _interrupted(cfg)
        # Codes 2 and EXIT_COLLECTIVE_FAILED: the worker already printed its one-line error.
        if err.exit_code not in (2, du.EXIT_COLLECTIVE_FAILED):
            print(f"error: worker process {err.error_index} exited with code {err.exit_code}", file=sys.stderr)
        return err.exit_code or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
