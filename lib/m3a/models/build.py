"""Registries of model components and the builder that composes them from a config.

A model is ``backbone -> neck -> head`` (the composition ``MODEL.MODEL_NAME``, default
``M3ANET``). Each registry entry is a class; the builder calls, per component,

- ``cls.add_config(cfg)`` when a config is created (every registered entry contributes its keys,
  documented where they are defined),
- ``cls.check_config(cfg, ...)`` when a config is validated (raises ConfigError naming the key and
  listing the valid values),
- ``cls(cfg, ...)`` to build it.

``MODEL.BACKBONE``, ``MODEL.NECK`` and ``MODEL.HEAD`` name the entries; an empty value is derived
from the older keys (see :func:`component_names`), so configs written before the registries exist
build the same model.
"""
import difflib
from typing import Dict, Iterable, NamedTuple, Optional

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry

from m3a.config.errors import ConfigError

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """Backbones by MODEL.BACKBONE: ``cls(cfg)`` returns a
:class:`m3a.models.backbone.Backbone`; ``cls.check_config(cfg)`` validates its keys and
``cls.feature_dim(cfg)`` gives its output width without building it; ``cls.make_tiny(cfg)``
shrinks the config to a tiny version for tests."""

NECK_REGISTRY = Registry("NECK")
NECK_REGISTRY.__doc__ = """Necks (pooling) by MODEL.NECK: ``cls(cfg, backbone)`` turns the
backbone's features into ``(B, C)`` or ``(B, P, C)`` (P pooled positions); ``cls.LAYOUTS`` lists
the backbone feature layouts it accepts."""

HEAD_REGISTRY = Registry("HEAD")
HEAD_REGISTRY.__doc__ = """Heads by MODEL.HEAD: ``cls(cfg, in_dim, inputs)`` maps neck features
``(B, C)`` / ``(B, P, C)`` to ``(B, NUM_CLASSES)``: logits in training, activated scores at eval.
``cls.read_inputs(cfg)`` reads the tensors it is built with (e.g. lexicons; ``{}`` for none) and
``cls.stored_inputs(cfg, inputs)`` gives what a checkpoint stores of them;
``cls.check_config(cfg, in_dim)`` validates its keys; ``cls.make_tiny(cfg)`` shrinks its keys for
tests and returns matching random inputs. A head that needs a particular backbone layout lists it
in ``cls.LAYOUTS`` (default: the pooled-feature layouts map3d, frames2d, tokens)."""

MODEL_REGISTRY = Registry("MODEL")
MODEL_REGISTRY.__doc__ = """Compositions by MODEL.MODEL_NAME: ``cls(cfg, inputs)`` builds a whole
model from the registered backbone, neck and head the config names."""


def register(registry: Registry, name: str):
    """Class decorator: add the class to ``registry`` under ``name`` (fvcore's own ``register``
    names entries after the class)."""

    def add(cls):
        registry._do_register(name, cls)
        return cls

    return add


class ComponentNames(NamedTuple):
    """The registry names of a config's backbone, neck and head."""

    backbone: str
    neck: str
    head: str


def _lookup(registry: Registry, name: str, key: str):
    """Registry entry ``name``, or ConfigError naming ``key`` with the valid names."""
    if name in registry:
        return registry.get(name)
    valid = sorted(n for n, _ in registry)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"{key} must be one of {', '.join(valid)}, got '{name}'{hint}")


def component_names(cfg: CfgNode) -> ComponentNames:
    """Backbone, neck and head of ``cfg``; empty keys are derived.

    MODEL.BACKBONE "" is ``video_resnet``; MODEL.NECK "" is the backbone's ``DEFAULT_NECK``;
    MODEL.HEAD "" is ``fc`` for M3A.MODE NONE and ``m3a`` otherwise.
    """
    backbone = cfg.MODEL.BACKBONE or "video_resnet"
    neck = cfg.MODEL.NECK or _lookup(BACKBONE_REGISTRY, backbone, "MODEL.BACKBONE").DEFAULT_NECK
    head = cfg.MODEL.HEAD or ("fc" if cfg.M3A.MODE == "NONE" else "m3a")
    return ComponentNames(backbone, neck, head)


def component_classes(cfg: CfgNode):
    """(backbone, neck, head) classes of ``cfg``; ConfigError for unknown names."""
    names = component_names(cfg)
    return (
        _lookup(BACKBONE_REGISTRY, names.backbone, "MODEL.BACKBONE"),
        _lookup(NECK_REGISTRY, names.neck, "MODEL.NECK"),
        _lookup(HEAD_REGISTRY, names.head, "MODEL.HEAD"),
    )


