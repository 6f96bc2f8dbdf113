"""Synthetic "actions" of the demo data set: an object (shape + colour) moving in a class-specific
way while making a class-specific sound.

A class is a :class:`DemoAction` (colour, shape, motion, base frequency). One occurrence of it in a
video is an :class:`ActionInstance` (position, speed, phase...) drawn from a seeded generator; the
instance gives the object's pose at any time (:meth:`ActionInstance.pose`) and its sound
(:meth:`ActionInstance.sound`), and the sound follows the motion (a bounce makes a knock, a growing
object gets louder, a falling one whistles downwards). :func:`render_video` and
:func:`render_audio` turn a list of instances into RGB frames and a mono waveform.
"""
import functools
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

# Distinct, saturated colours (name, RGB); one per class, so appearance alone separates classes.
COLOURS: Tuple[Tuple[str, Tuple[int, int, int]], ...] = (
    ("red", (225, 35, 35)),
    ("green", (40, 190, 60)),
    ("blue", (45, 95, 240)),
    ("yellow", (240, 215, 35)),
    ("magenta", (215, 45, 205)),
    ("cyan", (40, 210, 220)),
    ("orange", (245, 135, 25)),
    ("white", (245, 245, 245)),
    ("purple", (125, 55, 190)),
    ("lime", (165, 240, 60)),
    ("pink", (250, 155, 185)),
    ("brown", (150, 90, 40)),
)
# Polygon shapes; classes 2k and 2k+1 share SHAPES[k % len(SHAPES)].
SHAPES: Tuple[str, ...] = ("square", "triangle", "cross", "star", "bar", "diamond")
# Motions; class c moves with MOTIONS[c % len(MOTIONS)]. All are slower than ~1 Hz so that clips
# sampled every 4-8 frames at 30 fps still see them.
MOTIONS: Tuple[str, ...] = ("sliding", "bouncing", "spinning", "growing", "circling", "falling")
MAX_CLASSES = len(COLOURS)

_SPRITE_SIZE = 64
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class DemoAction:
    """One demo class: how its object looks, how it moves and what it sounds like."""

    colour_name: str
    rgb: Tuple[int, int, int]
    shape: str
    motion: str
    frequency: float

    @property
    def name(self) -> str:
        """Human-readable class name, e.g. ``red square sliding``."""
        return f"{self.colour_name} {self.shape} {self.motion}"


