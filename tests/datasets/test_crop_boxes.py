"""Training crop boxes against hand-computed sides, pairs and positions."""
import pytest
import torch

from m3a.datasets import crop_boxes

SCALES = [1.0, 0.875, 0.75, 0.66]


def test_multi_scale_sides_by_hand():
    # Short side 256: int(256 * s) = 256, 224, 192, 168 (168.96); none within 3 px of 224 but 224.
    assert crop_boxes.multi_scale_sides(256, 340, 224, SCALES) == [256, 224, 192, 168]
    # EgoGesture's 224 x 224 frames: 224, 196, 168, 147 (147.84).
    assert crop_boxes.multi_scale_sides(224, 224, 224, SCALES) == [224, 196, 168, 147]
    # Short side 258: 258, 225 (225.75) snaps to 224, 193 (193.5), 170 (170.28).
    assert crop_boxes.multi_scale_sides(300, 258, 224, SCALES) == [258, 224, 193, 170]
    # 221 and 227 are 3 px away: not snapped (the rule is strictly closer than 3 px); 223, 226 are.
    assert crop_boxes.multi_scale_sides(260, 260, 224, [0.85, 0.8731]) == [221, 227]
    assert crop_boxes.multi_scale_sides(260, 260, 224, [0.86, 0.87]) == [224, 224]


def test_multi_scale_pairs_follow_the_distortion_rule():
    pairs = crop_boxes.multi_scale_pairs(256, 340, 224, SCALES, max_distort=1)
    assert pairs == [(256, 256), (224, 256),
                     (256, 224), (224, 224), (192, 224),
                     (224, 192), (192, 192), (168, 192),
                     (192, 168), (168, 168)]
    assert crop_boxes.multi_scale_pairs(256, 340, 224, SCALES, max_distort=0) == [
        (256, 256), (224, 224), (192, 192), (168, 168)]
    assert len(crop_boxes.multi_scale_pairs(256, 340, 224, SCALES, max_distort=3)) == 16


def test_the_13_fixed_positions_by_hand():
    # 256 x 340 frame, 192 high x 224 wide box: steps x (340 - 224) // 4 = 29, y (256 - 192) // 4 = 16.
    assert crop_boxes.fixed_offsets(256, 340, 192, 224) == [
        (0, 0), (0, 116), (64, 0), (64, 116), (32, 58),
        (32, 0), (32, 116), (64, 58), (0, 58),
        (16, 29), (16, 87), (48, 29), (48, 87),
    ]


def test_multi_scale_draws_cover_exactly_the_candidates():
    gen = torch.Generator().manual_seed(0)
    pairs = crop_boxes.multi_scale_pairs(256, 340, 224, SCALES, 1)
    seen = set()
    for _ in range(1500):
        y, x, h, w = crop_boxes.multi_scale_crop_box(256, 340, 224, SCALES, 1, gen)
        assert (w, h) in pairs and (y, x) in crop_boxes.fixed_offsets(256, 340, h, w)
        seen.add((y, x, h, w))
    # 10 pairs x 13 positions, minus positions that coincide (the 256-high boxes have y step 0).
    expected = {(y, x, h, w) for w, h in pairs for y, x in crop_boxes.fixed_offsets(256, 340, h, w)}
    assert seen == expected
    again = torch.Generator().manual_seed(0)
    assert crop_boxes.multi_scale_crop_box(256, 340, 224, SCALES, 1, again) == crop_boxes.multi_scale_crop_box(
        256, 340, 224, SCALES, 1, torch.Generator().manual_seed(0))


def test_random_crop_box_stays_inside():
    gen = torch.Generator().manual_seed(1)
    boxes = [crop_boxes.random_crop_box(40, 60, 32, gen) for _ in range(300)]
    assert {b[2:] for b in boxes} == {(32, 32)}
    assert {b[0] for b in boxes} == set(range(9)) and {b[1] for b in boxes} == set(range(29))
    assert crop_boxes.random_crop_box(20, 60, 32, gen)[2:] == (20, 32)  # clipped to the frame


def test_random_resized_crop_box():
    gen = torch.Generator().manual_seed(2)
    # Area 1/4 of 40 x 40 at ratio 1: a 20 x 20 box anywhere.
    boxes = [crop_boxes.random_resized_crop_box(40, 40, [0.25, 0.25], [1.0, 1.0], gen) for _ in range(200)]
    assert {b[2:] for b in boxes} == {(20, 20)} and max(b[0] for b in boxes) == 20 and min(b[1] for b in boxes) == 0
    # No draw fits (area 1, ratio 2 needs w = 57 > 40): the centre box at the nearest ratio.
    assert crop_boxes.random_resized_crop_box(40, 40, [1.0, 1.0], [2.0, 2.0], gen) == (10, 0, 20, 40)
    assert crop_boxes.centre_box_for_ratio(40, 100, [0.75, 4 / 3]) == (0, 23, 40, 53)
    assert crop_boxes.centre_box_for_ratio(40, 50, [0.75, 4 / 3]) == (0, 0, 40, 50)
    # Published range: area fraction and ratio inside their bounds.
    for _ in range(300):
        y, x, h, w = crop_boxes.random_resized_crop_box(240, 427, [0.08, 1.0], [3 / 4, 4 / 3], gen)
        assert 0 <= y <= 240 - h and 0 <= x <= 427 - w
        assert 0.08 * 240 * 427 * 0.95 <= h * w <= 240 * 427


def test_map_box_carries_a_box_to_the_source():
    box = (10, 20, 30, 40)
    assert crop_boxes.map_box(box, (100, 100), (100, 100)) is box
    assert crop_boxes.map_box((0, 0, 24, 24), (24, 24), (48, 64)) == (0, 0, 48, 64)
    # 224 x 224 frame of a 480 x 640 source: y x 480/224, x x 640/224.
    assert crop_boxes.map_box((28, 56, 168, 147), (224, 224), (480, 640)) == (60, 160, 360, 420)


@pytest.mark.parametrize("shape", [(256, 340), (340, 256), (224, 224), (100, 133)])
def test_every_multi_scale_box_fits(shape):
    gen = torch.Generator().manual_seed(3)
    for _ in range(100):
        y, x, h, w = crop_boxes.multi_scale_crop_box(*shape, 224, SCALES, 1, gen)
        assert 0 <= y and y + h <= shape[0] and 0 <= x and x + w <= shape[1]
