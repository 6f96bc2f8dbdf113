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
truncated as PIL's, geometric ops as PIL's affine transform with bilinear or bicubic sampling
(source point of output pixel centre, edge pixels repeated, points outside the frame filled
with grey 128; the float64 arithmetic in PIL's order, so results are identical). The policy's
``interpolation`` picks the sampling (DATA.RAND_AUGMENT_INTERPOLATION): ``bilinear``,
``bicubic`` (what the SlowFast/EVL-derived ``create_random_augment`` passes when its caller
names an interpolation; M2CLIP's video dataset names bicubic) or ``random`` (timm's default
without one: bilinear or bicubic drawn fairly for every frame of every geometric op). The clip's
frames all get the same ops and arguments; statistics (AutoContrast, Equalize, Contrast) are
each frame's own, as when the op runs on every frame.

The ops work on uint8 planes (T, C, H, W) (channel planes contiguous, so per-plane tables and
blends broadcast over whole planes); :class:`RandAugment` takes and returns clips (T, H, W, C)
as decoded.
"""
import functools
import math
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

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
# Geometric ops (PIL's affine transform, bilinear or bicubic)
# ----------------------------------------------------------------------------------------------
INTERPOLATIONS = ("bilinear", "bicubic")
# How a policy samples its geometric ops: one of INTERPOLATIONS, or a fair draw between them for
# every frame of every op ("random", timm's default when no interpolation is given).
POLICY_INTERPOLATIONS = INTERPOLATIONS + ("random",)
GEOMETRIC_OPS = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
# Source pixels each interpolation reads around floor(position - 0.5), per axis, and the type
# the gathered taps are filtered in (bicubic's integer coefficients are signed).
_TAP_OFFSETS = {"bilinear": (0, 1), "bicubic": (-1, 0, 1, 2)}
_TAP_TYPES = {"bilinear": torch.uint8, "bicubic": torch.int32}
# Output pixels interpolated together: a block's float64 work stays in a core's cache.
BLOCK_PIXELS = 8192


@dataclass(frozen=True)
class _Grid:
    """Where an affine transform samples a ``height`` x ``width`` frame, for a run of output
    pixels (flat): the source pixel left of / above the point (``x0``, ``y0``, int32), the
    fractions past it (``dx``, ``dy``, float64) and whether the point lies outside the frame."""

    height: int
    width: int
    x0: torch.Tensor
    y0: torch.Tensor
    dx: torch.Tensor
    dy: torch.Tensor
    outside: torch.Tensor

    def block(self, start: int, stop: int) -> "_Grid":
        """The output pixels ``start:stop``."""
        cut = slice(start, stop)
        return _Grid(self.height, self.width, self.x0[cut], self.y0[cut], self.dx[cut], self.dy[cut],
                     self.outside[cut])

    def taps(self, interpolation: str, channels: int) -> torch.Tensor:
        """int32 flat indices into a frame's ``channels`` planes of every source pixel the
        interpolation reads (edges clamped): (channels, rows, columns, pixels) flattened."""
        offsets = _TAP_OFFSETS[interpolation]
        cols = torch.stack([(self.x0 + k).clamp_(0, self.width - 1) for k in offsets])
        rows = torch.stack([(self.y0 + k).clamp_(0, self.height - 1) for k in offsets]).mul_(self.width)
        pixels = rows.unsqueeze(1) + cols.unsqueeze(0)  # (rows, columns, pixels)
        planes = torch.arange(channels, dtype=torch.int32).mul_(self.height * self.width).view(-1, 1, 1, 1)
        return (pixels.unsqueeze(0) + planes).view(-1)


def _grid(height: int, width: int, matrix: Tuple[float, ...]) -> _Grid:
    """PIL's sampling points: output pixel (x, y) reads the source at ``(a (x + .5) + b (y + .5) + c,
    d (x + .5) + e (y + .5) + f)`` (float64, in PIL's order of operations)."""
    a, b, c, d, e, f = (float(v) for v in matrix)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                            torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    sx, sy = (a * xs + b * ys + c).view(-1), (d * xs + e * ys + f).view(-1)
    outside = ~((sx >= 0) & (sx < width) & (sy >= 0) & (sy < height))
    sx, sy = sx - 0.5, sy - 0.5
    x0, y0 = sx.floor(), sy.floor()
    # Points far outside are filled anyway: clamping first keeps their indices within int32.
    x0i, y0i = x0.clamp(-2, width + 1).int(), y0.clamp(-2, height + 1).int()
    return _Grid(height, width, x0i, y0i, sx - x0, sy - y0, outside)


def _bilinear(taps: torch.Tensor, grid: _Grid) -> torch.Tensor:
    """PIL's bilinear filter from 4 uint8 taps (C, 4, pixels): ``top + (bottom - top) dy`` of the row
    blends ``p0 + (p1 - p0) dx`` in float64, truncated to uint8."""
    p = taps.double()
    top = p[:, 0].add_((p[:, 1] - p[:, 0]).mul_(grid.dx))
    bottom = p[:, 2].add_((p[:, 3] - p[:, 2]).mul_(grid.dx))
    # Values lie in [0, 255]: the cast truncates, as PIL's (int) cast.
    return top.add_((bottom - top).mul_(grid.dy)).to(torch.uint8)


def _cubic(v1: torch.Tensor, v2: torch.Tensor, v3: torch.Tensor, v4: torch.Tensor,
           d: torch.Tensor) -> torch.Tensor:
    """PIL's cubic through 4 float64 samples at fraction ``d`` past ``v2`` (its a = -1 kernel),
    with PIL's operations in PIL's order: ``v2 + d (p2 + d (p3 + d p4))``."""
    p2 = v3 - v1
    p3 = (v1 - v2).mul_(2).add_(v3).sub_(v4)
    p4 = (v2 - v1).sub_(v3).add_(v4)
    return p4.mul_(d).add_(p3).mul_(d).add_(p2).mul_(d).add_(v2)


def _bicubic(taps: torch.Tensor, grid: _Grid) -> torch.Tensor:
    """PIL's bicubic filter from 16 int32 taps (C, 16, pixels), rows major: a cubic along x in
    each of the 4 rows, then one along y; below 0 gives 0, 255 or more 255, else truncation.
    Along x the samples are integers, so the cubic's coefficients are exact in int32 and only
    its evaluation runs in float64, for the 4 rows at once."""
    v1, v2, v3, v4 = taps.view(taps.shape[0], 4, 4, -1).unbind(2)  # (C, 4 rows, pixels) each
    p3 = (v1 - v2).mul_(2).add_(v3).sub_(v4).double()
    p4 = (v2 - v1).sub_(v3).add_(v4).double()
    rows = p4.mul_(grid.dx).add_(p3).mul_(grid.dx).add_((v3 - v1).double()).mul_(grid.dx).add_(v2.double())
    return _cubic(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], grid.dy).clamp_(0, 255).to(torch.uint8)


