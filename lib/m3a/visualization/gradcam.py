"""Multi-label Grad-CAM over video clips: one heat-map per chosen class on a backbone feature map.

For class c: the gradient of its pre-activation score w.r.t. a backbone feature map A
(C, T', H', W') is averaged over (T', H', W') into channel weights w; the map ReLU(sum_k w_k A_k)
is upsampled (trilinear) over time and space to the clip (T, H, W). Per-frame maps
(B * T, C, H', W') of a backbone with the ``frames2d`` layout (a 2D CNN on the frames, e.g.
ACTION-Net) are stacked along time first, so T' = T.

Time: the last feature map of the video ResNets has T' = T / 8 steps, one step for the usual
8-frame clips, so a map taken there is the same in every frame. By default the explained layer
is therefore the deepest stage of the backbone whose output keeps at least ``min_steps`` (2)
temporal steps (``layer3`` of an 8-frame R(2+1)D, T' = 2), and the maps vary over the clip
where its features do; the backbone's declared ``gradcam_layer()`` is used when it keeps enough
steps or when no stage does.

Scale: the maps of one call are divided by their common maximum, so they are comparable across
the classes shown: a class with weak evidence stays dark instead of being stretched to a full
blob; a class without positive evidence anywhere has an empty (all-zero) map.
"""
import textwrap
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from m3a.utils.file_io import atomic_path  # noqa: E402
from m3a.utils.video_writer import write_h264  # noqa: E402

# A map whose peak is below this fraction of the largest map shown counts as empty.
EMPTY_FRACTION = 1e-6


def _pre_activation(scores: torch.Tensor, head_act: str) -> torch.Tensor:
    """Undo the eval-time activation so gradients do not vanish on saturated scores."""
    scores = scores.clamp(1e-7, 1 - 1e-7) if head_act == "sigmoid" else scores.clamp_min(1e-12)
    return torch.logit(scores) if head_act == "sigmoid" else torch.log(scores)


