"""Mixup and CutMix of training batches (``MIXUP`` config section).

A batch is mixed with itself in reverse order (item i with item B-1-i), one ``lam`` per batch:

- mixup: ``x = lam * x + (1 - lam) * x.flip(0)``, lam ~ Beta(ALPHA, ALPHA);
- CutMix: a box of ``x.flip(0)`` is pasted into ``x`` over the last two (spatial) dimensions,
  the same box in every frame and channel; lam ~ Beta(CUTMIX_ALPHA, CUTMIX_ALPHA) sets the box's
  area ``(1 - lam) * H * W``, and after clipping the box to the frame lam is corrected to
  ``1 - box area / (H * W)``.

Targets are mixed with the same lam: multi-hot (B, N) targets of multi-label losses as they are,
class indices of single-label losses (cross_entropy, stream_cross_entropy) as one-hot soft targets.
Inputs may be one tensor ((B, C, T, H, W) video, (B, C, H, W) images) or a list of pathway
tensors: every pathway gets the same lam and pairing; CutMix needs one spatial size (H, W) in
all of them and otherwise raises ConfigError naming the model.

Random draws come from a NumPy generator seeded by (RNG_SEED, epoch, rank) at each epoch
(:meth:`Mixup.set_epoch`), so a resumed run mixes as an uninterrupted one.
"""
import dataclasses
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from m3a.engine.inputs import Inputs

# Separates the mixup generator's seed from the loader's (seed, epoch, index) seeds.
_STREAM = 0x6D6978


@dataclasses.dataclass
class MixInfo:
    """What one call did: ``kind`` none, mixup or cutmix; ``lam`` the weight of the batch's own
    items; ``box`` (top, bottom, left, right) of the pasted region for CutMix."""

    kind: str
    lam: float = 1.0
    box: Optional[Tuple[int, int, int, int]] = None


def _pathways(inputs: Inputs) -> List[torch.Tensor]:
    return list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]


def _like(inputs: Inputs, pathways: List[torch.Tensor]) -> Inputs:
    return pathways if isinstance(inputs, (list, tuple)) else pathways[0]


def mix_inputs(x1: torch.Tensor, x2: torch.Tensor, lam: float) -> torch.Tensor:
    """``lam * x1 + (1 - lam) * x2``."""
    return lam * x1 + (1 - lam) * x2


def paste_box(x1: torch.Tensor, x2: torch.Tensor, box: Tuple[int, int, int, int]) -> torch.Tensor:
    """``x1`` with the region ``box`` = (top, bottom, left, right) of the last two dimensions
    taken from ``x2``."""
    top, bottom, left, right = box
    out = x1.clone()
    out[..., top:bottom, left:right] = x2[..., top:bottom, left:right]
    return out


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> Tuple[int, int, int, int]:
    """A box of area about ``(1 - lam) * height * width`` with the frame's aspect ratio, centred at a
    uniformly drawn pixel and clipped to the frame: (top, bottom, left, right)."""
    cut = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(round(height * cut)), int(round(width * cut))
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([cy - cut_h // 2, cy - cut_h // 2 + cut_h], 0, height)
    left, right = np.clip([cx - cut_w // 2, cx - cut_w // 2 + cut_w], 0, width)
    return int(top), int(bottom), int(left), int(right)


def soft_targets(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Float (B, N) targets: one-hot for class indices (B,), multi-hot ones as they are."""
    if targets.dim() == 1:
        return F.one_hot(targets.long(), num_classes).float()
    return targets.float()


class Mixup:
    """Mixes training batches as the ``MIXUP`` section says (see the module docstring)."""

    def __init__(self, cfg: CfgNode, rank: int = 0):
        self.cfg = cfg
        self.rank = rank
        self.rng = np.random.default_rng(0)

    def set_epoch(self, epoch: int) -> None:
        """Reseed the generator from (RNG_SEED, epoch, rank)."""
        from m3a.datasets.loader import derived_seed

        self.rng = np.random.default_rng(derived_seed(self.cfg.RNG_SEED, epoch, self.rank, _STREAM))

    def _kind(self) -> str:
        m = self.cfg.MIXUP
        if self.rng.random() >= m.PROB:
            return "none"
        if m.ALPHA > 0 and m.CUTMIX_ALPHA > 0:
            return "cutmix" if self.rng.random() < m.SWITCH_PROB else "mixup"
        return "mixup" if m.ALPHA > 0 else "cutmix"

    def __call__(self, inputs: Inputs, targets: torch.Tensor) -> Tuple[Inputs, torch.Tensor, MixInfo]:
        """Mixed ``inputs`` and soft ``targets`` (B, N) of one batch, and what was done."""
        targets = soft_targets(targets, self.cfg.MODEL.NUM_CLASSES)
        kind = self._kind()
        if kind == "none":
            return inputs, targets, MixInfo("none")
        pathways = _pathways(inputs)
        if kind == "mixup":
            lam = float(self.rng.beta(self.cfg.MIXUP.ALPHA, self.cfg.MIXUP.ALPHA))
            mixed = [mix_inputs(p, p.flip(0), lam) for p in pathways]
            info = MixInfo("mixup", lam)
        else:
            height, width = self._spatial_size(pathways)
            lam = float(self.rng.beta(self.cfg.MIXUP.CUTMIX_ALPHA, self.cfg.MIXUP.CUTMIX_ALPHA))
            box = cutmix_box(height, width, lam, self.rng)
            lam = 1.0 - (box[1] - box[0]) * (box[3] - box[2]) / float(height * width)
            mixed = [paste_box(p, p.flip(0), box) for p in pathways]
            info = MixInfo("cutmix", lam, box)
        return _like(inputs, mixed), mix_inputs(targets, targets.flip(0), info.lam), info

    def _spatial_size(self, pathways: List[torch.Tensor]) -> Tuple[int, int]:
        sizes = {tuple(p.shape[-2:]) for p in pathways}
        if len(sizes) != 1 or min(p.dim() for p in pathways) < 3:
            from m3a.config.errors import ConfigError

            shown = ", ".join(str(tuple(p.shape[1:])) for p in pathways)
            raise ConfigError(
                f"MIXUP.CUTMIX_ALPHA {self.cfg.MIXUP.CUTMIX_ALPHA}: CutMix pastes one box into every input "
                f"pathway, but model {self.cfg.MODEL.MODEL_NAME} takes pathways of shapes {shown} (different "
                "frame sizes); set MIXUP.CUTMIX_ALPHA 0 (mixup alone mixes several pathways)"
            )
        return sizes.pop()


def build_mixup(cfg: CfgNode, model: torch.nn.Module, rank: int = 0) -> Optional[Mixup]:
    """A :class:`Mixup` when ``MIXUP.ENABLE``, else None. ConfigError when the model trains with
    its own loss (e.g. M2CLIP's multi-task head, whose text contrast needs hard labels)."""
    if not cfg.MIXUP.ENABLE:
        return None
    head = getattr(getattr(model, "module", model), "head", None)
    if getattr(head, "training_loss", None) is not None:
        from m3a.config.errors import ConfigError

        raise ConfigError(
            f"MIXUP.ENABLE True: model {cfg.MODEL.MODEL_NAME} trains with the {type(head).__name__}'s own "
            "multi-task loss, which needs unmixed labels; set MIXUP.ENABLE False"
        )
    return Mixup(cfg, rank)