_FILTERS = {"bilinear": _bilinear, "bicubic": _bicubic}


def affine(planes: torch.Tensor, matrix: Tuple[float, ...], fill: int = FILL,
           interpolation: Union[str, Sequence[str]] = "bilinear") -> torch.Tensor:
    """PIL's ``transform(size, AFFINE, matrix, resample, fillcolor=fill)`` on every frame of uint8
    planes (T, C, H, W): output pixel (x, y) samples the source at ``(a (x + .5) + b (y + .5) + c,
    d (x + .5) + e (y + .5) + f)`` between pixel centres (edge pixels repeated), bilinearly or
    bicubically as PIL computes it (float64, truncated); points outside the frame get ``fill``.
    ``interpolation`` names one filter for all frames or one per frame. The sampling points are
    computed once for all frames; the output is made in blocks of BLOCK_PIXELS pixels, each
    block's source indices built once per filter and used for every frame, then dropped (so
    their memory is one block's, not the frame's: bicubic reads 16 taps per pixel and channel)."""
    steps, channels, height, width = planes.shape
    names = [interpolation] * steps if isinstance(interpolation, str) else list(interpolation)
    if len(names) != steps or not set(names) <= set(INTERPOLATIONS):
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS} (or one per frame), got {interpolation}")
    grid = _grid(height, width, matrix)
    flat = planes.reshape(steps, channels * height * width)
    out = torch.empty_like(flat).view(steps, channels, height * width)
    frames = {name: [step for step, named in enumerate(names) if named == name] for name in set(names)}
    for start in range(0, height * width, BLOCK_PIXELS):
        block = grid.block(start, start + BLOCK_PIXELS)
        stop = start + len(block.dx)
        for name, rows in frames.items():
            index = block.taps(name, channels)
            for step in rows:
                taps = flat[step].index_select(0, index).to(_TAP_TYPES[name]).view(channels, -1, len(block.dx))
                out[step, :, start:stop] = _FILTERS[name](taps, block).masked_fill_(block.outside, fill)
    return out.view(steps, channels, height, width)


def rotate_matrix(height: int, width: int, degrees: float) -> Tuple[float, ...]:
    """PIL's Image.rotate matrix (output -> source) for ``degrees`` anticlockwise about the centre
    (PIL takes the angle modulo 360 first: -21 degrees are computed as 339)."""
    angle = -math.radians(degrees % 360.0)
    cos, sin = round(math.cos(angle), 15), round(math.sin(angle), 15)
    cx, cy = width / 2.0, height / 2.0
    return (cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy)


def rotate(planes: torch.Tensor, degrees: float,
           interpolation: Union[str, Sequence[str]] = "bilinear") -> torch.Tensor:
    """Rotate ``degrees`` anticlockwise about the frame centre (PIL's Image.rotate)."""
    if degrees % 360 == 0:
        return planes
    return affine(planes, rotate_matrix(planes.shape[2], planes.shape[3], degrees), interpolation=interpolation)


