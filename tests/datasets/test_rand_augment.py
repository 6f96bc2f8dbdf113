"""RandAugment on uint8 clips: every op equals PIL's (which the released RandAugment calls per
frame; geometric ops with bilinear and bicubic sampling), hand-computed edge cases, the
policy's draws, one draw for all frames of a clip, per-frame filters of the random policy."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from m3a.datasets import rand_augment as ra

FILL = (128, 128, 128)


def _images():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:26, 0:33]
    ramp = np.stack([(x * 5 + y * 3) % 256, (x * x + y) % 256, (y * 7) % 256], -1).astype(np.uint8)
    return {
        "noise": rng.integers(0, 256, (23, 31, 3), dtype=np.uint8),
        "narrow": rng.integers(40, 200, (23, 31, 3), dtype=np.uint8),
        "ramp": ramp,
        "three_values": rng.integers(100, 103, (17, 19, 3), dtype=np.uint8),
    }


IMAGES = _images()


def _ours(fn, image, *args):
    """Our op on one (H, W, 3) image, through the ops' planes layout (T, C, H, W)."""
    planes = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    return fn(planes, *args)[0].permute(1, 2, 0).numpy()


RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def _affine(pil, matrix, resample):
    return pil.transform(pil.size, Image.AFFINE, matrix, resample=resample, fillcolor=FILL)


# (name, our op, arguments, PIL's result from the PIL image)
PIL_CASES = [
    ("autocontrast", ra.auto_contrast, (), ImageOps.autocontrast),
    ("equalize", ra.equalize, (), ImageOps.equalize),
    ("invert", ra.invert, (), ImageOps.invert),
    ("posterize1", ra.posterize, (1,), lambda p: ImageOps.posterize(p, 1)),
    ("posterize3", ra.posterize, (3,), lambda p: ImageOps.posterize(p, 3)),
    ("solarize0", ra.solarize, (0,), lambda p: ImageOps.solarize(p, 0)),
    ("solarize128", ra.solarize, (128,), lambda p: ImageOps.solarize(p, 128)),
    ("solarize201", ra.solarize, (201,), lambda p: ImageOps.solarize(p, 201)),
    ("color0.37", ra.color, (0.37,), lambda p: ImageEnhance.Color(p).enhance(0.37)),
    ("color1.9", ra.color, (1.9,), lambda p: ImageEnhance.Color(p).enhance(1.9)),
    ("contrast0.1", ra.contrast, (0.1,), lambda p: ImageEnhance.Contrast(p).enhance(0.1)),
    ("contrast1.63", ra.contrast, (1.63,), lambda p: ImageEnhance.Contrast(p).enhance(1.63)),
    ("brightness0.46", ra.brightness, (0.46,), lambda p: ImageEnhance.Brightness(p).enhance(0.46)),
    ("brightness1.81", ra.brightness, (1.81,), lambda p: ImageEnhance.Brightness(p).enhance(1.81)),
    ("sharpness0.2", ra.sharpness, (0.2,), lambda p: ImageEnhance.Sharpness(p).enhance(0.2)),
    ("sharpness1.9", ra.sharpness, (1.9,), lambda p: ImageEnhance.Sharpness(p).enhance(1.9)),
]


@pytest.mark.parametrize("image", sorted(IMAGES))
@pytest.mark.parametrize("case", PIL_CASES, ids=[c[0] for c in PIL_CASES])
def test_op_equals_pil(case, image):
    _, fn, args, reference = case
    array = IMAGES[image]
    expected = np.asarray(reference(Image.fromarray(array)))
    np.testing.assert_array_equal(_ours(fn, array, *args), expected)


