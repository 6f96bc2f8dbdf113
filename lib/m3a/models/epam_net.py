"""The EPAM-Net family: X-ShiftNet streams for RGB and pose heatmaps, fused by pose-guided
spatial-temporal attention (Abdelkawy, Ali, Farag, Neurocomputing 2025).

Registered backbones (module names reproduce the release's state-dict keys):

- ``epam_net``: the two-stream model's body. Input: the list ``[rgb (B, 3, T, H, W), heatmaps
  (B, J, 3T, H/4, W/4)]``. The RGB X-ShiftNet gives ``f_r`` (B, 432, T, 7, 7), the pose X-ShiftNet
  ``f_s`` (B, 216, 3T, 7, 7); the STA block turns ``f_s`` at every third step into a map ``A``
  (B, 1, T, 7, 7) and the output is the list ``[f_r * (1 + A), f_s]`` (layout ``streams``). Keys
  ``rgb_backbone.*``, ``pose_backbone.*``, ``attention_module.*``; with the ``i3d`` head
  (``rgb_cls_head.*``, ``pose_cls_head.*``, logits summed) the state dict lists them in the
  release's order.
- ``xshift_rgb`` / ``xshift_pose``: one stream alone (the first training stage), keys
  ``backbone.*`` as in the release's MMAction2 stream checkpoints (with the ``i3d`` head:
  ``cls_head.fc_cls.*``).

Neck ``stream_avgpool``: each stream's map averaged over (T, H, W), concatenated (B, 432 + 216).

Config keys (added by :meth:`XShiftBackbone.add_config`, node ``EPAM``): BASE_CHANNELS,
BOTTLENECK_FACTOR, SE_RATIO, RGB_STAGE_BLOCKS, POSE_STAGE_BLOCKS, RGB_SHIFT_DIV, POSE_SHIFT_DIV,
NUM_JOINTS, POSE_FRAMES, HEATMAP_SIZE. RGB frames and size are DATA.NUM_FRAMES and
DATA.TEST_CROP_SIZE.
"""
from collections import OrderedDict
from typing import Callable, Dict, List, NamedTuple, Sequence, Tuple

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.backbone import Backbone, Inputs
from m3a.models.build import BACKBONE_REGISTRY, NECK_REGISTRY, register
from m3a.models.necks import Neck
from m3a.models.norm import get_norm

# Momentum of the STA block's batch norm (the release's value, independent of BN.MOMENTUM).
STA_BN_MOMENTUM = 0.01
# Kernel of the STA block's spatial conv (k x k) and of its temporal 1D conv.
STA_SPATIAL_KERNEL = 7
STA_TEMPORAL_KERNEL = 7
# The release's stream names, in the order of its state dict.
STREAMS = ("rgb", "pose")
# Keys of one stream's classifier in the release (I3D head: Linear ``fc_cls``).
STREAM_HEAD_KEYS = ("fc_cls.weight", "fc_cls.bias")


def temporal_shift(x: torch.Tensor, fold_div: int) -> torch.Tensor:
    """TSM shift along T of ``x`` (N, C, T, H, W), zero padded, not in place.

    With ``f = C // fold_div``: channels [0, f) take the next frame's value (t + 1; the last
    frame gets 0), channels [f, 2f) the previous frame's (t - 1; the first gets 0), the rest are
    unchanged.
    """
    fold = x.shape[1] // fold_div
    zero = x.new_zeros(x[:, :fold, :1].shape)
    forward = torch.cat([x[:, :fold, 1:], zero], dim=2)
    backward = torch.cat([zero, x[:, fold:2 * fold, :-1]], dim=2)
    return torch.cat([forward, backward, x[:, 2 * fold:]], dim=1)


def se_width(planes: int, ratio: float, divisor: int = 8) -> int:
    """X3D's rounding of ``planes * ratio`` to a multiple of ``divisor`` (at least ``divisor``;
    one more ``divisor`` when rounding lost over 10 %)."""
    width = planes * ratio
    rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * width else rounded)


def conv_output_size(size: int, num_halvings: int) -> int:
    """Spatial size after ``num_halvings`` stride-2 convs with kernel 3 and padding 1."""
    for _ in range(num_halvings):
        size = (size + 1) // 2
    return size


