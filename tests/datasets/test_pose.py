"""Skeleton data: the annotation pickle, frame sampling, the person box, flipping and heatmaps."""
import math
import os
import pickle

import numpy as np
import pytest
import torch

from m3a.datasets.pose import (
    COCO_FLIP_PAIRS, PoseClip, PoseDataError, clip_frames, crop_frames, crop_keypoints, flip_pose,
    load_annotations, person_box, prepare_pose_clip, render_heatmap_volume, rgb_indices,
    sample_pose_indices, scale_keypoints,
)


def direct_heatmaps(kp, scores, img_shape, out_size, sigma):
    """The Gaussian definition evaluated joint by joint, pixel by pixel (float64)."""
    m_count, t_count, v_count = scores.shape
    out = np.zeros((v_count, t_count, out_size, out_size))
    sx, sy = out_size / img_shape[1], out_size / img_shape[0]
    for m in range(m_count):
        for t in range(t_count):
            for v in range(v_count):
                s = float(scores[m, t, v])
                if s < 1e-4:
                    continue
                mx, my = float(kp[m, t, v, 0]) * sx, float(kp[m, t, v, 1]) * sy
                lo_x, hi_x = max(int(mx - 3 * sigma), 0), int(mx + 3 * sigma)
                lo_y, hi_y = max(int(my - 3 * sigma), 0), int(my + 3 * sigma)
                for y in range(lo_y, min(hi_y, out_size - 1) + 1):
                    for x in range(lo_x, min(hi_x, out_size - 1) + 1):
                        g = s * math.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * sigma ** 2))
                        out[v, t, y, x] = max(out[v, t, y, x], g)
    return out


def float32_patches(kp, scores, img_shape, out_size, sigma):
    """The published per-joint loop: float32 keypoints scaled by float32 factors, a float32
    patch over the window, np.maximum into the map."""
    factor = np.array([out_size / img_shape[1], out_size / img_shape[0]], dtype=np.float32)
    kp = kp * factor
    out = np.zeros((scores.shape[2], scores.shape[1], out_size, out_size), np.float32)
    for m, t, v in np.ndindex(*scores.shape):
        mu_x, mu_y, s = kp[m, t, v, 0], kp[m, t, v, 1], scores[m, t, v]
        if s < 1e-4:
            continue
        st_x, ed_x = max(int(mu_x - 3 * sigma), 0), min(int(mu_x + 3 * sigma) + 1, out_size)
        st_y, ed_y = max(int(mu_y - 3 * sigma), 0), min(int(mu_y + 3 * sigma) + 1, out_size)
        x = np.arange(st_x, ed_x, 1, np.float32)
        y = np.arange(st_y, ed_y, 1, np.float32)[:, None]
        if not (len(x) and len(y)):
            continue
        patch = np.exp(-((x - mu_x) ** 2 + (y - mu_y) ** 2) / 2 / sigma ** 2) * s
        out[v, t, st_y:ed_y, st_x:ed_x] = np.maximum(out[v, t, st_y:ed_y, st_x:ed_x], patch)
    return out


def hand_made_skeletons():
    """2 persons x 5 frames x 17 joints on a 100 (H) x 200 (W) image, with overlapping persons,
    low scores, missing (0, 0) joints and joints out of the frame on every side."""
    rng = np.random.default_rng(3)
    kp = rng.uniform(10, 190, (2, 5, 17, 2)).astype(np.float32)
    kp[..., 1] *= 0.5
    scores = rng.uniform(0.2, 1.0, (2, 5, 17)).astype(np.float32)
    kp[1, :, 3] = kp[0, :, 3] + 1.5  # persons overlap at joint 3: the max is kept
    scores[0, 1, 4], scores[1, 1, 4] = 5e-5, 0.0  # below 1e-4: not drawn
    scores[1, 2, 5] = 2e-4  # just above: drawn, faintly
    kp[0, 0, 6], scores[0, 0, 6] = 0, 0  # missing
    kp[0, 2, 7] = (-3.0, 40.0)  # left of the frame, within 3 sigma of pixel 0 after scaling
    kp[:, 3, 8] = (-80.0, 40.0)  # far left (both persons)
    kp[0, 4, 9] = (201.0, 101.0)  # just past the bottom-right corner
    kp[1, 4, 10] = (100.0, 140.0)  # below the frame
    return kp, scores


