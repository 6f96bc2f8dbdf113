"""The configured spatial pipelines: the default is unchanged, the published recipes (multi-scale
crop, EgoGesture's square resize, RandAugment + random-resized crop, bicubic, 4 test crops)
give the boxes and views they should, seeded and on real decoded items."""
import os
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m3a.config import ConfigError, load_config
from m3a.config.defaults import get_cfg
from m3a.datasets import clip_pipeline, crop_boxes, transform
from m3a.datasets.rand_augment import parse_policy
from m3a.datasets.video_dataset import build_dataset
from tests.datasets.conftest import small_cfg, write_list

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def _data(**keys):
    cfg = get_cfg()
    data = cfg.DATA
    data.MEAN, data.STD, data.TRAIN_CROP_SIZE = MEAN, STD, 24
    for key, value in keys.items():
        data[key] = value
    return data


def _frames(t=3, h=48, w=64, seed=0):
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _expected(frames, box, flip, interpolation="bilinear", size=24):
    return transform.crop_resize_clip(frames, box, size, flip, MEAN, STD, interpolation)


def test_default_pipeline_draws_exactly_as_before():
    frames = _frames()
    data = _data(TRAIN_JITTER_SCALES=[30, 40])
    for seed in range(4):
        got = clip_pipeline.train_clip(frames, data, torch.Generator().manual_seed(seed))
        before = transform.random_scale_crop_clip(
            frames, [30, 40], 24, True, MEAN, STD, torch.Generator().manual_seed(seed))
        assert torch.equal(got, before)


def test_multi_scale_crop_on_frames_as_decoded():
    frames = _frames(h=48, w=64)
    data = _data(TRAIN_RESIZE="none", TRAIN_CROP="multi_scale", RANDOM_FLIP=False)
    # Short side 48: sides 48, 42, 36, 31 (31.68); pairs one scale step apart; 13 fixed positions.
    pairs = crop_boxes.multi_scale_pairs(48, 64, 24, data.MULTI_SCALES, 1)
    assert crop_boxes.multi_scale_sides(48, 64, 24, data.MULTI_SCALES) == [48, 42, 36, 31]
    for seed in range(6):
        gen = torch.Generator().manual_seed(seed)
        index = int(torch.randint(len(pairs), (), generator=gen))
        w, h = pairs[index]
        y, x = crop_boxes.fixed_offsets(48, 64, h, w)[int(torch.randint(13, (), generator=gen))]
        got = clip_pipeline.train_clip(frames, data, torch.Generator().manual_seed(seed))
        assert torch.equal(got, _expected(frames, (y, x, h, w), False)), seed


def test_square_resize_then_multi_scale_maps_the_box_to_the_source():
    # EgoGesture: frames taken to 24 x 24 (aspect ignored), multi-scale sides 24, 21, 18, 15.
    frames = _frames(h=48, w=64)
    data = _data(TRAIN_RESIZE="square", TRAIN_JITTER_SCALES=[24, 24], TRAIN_CROP="multi_scale", RANDOM_FLIP=True)
    gen = torch.Generator().manual_seed(3)
    seen = set()
    for _ in range(60):
        state = gen.get_state()
        clip = clip_pipeline.train_clip(frames, data, gen)
        replay = torch.Generator()
        replay.set_state(state)
        assert int(torch.randint(24, 25, (), generator=replay)) == 24  # the square side draw
        box = crop_boxes.multi_scale_crop_box(24, 24, 24, data.MULTI_SCALES, 1, replay)
        flip = bool(torch.rand((), generator=replay) < 0.5)
        seen.add(box[2:])
        assert torch.equal(clip, _expected(frames, crop_boxes.map_box(box, (24, 24), (48, 64)), flip))
    assert seen <= {(h, w) for w, h in crop_boxes.multi_scale_pairs(24, 24, 24, data.MULTI_SCALES, 1)}
    assert len(seen) >= 6


