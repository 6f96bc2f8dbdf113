"""Transforms on uint8 frames: crop boxes, resizing, flips, uniform crops and normalisation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m3a.datasets import transform

MEAN = [0.4, 0.5, 0.6]
STD = [0.2, 0.25, 0.5]


def _frames(t=3, h=20, w=30, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=gen)


def _normalised(frames_tchw):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (frames_tchw / 255.0 - mean) / std


def test_normalize_matches_formula():
    x = _frames().permute(0, 3, 1, 2).float()
    torch.testing.assert_close(transform.normalize(x.clone(), MEAN, STD), _normalised(x), rtol=1e-6, atol=1e-6)


def test_short_side_size():
    assert transform.short_side_size(20, 30, 10) == (10, 15)
    assert transform.short_side_size(30, 20, 10) == (15, 10)
    assert transform.short_side_size(17, 33, 128) == (128, 248)


def test_crop_without_scaling_is_a_plain_slice():
    frames = _frames()
    # Short side already at the scale: the box is the crop itself, no resampling.
    out = transform.scale_crop_clip(frames, 20, 12, (1.0, 0.0), False, MEAN, STD)
    expected = _normalised(frames[:, 8:20, 0:12].permute(0, 3, 1, 2).float()).permute(1, 0, 2, 3)
    assert out.shape == (3, 3, 12, 12)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_crop_region_maps_the_crop_onto_the_source():
    # Source 100 x 200 scaled to short side 50 (factor 0.5): a 20-px crop covers 40 source px.
    assert transform.crop_region(100, 200, 50, 20, None) == (30, 80, 40, 40)
    assert transform.crop_region(100, 200, 50, 20, (0.0, 1.0)) == (0, 160, 40, 40)
    # A scale below the crop size is raised to the crop size.
    assert transform.crop_region(100, 200, 10, 20, None)[2:] == (100, 100)


def test_scaled_crop_resizes_only_the_box_and_flips():
    frames = _frames(t=2, h=40, w=60)
    out = transform.scale_crop_clip(frames, 20, 10, None, False, MEAN, STD)
    y, x, h, w = transform.crop_region(40, 60, 20, 10, None)
    box = frames[:, y : y + h, x : x + w].permute(0, 3, 1, 2)
    resized = F.interpolate(box, size=(10, 10), mode="bilinear", align_corners=False)  # uint8 in, uint8 out
    expected = _normalised(resized.float())
    torch.testing.assert_close(out, expected.permute(1, 0, 2, 3), rtol=1e-5, atol=1e-5)
    # uint8 resizing stays within one grey level of float resizing
    reference = F.interpolate(box.float(), size=(10, 10), mode="bilinear", align_corners=False)
    assert (reference - resized.float()).abs().max() <= 1.0
    flipped = transform.scale_crop_clip(frames, 20, 10, None, True, MEAN, STD)
    assert torch.equal(flipped, out.flip(-1))


def test_random_transform_is_seeded_and_in_range():
    frames = _frames(t=4, h=48, w=64)
    a = transform.random_scale_crop_clip(frames, [40, 48], 32, True, MEAN, STD, torch.Generator().manual_seed(3))
    b = transform.random_scale_crop_clip(frames, [40, 48], 32, True, MEAN, STD, torch.Generator().manual_seed(3))
    assert a.shape == (3, 4, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    outs = {
        transform.random_scale_crop_clip(frames, [40, 48], 32, True, MEAN, STD, torch.Generator().manual_seed(s)).sum().item()
        for s in range(6)
    }
    assert len(outs) > 1


def test_uniform_crop_offsets():
    assert transform.uniform_crop_offsets(40, 60, 40, 3) == [(0, 0), (0, 10), (0, 20)]
    assert transform.uniform_crop_offsets(60, 40, 40, 3) == [(0, 0), (10, 0), (20, 0)]
    assert transform.uniform_crop_offsets(40, 61, 40, 1) == [(0, 10)]
    with pytest.raises(ValueError):
        transform.uniform_crop_offsets(40, 60, 40, 2)


def test_prepared_frames_are_per_frame_and_views_are_clip_major():
    frames = _frames(t=6, h=30, w=45)
    prepared = transform.prepare_test_frames(frames, 20, MEAN, STD)
    assert prepared.shape == (6, 3, 20, 30)
    rows = torch.tensor([4, 1, 1])
    assert torch.equal(prepared[rows], transform.prepare_test_frames(frames[rows], 20, MEAN, STD))
    views = transform.cut_views(prepared, [torch.tensor([0, 1]), torch.tensor([2, 5])], 20, 3)
    assert views.shape == (6, 3, 2, 20, 20)
    # view 4 = clip 1, crop 1 (centre, x offset 5)
    assert torch.equal(views[4], prepared[[2, 5]].permute(1, 0, 2, 3)[:, :, :, 5:25])
    assert torch.equal(views[0], prepared[[0, 1]].permute(1, 0, 2, 3)[:, :, :, 0:20])


def _keys_weights(t: float, a: float = -0.75):
    """Keys' cubic convolution weights of the 4 taps at distances 1 + t, t, 1 - t, 2 - t."""
    def w(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
        return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a if d < 2 else 0.0
    return [w(1 + t), w(t), w(1 - t), w(2 - t)]


def _bicubic_1d(values, out_size):
    """Hand bicubic resampling of a 1-D signal (half-pixel centres, edge taps clamped)."""
    n = len(values)
    out = []
    for i in range(out_size):
        src = (i + 0.5) * n / out_size - 0.5
        base = int(np.floor(src))
        taps = [values[min(max(base + k, 0), n - 1)] for k in (-1, 0, 1, 2)]
        out.append(sum(v * w for v, w in zip(taps, _keys_weights(src - base))))
    return out


def test_bicubic_resize_equals_the_hand_kernel():
    frames = _frames(t=1, h=5, w=7, seed=3)
    out = transform.resize_to_float(frames, (9, 4), "bicubic")
    assert out.shape == (1, 3, 9, 4) and out.dtype == torch.float32
    image = frames[0].double().numpy()
    rows = np.array([[_bicubic_1d(image[y, :, c], 4) for y in range(5)] for c in range(3)])  # (3, 5, 4)
    expected = np.array([[_bicubic_1d(rows[c, :, x], 9) for x in range(4)] for c in range(3)]).transpose(0, 2, 1)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=2e-3)
    # Overshoot past [0, 255] is kept (float, as the published float resize), unlike uint8 bicubic.
    edge = torch.zeros(1, 1, 8, 3, dtype=torch.uint8)
    edge[:, :, 4:] = 255
    wide = transform.resize_to_float(edge, (1, 16), "bicubic")
    assert wide.min() < 0 and wide.max() > 255
    # Same size: converted, not resampled; bilinear keeps its uint8 path.
    torch.testing.assert_close(transform.resize_to_float(frames, (5, 7), "bicubic"), frames.permute(0, 3, 1, 2).float())
    assert torch.equal(transform.resize_to_float(frames, (3, 4)), transform.resize(frames, (3, 4)).float())
    with pytest.raises(ValueError, match="interpolation must be one of"):
        transform.resize_to_float(frames, (3, 4), "nearest")


