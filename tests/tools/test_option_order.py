"""Options in any order before (and after) the KEY VALUE overrides, for every tool that takes them."""
import argparse

import pytest

from m3a.utils.cli import looks_like_config_key, parse_with_overrides, split_overrides
from tests.visualization.tiny_setup import load_tool


def _parser():
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--cfg", default="")
    p.add_argument("--json", action="store_true")
    p.add_argument("videos", nargs="+")
    p.add_argument("opts", nargs="*")
    return p


def test_config_keys_are_recognised(tmp_path, monkeypatch):
    assert looks_like_config_key("NUM_GPUS") and looks_like_config_key("SOLVER.BASE_LR")
    assert not looks_like_config_key("a.mp4") and not looks_like_config_key("--cfg")
    assert not looks_like_config_key("") and not looks_like_config_key("videos/A.MP4")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "CLIP.MP4").write_bytes(b"")  # an existing file is a positional, however it is written
    head, overrides = split_overrides(_parser(), ["CLIP.MP4", "NUM_GPUS", "0"])
    assert head == ["CLIP.MP4"] and overrides == ["NUM_GPUS", "0"]


def test_an_unknown_key_reaches_the_config_loader():
    """DATA.NOPE starts the overrides, so the loader's error names it (not 'unexpected argument')."""
    args = parse_with_overrides(_parser(), ["a.mp4", "DATA.NOPE", "1"])
    assert args.videos == ["a.mp4"] and args.opts == ["DATA.NOPE", "1"]
    from m3a.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="DATA.NOPE"):
        load_config(None, args.opts)


@pytest.mark.parametrize("argv", [
    ["--cfg", "x.yaml", "a.mp4", "b.mp4", "--json", "NUM_GPUS", "0"],
    ["a.mp4", "--cfg", "x.yaml", "b.mp4", "--json", "NUM_GPUS", "0"],
    ["a.mp4", "b.mp4", "NUM_GPUS", "0", "--cfg", "x.yaml", "--json"],
    ["--json", "a.mp4", "b.mp4", "--cfg=x.yaml", "NUM_GPUS", "0"],
])
def test_any_order_gives_the_same_arguments(argv):
    args = parse_with_overrides(_parser(), argv)
    assert (args.cfg, args.json, args.videos, args.opts) == ("x.yaml", True, ["a.mp4", "b.mp4"], ["NUM_GPUS", "0"])


def test_override_values_are_never_options():
    head, overrides = split_overrides(_parser(), ["a.mp4", "SOLVER.BASE_LR", "-1", "OUTPUT_DIR", "--json"])
    assert head == ["a.mp4"] and overrides == ["SOLVER.BASE_LR", "-1", "OUTPUT_DIR", "--json"]


@pytest.mark.parametrize("argv, message", [
    (["a.mp4", "NUM_GPUS", "0", "b.mp4"], "'b.mp4' after the KEY VALUE overrides is not a config key"),
    (["a.mp4", "NUM_GPUS"], "config override NUM_GPUS has no value"),
])
def test_misplaced_arguments_get_a_usage_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_with_overrides(_parser(), argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: t ") and message in err


def test_tools_accept_options_after_positionals_and_overrides():
    predict = load_tool("predict").parse_args(["--checkpoint", "c.pyth", "a.mp4", "b.mp4", "--topk", "2"])
    assert (predict.videos, predict.topk, predict.opts) == (["a.mp4", "b.mp4"], 2, [])
    convert = load_tool("convert_checkpoint").parse_args(["in.pyth", "out.pyth", "--cfg", "x.yaml", "NUM_GPUS", "0"])
    assert (convert.input, convert.output, convert.cfg, convert.opts) == ("in.pyth", "out.pyth", "x.yaml",
                                                                        ["NUM_GPUS", "0"])
    vis = load_tool("visualize").parse_args(["gradcam", "--checkpoint", "c.pyth", "--video", "a.mp4",
                                             "TEST.NUM_SPATIAL_CROPS", "1", "--out", "vis"])
    assert (vis.command, vis.out, vis.opts) == ("gradcam", "vis", ["TEST.NUM_SPATIAL_CROPS", "1"])
    bench = load_tool("benchmark")
    with pytest.raises(SystemExit):  # a stray word is refused, not taken as an override
        bench.main(["data", "--videos", "2", "words", "NUM_GPUS", "0"])
