"""Merge a YAML config file and ``KEY VALUE`` overrides into the defaults, with clear errors."""
import os
import re
from typing import Optional, Sequence, Tuple

import yaml
from fvcore.common.config import CfgNode

from m3a.config.defaults import get_cfg
from m3a.config.errors import ConfigError
from m3a.config.validate import assert_and_infer_cfg, did_you_mean


def _check_keys(node: dict, ref: CfgNode, path: str, prefix: str = "") -> None:
    """Raise ConfigError naming the first key of ``node`` that the defaults do not define."""
    for key, value in node.items():
        full = f"{prefix}{key}"
        if key == "_BASE_":
            continue
        if key not in ref:
            hint = did_you_mean(key, list(ref.keys()))
            raise ConfigError(f"{path}: unknown config key '{full}'{hint}")
        if isinstance(value, dict) and isinstance(ref[key], CfgNode):
            _check_keys(value, ref[key], path, full + ".")


# YACS's message for a value of the wrong type.
_TYPE_MISMATCH = re.compile(
    r"Type mismatch \(<class '(\w+)'> vs\. <class '(\w+)'>\) with values \((.*) vs\. (.*)\) "
    r"for config key: (\S+)"
)


def _readable(err: Exception) -> str:
    """YACS's type-mismatch error as 'KEY must be a TYPE, got VALUE (a TYPE)'; others as they are."""
    match = _TYPE_MISMATCH.search(str(err))
    if not match:
        return str(err)
    want, got, _, value, key = match.groups()
    return f"{key} must be a {want}, got '{value}' (a {got})"


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


def _merge_file(cfg: CfgNode, path: str, chain: Tuple[str, ...] = ()) -> None:
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    real = os.path.realpath(path)
    if real in chain:
        loop = " -> ".join(list(chain[chain.index(real):]) + [real])
        raise ConfigError(f"{path}: _BASE_ files include each other: {loop}")
    with open(path) as f:
        _merge_text(cfg, f.read(), path, chain + (real,))


def _merge_text(cfg: CfgNode, text: str, path: str, chain: Tuple[str, ...] = ()) -> None:
    """Merge YAML ``text`` read from ``path`` (a ``_BASE_`` is relative to its folder; ``chain``
    holds the files that include it, to refuse loops)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_error_text(path, err)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    base = data.get("_BASE_")
    if base:
        _merge_file(cfg, os.path.join(os.path.dirname(path), base), chain)
    _check_keys(data, cfg, path)
    try:
        cfg.merge_from_other_cfg(CfgNode({k: v for k, v in data.items() if k != "_BASE_"}))
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"{path}: {_readable(err)}") from None


def load_config(cfg_file: Optional[str] = None, opts: Sequence[str] = ()) -> CfgNode:
    """Return the defaults merged with ``cfg_file`` (may name a ``_BASE_``) and ``opts`` pairs.

    Raises ConfigError with the file and key for a missing file, unknown key or bad value.
    """
    cfg = get_cfg()
    if cfg_file:
        _merge_file(cfg, cfg_file)
    return _finish(cfg, opts)


def config_from_text(text: str, source: str, opts: Sequence[str] = ()) -> CfgNode:
    """Like :func:`load_config` for YAML ``text`` (e.g. the config stored in a checkpoint);
    ``source`` names it in errors."""
    cfg = get_cfg()
    _merge_text(cfg, text, source)
    return _finish(cfg, opts)


def _finish(cfg: CfgNode, opts: Sequence[str]) -> CfgNode:
    """Apply ``KEY VALUE`` overrides and validate."""
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs, got {opts}")
    for key, _ in zip(opts[0::2], opts[1::2]):
        node = cfg
        for part in key.split("."):
            if not isinstance(node, CfgNode) or part not in node:
                hint = did_you_mean(part, list(node.keys())) if isinstance(node, CfgNode) else ""
                raise ConfigError(f"command line: unknown config key '{key}'{hint}")
            node = node[part]
    try:
        cfg.merge_from_list(opts)
    except (KeyError, ValueError, TypeError, AssertionError) as err:
        raise ConfigError(f"command line: {_readable(err)}") from None
    assert_and_infer_cfg(cfg)
    return cfg