# (name, our geometric op, arguments, PIL's result from the PIL image and PIL's resampling filter)
GEOMETRIC_CASES = [
    ("rotate7.3", ra.rotate, (7.3,), lambda p, r: p.rotate(7.3, resample=r, fillcolor=FILL)),
    ("rotate-21", ra.rotate, (-21.0,), lambda p, r: p.rotate(-21.0, resample=r, fillcolor=FILL)),
    ("rotate30", ra.rotate, (30.0,), lambda p, r: p.rotate(30.0, resample=r, fillcolor=FILL)),
    # PIL turns -173.7 degrees into 186.3 before taking sine and cosine (not the same floats).
    ("rotate-173.7", ra.rotate, (-173.7,), lambda p, r: p.rotate(-173.7, resample=r, fillcolor=FILL)),
    ("shear_x0.1", ra.shear_x, (0.1,), lambda p, r: _affine(p, (1, 0.1, 0, 0, 1, 0), r)),
    ("shear_x-0.27", ra.shear_x, (-0.27,), lambda p, r: _affine(p, (1, -0.27, 0, 0, 1, 0), r)),
    ("shear_y0.3", ra.shear_y, (0.3,), lambda p, r: _affine(p, (1, 0, 0, 0.3, 1, 0), r)),
    ("translate_x0.2", ra.translate_x_rel, (0.2,), lambda p, r: _affine(p, (1, 0, 0.2 * p.size[0], 0, 1, 0), r)),
    ("translate_y-0.41", ra.translate_y_rel, (-0.41,),
     lambda p, r: _affine(p, (1, 0, 0, 0, 1, -0.41 * p.size[1]), r)),
]


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("image", sorted(IMAGES))
@pytest.mark.parametrize("case", GEOMETRIC_CASES, ids=[c[0] for c in GEOMETRIC_CASES])
def test_geometric_op_equals_pil(case, image, interpolation):
    _, fn, args, reference = case
    array = IMAGES[image]
    expected = np.asarray(reference(Image.fromarray(array), RESAMPLE[interpolation]))
    np.testing.assert_array_equal(_ours(fn, array, *args, interpolation), expected)


def test_random_affine_transforms_equal_pil_with_both_filters():
    """Random matrices (stretching, mirroring, points far outside) on frames of random sizes,
    several of them in blocks of fewer pixels than the frame."""
    rng = np.random.default_rng(1)
    for trial in range(40):
        height, width = rng.integers(3, 70, 2)
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        matrix = tuple(rng.uniform(-1.5, 1.5, 6) * np.array([1, 1, width, 1, 1, height]))
        for name, resample in RESAMPLE.items():
            expected = np.asarray(_affine(Image.fromarray(array), matrix, resample))
            got = _ours(lambda planes: ra.affine(planes, matrix, interpolation=name), array)
            np.testing.assert_array_equal(got, expected, err_msg=f"{trial} {name} {matrix}")


def test_blocks_do_not_change_the_result(monkeypatch):
    frames = torch.from_numpy(np.stack([IMAGES["noise"], IMAGES["narrow"]])).permute(0, 3, 1, 2).contiguous()
    whole = {name: ra.rotate(frames, 13.0, name) for name in ra.INTERPOLATIONS}
    monkeypatch.setattr(ra, "BLOCK_PIXELS", 100)  # 713 pixels: 8 blocks, the last one short
    for name in ra.INTERPOLATIONS:
        assert torch.equal(ra.rotate(frames, 13.0, name), whole[name])
    mixed = ra.rotate(frames, 13.0, ["bicubic", "bilinear"])
    assert torch.equal(mixed[0], whole["bicubic"][0]) and torch.equal(mixed[1], whole["bilinear"][1])
    with pytest.raises(ValueError, match="interpolation must be one of"):
        ra.rotate(frames, 13.0, "nearest")
    with pytest.raises(ValueError, match="interpolation must be one of"):
        ra.rotate(frames, 13.0, ["bicubic"])  # one name per frame, or one for all