class GradCAM:
    """Grad-CAM of a video model. ``target_layer`` fixes the explained module; by default it is
    the deepest backbone stage whose output has at least ``min_steps`` temporal steps (see the
    module docstring). After a call, ``layer_name`` and ``feature_shape`` (C, T', H', W') say
    which feature map was explained."""

    def __init__(self, model: nn.Module, target_layer: Optional[nn.Module] = None, head_act: str = "sigmoid",
                 min_steps: int = 2) -> None:
        self.model = model
        self.target_layer = target_layer
        self.head_act = head_act
        self.min_steps = min_steps
        self.layer_name = ""
        self.feature_shape: Tuple[int, ...] = ()

    def _candidates(self) -> List[Tuple[str, nn.Module]]:
        """Modules whose outputs are recorded: the target layer, or the backbone's top-level
        modules in order (stem parts, stages) and the declared ``gradcam_layer()``."""
        if self.target_layer is not None:
            return [("target_layer", self.target_layer)]
        declared = self.model.gradcam_layer()
        backbone = getattr(self.model, "backbone", None)
        stages = [(f"backbone.{n}", m) for n, m in backbone.named_children()] if backbone is not None else []
        return stages if any(m is declared for _n, m in stages) else stages + [("gradcam_layer", declared)]

    def _choose(self, outputs: List[Tuple[str, nn.Module, torch.Tensor]], clip_steps: int):
        """The explained (name, feature map): the target or declared layer when it keeps
        ``min_steps`` temporal steps, else the deepest (B, C, T', H', W') output that does."""
        maps = [(n, m, o) for n, m, o in outputs
                if isinstance(o, torch.Tensor) and self._as_map3d(o).dim() == 5]
        if not maps:
            raise ValueError("Grad-CAM needs a backbone feature map (B, C, T, H, W) (layout map3d or frames2d)")
        wanted = self.target_layer if self.target_layer is not None else self.model.gradcam_layer()
        name, _m, last = next((x for x in reversed(maps) if x[1] is wanted), maps[-1])
        steps = min(self.min_steps, clip_steps)
        if self.target_layer is not None or self._as_map3d(last).shape[2] >= steps:
            return name, last
        deeper = [(n, o) for n, _m, o in maps if self._as_map3d(o).shape[2] >= steps]
        return deeper[-1] if deeper else (name, last)

    def _as_map3d(self, fmap: torch.Tensor) -> torch.Tensor:
        """A feature map as (B, C, T', H', W'): per-frame maps (B * T, C, H', W') of a ``frames2d``
        backbone are stacked along time; other outputs are returned as they are."""
        backbone = getattr(self.model, "backbone", None)
        if getattr(backbone, "LAYOUT", "map3d") != "frames2d" or fmap.dim() != 4:
            return fmap
        t = backbone.num_frames
        return fmap.reshape(fmap.shape[0] // t, t, *fmap.shape[1:]).transpose(1, 2)

    def __call__(self, clip: torch.Tensor, classes: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Heat-maps (K, T, H, W) in [0, 1] of one clip (1, 3, T, H, W), scaled by their common
        maximum, and the classes' scores (K,)."""
        if clip.dim() != 5 or clip.shape[0] != 1:
            raise ValueError(f"expected one clip (1, 3, T, H, W), got {tuple(clip.shape)}")
        outputs: List[Tuple[str, nn.Module, torch.Tensor]] = []
        handles = [module.register_forward_hook(lambda m, _i, out, n=name: outputs.append((n, m, out)))
                   for name, module in self._candidates()]
        self.model.eval()
        try:
            with torch.enable_grad():
                scores = self.model(clip)[0]
                self.layer_name, fmap = self._choose(outputs, clip.shape[2])
                targets = _pre_activation(scores[list(classes)], self.head_act)
                maps = []
                for k in range(len(classes)):
                    (grad,) = torch.autograd.grad(targets[k], fmap, retain_graph=k + 1 < len(classes))
                    weights = self._as_map3d(grad)[0].mean(dim=(1, 2, 3))
                    feature_map = self._as_map3d(fmap)[0]
                    maps.append(F.relu((weights[:, None, None, None] * feature_map).sum(0)).detach())
        finally:
            for handle in handles:
                handle.remove()
        self.feature_shape = tuple(self._as_map3d(fmap).shape[1:])
        cams = F.interpolate(torch.stack(maps)[:, None], size=clip.shape[2:], mode="trilinear", align_corners=False)
        return normalize_maps(cams[:, 0]), scores[list(classes)].detach()


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale non-negative maps (K, ...) by their common maximum to [0, 1]; all-zero maps stay 0."""
    maps = maps.clamp_min(0)
    peak = maps.max() if maps.numel() else maps.new_zeros(())
    return maps / peak if peak > 0 else torch.zeros_like(maps)


def empty_maps(maps: torch.Tensor) -> List[bool]:
    """Per map of (K, ...) scaled by :func:`normalize_maps`: True when it holds no evidence."""
    return [bool(m.max() <= EMPTY_FRACTION) for m in maps]


def clip_to_uint8(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Undo the normalisation of a clip (3, T, H, W): uint8 frames (T, H, W, 3)."""
    mean_t = torch.tensor(mean, dtype=clip.dtype)[:, None, None, None]
    std_t = torch.tensor(std, dtype=clip.dtype)[:, None, None, None]
    pixels = (clip.detach().cpu() * std_t + mean_t).clamp(0, 1)
    return (pixels.permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)


def overlay(frames: np.ndarray, cam: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heat-map (T, H, W) in [0, 1] over frames (T, H, W, 3) uint8: (T, H, W, 3) uint8."""
    heat = plt.get_cmap(cmap)(np.asarray(cam, dtype=np.float64))[..., :3] * 255.0
    return ((1 - alpha) * frames.astype(np.float64) + alpha * heat).round().clip(0, 255).astype(np.uint8)


def save_gradcam_grid(frames: np.ndarray, overlays: Dict[str, np.ndarray], out_png: str, title: str = "",
                      cmap: str = "jet") -> None:
    """PNG grid: the clip's frames in the first row, one row of overlays per class below, and a
    colour bar of the common scale (1 = the largest value over the classes shown)."""
    rows = [("input", frames)] + list(overlays.items())
    num_t = frames.shape[0]
    fig, axes = plt.subplots(len(rows), num_t, figsize=(1.6 * num_t + 0.9, 1.7 * len(rows)), dpi=100,
                             squeeze=False)
    for r, (label, clip) in enumerate(rows):
        for t in range(num_t):
            ax = axes[r][t]
            ax.imshow(clip[t])
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_ylabel("\n".join(textwrap.wrap(label, 16)), fontsize=7)
            if r == 0:
                ax.set_title(f"t={t}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, (1.6 * num_t) / (1.6 * num_t + 0.9), 1))
    bar_ax = fig.add_axes((1 - 0.55 / (1.6 * num_t + 0.9), 0.1, 0.12 / (1.6 * num_t + 0.9), 0.8))
    mappable = plt.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=cmap)
    bar = fig.colorbar(mappable, cax=bar_ax)
    bar.set_label("Grad-CAM (1 = max over the classes shown)", fontsize=6)
    bar.ax.tick_params(labelsize=6)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def label_panels(panels: Sequence[np.ndarray], labels: Sequence[str], min_width: int = 160) -> np.ndarray:
    """Video frames with a caption above each panel: panels are (T, H, W, 3) uint8 clips, enlarged
    by an integer factor to at least ``min_width`` pixels so the caption fits; returns the panels
    side by side, (T, header + H * f, K * W * f, 3)."""
    t, h, w, _ = panels[0].shape
    factor = max(1, -(-min_width // w))
    font = ImageFont.load_default()
    header = 14
    out = []
    for clip, label in zip(panels, labels):
        big = clip.repeat(factor, axis=1).repeat(factor, axis=2)
        strip = Image.new("RGB", (w * factor, header), (0, 0, 0))
        text = label if len(label) * 6 <= w * factor - 4 else label[: max(1, (w * factor - 4) // 6 - 1)] + "~"
        ImageDraw.Draw(strip).text((2, 1), text, fill=(255, 255, 255), font=font)
        strip_arr = np.broadcast_to(np.asarray(strip), (t, header, w * factor, 3))
        out.append(np.concatenate([strip_arr, big], axis=1))
    return np.concatenate(out, axis=2)


def write_mp4(frames: np.ndarray, out_mp4: str, fps: float = 4.0) -> None:
    """Encode frames (T, H, W, 3) uint8 as an H.264 mp4 (odd sizes padded by one pixel)."""
    t, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    height, width = frames.shape[1:3]
    write_h264(out_mp4, np.ascontiguousarray(frames), Fraction(fps).limit_denominator(1000), width, height)