def demo_actions(num_classes: int) -> List[DemoAction]:
    """The first ``num_classes`` demo classes (at most MAX_CLASSES)."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"number of demo classes must be in [1, {MAX_CLASSES}], got {num_classes}")
    actions = []
    for c in range(num_classes):
        colour_name, rgb = COLOURS[c]
        # Base tones 4 semitones apart from C4 (262 Hz) upwards: distinct log-mel patterns.
        frequency = 261.63 * 2.0 ** (4 * c / 12.0)
        shape = SHAPES[(c // 2) % len(SHAPES)]
        actions.append(DemoAction(colour_name, rgb, shape, MOTIONS[c % len(MOTIONS)], frequency))
    return actions


def _polygon(shape: str) -> np.ndarray:
    """Vertices (V, 2) of a shape in [-1, 1]^2, y pointing down."""
    if shape == "square":
        return np.array([[-0.75, -0.75], [0.75, -0.75], [0.75, 0.75], [-0.75, 0.75]])
    if shape == "triangle":
        angles = -math.pi / 2 + np.arange(3) * 2 * math.pi / 3
        return np.stack([np.cos(angles), np.sin(angles) + 0.2], axis=1)
    if shape == "cross":
        a, b = 0.3, 0.95
        return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b],
                         [-a, a], [-b, a], [-b, -a], [-a, -a]])
    if shape == "star":
        angles = -math.pi / 2 + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles) + 0.05], axis=1)
    if shape == "bar":
        return np.array([[-1.0, -0.32], [1.0, -0.32], [1.0, 0.32], [-1.0, 0.32]])
    if shape == "diamond":
        return np.array([[0.0, -1.0], [0.62, 0.0], [0.0, 1.0], [-0.62, 0.0]])
    raise ValueError(f"unknown shape '{shape}'")


def _inside_polygon(x: np.ndarray, y: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test for arrays of points."""
    inside = np.zeros(x.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return inside


@functools.lru_cache(maxsize=None)
def shape_sprite(shape: str) -> np.ndarray:
    """Anti-aliased alpha mask (S, S) float32 of a shape over [-1, 1]^2 (cached per process)."""
    fine = _SPRITE_SIZE * _SUPERSAMPLE
    coords = (np.arange(fine) + 0.5) / fine * 2.0 - 1.0
    y, x = np.meshgrid(coords, coords, indexing="ij")
    mask = _inside_polygon(x, y, _polygon(shape)).astype(np.float32)
    mask = mask.reshape(_SPRITE_SIZE, _SUPERSAMPLE, _SPRITE_SIZE, _SUPERSAMPLE).mean(axis=(1, 3))
    # A zero border (two pixels on the far sides) so that bilinear sampling fades out at the edge.
    return np.pad(mask, ((1, 2), (1, 2)))


def _triangle_wave(phase: np.ndarray) -> np.ndarray:
    """0 -> 1 -> 0 over each unit of ``phase``."""
    frac = np.mod(phase, 1.0)
    return 1.0 - np.abs(2.0 * frac - 1.0)


@dataclass(frozen=True)
class ActionInstance:
    """One occurrence of a demo class in a video, with its randomly drawn motion parameters."""

    action: DemoAction
    width: int
    height: int
    radius: float
    x0: float
    y0: float
    period: float
    phase: float
    direction: float
    angle0: float
    loudness: float

    @classmethod
    def draw(cls, action: DemoAction, width: int, height: int, rng: np.random.Generator):
        """Draw the motion parameters of one occurrence of ``action`` in a width x height frame."""
        short = min(width, height)
        radius = short * 0.14 * rng.uniform(0.85, 1.15)
        margin = radius * 1.1
        periods = {"sliding": (2.2, 3.0), "bouncing": (0.9, 1.3), "spinning": (2.6, 3.4),
                   "growing": (1.3, 1.8), "circling": (2.0, 2.6), "falling": (1.3, 1.7)}
        return cls(
            action=action, width=width, height=height, radius=radius,
            x0=rng.uniform(margin, width - margin), y0=rng.uniform(margin, height - margin),
            period=rng.uniform(*periods[action.motion]), phase=rng.uniform(0.0, 1.0),
            direction=float(rng.choice([-1.0, 1.0])), angle0=rng.uniform(-0.3, 0.3),
            loudness=rng.uniform(0.8, 1.0),
        )

    def pose(self, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Centre x, centre y, radius and rotation angle (radians) at times ``t`` (seconds)."""
        t = np.asarray(t, dtype=np.float64)
        cycle = t / self.period + self.phase
        x = np.full_like(t, self.x0)
        y = np.full_like(t, self.y0)
        radius = np.full_like(t, self.radius)
        angle = np.full_like(t, self.angle0)
        margin = self.radius * 1.1
        motion = self.action.motion
        if motion == "sliding":
            x = margin + (self.width - 2 * margin) * _triangle_wave(cycle)
        elif motion == "bouncing":
            floor = self.height - margin
            y = floor - (self.height - 2 * margin) * 0.9 * np.abs(np.sin(math.pi * cycle))
        elif motion == "spinning":
            angle = self.angle0 + self.direction * 2 * math.pi * cycle
        elif motion == "growing":
            radius = self.radius * (0.45 + 0.75 * self.envelope(t))
        elif motion == "circling":
            orbit = 0.24 * min(self.width, self.height)
            cx = np.clip(self.x0, orbit + margin, self.width - orbit - margin)
            cy = np.clip(self.y0, orbit + margin, self.height - orbit - margin)
            x = cx + orbit * np.cos(self.direction * 2 * math.pi * cycle)
            y = cy + orbit * np.sin(self.direction * 2 * math.pi * cycle)
        elif motion == "falling":
            y = -self.radius + (self.height + 2 * self.radius) * np.mod(cycle, 1.0)
        return x, y, radius, angle

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """Smooth 0..1 pulse of the growing motion (also its loudness)."""
        return 0.5 - 0.5 * np.cos(2 * math.pi * (t / self.period + self.phase))

    def sound(self, t: np.ndarray) -> np.ndarray:
        """The instance's sound at sample times ``t`` (seconds), peak about ``loudness``."""
        f = self.action.frequency
        cycle = t / self.period + self.phase
        motion = self.action.motion
        if motion == "sliding":  # a steady tone with a soft second harmonic
            wave = np.sin(2 * math.pi * f * t) + 0.3 * np.sin(4 * math.pi * f * t)
            return self.loudness * wave / 1.3
        if motion == "bouncing":  # a decaying knock at every impact (sin(pi * cycle) = 0)
            since_impact = np.mod(cycle, 1.0) * self.period
            return self.loudness * np.exp(-since_impact * 9.0) * np.sin(2 * math.pi * f * t)
        if motion == "spinning":  # a tone tremolo at 4 Hz
            am = 0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t)
            return self.loudness * am * np.sin(2 * math.pi * f * t)
        if motion == "growing":  # louder as the object grows
            return self.loudness * (0.15 + 0.85 * self.envelope(t)) * np.sin(2 * math.pi * f * t)
        if motion == "circling":  # vibrato: +-3 % at the orbit's rate
            rate = 1.0 / self.period
            depth = 0.03 * f / rate
            return self.loudness * np.sin(2 * math.pi * f * t + depth * np.sin(2 * math.pi * cycle))
        if motion == "falling":  # a whistle sliding from 1.5 f down to f over each fall
            frac = np.mod(cycle, 1.0)
            inst_freq = f * (1.5 - 0.5 * frac)
            phase = 2 * math.pi * np.cumsum(inst_freq) * (t[1] - t[0] if t.size > 1 else 0.0)
            return self.loudness * np.sin(phase)
        raise ValueError(f"unknown motion '{motion}'")


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A muted, softly textured background (H, W, 3) float32 in 0..255."""
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    base = rng.uniform(35, 95, size=3)
    texture = np.zeros((height, width), dtype=np.float64)
    for _ in range(4):
        kx, ky = rng.uniform(-0.12, 0.12, size=2)
        texture += np.sin(kx * x + ky * y + rng.uniform(0, 2 * math.pi))
    tint = rng.uniform(0.5, 1.0, size=3)
    image = base[None, None, :] + 7.0 * texture[..., None] * tint[None, None, :]
    speckle = rng.normal(0.0, 6.0, size=(height // 4 + 1, width // 4 + 1, 1))
    image += np.kron(speckle, np.ones((4, 4, 1)))[:height, :width]
    return image.astype(np.float32)


def _composite(frame: np.ndarray, sprite: np.ndarray, rgb: np.ndarray, cx: float, cy: float,
               radius: float, angle: float) -> None:
    """Alpha-blend a rotated, scaled sprite centred at (cx, cy) into ``frame`` in place."""
    height, width = frame.shape[:2]
    reach = radius * 1.45 + 1.0
    x_lo, x_hi = max(int(cx - reach), 0), min(int(cx + reach) + 1, width)
    y_lo, y_hi = max(int(cy - reach), 0), min(int(cy + reach) + 1, height)
    if x_lo >= x_hi or y_lo >= y_hi:
        return
    y = (np.arange(y_lo, y_hi, dtype=np.float32) + (0.5 - cy))[:, None]
    x = (np.arange(x_lo, x_hi, dtype=np.float32) + (0.5 - cx))[None, :]
    size = sprite.shape[0] - 3  # interior pixels; the border is 1 before, 2 after
    scale = 0.5 * size / radius
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    # Inverse rotation into the sprite's pixel grid, then bilinear sampling of the alpha mask.
    fu = np.clip(cos * x + sin * y + (0.5 * size + 0.5), 0.0, size + 2.0 - 1e-3)
    fv = np.clip(cos * y - sin * x + (0.5 * size + 0.5), 0.0, size + 2.0 - 1e-3)
    iu, iv = fu.astype(np.int32), fv.astype(np.int32)
    du, dv = fu - iu, fv - iv
    flat = sprite.ravel()
    base = iv * sprite.shape[1] + iu
    top = flat[base] + du * (flat[base + 1] - flat[base])
    bottom = flat[base + sprite.shape[1]] + du * (flat[base + sprite.shape[1] + 1]
                                                  - flat[base + sprite.shape[1]])
    alpha = (top + dv * (bottom - top))[..., None]
    region = frame[y_lo:y_hi, x_lo:x_hi]
    region *= 1.0 - alpha
    region += alpha * rgb


def render_video(instances: Sequence[ActionInstance], num_frames: int, fps: float, width: int,
                 height: int, rng: np.random.Generator) -> np.ndarray:
    """RGB frames (T, H, W, 3) uint8 of the instances over a noisy textured background.

    A grey distractor object that belongs to no class wanders through about a third of the videos.
    """
    background = _background(width, height, rng)
    times = np.arange(num_frames) / fps
    layers = [(shape_sprite(i.action.shape), np.asarray(i.action.rgb, np.float32), i.pose(times))
              for i in instances]
    if rng.uniform() < 0.35:
        distractor = ActionInstance.draw(
            DemoAction("grey", (150, 150, 150), str(rng.choice(SHAPES)), "sliding", 0.0),
            width, height, rng)
        layers.insert(0, (shape_sprite(distractor.action.shape), np.full(3, 150, np.float32),
                          distractor.pose(times * 0.4)))
    # Sensor-like noise: each frame adds one of a small bank of noise images (cheaper than
    # drawing fresh noise for every frame, and indistinguishable at this amplitude).
    noise = rng.standard_normal(size=(6, *background.shape), dtype=np.float32) * 2.5
    picks = rng.integers(0, len(noise), size=num_frames)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        frame = background + noise[picks[index]]
        for sprite, rgb, (x, y, radius, angle) in layers:
            _composite(frame, sprite, rgb, x[index], y[index], radius[index], angle[index])
        frames[index] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def render_audio(instances: Sequence[ActionInstance], num_samples: int, sample_rate: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Mono waveform (num_samples,) float32 in [-1, 1]: the mix of the instances' sounds + hiss."""
    t = np.arange(num_samples) / sample_rate
    mix = np.zeros(num_samples, dtype=np.float64)
    for instance in instances:
        mix += 0.3 * instance.sound(t)
    mix += rng.normal(0.0, 0.004, size=num_samples)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)  # 10 ms fades avoid clicks
    return np.clip(mix * fade, -1.0, 1.0).astype(np.float32)