def test_tap_indices_live_one_block_at_a_time(monkeypatch):
    """The source indices of a block (bicubic: 16 taps x 3 channels x int32 = 192 B per pixel)
    are built when the block is interpolated and dropped after it, for every frame at once: at
    most one block's indices per filter are alive, never the whole frame's."""
    import gc
    import weakref

    frames = torch.from_numpy(np.stack([IMAGES["noise"], IMAGES["narrow"]] * 2)).permute(0, 3, 1, 2).contiguous()
    expected = ra.rotate(frames, 13.0, ["bicubic", "bilinear"] * 2)
    monkeypatch.setattr(ra, "BLOCK_PIXELS", 100)  # 713 pixels: 8 blocks
    built, alive_at_filter = [], []
    taps, filters = ra._Grid.taps, dict(ra._FILTERS)

    def recorded_taps(grid, interpolation, channels):
        index = taps(grid, interpolation, channels)
        built.append(weakref.ref(index))
        return index

    def counted(name):
        def filtered(gathered, grid):
            gc.collect()
            alive_at_filter.append(sum(ref() is not None for ref in built))
            return filters[name](gathered, grid)
        return filtered

    monkeypatch.setattr(ra._Grid, "taps", recorded_taps)
    monkeypatch.setattr(ra, "_FILTERS", {name: counted(name) for name in ra._FILTERS})
    assert torch.equal(ra.rotate(frames, 13.0, ["bicubic", "bilinear"] * 2), expected)
    assert len(built) == 2 * 8  # once per block and filter, not per frame
    assert len(alive_at_filter) == 4 * 8 and max(alive_at_filter) <= 2


def test_policy_interpolation_bicubic_equals_pil_frame_by_frame():
    policy = ra.RandAugment(magnitude=9, num_ops=1, prob=1.0, ops=("Rotate",), interpolation="bicubic")
    clip = torch.from_numpy(np.stack([IMAGES["noise"], IMAGES["narrow"]]))
    out = policy(clip, torch.Generator().manual_seed(0))
    ((_, (degrees,)),) = policy.draw(torch.Generator().manual_seed(0))
    assert abs(degrees) == pytest.approx(27.0)
    for k in range(2):
        expected = Image.fromarray(clip[k].numpy()).rotate(degrees, resample=Image.BICUBIC, fillcolor=FILL)
        np.testing.assert_array_equal(out[k].numpy(), np.asarray(expected))


def test_policy_interpolation_random_draws_a_filter_per_frame():
    policy = ra.RandAugment(magnitude=5, num_ops=1, prob=1.0, ops=("ShearX",), interpolation="random")
    clip = torch.from_numpy(IMAGES["noise"]).expand(16, -1, -1, -1)
    gen = torch.Generator().manual_seed(2)
    ((_, (factor,)),) = policy.draw(gen)
    names = policy.frame_interpolations(16, gen)  # drawn right after the ops, as __call__ does
    assert sorted(set(names)) == ["bicubic", "bilinear"]
    out = policy(clip, torch.Generator().manual_seed(2))
    pil = Image.fromarray(IMAGES["noise"])
    for k, name in enumerate(names):
        expected = _affine(pil, (1, factor, 0, 0, 1, 0), RESAMPLE[name])
        np.testing.assert_array_equal(out[k].numpy(), np.asarray(expected), err_msg=str(k))
    assert not torch.equal(out[names.index("bilinear")], out[names.index("bicubic")])
    draws = [n for _ in range(100) for n in policy.frame_interpolations(10, gen)]
    assert 430 < draws.count("bicubic") < 570  # fair: 500 +- 50 (3 std)
    assert ra.parse_policy("rand-m7-n4-mstd0.5-inc1", "random").interpolation == "random"
    assert ra.parse_policy("rand-m7").interpolation == "bilinear"
    with pytest.raises(ValueError, match="RandAugment interpolation must be one of bilinear, bicubic, random"):
        ra.parse_policy("rand-m7", "nearest")


