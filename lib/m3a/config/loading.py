"""Merge a YAML config file and ``KEY VALUE`` overrides into the defaults, with clear errors."""
import os
from typing import Optional, Sequence

import yaml
from fvcore.common.config import CfgNode

from m3a.config.defaults import get_cfg


class ConfigError(ValueError):
    """An expected configuration mistake: a missing file, an unknown key, a bad value."""


def _check_keys(node: dict, ref: CfgNode, path: str, prefix: str = "") -> None:
    """Raise ConfigError naming the first key of ``node`` that the defaults do not define."""
    for key, value in node.items():
        full = f"{prefix}{key}"
        if key == "_BASE_":
            continue
        if key not in ref:
            raise ConfigError(f"{path}: unknown config key '{full}'")
        if isinstance(value, dict) and isinstance(ref[key], CfgNode):
            _check_keys(value, ref[key], path, full + ".")


def _yaml_error_text(path: str, err: yaml.YAMLError) -> str:
    """One line ``path:line:column: invalid YAML: problem (context)`` of a YAML syntax error."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if mark is None or not problem:
        return f"{path}: invalid YAML: {' '.join(str(err).split())}"
    text = f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}"
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and context_mark is not None:
        text += f" ({context} from line {context_mark.line + 1}, column {context_mark.column + 1})"
    return text


def _merge_file(cfg: CfgNode, path: str) -> None:
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error_text(path, err)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    base = data.get("_BASE_")
    if base:
        _merge_file(cfg, os.path.join(os.path.dirname(path), base))
    _check_keys(data, cfg, path)
    try:
        cfg.merge_from_other_cfg(CfgNode({k: v for k, v in data.items() if k != "_BASE_"}))
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None


def load_config(cfg_file: Optional[str] = None, opts: Sequence[str] = ()) -> CfgNode:
    """Return the defaults merged with ``cfg_file`` (may name a ``_BASE_``) and ``opts`` pairs.

    Raises ConfigError with the file and key for a missing file, unknown key or bad value.
    """
    cfg = get_cfg()
    if cfg_file:
        _merge_file(cfg, cfg_file)
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs, got {opts}")
    for key, _ in zip(opts[0::2], opts[1::2]):
        node = cfg
        for part in key.split("."):
            if not isinstance(node, CfgNode) or part not in node:
                raise ConfigError(f"command line: unknown config key '{key}'")
            node = node[part]
    try:
        cfg.merge_from_list(opts)
    except (KeyError, ValueError, TypeError, AssertionError) as err:
        raise ConfigError(f"command line: {err}") from None
    from m3a.config.validate import assert_and_infer_cfg

    assert_and_infer_cfg(cfg)
    return cfg
