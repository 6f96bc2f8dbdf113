"""The contract every registered backbone keeps (see :mod:`m3a.models.build`).

A backbone turns the model input (one tensor, or a list with one tensor per input stream) into
features in a declared layout:

- ``map3d``: a 3D feature map ``(B, C, T, H, W)``;
- ``frames2d``: per-frame 2D maps ``(B * T, C, H, W)``, with T = ``num_frames``;
- ``tokens``: tokens ``(B, T, N, D)`` (T frames of N tokens each);
- ``streams``: a list of 3D maps ``(B, C_i, T_i, H_i, W_i)``, one per input stream
  (``stream_dims`` names them and gives their widths; ``out_dim`` is the sum);
- ``video_text``: a dict of video-text model outputs (M2CLIP: frame embeddings and visual
  classifier logits) for a head that also uses the backbone's text tower.

``out_dim`` is C (or D). ``state_prefix`` is where the backbone's keys sit in the published state
dict of the whole model ("" = at the top level). ``convert_state_dict`` maps checkpoints of
foreign layouts (another release's key names) to the backbone's own.
"""
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

Inputs = Union[torch.Tensor, Sequence[torch.Tensor]]

# Feature layouts a backbone can declare.
LAYOUTS = ("map3d", "frames2d", "tokens", "streams", "video_text")
# Layouts whose necks give pooled clip features (B, C) / (B, P, C): those a head accepts unless
# it declares its own ``LAYOUTS``.
POOLED_LAYOUTS = ("map3d", "frames2d", "tokens", "streams")


class Backbone(nn.Module):
    """Base class of the registered backbones; subclasses set the class attributes below."""

    # Layout of forward_features' output (one of LAYOUTS).
    LAYOUT = "map3d"
    # Neck used when MODEL.NECK is empty.
    DEFAULT_NECK = "video_avgpool"
    # Key prefix of the backbone inside the published state dict of the whole model.
    state_prefix = ""
    # T / T' of a map3d backbone's last feature map (sets the published head pool's T_final).
    temporal_stride = 1
    # Published-key prefixes in the order the release's state dict lists them, when its parts
    # interleave (e.g. each stream's backbone followed by its classifier); () keeps module order.
    KEY_ORDER: Tuple[str, ...] = ()

    def __init__(self, out_dim: int, num_frames: int) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.num_frames = num_frames

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """Add the backbone's own config keys to ``cfg`` (none by default)."""

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Raise ConfigError for an invalid value of the backbone's keys."""

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> None:
        """Shrink ``cfg`` in place to a few-thousand-parameter version of the backbone that runs
        in milliseconds on CPU (used by the tests over every registered backbone)."""
        raise NotImplementedError

    @classmethod
    def feature_dim(cls, cfg: CfgNode) -> int:
        """``out_dim`` of the backbone ``cfg`` describes, without building it."""
        raise NotImplementedError

    @classmethod
    def stream_dims(cls, cfg: CfgNode) -> List[Tuple[str, int]]:
        """(name, width) of each stream's share of the pooled features, in order; one unnamed
        stream by default. Heads with one classifier per stream (``i3d``) name them after it."""
        return [("", cls.feature_dim(cfg))]

    def forward_features(self, inputs: Inputs) -> torch.Tensor:
        """Features of a batch in the layout ``LAYOUT``."""
        raise NotImplementedError

    def gradcam_layer(self) -> nn.Module:
        """The module whose output Grad-CAM explains (the last feature map)."""
        raise NotImplementedError

    def example_inputs(self, cfg: CfgNode, batch: int = 1) -> List[torch.Tensor]:
        """Zero inputs of one eval forward at the test size (for FLOP counts and tests)."""
        size = cfg.DATA.TEST_CROP_SIZE
        return [torch.zeros(batch, 3, cfg.DATA.NUM_FRAMES, size, size)]

    def convert_state_dict(
        self, state: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Map a state dict of a foreign layout to ours; return it and the layout's name.

        The base class knows no foreign layout: it returns ``state`` unchanged as ``native``.
        """
        return state, "native"

    @staticmethod
    def single_input(inputs: Inputs, name: str) -> torch.Tensor:
        """The one tensor of a one-stream backbone (a list must hold exactly one)."""
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(f"{name} has one input stream, got {len(inputs)} inputs")
            inputs = inputs[0]
        return inputs