def test_lookup_ops_by_hand():
    x = torch.tensor([0, 1, 127, 128, 183, 254, 255], dtype=torch.uint8).view(1, 1, 1, 7)  # (T, C, H, W)
    flat = lambda t: t.view(-1).tolist()  # noqa: E731
    assert flat(ra.solarize(x, 128)) == [0, 1, 127, 127, 72, 1, 0]
    assert flat(ra.solarize(x, 256)) == flat(x) and flat(ra.solarize(x, 0)) == [255, 254, 128, 127, 72, 1, 0]
    assert flat(ra.solarize_add(x, 30)) == [30, 31, 157, 128, 183, 254, 255]
    assert flat(ra.solarize_add(x, 200)) == [200, 201, 255, 128, 183, 254, 255]
    # 183 = 0b10110111: 3 bits keep 0b10100000 = 160; 0 bits give black; 8 bits change nothing.
    assert flat(ra.posterize(x, 3)) == [0, 0, 96, 128, 160, 224, 224]
    assert flat(ra.posterize(x, 0)) == [0] * 7 and flat(ra.posterize(x, 8)) == flat(x)
    assert flat(ra.invert(x)) == [255, 254, 128, 127, 72, 1, 0]


def test_statistics_ops_by_hand():
    # AutoContrast on {50, 100, 150}: scale 2.55, offset -127.5 -> 0, int(127.5) = 127, 255.
    x = torch.tensor([50, 100, 150], dtype=torch.uint8).view(1, 1, 1, 3)
    assert ra.auto_contrast(x).view(-1).tolist() == [0, 127, 255]
    constant = torch.full((2, 3, 4, 4), 77, dtype=torch.uint8)
    assert torch.equal(ra.auto_contrast(constant), constant) and torch.equal(ra.equalize(constant), constant)
    # Equalize of 510 pixels at 10 and 2 at 200: step (512 - 2) // 255 = 2 -> 10: 1 // 2 = 0,
    # 200: (1 + 510) // 2 = 255.
    y = torch.tensor([10] * 510 + [200] * 2, dtype=torch.uint8).view(1, 1, 1, 512)
    assert ra.equalize(y).view(-1).unique().tolist() == [0, 255]
    # Contrast 0 gives the mean grey (rounded): grey of (10, 20, 30) is 18, of (200, 100, 0) 118.
    z = torch.tensor([[10, 20, 30], [200, 100, 0]], dtype=torch.uint8).t().contiguous().view(1, 3, 1, 2)
    assert ra.grey(z).view(-1).tolist() == [18, 118]
    assert ra.contrast(z, 0.0).view(-1).tolist() == [68] * 6  # (18 + 118) / 2 = 68


