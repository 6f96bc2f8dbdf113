"""tools/run_net.py: argument parsing and one-line errors for bad input (real subprocesses)."""
import os
import subprocess
import sys

import pytest

from m3a.config import ConfigError
from m3a.engine.run import train_and_test
from m3a.utils.parser import build_parser, error_message, expected_errors, load_config_from_args, parse_args

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_NET = os.path.join(REPO, "tools", "run_net.py")


def run_net(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))
    return subprocess.run(
        [sys.executable, RUN_NET, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def _assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_parser_overrides_and_shards(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("SOLVER:\n  BASE_LR: 0.5\n")
    args = parse_args(["--cfg", str(cfg_file), "--num_shards", "2", "--shard_id", "1",
                       "--init_method", "tcp://10.0.0.1:2345", "SOLVER.MAX_EPOCH", "3", "NUM_GPUS", "0"])
    cfg = load_config_from_args(args)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH, cfg.NUM_SHARDS, cfg.SHARD_ID) == (0.5, 3, 2, 1)
    assert args.init_method == "tcp://10.0.0.1:2345"
    with pytest.raises(ConfigError, match="--shard_id must come before"):
        load_config_from_args(parse_args(["--cfg", str(cfg_file), "NUM_GPUS", "0", "--shard_id", "1"]))
    with pytest.raises(ConfigError, match="shard_id"):
        load_config_from_args(parse_args(["--cfg", str(cfg_file), "--num_shards", "2", "--shard_id", "2"]))


def test_help_explains_launch_styles():
    text = build_parser().format_help()
    for fragment in ("torchrun", "--num_shards", "--init_method", "NUM_CPU_PROCESSES", "KEY VALUE"):
        assert fragment in text


def test_missing_config_file(tmp_path):
    _assert_one_line_error(run_net("--cfg", str(tmp_path / "nope.yaml")), "nope.yaml")


def test_unknown_key_in_file_and_on_command_line(tmp_path):
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text("SOLVER:\n  BASE_LRR: 0.1\n")
    _assert_one_line_error(run_net("--cfg", str(cfg_file)), "SOLVER.BASE_LRR")
    good = tmp_path / "good.yaml"
    good.write_text("NUM_GPUS: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config_from_args(parse_args(["--cfg", str(good), "TRAIN.NOPE", "1"]))
    assert error_message(err.value) == "error: command line: unknown config key 'TRAIN.NOPE'"


def test_data_dir_without_lists(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"NUM_GPUS: 0\nOUTPUT_DIR: {tmp_path / 'out'}\nDATA:\n  PATH_TO_DATA_DIR: {tmp_path}\n")
    _assert_one_line_error(run_net("--cfg", str(cfg_file)), "train-v1.csv")
    cfg = load_config_from_args(parse_args(["--cfg", str(cfg_file), "TRAIN.ENABLE", "False"]))
    with pytest.raises(expected_errors()) as err:
        train_and_test(cfg)
    assert "test-v1.csv" in error_message(err.value)


def test_long_error_messages_are_cut_to_one_short_line():
    line = error_message(ConfigError("x" * 1200 + "\nsecond line"))
    assert line == "error: " + "x" * 500 + "... (700 more characters)"