def test_bicubic_crop_clip_normalises_the_float_resize():
    frames = _frames(t=2, h=40, w=60)
    out = transform.crop_resize_clip(frames, (4, 6, 30, 20), 10, True, MEAN, STD, "bicubic")
    region = frames[:, 4:34, 6:26].permute(0, 3, 1, 2).float()
    expected = _normalised(F.interpolate(region, size=(10, 10), mode="bicubic", align_corners=False)).flip(-1)
    torch.testing.assert_close(out, expected.permute(1, 0, 2, 3), rtol=1e-5, atol=1e-5)


def test_four_crops_and_quarter_step_offsets():
    # Landscape 224 x 300, crop 224: margin 76.
    assert transform.uniform_crop_offsets(224, 300, 224, 4) == [(0, 0), (0, 19), (0, 38), (0, 76)]
    assert transform.uniform_crop_offsets(224, 300, 224, 3) == [(0, 0), (0, 38), (0, 76)]
    # Margin 77: even 0, 19, 38, 77; quarter steps of 19: 0, 38, 76 (TSM's left, centre, right).
    assert transform.uniform_crop_offsets(224, 301, 224, 4) == [(0, 0), (0, 19), (0, 38), (0, 77)]
    assert transform.uniform_crop_offsets(224, 301, 224, 3, "quarter_steps") == [(0, 0), (0, 38), (0, 76)]
    assert transform.uniform_crop_offsets(224, 301, 224, 4, "quarter_steps") == [(0, 0), (0, 19), (0, 38), (0, 76)]
    assert transform.uniform_crop_offsets(224, 301, 224, 1, "quarter_steps") == [(0, 38)]
    # Across the short side: even (short - size) // 2, quarter steps 2 * ((short - size) // 4).
    assert transform.uniform_crop_offsets(263, 301, 256, 3, "quarter_steps") == [(2, 0), (2, 22), (2, 44)]
    assert transform.uniform_crop_offsets(263, 301, 256, 3) == [(3, 0), (3, 22), (3, 45)]
    # Portrait frames: along the height.
    assert transform.uniform_crop_offsets(300, 224, 224, 4) == [(0, 0), (19, 0), (38, 0), (76, 0)]
    with pytest.raises(ValueError, match="crop offsets must be one of"):
        transform.uniform_crop_offsets(224, 300, 224, 3, "random")