def test_ssv2_action_net_recipe_is_pils_crop_then_resize():
    """SSv2's ACTION-Net training (no pre-resize, multi-scale crop, PIL's bilinear) gives exactly
    the released pipeline's pixels: PIL's crop of the box, resized to the crop size by PIL."""
    from PIL import Image

    frames = _frames(t=2, h=48, w=64)
    data = _data(TRAIN_RESIZE="none", TRAIN_CROP="multi_scale", INTERPOLATION="pil_bilinear", RANDOM_FLIP=False)
    for seed in range(4):
        replay = torch.Generator().manual_seed(seed)
        y, x, h, w = crop_boxes.multi_scale_crop_box(48, 64, 24, data.MULTI_SCALES, 1, replay)
        released = [np.asarray(Image.fromarray(f.numpy()).crop((x, y, x + w, y + h)).resize((24, 24), Image.BILINEAR))
                    for f in frames]
        expected = torch.from_numpy(np.stack(released)).permute(3, 0, 1, 2).float()
        expected = transform.normalize(expected.contiguous(), MEAN, STD, channel_dim=0)
        got = clip_pipeline.train_clip(frames, data, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def _pil_frames(frames):
    from PIL import Image

    return [Image.fromarray(f.numpy()) for f in frames]


def _released_clip(images):
    """The release's tensor of PIL frames: /255, normalised, (3, T, h, w)."""
    stacked = torch.from_numpy(np.stack([np.asarray(i) for i in images])).permute(3, 0, 1, 2).float()
    return transform.normalize(stacked.contiguous(), MEAN, STD, channel_dim=0)


@pytest.mark.parametrize("dataset", ["jester", "egogesture"])
def test_action_net_pil_pipeline_resizes_whole_frames_first_as_released(dataset):
    """Jester: GroupScale(40) (PIL, long side truncated: 23 x 39 -> 40 x 67, not 68), multi-scale
    crop of that, PIL resize to 24; val: the centre 24 crop of the scaled frame. EgoGesture:
    frames resized to 24 x 24 first. Test frames: scaled whole, long side truncated."""
    from PIL import Image

    frames = _frames(t=2, h=23, w=39)
    square = dataset == "egogesture"
    data = _data(TRAIN_RESIZE="square" if square else "short_side", TEST_RESIZE="square" if square else "short_side",
                 TRAIN_CROP="multi_scale", TRAIN_JITTER_SCALES=[24, 24] if square else [40, 40],
                 INTERPOLATION="pil_bilinear", RANDOM_FLIP=False)
    size = (24, 24) if square else (40, 67)
    scaled = [i.resize(size[::-1], Image.BILINEAR) for i in _pil_frames(frames)]
    for seed in range(4):
        replay = torch.Generator().manual_seed(seed)
        torch.randint(24, 25, (), generator=replay)  # the scale side draw
        y, x, h, w = crop_boxes.multi_scale_crop_box(*size, 24, data.MULTI_SCALES, 1, replay)
        expected = _released_clip([i.crop((x, y, x + w, y + h)).resize((24, 24), Image.BILINEAR) for i in scaled])
        got = clip_pipeline.train_clip(frames, data, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # Validation: centre crop int(round((67 - 24) / 2)) = 22 (halves to even), top (40 - 24) / 2 = 8.
    top, left = (0, 0) if square else (8, 22)
    expected = _released_clip([i.crop((left, top, left + 24, top + 24)) for i in scaled])
    torch.testing.assert_close(clip_pipeline.val_clip(frames, data), expected, rtol=1e-6, atol=1e-6)
    test_size = 24 if square else 40
    prepared = transform.prepare_test_frames(frames, test_size, MEAN, STD, "pil_bilinear", square=square)
    torch.testing.assert_close(prepared, _released_clip(scaled).transpose(0, 1), rtol=1e-6, atol=1e-6)


def test_pil_bilinear_default_crop_trains_on_the_frames_val_and_test_see():
    """pil_bilinear with the default short_side + random crop scales whole frames as val/test
    do: 23 x 39 -> 40 x 67 (long side truncated, not rounded to 68), and the training crop is a
    window of exactly those frames (no resampling of a 24 crop at crop size 24)."""
    frames = _frames(t=2, h=23, w=39)
    data = _data(TRAIN_JITTER_SCALES=[40, 40], INTERPOLATION="pil_bilinear", RANDOM_FLIP=False)
    prepared = transform.prepare_test_frames(frames, 40, MEAN, STD, "pil_bilinear")
    assert tuple(prepared.shape[-2:]) == (40, 67)
    lefts = set()
    for seed in range(12):
        replay = torch.Generator().manual_seed(seed)
        assert int(torch.randint(40, 41, (), generator=replay)) == 40  # the short side draw
        y, x, h, w = crop_boxes.random_crop_box(40, 67, 24, replay)
        lefts.add(x)
        got = clip_pipeline.train_clip(frames, data, torch.Generator().manual_seed(seed))
        window = prepared[:, :, y : y + h, x : x + w].transpose(0, 1)
        torch.testing.assert_close(got, window, rtol=1e-6, atol=1e-6)
    assert max(lefts) <= 67 - 24 and len(lefts) > 4
    val = clip_pipeline.val_clip(frames, data)  # centre 24 of the same 40 x 67 frames
    torch.testing.assert_close(val, prepared[:, :, 8:32, 22:46].transpose(0, 1), rtol=1e-6, atol=1e-6)


def test_square_validation_and_test_see_the_whole_frame():
    frames = _frames(t=2, h=48, w=64)
    data = _data(TEST_RESIZE="square", TRAIN_JITTER_SCALES=[24, 24])
    whole = F.interpolate(frames.permute(0, 3, 1, 2), size=(24, 24), mode="bilinear", align_corners=False)
    expected = transform.normalize(whole.float().transpose(0, 1).contiguous(), MEAN, STD, channel_dim=0)
    torch.testing.assert_close(clip_pipeline.val_clip(frames, data), expected, rtol=1e-5, atol=1e-5)
    cfg = get_cfg()
    cfg.DATA.MEAN, cfg.DATA.STD, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_RESIZE = MEAN, STD, 24, "square"
    cfg.TEST.NUM_SPATIAL_CROPS = 1
    views = clip_pipeline.test_views(frames, [torch.tensor([0, 1])], cfg.DATA, cfg.TEST)
    torch.testing.assert_close(views[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sampling", ["bilinear", "bicubic", "random"])
def test_rand_augment_then_random_resized_crop_bicubic(sampling):
    frames = _frames(h=40, w=60)
    policy = "rand-m7-n4-mstd0.5-inc1"
    data = _data(RAND_AUGMENT=policy, TRAIN_RESIZE="none", TRAIN_CROP="random_resized", INTERPOLATION="bicubic",
                 RANDOM_FLIP=False, RAND_AUGMENT_INTERPOLATION=sampling)
    for seed in range(5):
        replay = torch.Generator().manual_seed(seed)
        augmented = parse_policy(policy, sampling)(frames, replay)
        box = crop_boxes.random_resized_crop_box(40, 60, data.RRC_SCALE, data.RRC_RATIO, replay)
        got = clip_pipeline.train_clip(frames, data, torch.Generator().manual_seed(seed))
        assert torch.equal(got, _expected(augmented, box, False, "bicubic")), seed


def test_published_recipes_on_real_items(tmp_path, video_dir):
    write_list(os.path.join(tmp_path, "train-t.csv"), {"a.mp4": (1,), "b.mp4": (2,)})
    write_list(os.path.join(tmp_path, "test-t.csv"), {"a.mp4": (1,), "b.mp4": (2,)})
    recipes = {
        "multi_scale": dict(TRAIN_CROP="multi_scale", TRAIN_JITTER_SCALES=[40, 40]),
        "action_net_pil": dict(TRAIN_CROP="multi_scale", TRAIN_JITTER_SCALES=[40, 40], INTERPOLATION="pil_bilinear"),
        "egogesture": dict(TRAIN_CROP="multi_scale", TRAIN_RESIZE="square", TEST_RESIZE="square",
                           TRAIN_JITTER_SCALES=[32, 32]),
        "m2clip_ssv2": dict(RAND_AUGMENT="rand-m7-n4-mstd0.5-inc1", TRAIN_RESIZE="none",
                            TRAIN_CROP="random_resized", INTERPOLATION="bicubic", RANDOM_FLIP=False),
    }
    for name, keys in recipes.items():
        cfg = small_cfg(str(tmp_path), PATH_PREFIX=video_dir, **keys)
        train = build_dataset("mmit", cfg, "train")
        for index in range(2):  # a (96 x 128) and b (128 x 96, portrait)
            torch.manual_seed(index)
            clip, *_ = train[index]
            torch.manual_seed(index)
            assert clip.shape == (3, 4, 32, 32) and torch.equal(clip, train[index][0]), name
    cfg = small_cfg(str(tmp_path), PATH_PREFIX=video_dir, INTERPOLATION="bicubic")
    cfg.TEST.NUM_SPATIAL_CROPS = 4
    views, _, _, ok = build_dataset("mmit", cfg, "test")[0]
    assert ok and views.shape == (8, 3, 4, 40, 40)  # 2 clips x 4 crops


def test_config_checks_name_the_key():
    cases = [
        (["DATA.TRAIN_CROP", "multiscale"], "DATA.TRAIN_CROP must be one of random, multi_scale, random_resized, "
                                            "got 'multiscale'; did you mean 'multi_scale'?"),
        (["DATA.TRAIN_RESIZE", "short"], "DATA.TRAIN_RESIZE must be one of"),
        (["DATA.INTERPOLATION", "nearest"], "DATA.INTERPOLATION must be one of bilinear, bicubic, pil_bilinear"),
        (["DATA.RAND_AUGMENT_INTERPOLATION", "nearest"],
         "DATA.RAND_AUGMENT_INTERPOLATION must be one of bilinear, bicubic, random"),
        (["TEST.NUM_SPATIAL_CROPS", "2"], "TEST.NUM_SPATIAL_CROPS must be 1, 3 or 4, got 2"),
        (["TEST.CROP_OFFSETS", "quarters"], "TEST.CROP_OFFSETS must be one of even, quarter_steps"),
        (["DATA.RAND_AUGMENT", "randaug-m7"], "DATA.RAND_AUGMENT: RandAugment policy must look like 'rand-m7-n4"),
        (["DATA.RAND_AUGMENT", "rand-n4"], "DATA.RAND_AUGMENT: RandAugment policy 'rand-n4' needs a magnitude m"),
        (["DATA.MULTI_SCALES", "[1.0, 1.5]"], "DATA.MULTI_SCALES must list scales in (0, 1], got [1.0, 1.5]"),
        (["DATA.RRC_SCALE", "[0.5, 0.1]"], "DATA.RRC_SCALE must be"),
        (["DATA.RRC_RATIO", "[0.0, 1.0]"], "DATA.RRC_RATIO must be"),
    ]
    for opts, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(None, opts)