@pytest.mark.parametrize("sigma, out_size", [(0.6, 56), (1.3, 24)])
def test_heatmaps_equal_the_gaussian_definition(sigma, out_size):
    kp, scores = hand_made_skeletons()
    volume = render_heatmap_volume(kp, scores, (100, 200), out_size=out_size, sigma=sigma)
    assert volume.dtype == np.float32 and volume.shape == (17, 5, out_size, out_size)
    expected = direct_heatmaps(kp, scores, (100, 200), out_size, sigma)
    np.testing.assert_allclose(volume, expected, rtol=3e-5, atol=2e-6)  # float32 arithmetic
    np.testing.assert_array_equal(volume, float32_patches(kp, scores, (100, 200), out_size, sigma))
    assert volume.max() <= 1 and volume[4, 1].max() == 0 and volume[5, 2].max() > 0
    assert volume[7, 2, :, 0].max() > 0 and volume[8, 3].max() == 0


def test_heatmaps_take_the_frames_asked_for():
    kp, scores = hand_made_skeletons()
    picked = render_heatmap_volume(kp, scores, (100, 200), frame_indices=np.array([4, 0, 0]))
    whole = render_heatmap_volume(kp, scores, (100, 200))
    np.testing.assert_array_equal(picked, whole[:, [4, 0, 0]])


def test_heatmap_peak_sits_on_the_scaled_joint():
    kp = np.zeros((1, 1, 17, 2), np.float32)
    kp[0, 0, 2] = (50.0, 25.0)  # a 100 x 200 image -> (14, 14) on 56 x 56
    scores = np.zeros((1, 1, 17), np.float32)
    scores[0, 0, 2] = 0.8
    volume = render_heatmap_volume(kp, scores, (100, 200))
    assert np.unravel_index(volume[2, 0].argmax(), (56, 56)) == (14, 14)
    assert volume[2, 0, 14, 14] == pytest.approx(0.8) and volume.sum() == pytest.approx(
        volume[2, 0, 12:16, 12:16].sum())  # window int(14 -+ 1.8): pixels 12..15


