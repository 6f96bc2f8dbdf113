"""Transforms on uint8 frames: crop boxes, resizing, flips, uniform crops and normalisation."""
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
    box = frames[:, y : y + h, x : x + w].permute(0, 3, 1, 2).float()
    expected = _normalised(F.interpolate(box, size=(10, 10), mode="bilinear", align_corners=False))
    torch.testing.assert_close(out, expected.permute(1, 0, 2, 3), rtol=1e-5, atol=1e-5)
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