def shear_x(planes: torch.Tensor, factor: float,
            interpolation: Union[str, Sequence[str]] = "bilinear") -> torch.Tensor:
    """Source x = x + factor * y."""
    return affine(planes, (1, factor, 0, 0, 1, 0), interpolation=interpolation)


def shear_y(planes: torch.Tensor, factor: float,
            interpolation: Union[str, Sequence[str]] = "bilinear") -> torch.Tensor:
    """Source y = y + factor * x."""
    return affine(planes, (1, 0, 0, factor, 1, 0), interpolation=interpolation)


def translate_x_rel(planes: torch.Tensor, fraction: float,
                    interpolation: Union[str, Sequence[str]] = "bilinear") -> torch.Tensor:
    """Source x = x + fraction * width (the content moves left for a positive fraction)."""
    return affine(planes, (1, 0, fraction * planes.shape[3], 0, 1, 0), interpolation=interpolation)


def translate_y_rel(planes: torch.Tensor, fraction: float,
                    interpolation: Union[str, Sequence[str]] = "bilinear") -> torch.Tensor:
    """Source y = y + fraction * height."""
    return affine(planes, (1, 0, 0, 0, 1, fraction * planes.shape[2]), interpolation=interpolation)


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
    """``num_ops`` ops from ``ops``, each with probability ``prob`` at magnitude N(m, m_std); the
    geometric ops sample by ``interpolation`` (POLICY_INTERPOLATIONS)."""

    magnitude: float
    num_ops: int = 2
    magnitude_std: float = 0.0
    prob: float = 0.5
    ops: Tuple[str, ...] = OPS_PLAIN
    interpolation: str = "bilinear"

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

    def frame_interpolations(self, steps: int, generator: Optional[torch.Generator] = None) -> List[str]:
        """The filter of each of ``steps`` frames for one geometric op: ``interpolation`` for all,
        or for "random" a fair draw per frame (timm draws one per call, i.e. per frame)."""
        if self.interpolation != "random":
            return [self.interpolation] * steps
        bicubic = torch.rand(steps, generator=generator) < 0.5
        return [INTERPOLATIONS[int(b)] for b in bicubic.tolist()]

    def __call__(self, frames: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Augment uint8 frames (T, H, W, 3): one draw, applied to every frame."""
        ops = self.draw(generator)
        if not ops:
            return frames
        planes = frames.permute(0, 3, 1, 2).contiguous()
        for name, args in ops:
            if name in GEOMETRIC_OPS:
                planes = OP_FUNCTIONS[name](planes, *args, self.frame_interpolations(len(planes), generator))
            else:
                planes = OP_FUNCTIONS[name](planes, *args)
        return planes.permute(0, 2, 3, 1).contiguous()


_POLICY = re.compile(r"^rand((?:-(?:m|n|mstd|inc|p)[0-9.]+)*)$")


@functools.lru_cache(maxsize=8)
def parse_policy(text: str, interpolation: str = "bilinear") -> RandAugment:
    """Parse a timm-style policy ``rand-m<magnitude>[-n<ops>][-mstd<std>][-inc<0|1>][-p<prob>]``
    (defaults n 2, mstd 0, inc 0, p 0.5) whose geometric ops sample by ``interpolation``
    (POLICY_INTERPOLATIONS); ValueError naming the text otherwise."""
    match = _POLICY.match(text)
    if not match:
        raise ValueError(f"RandAugment policy must look like 'rand-m7-n4-mstd0.5-inc1', got '{text}'")
    if interpolation not in POLICY_INTERPOLATIONS:
        raise ValueError(f"RandAugment interpolation must be one of {', '.join(POLICY_INTERPOLATIONS)}, "
                         f"got '{interpolation}'")
    fields = dict(re.findall(r"-(mstd|inc|m|n|p)([0-9.]+)", match.group(1)))
    try:
        magnitude = float(fields["m"])
        policy = RandAugment(
            magnitude=magnitude,
            num_ops=int(fields.get("n", 2)),
            magnitude_std=float(fields.get("mstd", 0.0)),
            prob=float(fields.get("p", 0.5)),
            ops=OPS_INCREASING if int(fields.get("inc", 0)) else OPS_PLAIN,
            interpolation=interpolation,
        )
    except (KeyError, ValueError):
        raise ValueError(
            f"RandAugment policy '{text}' needs a magnitude m and numbers after m, n, mstd, inc, p"
        ) from None
    if not 0 <= policy.magnitude <= MAX_LEVEL or policy.num_ops < 1 or not 0 <= policy.prob <= 1:
        raise ValueError(f"RandAugment policy '{text}': m must be in [0, 10], n >= 1 and p in [0, 1]")
    return policy