def test_sampling_regimes():
    rng = np.random.RandomState(0)
    short = sample_pose_indices(20, 48, train=True, rng=rng)
    assert len(short) == 48 and set(short) == set(range(20))
    assert np.all(np.diff(short) % 20 == 1)  # consecutive, looping
    np.testing.assert_array_equal(sample_pose_indices(20, 48, train=False), np.arange(48) % 20)
    middle = sample_pose_indices(70, 48, train=True, rng=rng)
    assert len(middle) == 48 and np.all(np.diff(middle) >= 1) and middle[-1] <= 69
    assert (np.diff(middle) - 1).sum() + middle[0] + (69 - middle[-1]) == 70 - 48  # 22 skipped
    long = sample_pose_indices(300, 48, train=True, rng=rng)
    bounds = np.array([i * 300 // 48 for i in range(49)])
    assert np.all((long >= bounds[:-1]) & (long < bounds[1:]))
    draws = {tuple(sample_pose_indices(300, 48, train=True, rng=rng)) for _ in range(3)}
    assert len(draws) == 3


@pytest.mark.parametrize("total", [20, 70, 300])
def test_test_mode_is_deterministic_and_leaves_the_global_generator_alone(total):
    np.random.seed(7)
    expected_next = np.random.rand()
    np.random.seed(7)
    first = sample_pose_indices(total, 48, train=False)
    assert np.random.rand() == expected_next
    np.testing.assert_array_equal(first, sample_pose_indices(total, 48, train=False))


def test_rgb_frames_are_every_third_pose_frame():
    pose = sample_pose_indices(300, 48, train=True, rng=np.random.RandomState(1))
    np.testing.assert_array_equal(rgb_indices(pose, 16), pose[[3 * i for i in range(16)]])
    with pytest.raises(ValueError, match="not a multiple"):
        rgb_indices(pose, 20)


def test_person_box_pads_squares_and_clips():
    kp = np.zeros((2, 3, 17, 2), np.float32)
    kp[0, 0, 0] = (100, 200)
    kp[1, 2, 5] = (140, 300)  # tight box x 100..140, y 200..300 over both persons and frames
    # centre (120, 250); half-height 50 * 1.25 = 62.5; square: half-width 62.5 too.
    assert person_box(kp, (1080, 1920)) == (57, 187, 182, 312)
    assert person_box(kp, (280, 160)) == (57, 187, 160, 280)  # clipped to the image
    small = np.zeros_like(kp)
    small[0, 0, 0], small[0, 1, 1] = (100, 200), (109, 260)  # 9 px wide: the whole frame
    assert person_box(small, (1080, 1920)) == (0, 0, 1920, 1080)
    assert person_box(np.zeros_like(kp), (10, 20)) == (0, 0, 20, 10)
    outside = kp + 5000  # every joint right of and below the image: nothing left after clipping
    assert person_box(outside, (1080, 1920)) == (0, 0, 1920, 1080)


def test_box_crops_keypoints_and_frames_alike():
    kp = np.array([[[[30.0, 20.0], [0.0, 0.0], [50.0, 0.0]]]], np.float32)
    box = (10, 5, 60, 55)
    cropped = crop_keypoints(kp, box)
    np.testing.assert_array_equal(cropped[0, 0], [[20, 15], [0, 0], [40, 0]])
    frames = np.zeros((2, 80, 90, 3), np.uint8)
    frames[:, 20, 30] = 255  # the pixel under joint 0
    out = crop_frames(frames, box)
    assert out.shape == (2, 50, 50, 3) and out[0, 15, 20, 0] == 255


def test_flip_mirrors_and_swaps_the_named_joint_pairs():
    kp = np.zeros((1, 2, 17, 2), np.float32)
    kp[0, :, :, 0] = np.arange(17) + 1  # x = joint index + 1
    kp[0, :, :, 1] = 7
    kp[0, 1, 5] = 0  # missing left shoulder in frame 1
    scores = np.tile(np.arange(17, dtype=np.float32) / 17, (1, 2, 1))
    flipped, flipped_scores = flip_pose(kp, scores, 56)
    assert dict(COCO_FLIP_PAIRS)[5] == 6 and len(COCO_FLIP_PAIRS) == 8
    assert flipped[0, 0, 0, 0] == 56 - 1  # nose stays joint 0
    assert flipped[0, 0, 6, 0] == 56 - 6 and flipped[0, 0, 5, 0] == 56 - 7  # shoulders swapped
    assert flipped_scores[0, 0, 6] == scores[0, 0, 5] and flipped_scores[0, 0, 16] == scores[0, 0, 15]
    assert tuple(flipped[0, 1, 6]) == (0, 0)  # the missing joint stays missing (and moves)
    back, back_scores = flip_pose(flipped, flipped_scores, 56)
    np.testing.assert_array_equal(back, kp)
    np.testing.assert_array_equal(back_scores, scores)


def annotation(name, label=0, frames=5, persons=1):
    rng = np.random.default_rng(label)
    return {"frame_dir": name, "label": label, "img_shape": (1080, 1920),
            "original_shape": (1080, 1920), "total_frames": frames,
            "keypoint": rng.uniform(0, 1000, (persons, frames, 17, 2)).astype(np.float32),
            "keypoint_score": rng.uniform(0, 1, (persons, frames, 17)).astype(np.float32)}


def write(tmp_path, data, name="ann.pkl"):
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def test_reads_the_annotation_file_and_its_splits(tmp_path):
    anns = [annotation("S001C001P001R001A001", 0), annotation("S001C001P002R001A002", 1, persons=2)]
    path = write(tmp_path, {"split": {"xsub_train": ["S001C001P001R001A001"],
                                      "xsub_val": ["S001C001P002R001A002"]}, "annotations": anns})
    assert [a["frame_dir"] for a in load_annotations(path)] == [a["frame_dir"] for a in anns]
    val = load_annotations(path, "xsub_val")
    assert len(val) == 1 and val[0]["label"] == 1 and val[0]["keypoint"].shape == (2, 5, 17, 2)
    assert len(load_annotations(write(tmp_path, anns, "list.pkl"))) == 2
    with pytest.raises(PoseDataError, match="no split 'xview_val' .splits: xsub_train, xsub_val"):
        load_annotations(path, "xview_val")


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("edit, words", [
    (lambda a: a.pop("keypoint_score"), r"annotation 1: missing field\(s\) keypoint_score"),
    (lambda a: a.update(keypoint=np.zeros((5, 17, 2), np.float32)),
     r"annotation 1 \(bad\): keypoint must be an array \(persons, frames, joints, 2\), got \(5, 17, 2\)"),
    (lambda a: a.update(keypoint_score=np.zeros((1, 4, 17), np.float32)),
     r"keypoint_score must be an array of shape \(1, 5, 17\), got \(1, 4, 17\)"),
    (lambda a: a.update(label=-1), "label must be an integer >= 0"),
    (lambda a: a.update(label=[1, 1]), "label must be an integer >= 0 or a non-empty list of distinct ones"),
    (lambda a: a.update(label=[]), r"or a non-empty list of distinct ones \(multi-label\), got \[\]"),
    (lambda a: a.update(img_shape=(1080,)), r"img_shape must be \(height, width\)"),
    (lambda a: a.update(total_frames=9), "total_frames 9 but keypoint has 5 frames"),
    (lambda a: a.update(label=RunsCode()), "refusing to load 'posix.system'"),
])
def test_malformed_annotations_are_clear_errors(edit, words, tmp_path):
    bad = annotation("bad", 1)
    edit(bad)
    path = write(tmp_path, {"split": {}, "annotations": [annotation("good"), bad]})
    with pytest.raises(PoseDataError, match=words) as err:
        load_annotations(path)
    assert str(err.value).startswith(path)


def test_annotation_errors_are_one_line_input_errors(tmp_path):
    from m3a.utils.parser import expected_errors

    assert issubclass(PoseDataError, expected_errors())


def test_not_an_annotation_file(tmp_path):
    with pytest.raises(PoseDataError, match="expected dict.split=..., annotations=.*got str"):
        load_annotations(write(tmp_path, "hello"))


def test_pose_clip_boxes_the_sampled_frames_and_flips_keypoints_with_the_frames():
    ann = annotation("clip", frames=150, persons=2)
    ann["keypoint"][..., 0] = ann["keypoint"][..., 0] * 0.2 + 600  # persons in x 600..800
    ann["keypoint"][..., 1] = ann["keypoint"][..., 1] * 0.4 + 300  # and y 300..700
    clip = prepare_pose_clip(ann, train=False)
    assert clip.heatmaps.shape == (17, 48, 56, 56) and clip.heatmaps.dtype == np.float32
    np.testing.assert_array_equal(clip.rgb_indices, clip.pose_indices[::3])
    assert clip.box == person_box(ann["keypoint"][:, clip.pose_indices], (1080, 1920))
    x0, y0, x1, y1 = clip.box
    assert x1 - x0 == y1 - y0 and not clip.flipped  # square, inside the frame
    kp = scale_keypoints(crop_keypoints(ann["keypoint"][:, clip.pose_indices], clip.box),
                         (y1 - y0, x1 - x0), 56)
    expected = render_heatmap_volume(kp, ann["keypoint_score"][:, clip.pose_indices], (56, 56))
    np.testing.assert_array_equal(clip.heatmaps, expected)
    # Training with flip probability 1: the keypoints are mirrored and the joints swapped.
    flipped = prepare_pose_clip(ann, train=True, rng=np.random.RandomState(0), flip_prob=1.0)
    again = prepare_pose_clip(ann, train=True, rng=np.random.RandomState(0), flip_prob=0.0)
    np.testing.assert_array_equal(flipped.pose_indices, again.pose_indices)
    assert flipped.flipped and not again.flipped
    kp, scores = flip_pose(
        scale_keypoints(crop_keypoints(ann["keypoint"][:, again.pose_indices], again.box),
                        (again.box[3] - again.box[1], again.box[2] - again.box[0]), 56),
        ann["keypoint_score"][:, again.pose_indices], 56)
    np.testing.assert_array_equal(flipped.heatmaps, render_heatmap_volume(kp, scores, (56, 56)))


def test_clip_frames_crop_the_box_resize_and_mirror():
    frames = torch.zeros(16, 540, 960, 3, dtype=torch.uint8)  # half the annotation's 1080 x 1920
    frames[:, 100:150, 300:350] = 200  # the person: (600..700, 200..300) in annotation pixels
    clip = PoseClip(np.zeros(1), np.arange(48), np.arange(0, 48, 3), (600, 200, 700, 300), False)
    out = clip_frames(frames, clip, 32, img_shape=(1080, 1920))
    assert out.shape == (3, 16, 32, 32) and torch.all(out == 200)
    frames[:, 100:150, 325:350] = 0  # right half of the box dark
    out = clip_frames(frames, clip, 32, img_shape=(1080, 1920))
    assert out[0, 0, :, :15].min() == 200 and out[0, 0, :, 17:].max() == 0
    mirrored = clip_frames(frames, clip._replace(flipped=True), 32, img_shape=(1080, 1920))
    assert torch.equal(mirrored, out.flip(-1))
    whole = clip_frames(frames[:, 100:150, 300:350], clip, 32)  # pre-cropped video: used whole
    assert torch.equal(whole, out)
