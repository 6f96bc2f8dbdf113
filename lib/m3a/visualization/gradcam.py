"""Multi-label Grad-CAM over video clips: one heat-map per chosen class on the last feature map.

For class c: the gradient of its pre-activation score w.r.t. the last backbone feature map A
(C, T', H', W'; per-frame maps of a 2D backbone are stacked along time) is averaged over (T', H', W') into channel weights w; the map ReLU(sum_k w_k A_k)
is upsampled (trilinear) over time and space to the clip (T, H, W) and scaled to [0, 1].
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

from m3a.utils.file_io import atomic_path  # noqa: E402
from m3a.utils.video_writer import write_h264  # noqa: E402


def _pre_activation(scores: torch.Tensor, head_act: str) -> torch.Tensor:
    """Undo the eval-time activation so gradients do not vanish on saturated scores."""
    scores = scores.clamp(1e-7, 1 - 1e-7) if head_act == "sigmoid" else scores.clamp_min(1e-12)
    return torch.logit(scores) if head_act == "sigmoid" else torch.log(scores)


class GradCAM:
    """Grad-CAM of a video model whose last backbone feature map is the output of ``target_layer``
    (default ``model.gradcam_layer()``, the module its backbone declares)."""

    def __init__(self, model: nn.Module, target_layer: Optional[nn.Module] = None, head_act: str = "sigmoid") -> None:
        self.model = model
        self.layer = target_layer if target_layer is not None else model.gradcam_layer()
        self.head_act = head_act

    def __call__(self, clip: torch.Tensor, classes: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Heat-maps (K, T, H, W) in [0, 1] of one clip (1, 3, T, H, W) and the classes' scores (K,)."""
        if clip.dim() != 5 or clip.shape[0] != 1:
            raise ValueError(f"expected one clip (1, 3, T, H, W), got {tuple(clip.shape)}")
        captured: List[torch.Tensor] = []
        handle = self.layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
        self.model.eval()
        try:
            with torch.enable_grad():
                scores = self.model(clip)[0]
                fmap = captured[-1]
                targets = _pre_activation(scores[list(classes)], self.head_act)
                maps = []
                for k in range(len(classes)):
                    (grad,) = torch.autograd.grad(targets[k], fmap, retain_graph=k + 1 < len(classes))
                    grad_map, feature_map = self._as_map3d(grad), self._as_map3d(fmap)
                    weights = grad_map[0].mean(dim=(1, 2, 3))
                    maps.append(F.relu((weights[:, None, None, None] * feature_map[0]).sum(0)).detach())
        finally:
            handle.remove()
        cams = F.interpolate(torch.stack(maps)[:, None], size=clip.shape[2:], mode="trilinear", align_corners=False)
        return normalize_maps(cams[:, 0]), scores[list(classes)].detach()


    def _as_map3d(self, fmap: torch.Tensor) -> torch.Tensor:
        """The feature map as (1, C, T', H', W'): per-frame maps (T, C, H', W') of a backbone
        with the ``frames2d`` layout are stacked along time; 3D maps are returned as they are."""
        backbone = getattr(self.model, "backbone", None)
        if getattr(backbone, "LAYOUT", "map3d") != "frames2d":
            return fmap
        t, c, h, w = fmap.shape
        return fmap.reshape(1, t, c, h, w).transpose(1, 2)


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of (K, ...) to [0, 1] by its own min and max (an all-equal map becomes 0)."""
    flat = maps.reshape(maps.shape[0], -1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    span = (high - low).clamp_min(1e-12)
    return ((flat - low) / span * (high > low)).reshape(maps.shape)


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


def save_gradcam_grid(frames: np.ndarray, overlays: Dict[str, np.ndarray], out_png: str, title: str = "") -> None:
    """PNG grid: the clip's frames in the first row, one row of overlays per class below."""
    rows = [("input", frames)] + list(overlays.items())
    num_t = frames.shape[0]
    fig, axes = plt.subplots(len(rows), num_t, figsize=(1.6 * num_t, 1.7 * len(rows)), dpi=100, squeeze=False)
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
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def side_by_side(frames: np.ndarray, overlays: Sequence[np.ndarray]) -> np.ndarray:
    """Frames and overlays placed left to right: (T, H, W * (1 + K), 3)."""
    return np.concatenate([frames, *overlays], axis=2)


def write_mp4(frames: np.ndarray, out_mp4: str, fps: float = 4.0) -> None:
    """Encode frames (T, H, W, 3) uint8 as an H.264 mp4 (odd sizes padded by one pixel)."""
    t, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    height, width = frames.shape[1:3]
    write_h264(out_mp4, frames, Fraction(fps).limit_denominator(1000), width, height)
