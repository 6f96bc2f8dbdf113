"""RandAugment on uint8 clips (T, H, W, 3), one draw per clip applied to every frame.

The policy string follows timm's spelling, ``rand-m7-n4-mstd0.5-inc1`` (DATA.RAND_AUGMENT):
``n`` ops drawn uniformly with replacement from the op list (``inc1``: the 15 "increasing"
ops, whose strength grows with the magnitude), each applied with probability ``p`` (0.5) at a
magnitude drawn from N(m, mstd) and clipped to [0, 10]. Op arguments (level ``l`` in [0, 10],
a random sign where marked +-):

=====================  ====================================================================
AutoContrast           every channel stretched from [lo, hi] to [0, 255]: ``int(x s - lo s)``, s = 255 / (hi - lo)
Equalize               histogram equalisation per channel (PIL's rule)
Invert                 ``255 - x``
Rotate                 +-30 l / 10 degrees about the centre
Posterize(Increasing)  keep the top ``int(4 l / 10)`` (increasing: ``4 - int(4 l / 10)``) bits (0: black)
Solarize(Increasing)   values >= ``int(256 l / 10)`` (increasing: ``256 - int(256 l / 10)``) inverted
SolarizeAdd            ``min(x + int(110 l / 10), 255)`` for values < 128
Color/Contrast/        blend with grey / the mean grey / black / a 3x3 smoothed frame by
Brightness/Sharpness   ``1.8 l / 10 + 0.1`` (increasing: ``1 +- 0.9 l / 10``)
ShearX, ShearY         shear +-0.3 l / 10
TranslateXRel/YRel     +-0.45 l / 10 of the width / height
=====================  ====================================================================

Every op reproduces PIL's (which timm's RandAugment calls per frame): look-up tables and
statistics as ImageOps / ImageEnhance compute them (statistics per frame and channel), blends
truncated as PIL's, geometric ops as PIL's affine transform with bilinear sampling (source
point of output pixel centre, edge pixels clamped, points outside the frame filled with grey
128). The release draws bilinear or bicubic sampling at random per frame; here it is bilinear.
The clip's frames all get the same ops and arguments; statistics (AutoContrast, Equalize,
Contrast) are each frame's own, as when the op runs on every frame.

The ops work on uint8 planes (T, C, H, W) (channel planes contiguous, so per-plane tables and
blends broadcast over whole planes); :class:`RandAugment` takes and returns clips (T, H, W, C)
as decoded.
"""
import functools
import math
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

MAX_LEVEL = 10.0
FILL = 128
TRANSLATE_PCT = 0.45

OPS_INCREASING = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
    "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
    "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
)
OPS_PLAIN = (
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
    "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
)


# ----------------------------------------------------------------------------------------------
# Look-up-table ops (PIL's ImageOps)
# ----------------------------------------------------------------------------------------------
def _plane_offsets(planes: torch.Tensor) -> torch.Tensor:
    """int32 (T, C, 1, 1): 256 x the index of every (frame, channel) plane."""
    steps, channels = planes.shape[:2]
    return (torch.arange(steps * channels, dtype=torch.int32) * 256).view(steps, channels, 1, 1)