def _all_entries() -> Iterable[type]:
    for registry in (BACKBONE_REGISTRY, NECK_REGISTRY, HEAD_REGISTRY, MODEL_REGISTRY):
        for _, cls in sorted(registry, key=lambda item: item[0]):
            yield cls


def add_component_configs(cfg: CfgNode) -> None:
    """Let every registered component add its config keys to ``cfg`` (in place)."""
    for cls in _all_entries():
        add = getattr(cls, "add_config", None)
        if add is not None:
            add(cfg)


def check_model_cfg(cfg: CfgNode) -> None:
    """Validate the composition and every chosen component's keys (ConfigError)."""
    _lookup(MODEL_REGISTRY, cfg.MODEL.MODEL_NAME, "MODEL.MODEL_NAME")
    if cfg.MODEL.NUM_CLASSES < 1:
        raise ConfigError(f"MODEL.NUM_CLASSES must be >= 1, got {cfg.MODEL.NUM_CLASSES}")
    if cfg.MODEL.HEAD_ACT not in ("sigmoid", "softmax"):
        raise ConfigError(f"MODEL.HEAD_ACT must be sigmoid or softmax, got '{cfg.MODEL.HEAD_ACT}'")
    if cfg.BN.NORM_TYPE not in ("batchnorm", "sync_batchnorm"):
        raise ConfigError(
            f"BN.NORM_TYPE must be batchnorm or sync_batchnorm, got '{cfg.BN.NORM_TYPE}'"
        )
    backbone, neck, head = component_classes(cfg)
    backbone.check_config(cfg)
    if backbone.LAYOUT not in neck.LAYOUTS:
        raise ConfigError(
            f"MODEL.NECK {component_names(cfg).neck} pools {', '.join(neck.LAYOUTS)} features, but "
            f"backbone {component_names(cfg).backbone} gives {backbone.LAYOUT}; necks for it: "
            + ", ".join(sorted(n for n, c in NECK_REGISTRY if backbone.LAYOUT in c.LAYOUTS))
        )
    head_layouts = head_layouts_of(head)
    if backbone.LAYOUT not in head_layouts:
        raise ConfigError(
            f"MODEL.HEAD {component_names(cfg).head} works on {', '.join(head_layouts)} backbones, but "
            f"backbone {component_names(cfg).backbone} gives {backbone.LAYOUT}; heads for it: "
            + ", ".join(sorted(n for n, c in HEAD_REGISTRY if backbone.LAYOUT in head_layouts_of(c)))
        )
    head.check_config(cfg, backbone.feature_dim(cfg))


def head_layouts_of(head: type) -> tuple:
    """Backbone layouts a head works on: its ``LAYOUTS``, else those of pooled clip features."""
    from m3a.models.backbone import POOLED_LAYOUTS

    return tuple(getattr(head, "LAYOUTS", POOLED_LAYOUTS))


def read_model_inputs(cfg: CfgNode) -> Dict[str, object]:
    """The tensors the head of ``cfg`` is built with, read from the data folder (``{}`` if none)."""
    return component_classes(cfg)[2].read_inputs(cfg)


def build_model(
    cfg: CfgNode, device: Optional[torch.device] = None, inputs: Optional[Dict[str, object]] = None
) -> nn.Module:
    """Build ``cfg.MODEL.MODEL_NAME`` and move it to ``device`` (default CPU).

    ``inputs`` are the head's tensors (e.g. lexicons from a checkpoint); when None they are read
    from ``DATA.PATH_TO_DATA_DIR`` (LexiconError naming a missing file). Checks the model keys
    (ConfigError), converts BN to SyncBatchNorm for ``BN.NORM_TYPE sync_batchnorm`` and logs
    parameters/GFLOPs when ``LOG_MODEL_INFO``.
    """
    from m3a.models.model_info import log_model_info
    from m3a.models.norm import convert_sync_batchnorm

    check_model_cfg(cfg)
    if inputs is None:
        inputs = read_model_inputs(cfg)
    model = MODEL_REGISTRY.get(cfg.MODEL.MODEL_NAME)(cfg, inputs)
    if cfg.BN.NORM_TYPE == "sync_batchnorm":
        model = convert_sync_batchnorm(model)
    model = model.to(device if device is not None else torch.device("cpu"))
    if cfg.LOG_MODEL_INFO:
        log_model_info(model, cfg)
    return model


def list_components() -> Dict[str, list]:
    """Registered names per registry, for ``run_net.py --list-models``."""
    return {
        "MODEL.MODEL_NAME": sorted(n for n, _ in MODEL_REGISTRY),
        "MODEL.BACKBONE": sorted(n for n, _ in BACKBONE_REGISTRY),
        "MODEL.NECK": sorted(n for n, _ in NECK_REGISTRY),
        "MODEL.HEAD": sorted(n for n, _ in HEAD_REGISTRY),
    }