def test_geometric_edge_cases():
    frames = torch.randint(0, 256, (2, 3, 9, 9), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    # A quarter turn of a square frame moves whole pixels: torch.rot90, no interpolation, no fill.
    assert torch.equal(ra.rotate(frames, 90.0), torch.rot90(frames, 1, dims=(2, 3)))
    assert torch.equal(ra.rotate(frames, 90.0, "bicubic"), torch.rot90(frames, 1, dims=(2, 3)))
    assert ra.rotate(frames, 0.0) is frames and ra.rotate(frames, 360.0) is frames
    # A whole-pixel shift moves the content and fills the uncovered columns with grey 128.
    for name in ra.INTERPOLATIONS:
        shifted = ra.affine(frames, (1, 0, 2, 0, 1, 0), interpolation=name)
        assert torch.equal(shifted[..., :7], frames[..., 2:]) and bool((shifted[..., 7:] == 128).all())
    # Half a pixel across a 0 | 255 step, PIL's cubic v2 + d (p2 + d (p3 + d p4)) at d = 0.5:
    # taps (0, 0, 0, 255): p = (0, -255, 255) -> -31.875 -> 0; (0, 0, 255, 255): p = (255, 0, 0)
    # -> 127.5 -> 127; (0, 255, 255, 255): p = (255, -510, 255) -> 286.875 -> 255 (overshoot clamped).
    edge = torch.tensor([0, 0, 0, 255, 255, 255], dtype=torch.uint8).view(1, 1, 1, 6)
    half = ra.affine(edge, (1, 0, 0.5, 0, 1, 0), interpolation="bicubic").view(-1).tolist()
    assert half == [0, 0, 127, 255, 255, 128]  # v = 127.5 -> 127; the last point is outside
    assert torch.equal(ra.shear_x(frames, 0.0), frames)


def test_level_arguments():
    gen = torch.Generator().manual_seed(0)
    assert ra._args("PosterizeIncreasing", 7.0, gen) == (4 - 2,)
    assert ra._args("PosterizeIncreasing", 10.0, gen) == (0,)
    assert ra._args("SolarizeIncreasing", 7.0, gen) == (256 - 179,)
    assert ra._args("SolarizeAdd", 7.0, gen) == (77,)
    assert ra._args("Solarize", 5.0, gen) == (128,) and ra._args("Posterize", 5.0, gen) == (2,)
    assert ra._args("Color", 5.0, gen) == (pytest.approx(1.0),)
    signs = {ra._args("Rotate", 10.0, gen)[0] for _ in range(50)}
    assert signs == {30.0, -30.0}
    assert {round(ra._args("ContrastIncreasing", 5.0, gen)[0], 6) for _ in range(50)} == {0.55, 1.45}
    assert {abs(ra._args("TranslateXRel", 10.0, gen)[0]) for _ in range(5)} == {0.45}
    assert ra._args("Equalize", 7.0, gen) == ()


def test_policy_parsing():
    policy = ra.parse_policy("rand-m7-n4-mstd0.5-inc1")
    assert (policy.magnitude, policy.num_ops, policy.magnitude_std, policy.prob) == (7.0, 4, 0.5, 0.5)
    assert policy.ops == ra.OPS_INCREASING and len(policy.ops) == 15
    assert ra.parse_policy("rand-m9").ops == ra.OPS_PLAIN and ra.parse_policy("rand-m9").num_ops == 2
    for bad in ("rand", "rand-n2", "rand-m7-x3", "rand-m11", "auto-m7", "rand-m7-n0"):
        with pytest.raises(ValueError, match="RandAugment policy"):
            ra.parse_policy(bad)


def test_policy_draws():
    policy = ra.parse_policy("rand-m7-n4-mstd0.5-inc1")
    gen = torch.Generator().manual_seed(5)
    draws = [policy.draw(gen) for _ in range(2000)]
    applied = [op for draw in draws for op in draw]
    # 4 ops, each kept with p = 0.5: 2 per clip on average (8000 tries, std ~45).
    assert all(len(d) <= 4 for d in draws) and abs(len(applied) - 4000) < 200
    names = {name for name, _ in applied}
    assert names == set(ra.OPS_INCREASING)
    # Rotation = 3 x magnitude degrees, magnitude N(7, 0.5): mean 21, std 1.5.
    degrees = np.array([abs(args[0]) for name, args in applied if name == "Rotate"])
    assert abs(degrees.mean() - 21.0) < 0.4 and 1.2 < degrees.std() < 1.8 and degrees.max() <= 30.0


def test_one_draw_for_every_frame_with_each_frames_own_statistics():
    policy = ra.RandAugment(magnitude=9, num_ops=3, prob=1.0, ops=ra.OPS_INCREASING)
    clip = torch.stack([torch.from_numpy(IMAGES["noise"]), torch.from_numpy(IMAGES["narrow"])])
    for seed in range(12):
        together = policy(clip, torch.Generator().manual_seed(seed))
        for k in range(2):
            alone = policy(clip[k : k + 1], torch.Generator().manual_seed(seed))
            assert torch.equal(together[k : k + 1], alone), seed
    same = clip[:1].expand(3, -1, -1, -1)
    out = policy(same, torch.Generator().manual_seed(0))
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    assert torch.equal(policy(clip, torch.Generator().manual_seed(7)), policy(clip, torch.Generator().manual_seed(7)))