def apply_lut(planes: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Map uint8 planes (T, C, H, W) through ``lut``: (256,) for all, or (T, C, 256) per frame
    and channel (int32 indices: index_select is several times faster than int64 indexing)."""
    table = lut.to(torch.uint8).reshape(-1)
    index = planes.int() if lut.dim() == 1 else planes.int() + _plane_offsets(planes)
    return table.index_select(0, index.view(-1)).view(planes.shape)


def histograms(planes: torch.Tensor) -> torch.Tensor:
    """Histograms of every (frame, channel) plane of uint8 planes (T, C, H, W): (T, C, 256)."""
    steps, channels = planes.shape[:2]
    keys = (planes.int() + _plane_offsets(planes)).view(-1)
    return torch.bincount(keys, minlength=steps * channels * 256).view(steps, channels, 256)


def invert(planes: torch.Tensor) -> torch.Tensor:
    """``255 - x``."""
    return 255 - planes


def posterize(planes: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the top ``bits`` bits (8 or more: unchanged; 0: black)."""
    if bits >= 8:
        return planes
    return planes & (~(2 ** (8 - max(bits, 0)) - 1) & 0xFF)


def solarize(planes: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert the values >= ``threshold`` (256 or more: unchanged)."""
    lut = torch.arange(256)
    return apply_lut(planes, torch.where(lut < threshold, lut, 255 - lut))


def solarize_add(planes: torch.Tensor, add: int, threshold: int = 128) -> torch.Tensor:
    """Add ``add`` (capped at 255) to the values below ``threshold``."""
    lut = torch.arange(256)
    return apply_lut(planes, torch.where(lut < threshold, (lut + add).clamp(max=255), lut))


def auto_contrast(planes: torch.Tensor) -> torch.Tensor:
    """Stretch every frame's every channel from [lo, hi] to [0, 255], truncating as PIL does
    (a constant channel stays as it is)."""
    present = histograms(planes) > 0  # (T, C, 256)
    levels = torch.arange(256)
    lo = torch.where(present, levels, 255).amin(-1).double()
    hi = torch.where(present, levels, 0).amax(-1).double()
    span = hi - lo
    # A true division (``255.0 / tensor`` multiplies by a reciprocal, which rounds differently).
    scale = torch.where(span > 0, torch.full_like(span, 255.0).div(span.clamp(min=1)), torch.ones_like(span))
    offset = torch.where(span > 0, -lo * scale, torch.zeros_like(lo))
    lut = (levels.double() * scale.unsqueeze(-1) + offset.unsqueeze(-1)).trunc().clamp(0, 255)
    return apply_lut(planes, lut)


def equalize(planes: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of every frame's every channel by PIL's rule: step = (pixels -
    count of the top value) // 255, value v -> (step // 2 + pixels below v) // step (unchanged
    when the channel has one value or step is 0)."""
    hist = histograms(planes)  # (T, C, 256)
    last = torch.where(hist > 0, torch.arange(256), -1).amax(-1, keepdim=True)
    top_count = hist.gather(-1, last)
    step = (hist.sum(-1, keepdim=True) - top_count) // 255
    below = hist.cumsum(-1) - hist
    lut = (step // 2 + below) // step.clamp(min=1)
    identity = torch.arange(256).expand_as(lut)
    lut = torch.where(step > 0, lut.clamp(max=255), identity)
    return apply_lut(planes, lut)


# ----------------------------------------------------------------------------------------------
# Enhancements (PIL's ImageEnhance: a blend with a degenerate frame)
# ----------------------------------------------------------------------------------------------
def blend(degenerate: torch.Tensor, planes: torch.Tensor, factor: float) -> torch.Tensor:
    """``degenerate + factor * (planes - degenerate)`` in float32, clipped to [0, 255] and
    truncated, as PIL's Image.blend (``degenerate`` broadcasts over ``planes``)."""
    low = degenerate.float()
    out = planes.float().sub_(low).mul_(torch.tensor(factor, dtype=torch.float32)).add_(low)
    return out.clamp_(0, 255).to(torch.uint8)


def grey(planes: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L: ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``, int32 (T, 1, H, W)."""
    rgb = planes.int()
    return (rgb[:, 0:1] * 19595 + rgb[:, 1:2] * 38470 + rgb[:, 2:3] * 7471 + 0x8000) >> 16


def color(planes: torch.Tensor, factor: float) -> torch.Tensor:
    """Saturation: blend with the frame's grey version."""
    return blend(grey(planes), planes, factor)


def contrast(planes: torch.Tensor, factor: float) -> torch.Tensor:
    """Contrast: blend with a uniform grey at the frame's mean grey level (rounded)."""
    levels = grey(planes)
    total = levels.sum((1, 2, 3), dtype=torch.int64).double()  # exact, as PIL's histogram sum
    mean = (total / (levels.shape[2] * levels.shape[3]) + 0.5).floor()
    return blend(mean.view(-1, 1, 1, 1), planes, factor)


def brightness(planes: torch.Tensor, factor: float) -> torch.Tensor:
    """Brightness: blend with black."""
    return blend(torch.zeros((), dtype=torch.uint8), planes, factor)


def smooth(planes: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter ([[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13, rounded) inside the frame;
    the one-pixel border keeps its values. With S the weighted (integer) sum, S / 13 is never
    within 1/26 of a rounding boundary, so float32 ``floor((2 S + 13) / 26)`` is PIL's value."""
    p = planes.float()
    rows = p[..., :-2] + p[..., 1:-1] + p[..., 2:]
    total = rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:] + 4 * p[:, :, 1:-1, 1:-1]
    out = planes.clone()
    out[:, :, 1:-1, 1:-1] = total.mul_(2).add_(13).div_(26).floor_().to(torch.uint8)
    return out


def sharpness(planes: torch.Tensor, factor: float) -> torch.Tensor:
    """Sharpness: blend with the smoothed frame."""
    if min(planes.shape[2:]) < 3:
        return planes
    return blend(smooth(planes), planes, factor)


# ----------------------------------------------------------------------------------------------
# Geometric ops (PIL's affine transform, bilinear)
# ----------------------------------------------------------------------------------------------
def affine(planes: torch.Tensor, matrix: Tuple[float, ...], fill: int = FILL) -> torch.Tensor:
    """PIL's ``transform(size, AFFINE, matrix, BILINEAR, fillcolor=fill)`` on every frame: output
    pixel (x, y) samples the source at ``(a (x + .5) + b (y + .5) + c, d (x + .5) + e (y + .5) + f)``
    bilinearly between pixel centres (edges clamped) in float64, truncated; points outside the
    frame get ``fill``. The sampling positions and weights are computed once for all frames;
    the frames are interpolated one at a time (a frame's float64 planes stay in cache)."""
    steps, channels, height, width = planes.shape
    a, b, c, d, e, f = (float(v) for v in matrix)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                            torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    sx, sy = (a * xs + b * ys + c).view(-1), (d * xs + e * ys + f).view(-1)
    outside = ~((sx >= 0) & (sx < width) & (sy >= 0) & (sy < height))
    sx, sy = sx - 0.5, sy - 0.5
    x0, y0 = sx.floor(), sy.floor()
    dx, dy = sx - x0, sy - y0  # float64, as PIL
    x0, y0 = x0.long(), y0.long()
    xa, xb = x0.clamp(0, width - 1), (x0 + 1).clamp(0, width - 1)
    ya, yb = y0.clamp(0, height - 1) * width, (y0 + 1).clamp(0, height - 1) * width
    corners = torch.cat([ya + xa, ya + xb, yb + xa, yb + xb])
    # One flat int32 index into a frame's C planes (a 1-D int32 index_select is the fast one).
    index = (corners + (torch.arange(channels) * (height * width)).view(-1, 1)).view(-1).int()
    flat = planes.reshape(steps, channels * height * width)
    out = torch.empty_like(flat).view(steps, channels, height * width)
    for step in range(steps):
        p = flat[step].index_select(0, index).double().view(channels, 4, -1)
        top = p[:, 0].add_((p[:, 1] - p[:, 0]).mul_(dx))
        bottom = p[:, 2].add_((p[:, 3] - p[:, 2]).mul_(dx))
        # Values lie in [0, 255]: the cast truncates, as PIL's (int) cast.
        out[step] = top.add_((bottom - top).mul_(dy)).to(torch.uint8).masked_fill_(outside, fill)
    return out.view(steps, channels, height, width)


def rotate_matrix(height: int, width: int, degrees: float) -> Tuple[float, ...]:
    """PIL's Image.rotate matrix (output -> source) for ``degrees`` anticlockwise about the centre."""
    angle = -math.radians(degrees)
    cos, sin = round(math.cos(angle), 15), round(math.sin(angle), 15)
    cx, cy = width / 2.0, height / 2.0
    return (cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy)


def rotate(planes: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate ``degrees`` anticlockwise about the frame centre (PIL's Image.rotate)."""
    if degrees % 360 == 0:
        return planes
    return affine(planes, rotate_matrix(planes.shape[2], planes.shape[3], degrees))


def shear_x(planes: torch.Tensor, factor: float) -> torch.Tensor:
    """Source x = x + factor * y."""
    return affine(planes, (1, factor, 0, 0, 1, 0))


def shear_y(planes: torch.Tensor, factor: float) -> torch.Tensor:
    """Source y = y + factor * x."""
    return affine(planes, (1, 0, 0, factor, 1, 0))


def translate_x_rel(planes: torch.Tensor, fraction: float) -> torch.Tensor:
    """Source x = x + fraction * width (the content moves left for a positive fraction)."""
    return affine(planes, (1, 0, fraction * planes.shape[3], 0, 1, 0))


def translate_y_rel(planes: torch.Tensor, fraction: float) -> torch.Tensor:
    """Source y = y + fraction * height."""
    return affine(planes, (1, 0, 0, 0, 1, fraction * planes.shape[2]))


# ----------------------------------------------------------------------------------------------
# Levels -> arguments, and the policy
# ----------------------------------------------------------------------------------------------
def _signed(value: float, generator: Optional[torch.Generator]) -> float:
    return -value if float(torch.rand((), generator=generator)) > 0.5 else value


def _args(name: str, level: float, generator: Optional[torch.Generator]) -> tuple:
    """The op's arguments at ``level`` (0..10), with a random sign where the op has one."""
    frac = level / MAX_LEVEL
    fixed: Dict[str, Callable[[], tuple]] = {
        "Posterize": lambda: (int(frac * 4),),
        "PosterizeIncreasing": lambda: (4 - int(frac * 4),),
        "Solarize": lambda: (int(frac * 256),),
        "SolarizeIncreasing": lambda: (256 - int(frac * 256),),
        "SolarizeAdd": lambda: (int(frac * 110),),
    }
    if name in fixed:
        return fixed[name]()
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return (frac * 1.8 + 0.1,)
    if name.endswith("Increasing"):
        return (1.0 + _signed(frac * 0.9, generator),)
    signed = {"Rotate": 30.0, "ShearX": 0.3, "ShearY": 0.3,
              "TranslateXRel": TRANSLATE_PCT, "TranslateYRel": TRANSLATE_PCT}
    if name in signed:
        return (_signed(frac * signed[name], generator),)
    return ()


OP_FUNCTIONS: Dict[str, Callable[..., torch.Tensor]] = {
    "AutoContrast": auto_contrast, "Equalize": equalize, "Invert": invert, "Rotate": rotate,
    "Posterize": posterize, "PosterizeIncreasing": posterize, "Solarize": solarize,
    "SolarizeIncreasing": solarize, "SolarizeAdd": solarize_add, "Color": color,
    "ColorIncreasing": color, "Contrast": contrast, "ContrastIncreasing": contrast,
    "Brightness": brightness, "BrightnessIncreasing": brightness, "Sharpness": sharpness,
    "SharpnessIncreasing": sharpness, "ShearX": shear_x, "ShearY": shear_y,
    "TranslateXRel": translate_x_rel, "TranslateYRel": translate_y_rel,
}


@dataclass(frozen=True)
class RandAugment:
    """``num_ops`` ops from ``ops``, each with probability ``prob`` at magnitude N(m, m_std)."""

    magnitude: float
    num_ops: int = 2
    magnitude_std: float = 0.0
    prob: float = 0.5
    ops: Tuple[str, ...] = OPS_PLAIN

    def draw(self, generator: Optional[torch.Generator] = None) -> List[Tuple[str, tuple]]:
        """The ops (name, arguments) one clip gets, in order (skipped ops left out)."""
        chosen = torch.randint(len(self.ops), (self.num_ops,), generator=generator).tolist()
        drawn = []
        for index in chosen:
            if float(torch.rand((), generator=generator)) > self.prob:
                continue
            level = self.magnitude
            if self.magnitude_std > 0:
                level += self.magnitude_std * float(torch.randn((), generator=generator))
            level = min(MAX_LEVEL, max(0.0, level))
            drawn.append((self.ops[index], _args(self.ops[index], level, generator)))
        return drawn

    def __call__(self, frames: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Augment uint8 frames (T, H, W, 3): one draw, applied to every frame."""
        ops = self.draw(generator)
        if not ops:
            return frames
        planes = frames.permute(0, 3, 1, 2).contiguous()
        for name, args in ops:
            planes = OP_FUNCTIONS[name](planes, *args)
        return planes.permute(0, 2, 3, 1).contiguous()


_POLICY = re.compile(r"^rand((?:-(?:m|n|mstd|inc|p)[0-9.]+)*)$")


@functools.lru_cache(maxsize=8)
def parse_policy(text: str) -> RandAugment:
    """Parse a timm-style policy ``rand-m<magnitude>[-n<ops>][-mstd<std>][-inc<0|1>][-p<prob>]``
    (defaults n 2, mstd 0, inc 0, p 0.5); ValueError naming the text otherwise."""
    match = _POLICY.match(text)
    if not match:
        raise ValueError(f"RandAugment policy must look like 'rand-m7-n4-mstd0.5-inc1', got '{text}'")
    fields = dict(re.findall(r"-(mstd|inc|m|n|p)([0-9.]+)", match.group(1)))
    try:
        magnitude = float(fields["m"])
        policy = RandAugment(
            magnitude=magnitude,
            num_ops=int(fields.get("n", 2)),
            magnitude_std=float(fields.get("mstd", 0.0)),
            prob=float(fields.get("p", 0.5)),
            ops=OPS_INCREASING if int(fields.get("inc", 0)) else OPS_PLAIN,
        )
    except (KeyError, ValueError):
        raise ValueError(
            f"RandAugment policy '{text}' needs a magnitude m and numbers after m, n, mstd, inc, p"
        ) from None
    if not 0 <= policy.magnitude <= MAX_LEVEL or policy.num_ops < 1 or not 0 <= policy.prob <= 1:
        raise ValueError(f"RandAugment policy '{text}': m must be in [0, 10], n >= 1 and p in [0, 1]")
    return policy
