"""Config loading: defaults documented, YAML + overrides, clear errors."""
import re

import pytest

from m3a.config import ConfigError, get_cfg, load_config
from m3a.config import defaults


def test_every_key_has_a_comment():
    source = open(defaults.__file__).read().splitlines()
    for i, line in enumerate(source):
        if re.match(r"_C\.[A-Z_.]+ = ", line) and "CfgNode()" not in line:
            above = source[i - 1].strip()
            assert above.startswith("#") or re.match(r"_C\.[A-Z_.]+ = ", above), line


def test_yaml_base_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("SOLVER:\n  BASE_LR: 0.5\nDATA:\n  NUM_FRAMES: 4\n")
    (tmp_path / "child.yaml").write_text("_BASE_: base.yaml\nDATA:\n  NUM_FRAMES: 16\n")
    cfg = load_config(str(tmp_path / "child.yaml"), ["SOLVER.MAX_EPOCH", "3"])
    assert (cfg.SOLVER.BASE_LR, cfg.DATA.NUM_FRAMES, cfg.SOLVER.MAX_EPOCH) == (0.5, 16, 3)
    assert get_cfg().DATA.NUM_FRAMES == 8  # defaults untouched


def test_missing_file_and_unknown_keys(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("DATA:\n  NUM_FRAMEZ: 4\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'DATA.NUM_FRAMEZ'"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="unknown config key 'SOLVER.LR'"):
        load_config(None, ["SOLVER.LR", "1"])
    with pytest.raises(ConfigError, match="ENSEMBLE_METHOD"):
        load_config(None, ["DATA.ENSEMBLE_METHOD", "mean"])