def test_four_crop_views_and_square_test_frames():
    frames = _frames(t=4, h=30, w=50)
    prepared = transform.prepare_test_frames(frames, 20, MEAN, STD)  # short side 20: 20 x 33
    views = transform.cut_views(prepared, [torch.tensor([0, 1]), torch.tensor([2, 3])], 20, 4)
    assert views.shape == (8, 3, 2, 20, 20)
    for k, x in enumerate([0, 3, 6, 13]):  # margin 13: 0, 13 // 4, 13 // 2, 13
        assert torch.equal(views[4 + k], prepared[[2, 3]].permute(1, 0, 2, 3)[:, :, :, x : x + 20])
    square = transform.prepare_test_frames(frames, 20, MEAN, STD, square=True)
    expected = _normalised(F.interpolate(frames.permute(0, 3, 1, 2), size=(20, 20), mode="bilinear",
                                         align_corners=False).float())
    torch.testing.assert_close(square, expected, rtol=1e-5, atol=1e-5)


def _pil_resized(frames, size):
    """PIL's own Image.resize(BILINEAR) of every frame (T, H, W, 3): uint8 (T, 3, h, w)."""
    from PIL import Image

    h, w = size
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize((w, h), Image.BILINEAR)) for f in frames.numpy()]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


def _smooth_frames(t=2, h=96, w=128, seed=0):
    """Frames with smooth structure and noise (what downscaling without a wide kernel aliases)."""
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    base = torch.stack([(x * 3 + y * 2) % 256, 128 + 100 * torch.sin(x / 3.0) * torch.cos(y / 2.0), (x * y) % 256], -1)
    noise = torch.randint(-20, 21, (t, h, w, 3), generator=torch.Generator().manual_seed(seed))
    return (base + noise).clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("size", [(56, 75), (24, 24), (96, 128), (96, 40), (211, 300), (37, 131)])
def test_pil_bilinear_resize_takes_h_w_and_views_as_pil_takes_w_h_and_copies(size):
    """transform.resize(..., "pil_bilinear") calls PIL's Image.resize itself, so this checks the
    wrapping, not PIL's arithmetic: ``size`` is (h, w) where PIL takes (w, h), the output is
    uint8 (T, 3, h, w), and a strided crop view resizes as PIL's crop of a contiguous copy.
    (What the filter itself does is checked against block means by the test below.)"""
    frames = _smooth_frames()
    got = transform.resize(frames, size, "pil_bilinear")
    assert got.dtype == torch.uint8 and got.shape == (2, 3) + size
    assert torch.equal(got, _pil_resized(frames, size))
    region = frames[:, 7:90, 11:70]  # a crop (a strided view) resizes like PIL's crop().resize()
    assert torch.equal(transform.resize(region, size, "pil_bilinear"), _pil_resized(region.contiguous(), size))


def test_pil_bilinear_widens_the_kernel_when_shrinking_unlike_torch_bilinear():
    frames = _smooth_frames()
    pil = transform.resize(frames, (32, 40), "pil_bilinear").int()
    torch_bilinear = transform.resize(frames, (32, 40), "bilinear").int()
    assert (pil - torch_bilinear).abs().max() > 20  # 3x shrink: 2 of every 9 source pixels vs all
    # Each PIL output averages its 3 x 3 source block (a triangle over +-3 pixels, weights
    # renormalised): close to the block mean, unlike torch's 2 x 2 sample.
    block_mean = frames.permute(0, 3, 1, 2).float().unfold(2, 3, 3).unfold(3, 3, 3).mean((-1, -2))[:, :, :32, :40]
    assert (pil[:, :, 2:-2, 2:-2] - block_mean[:, :, 2:-2, 2:-2]).abs().mean() < (
        torch_bilinear[:, :, 2:-2, 2:-2] - block_mean[:, :, 2:-2, 2:-2]).abs().mean()


def test_pil_bilinear_on_a_real_decoded_frame_and_through_the_crop_pipeline(video_dir):
    import os

    from m3a.datasets.benchmark import decode_all

    frames, _, _ = decode_all(os.path.join(video_dir, "a.mp4"))  # real H.264 frames, 96 x 128
    clip = frames[:4]
    for size in [(75, 100), (40, 53), (150, 200)]:
        assert torch.equal(transform.resize(clip, size, "pil_bilinear"), _pil_resized(clip, size))
    # ACTION-Net's training crop: PIL's crop then resize to 24, normalised.
    box = (5, 17, 70, 61)
    y, x, h, w = box
    out = transform.crop_resize_clip(clip, box, 24, False, MEAN, STD, "pil_bilinear")
    expected = _normalised(_pil_resized(clip[:, y : y + h, x : x + w].contiguous(), (24, 24)).float())
    torch.testing.assert_close(out, expected.permute(1, 0, 2, 3), rtol=1e-6, atol=1e-6)
    prepared = transform.prepare_test_frames(clip, 40, MEAN, STD, "pil_bilinear")
    torch.testing.assert_close(prepared, _normalised(_pil_resized(clip, (40, 53)).float()), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        transform.resize_to_float(clip, (40, 53), "nearest")
