"""The default composition ``M3ANET``: backbone -> neck -> head, in the published key layout.

The parts live in ``backbone`` / ``neck`` / ``head`` submodules, but the state dict uses each
part's ``state_prefix`` instead, so that a model's keys are those of its family's release (the
video ResNet's at the top level, the M3A head under ``m3a_head.``, the FC head's ``projection``
at the top level). Saving renames ``backbone.`` -> the backbone's prefix (and so on); loading
renames back.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.models.backbone import Inputs
from m3a.models.build import MODEL_REGISTRY, component_classes, register

# Submodules of the composition, in state-dict order.
PARTS = ("backbone", "neck", "head")


@register(MODEL_REGISTRY, "M3ANET")
class Recognizer(nn.Module):
    """``forward(x)`` maps the model input (a clip batch (B, 3, T, H, W), or a list with one
    tensor per input stream) to (B, NUM_CLASSES): logits in training, ``MODEL.HEAD_ACT`` scores
    at eval."""

    def __init__(self, cfg: CfgNode, inputs: Dict[str, object]) -> None:
        super().__init__()
        backbone_cls, neck_cls, head_cls = component_classes(cfg)
        self.backbone = backbone_cls(cfg)
        self.neck = neck_cls(cfg, self.backbone)
        self.head = head_cls(cfg, self.backbone.out_dim, inputs)
        bind = getattr(self.head, "bind_backbone", None)
        if bind is not None:  # a head that uses another tower of the backbone (CLIP's text)
            bind(self.backbone)
        self._prefixes = [
            (f"{part}.", getattr(getattr(self, part), "state_prefix", "")) for part in PARTS
        ]
        self.register_state_dict_post_hook(_to_published_keys)
        self.register_load_state_dict_pre_hook(_from_published_keys)

    def forward_features(self, x: Inputs) -> torch.Tensor:
        """The backbone's features in its declared layout."""
        return self.backbone.forward_features(x)

    def pooled_features(self, x: Inputs) -> torch.Tensor:
        """Clip features (B, C): the neck's output averaged over its pooled positions."""
        pooled = self.neck(self.forward_features(x))
        return pooled.mean(dim=1) if pooled.dim() == 3 else pooled

    def forward(self, x: Inputs) -> torch.Tensor:
        """Scores (B, NUM_CLASSES): logits in training, activated at eval."""
        return self.head(self.neck(self.forward_features(x)))

    def extra_score_names(self) -> List[str]:
        """Names of the extra score sets the head adds at test (``[]`` for most heads; EPAM-Net's
        ``i3d`` head: one per stream), see :mod:`m3a.engine.extra_scores`."""
        own = getattr(self.head, "extra_score_names", None)
        return list(own()) if own is not None else []

    def forward_with_extra_scores(self, x: Inputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The eval scores of ``forward`` and the head's extra score sets {name: (B, NUM_CLASSES)}
        from the same features, both by the head's own ``forward_with_extra_scores`` (``{}`` when
        the head has none)."""
        features = self.neck(self.forward_features(x))
        own = getattr(self.head, "forward_with_extra_scores", None)
        return own(features) if own is not None else (self.head(features), {})

    def training_loss(self, outputs, targets: torch.Tensor, loss_fn: nn.Module) -> Optional[torch.Tensor]:
        """The head's own training loss of a training forward's ``outputs`` (e.g. M2CLIP's
        multi-task loss), or None when the head has none (the configured loss applies)."""
        own = getattr(self.head, "training_loss", None)
        return own(outputs, targets, loss_fn) if own is not None else None

    def may_skip_parameters(self) -> bool:
        """True when a training step may leave trainable parameters unused (the head says so,
        e.g. M2CLIP's masked-LM head while masked LM is off): DDP then looks for them."""
        own = getattr(self.head, "may_skip_parameters", None)
        return bool(own()) if own is not None else False

    def set_class_names(self, names: List[str]) -> None:
        """Score these classes by name from now on (zero-shot transfer); ValueError for a head
        that scores only the classes it was trained on."""
        own = getattr(self.head, "set_class_names", None)
        if own is None:
            raise ValueError(f"the {type(self.head).__name__} head scores only its trained classes; zero-shot "
                             "transfer needs a head that scores class names (MODEL.HEAD m2clip)")
        own(names)

    def gradcam_layer(self) -> nn.Module:
        """The module whose output is the feature map Grad-CAM explains."""
        return self.backbone.gradcam_layer()

    def node_embeddings(self, features: Optional[torch.Tensor] = None) -> Dict[str, List[torch.Tensor]]:
        """The relation head's per-layer node embeddings (ValueError for other heads)."""
        if not hasattr(self.head, "node_embeddings"):
            raise ValueError("node embeddings need an M3A relation head (M3A.MODE GRAPH or TRSFMR)")
        return self.head.node_embeddings(features)

    def checkpoint_inputs(self) -> Dict[str, torch.Tensor]:
        """The tensors the head was built with (``{}`` when it needs none), for a checkpoint."""
        get = getattr(self.head, "checkpoint_inputs", None)
        return get() if get is not None else {}

    def example_inputs(self, cfg: CfgNode, batch: int = 1) -> List[torch.Tensor]:
        """Zero inputs of one eval forward at the test size, on the model's device."""
        device = next(self.parameters()).device
        return [t.to(device) for t in self.backbone.example_inputs(cfg, batch)]

    def published_key(self, key: str) -> str:
        """The published name of a key of ``named_parameters()`` / ``named_buffers()``."""
        return _rename(key, self._prefixes)

    def part_keys(self, part: str) -> set:
        """The published state-dict keys of one part (backbone, neck or head)."""
        return {self.published_key(k) for k in getattr(self, part).state_dict(prefix=f"{part}.")}

    def is_head_key(self, published: str) -> bool:
        """True when a published key belongs to the head."""
        return published in self.part_keys("head")

    def convert_state_dict(
        self, state: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Map a checkpoint of a foreign layout to the published keys; return it and the layout
        name (the backbone knows its family's layouts; the head drops constant tables it
        recomputes)."""
        state, layout = self.backbone.convert_state_dict(state)
        drop = getattr(self.head, "recomputed_keys", None)
        if drop is not None:
            dropped = set(drop(state))
            state = type(state)((k, v) for k, v in state.items() if k not in dropped)
        return state, layout


def _rename(key: str, pairs: List[Tuple[str, str]]) -> str:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _rename_state(state: dict, prefix: str, pairs: List[Tuple[str, str]]) -> None:
    """Rename the keys under ``prefix`` in place, keeping their order."""
    items = list(state.items())
    state.clear()
    for key, value in items:
        if key.startswith(prefix):
            key = prefix + _rename(key[len(prefix):], pairs)
        state[key] = value


def _order_state(state: dict, prefix: str, order: Tuple[str, ...]) -> None:
    """Stable-sort the keys under ``prefix`` by the first of ``order`` they start with (keys
    matching none last), in place."""
    def rank(key: str) -> int:
        local = key[len(prefix):]
        return next((i for i, p in enumerate(order) if local.startswith(p)), len(order))

    items = list(state.items())
    state.clear()
    state.update((k, v) for k, v in items if not k.startswith(prefix))
    state.update(sorted(((k, v) for k, v in items if k.startswith(prefix)), key=lambda kv: rank(kv[0])))


def _to_published_keys(module: Recognizer, state: dict, prefix: str, local_metadata) -> None:
    _rename_state(state, prefix, module._prefixes)
    order = getattr(module.backbone, "KEY_ORDER", ())
    if order:
        _order_state(state, prefix, order)


def _from_published_keys(module: Recognizer, state: dict, prefix: str, *args) -> None:
    """Map the published keys back to the part submodules; keys of no part stay as they are (the
    loader reports them as unexpected)."""
    internal = {}
    for part, (local_prefix, published_prefix) in zip(PARTS, module._prefixes):
        for key in module.part_keys(part):
            internal[key] = local_prefix + key[len(published_prefix):]
    items = list(state.items())
    state.clear()
    for key, value in items:
        if key.startswith(prefix):
            key = prefix + internal.get(key[len(prefix):], key[len(prefix):])
        state[key] = value