class ConvBN(nn.Module):
    """Conv3d without bias + batch norm (+ ReLU): the release's ``ConvModule`` (keys ``conv.*``,
    ``bn.*``)."""

    def __init__(
        self, cin: int, cout: int, kernel: Sequence[int], norm: Callable[[int], nn.Module],
        stride: Sequence[int] = (1, 1, 1), padding: Sequence[int] = (0, 0, 0), groups: int = 1,
        relu: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = norm(cout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.relu else x


class SqueezeExcite(nn.Module):
    """Global average pool -> 1x1x1 conv (bias) -> ReLU -> 1x1x1 conv (bias) -> sigmoid gate."""

    def __init__(self, planes: int, ratio: float) -> None:
        super().__init__()
        hidden = se_width(planes, ratio)
        self.fc1 = nn.Conv3d(planes, hidden, 1)
        self.fc2 = nn.Conv3d(hidden, planes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3, 4), keepdim=True))))
        return x * torch.sigmoid(gate)


class XShiftBlock(nn.Module):
    """X-ShiftNet block: temporal shift of the input, 1x1x1 conv, depthwise 1x3x3 conv (stride
    s), SE (optional), swish, 1x1x1 conv, plus the *unshifted* input (or its 1x1x1 strided
    projection), ReLU."""

    def __init__(
        self, cin: int, planes: int, cout: int, stride: int, fold_div: int, use_se: bool,
        se_ratio: float, norm: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        self.fold_div = fold_div
        if stride != 1 or cin != cout:
            self.downsample = ConvBN(cin, cout, (1, 1, 1), norm, stride=(1, stride, stride))
        self.conv1 = ConvBN(cin, planes, (1, 1, 1), norm, relu=True)
        self.conv2 = ConvBN(planes, planes, (1, 3, 3), norm, stride=(1, stride, stride),
                            padding=(0, 1, 1), groups=planes)
        self.conv3 = ConvBN(planes, cout, (1, 1, 1), norm)
        if use_se:
            self.se_module = SqueezeExcite(planes, se_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(temporal_shift(x, self.fold_div)))
        if hasattr(self, "se_module"):
            out = self.se_module(out)
        out = self.conv3(out * torch.sigmoid(out))
        identity = self.downsample(x) if hasattr(self, "downsample") else x
        return torch.relu(out + identity)


class StreamSpec(NamedTuple):
    """What one X-ShiftNet stream is built from."""

    in_channels: int
    base_channels: int
    stage_blocks: Sequence[int]
    stem_stride: int
    bottleneck_factor: float
    fold_div: int
    se_ratio: float


class XShiftNet(nn.Module):
    """One X-ShiftNet stream: stem ``conv1_s`` (1x3x3, stride 1 or 2), stages ``layer{i}`` of
    widths base * 2^(i-1) (each halving H and W, SE in every other block from the first), and
    ``conv5`` (1x1x1 to the last stage's bottleneck width). T is kept throughout."""

    def __init__(self, spec: StreamSpec, norm: Callable[[int], nn.Module]) -> None:
        super().__init__()
        add_stream_layers(self, spec, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stream(self, x)


def add_stream_layers(
    module: nn.Module, spec: StreamSpec, norm: Callable[[int], nn.Module]
) -> None:
    """Add an X-ShiftNet's ``conv1_s``, ``layer1..N`` and ``conv5`` to ``module`` (initialised);
    set ``module.out_dim`` and ``module.num_stages``."""
    base = spec.base_channels
    module.conv1_s = ConvBN(spec.in_channels, base, (1, 3, 3), norm,
                            stride=(1, spec.stem_stride, spec.stem_stride), padding=(0, 1, 1),
                            relu=True)
    cin = base
    for i, blocks in enumerate(spec.stage_blocks):
        cout = base * 2 ** i
        planes = int(spec.bottleneck_factor * cout)
        layer = [
            XShiftBlock(cin if b == 0 else cout, planes, cout, 2 if b == 0 else 1, spec.fold_div,
                        b % 2 == 0, spec.se_ratio, norm)
            for b in range(blocks)
        ]
        module.add_module(f"layer{i + 1}", nn.Sequential(*layer))
        cin = cout
    module.out_dim = int(spec.bottleneck_factor * cin)
    module.conv5 = ConvBN(cin, module.out_dim, (1, 1, 1), norm, relu=True)
    module.num_stages = len(spec.stage_blocks)
    init_weights(module)


def run_stream(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward through the layers :func:`add_stream_layers` added to ``module``."""
    x = module.conv1_s(x)
    for i in range(module.num_stages):
        x = getattr(module, f"layer{i + 1}")(x)
    return module.conv5(x)


def init_weights(module: nn.Module) -> None:
    """The release's initialisation: Kaiming normal (fan_out, ReLU) convs with zero bias, BN
    weight 1 / bias 0, and zero weight on every block's last BN (the residual branch starts
    at 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv1d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, XShiftBlock) and m.conv3.bn.affine:
            nn.init.zeros_(m.conv3.bn.weight)


class SpatialTemporalAttention(nn.Module):
    """The STA block (the release's nested CBAM-spatial / ECA-temporal variant).

    Pose features F (N, C, T, H, W) -> A (N, 1, T, H, W): channel max and mean (in that order)
    -> 7x7 conv + BN -> sigmoid = A_S; A_S averaged over (H, W) -> 1D conv k=7 -> sigmoid = A_T;
    A = A_S * A_T.
    """

    def __init__(self, norm: Callable[[int], nn.Module]) -> None:
        super().__init__()
        k = STA_SPATIAL_KERNEL
        self.spatial = ConvBN(2, 1, (1, k, k), norm, padding=(0, k // 2, k // 2))
        self.spatial.bn.momentum = STA_BN_MOMENTUM
        self.conv_temporal_attention = nn.Conv1d(
            1, 1, STA_TEMPORAL_KERNEL, padding=STA_TEMPORAL_KERNEL // 2, bias=False
        )
        init_weights(self)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([pose.amax(dim=1, keepdim=True), pose.mean(dim=1, keepdim=True)], 1)
        spatial = torch.sigmoid(self.spatial(pooled))
        temporal = torch.sigmoid(self.conv_temporal_attention(spatial.mean(dim=(3, 4))))
        return spatial * temporal[..., None, None]


def stream_spec(cfg: CfgNode, stream: str) -> StreamSpec:
    """The X-ShiftNet of ``stream`` (rgb or pose) that ``cfg`` describes."""
    e = cfg.EPAM
    if stream == "rgb":
        return StreamSpec(3, e.BASE_CHANNELS, e.RGB_STAGE_BLOCKS, 2, e.BOTTLENECK_FACTOR,
                          e.RGB_SHIFT_DIV, e.SE_RATIO)
    return StreamSpec(e.NUM_JOINTS, e.BASE_CHANNELS, e.POSE_STAGE_BLOCKS, 1, e.BOTTLENECK_FACTOR,
                      e.POSE_SHIFT_DIV, e.SE_RATIO)


def stream_dim(cfg: CfgNode, stream: str) -> int:
    """Output width of ``stream``'s X-ShiftNet (its ``conv5``) without building it."""
    blocks = cfg.EPAM.RGB_STAGE_BLOCKS if stream == "rgb" else cfg.EPAM.POSE_STAGE_BLOCKS
    return int(cfg.EPAM.BOTTLENECK_FACTOR * cfg.EPAM.BASE_CHANNELS * 2 ** (len(blocks) - 1))


def stream_map_size(cfg: CfgNode, stream: str) -> int:
    """H (= W) of ``stream``'s last feature map at the test size."""
    if stream == "rgb":
        return conv_output_size(cfg.DATA.TEST_CROP_SIZE, 1 + len(cfg.EPAM.RGB_STAGE_BLOCKS))
    return conv_output_size(cfg.EPAM.HEATMAP_SIZE, len(cfg.EPAM.POSE_STAGE_BLOCKS))


def heatmap_inputs(cfg: CfgNode, batch: int) -> torch.Tensor:
    """A zero heatmap volume batch (B, J, POSE_FRAMES, S, S) at the configured size."""
    size = cfg.EPAM.HEATMAP_SIZE
    return torch.zeros(batch, cfg.EPAM.NUM_JOINTS, cfg.EPAM.POSE_FRAMES, size, size)


class XShiftBackbone(Backbone):
    """Shared config keys and checks of the X-ShiftNet backbones."""

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """The EPAM node (shared by epam_net, xshift_rgb and xshift_pose)."""
        if "EPAM" in cfg:
            return
        cfg.EPAM = CfgNode()
        # Width of the stem and of the first stage (stage i is BASE_CHANNELS * 2^(i-1) wide).
        cfg.EPAM.BASE_CHANNELS = 24
        # Bottleneck (inner) width of a block = this factor x its stage width (X3D's gamma_b).
        cfg.EPAM.BOTTLENECK_FACTOR = 2.25
        # Squeeze-excitation width = this ratio x the bottleneck width, X3D-rounded to 8.
        cfg.EPAM.SE_RATIO = 0.0625
        # Blocks per stage of the RGB X-ShiftNet (X3D-M: 3, 5, 11, 7).
        cfg.EPAM.RGB_STAGE_BLOCKS = [3, 5, 11, 7]
        # Blocks per stage of the pose X-ShiftNet (X3D-M's last three stages).
        cfg.EPAM.POSE_STAGE_BLOCKS = [5, 11, 7]
        # Temporal shift of the RGB stream: 1/DIV of the channels move forward, 1/DIV backward.
        cfg.EPAM.RGB_SHIFT_DIV = 8
        # Temporal shift of the pose stream (4: half of the channels move).
        cfg.EPAM.POSE_SHIFT_DIV = 4
        # Heatmap channels of the pose input (COCO-17 joints).
        cfg.EPAM.NUM_JOINTS = 17
        # Pose frames per clip; for epam_net a multiple of DATA.NUM_FRAMES (the RGB frames are
        # every (POSE_FRAMES / NUM_FRAMES)-th pose frame).
        cfg.EPAM.POSE_FRAMES = 48
        # Heatmap height and width.
        cfg.EPAM.HEATMAP_SIZE = 56

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Positive sizes, non-empty block lists, shift divisors >= 2."""
        e = cfg.EPAM
        for key in ("BASE_CHANNELS", "NUM_JOINTS", "POSE_FRAMES", "HEATMAP_SIZE"):
            if e[key] < 1:
                raise ConfigError(f"EPAM.{key} must be >= 1, got {e[key]}")
        if e.BOTTLENECK_FACTOR <= 0 or not 0 < e.SE_RATIO <= 1:
            raise ConfigError(f"EPAM.BOTTLENECK_FACTOR must be > 0 and EPAM.SE_RATIO in (0, 1], "
                              f"got {e.BOTTLENECK_FACTOR} and {e.SE_RATIO}")
        for key in ("RGB_STAGE_BLOCKS", "POSE_STAGE_BLOCKS"):
            if not e[key] or min(e[key]) < 1:
                raise ConfigError(f"EPAM.{key} must list >= 1 blocks per stage, got {e[key]}")
        for key in ("RGB_SHIFT_DIV", "POSE_SHIFT_DIV"):
            if e[key] < 2:
                raise ConfigError(f"EPAM.{key} must be >= 2 (1/DIV of the channels shift each "
                                  f"way), got {e[key]}")

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> None:
        """Width 4, 3 joints, 1-2 blocks per stage, 2 RGB frames of 32 x 32, 6 heatmaps of
        8 x 8 (both streams end at 1 x 1)."""
        cfg.EPAM.BASE_CHANNELS, cfg.EPAM.NUM_JOINTS = 4, 3
        cfg.EPAM.RGB_STAGE_BLOCKS, cfg.EPAM.POSE_STAGE_BLOCKS = [1, 2, 1, 1], [2, 1, 1]
        cfg.EPAM.POSE_FRAMES, cfg.EPAM.HEATMAP_SIZE = 6, 8
        cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE = 2, 32


class SingleStream(XShiftBackbone):
    """One X-ShiftNet stream alone: map (B, C, T, H, W), keys under the release's
    ``backbone.`` (``backbone.conv1_s.*``, ``backbone.layer1.*``, ..., ``backbone.conv5.*``)."""

    LAYOUT = "map3d"
    DEFAULT_NECK = "global_avgpool"
    state_prefix = "backbone."
    STREAM = "rgb"

    def __init__(self, cfg: CfgNode) -> None:
        frames = cfg.DATA.NUM_FRAMES if self.STREAM == "rgb" else cfg.EPAM.POSE_FRAMES
        super().__init__(self.feature_dim(cfg), frames)
        add_stream_layers(self, stream_spec(cfg, self.STREAM), get_norm(cfg))

    @classmethod
    def feature_dim(cls, cfg: CfgNode) -> int:
        """conv5 width (432 for RGB, 216 for pose at the published sizes)."""
        return stream_dim(cfg, cls.STREAM)

    def forward_features(self, inputs: Inputs) -> torch.Tensor:
        return run_stream(self, self.single_input(inputs, f"xshift_{self.STREAM}"))

    def gradcam_layer(self) -> nn.Module:
        """The last conv (``conv5``)."""
        return self.conv5


@register(BACKBONE_REGISTRY, "xshift_rgb")
class XShiftRGB(SingleStream):
    """The RGB X-ShiftNet alone (X3D-M sizes, 1/8 shift): clips (B, 3, T, H, W)."""

    STREAM = "rgb"


@register(BACKBONE_REGISTRY, "xshift_pose")
class XShiftPose(SingleStream):
    """The pose X-ShiftNet alone (stages 5/11/7, 1/4 shift): heatmaps (B, J, T, S, S)."""

    STREAM = "pose"

    def example_inputs(self, cfg: CfgNode, batch: int = 1) -> List[torch.Tensor]:
        """One zero heatmap volume at the configured size."""
        return [heatmap_inputs(cfg, batch)]


@register(BACKBONE_REGISTRY, "epam_net")
class EPAMNet(XShiftBackbone):
    """The two-stream EPAM-Net body: ``[rgb, heatmaps]`` -> ``[f_r * (1 + A), f_s]``."""

    LAYOUT = "streams"
    DEFAULT_NECK = "stream_avgpool"
    state_prefix = ""
    # The release lists each stream's backbone, then its classifier, then the attention block.
    KEY_ORDER = ("rgb_backbone.", "rgb_cls_head.", "pose_backbone.", "pose_cls_head.",
                 "attention_module.")

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__(self.feature_dim(cfg), cfg.DATA.NUM_FRAMES)
        norm = get_norm(cfg)
        self.rgb_backbone = XShiftNet(stream_spec(cfg, "rgb"), norm)
        self.pose_backbone = XShiftNet(stream_spec(cfg, "pose"), norm)
        self.attention_module = SpatialTemporalAttention(norm)

    @classmethod
    def feature_dim(cls, cfg: CfgNode) -> int:
        """RGB width + pose width (432 + 216 at the published sizes)."""
        return sum(dim for _, dim in cls.stream_dims(cfg))

    @classmethod
    def stream_dims(cls, cfg: CfgNode) -> List[Tuple[str, int]]:
        """[("rgb", 432), ("pose", 216)] at the published sizes."""
        return [(stream, stream_dim(cfg, stream)) for stream in STREAMS]

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Also: pose frames a multiple of the RGB frames, and both streams' last maps of one
        size (the attention map of the pose stream gates the RGB map)."""
        super().check_config(cfg)
        if cfg.EPAM.POSE_FRAMES % cfg.DATA.NUM_FRAMES:
            raise ConfigError(f"EPAM.POSE_FRAMES ({cfg.EPAM.POSE_FRAMES}) must be a multiple of "
                              f"DATA.NUM_FRAMES ({cfg.DATA.NUM_FRAMES})")
        rgb, pose = stream_map_size(cfg, "rgb"), stream_map_size(cfg, "pose")
        if rgb != pose:
            raise ConfigError(
                f"DATA.TEST_CROP_SIZE {cfg.DATA.TEST_CROP_SIZE} gives {rgb}x{rgb} RGB maps but "
                f"EPAM.HEATMAP_SIZE {cfg.EPAM.HEATMAP_SIZE} gives {pose}x{pose} pose maps; the "
                f"attention needs one size (published: 224 and 56, both 7x7)"
            )

    def forward_features(self, inputs: Inputs) -> List[torch.Tensor]:
        """``[rgb (B, 3, T, H, W), heatmaps (B, J, kT, H', W')]`` -> ``[f_r * (1 + A), f_s]``."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError("epam_net takes the list [rgb clips, pose heatmaps]")
        f_r = self.rgb_backbone(inputs[0])
        f_s = self.pose_backbone(inputs[1])
        attention = self.attention_module(self.pose_at_rgb_frames(f_s, f_r))
        return [f_r + f_r * attention, f_s]

    @staticmethod
    def pose_at_rgb_frames(f_s: torch.Tensor, f_r: torch.Tensor) -> torch.Tensor:
        """The pose features at the RGB frames: steps 0, k, 2k, ... with k = T_pose / T_rgb."""
        t_pose, t_rgb = f_s.shape[2], f_r.shape[2]
        if t_pose % t_rgb or f_s.shape[3:] != f_r.shape[3:]:
            raise ValueError(
                f"pose features {tuple(f_s.shape[2:])} (T, H, W) do not fit RGB features "
                f"{tuple(f_r.shape[2:])}: pose T must be a multiple of RGB T and H, W equal"
            )
        return f_s[:, :, :: t_pose // t_rgb]

    def gradcam_layer(self) -> nn.Module:
        """The RGB stream's last conv."""
        return self.rgb_backbone.conv5

    def example_inputs(self, cfg: CfgNode, batch: int = 1) -> List[torch.Tensor]:
        """Zero RGB clips and heatmap volumes at the test size."""
        return [super().example_inputs(cfg, batch)[0], heatmap_inputs(cfg, batch)]

    def convert_state_dict(
        self, state: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, torch.Tensor], str]:
        """A whole EPAM-Net state dict, or one stream's (the release's MMAction2 stream files:
        ``backbone.*`` + ``cls_head.*``, or ``<stream>_backbone.*`` + ``<stream>_cls_head.*``),
        checked key by key: CheckpointError naming every missing and unexpected key, so a
        stream never stays silently random. Layouts: ``native``, ``epam_rgb_stream``,
        ``epam_pose_stream``."""
        state = self._prefix_stream_file(state)
        present = set(state)
        streams = [s for s in STREAMS
                   if any(k.startswith((f"{s}_backbone.", f"{s}_cls_head.")) for k in present)]
        own = list(self.state_dict())
        if len(streams) == 1 and not any(k.startswith("attention_module.") for k in present):
            stream = streams[0]
            expected = [k for k in own if k.startswith(f"{stream}_backbone.")]
            expected += [f"{stream}_cls_head.{k}" for k in STREAM_HEAD_KEYS]
            layout = f"epam_{stream}_stream"
        else:
            expected, layout = own, "native"
        missing = [k for k in expected if k not in present]
        unexpected = [k for k in state if k not in expected and _claimed(k, layout)]
        if missing or unexpected:
            from m3a.utils.checkpoint import CheckpointError

            raise CheckpointError(
                f"not an EPAM-Net state dict ({layout.replace('_', ' ')} layout): "
                f"{_named(missing, 'missing')}; {_named(unexpected, 'unexpected')}"
            )
        return state, layout

    def _prefix_stream_file(self, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """A release stream file (``backbone.*``, ``cls_head.*``) with ``<stream>_`` prefixes;
        the stream is told by the input channels of ``backbone.conv1_s`` (3: RGB)."""
        if not any(k.startswith(("backbone.", "cls_head.")) for k in state):
            return state
        stem = state.get("backbone.conv1_s.conv.weight")
        channels = {self.rgb_backbone.conv1_s.conv.in_channels: "rgb",
                    self.pose_backbone.conv1_s.conv.in_channels: "pose"}
        if stem is None or stem.dim() != 5 or stem.shape[1] not in channels:
            from m3a.utils.checkpoint import CheckpointError

            found = "is absent" if stem is None else f"has shape {tuple(stem.shape)}"
            raise CheckpointError(
                f"a stream file (backbone.*, cls_head.* keys) whose backbone.conv1_s.conv.weight "
                f"{found}: the model's streams take {sorted(channels)} input channels (RGB, pose)"
            )
        stream = channels[stem.shape[1]]
        return OrderedDict(
            (f"{stream}_{k}" if k.startswith(("backbone.", "cls_head.")) else k, v)
            for k, v in state.items()
        )


def _claimed(key: str, layout: str) -> bool:
    """True when ``key`` must be one of the expected keys: every key of a stream file, and the
    backbone-part keys of a whole state dict (other parts' keys are the loader's to report)."""
    return layout != "native" or key.startswith(("rgb_backbone.", "pose_backbone.",
                                                  "attention_module."))


def _named(keys: List[str], what: str, shown: int = 20) -> str:
    """'N what key(s): a, b, ...' (the first ``shown`` named)."""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} {what} key(s)" + (": " + ", ".join(keys[:shown]) + more if keys else "")


@register(NECK_REGISTRY, "stream_avgpool")
class StreamAvgPool(Neck):
    """Each stream's map averaged over (T, H, W), concatenated in stream order -> (B, sum C)."""

    LAYOUTS = ("streams",)

    def forward(self, x: Sequence[torch.Tensor]) -> torch.Tensor:
        """[(B, C_i, T_i, H_i, W_i), ...] -> (B, sum C_i)."""
        return torch.cat([f.mean(dim=(2, 3, 4)) for f in x], dim=1)
