"""Dataset pose_rgb: [rgb, heatmaps] items from an annotation pickle and real H.264 videos."""
import json
import os
import pickle

import numpy as np
import pytest
import torch

from m3a.config import get_cfg
from m3a.datasets.pose import prepare_pose_clip
from m3a.datasets.video_dataset import build_dataset
from m3a.utils.video_writer import write_h264

FRAMES = 60  # frame i of a video is uniformly grey 10 + 4 i


def grey_video(path, num_frames=FRAMES, size=(64, 96)):
    frames = (np.full(size + (3,), 10 + 4 * i, np.uint8) for i in range(num_frames))
    return write_h264(str(path), frames, 30, size[1], size[0], options={"crf": "0"})


def annotation(name, label, persons=1):
    rng = np.random.default_rng(label)
    kp = rng.uniform(0, 200, (persons, FRAMES, 17, 2)).astype(np.float32) + [700, 400]
    return {"frame_dir": name, "label": label, "img_shape": (1080, 1920), "total_frames": FRAMES,
            "keypoint": kp, "keypoint_score": rng.uniform(0.3, 1, (persons, FRAMES, 17)).astype(np.float32)}


@pytest.fixture(scope="module")
def pose_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pose_data")
    anns = [annotation("S001C001P001R001A001", 0), annotation("S001C001P002R001A002", 1, 2),
            annotation("S001C001P003R001A003", 2)]
    for ann in anns[:2]:
        grey_video(root / f"{ann['frame_dir']}_rgb.mp4")
    with open(root / "ntu_2d.pkl", "wb") as f:  # the third sample's video is missing
        pickle.dump({"split": {"xsub_train": [a["frame_dir"] for a in anns[:2]],
                               "xsub_val": [a["frame_dir"] for a in anns]},
                     "annotations": anns}, f)
    return str(root), anns


def pose_cfg(root, streams=("rgb", "pose")):
    cfg = get_cfg()
    cfg.DATA.PATH_TO_DATA_DIR = root
    cfg.POSE.ANN_FILE, cfg.POSE.VIDEO_TEMPLATE = "ntu_2d.pkl", "{}_rgb.mp4"
    cfg.POSE.STREAMS = list(streams)
    cfg.DATA.MULTI_LABEL, cfg.MODEL.NUM_CLASSES = False, 3
    cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = 16, 32, 32
    cfg.DATA.MEAN, cfg.DATA.STD, cfg.DATA.NUM_RETRIES = [0.0] * 3, [1.0] * 3, 3
    return cfg


def frame_numbers(rgb):
    """The video frame each RGB frame shows (grey level 10 + 4 i, values scaled to 0-1)."""
    return torch.round((rgb.mean(dim=(0, 2, 3)) * 255 - 10) / 4).long()


def test_val_items_are_deterministic_and_take_every_third_pose_frame(pose_data):
    root, anns = pose_data
    cfg = pose_cfg(root)
    cfg.POSE.VAL_SPLIT = "xsub_train"
    dataset = build_dataset("pose_rgb", cfg, "val")
    (rgb, heatmaps), label, index, ok = dataset[1]
    assert rgb.shape == (3, 16, 32, 32) and heatmaps.shape == (17, 48, 56, 56)
    assert (int(label), index, ok) == (1, 1, True)
    clip = prepare_pose_clip(anns[1], train=False)
    np.testing.assert_array_equal(heatmaps.numpy(), clip.heatmaps)
    assert frame_numbers(rgb).tolist() == clip.pose_indices[::3].tolist()
    again = dataset[1][0]
    assert torch.equal(again[0], rgb) and torch.equal(again[1], heatmaps)


def test_training_items_flip_rgb_and_pose_together(pose_data):
    root, _ = pose_data
    cfg = pose_cfg(root)
    cfg.POSE.VIDEOS_CROPPED = False  # cut every clip to its person box
    cfg.POSE.FLIP_PROB = 1.0
    dataset = build_dataset("pose_rgb", cfg, "train")
    torch.manual_seed(0)
    (rgb, heatmaps), _, _, _ = dataset[0]
    torch.manual_seed(0)
    clip = dataset.clip(0)
    assert clip.flipped and torch.equal(heatmaps, torch.from_numpy(clip.heatmaps))
    assert frame_numbers(rgb).tolist() == clip.rgb_indices.tolist()
    torch.manual_seed(1)
    other = dataset.clip(0)
    assert not np.array_equal(other.pose_indices, clip.pose_indices)


def test_streams_choose_the_inputs(pose_data):
    root, _ = pose_data
    (pose_only,), _, _, _ = build_dataset("pose_rgb", pose_cfg(root, ["pose"]), "train")[0]
    assert pose_only.shape == (17, 48, 56, 56)
    (rgb_only,), _, _, _ = build_dataset("pose_rgb", pose_cfg(root, ["rgb"]), "train")[0]
    assert rgb_only.shape == (3, 16, 32, 32)
    with pytest.raises(ValueError, match="POSE.STREAMS must list rgb and/or pose"):
        build_dataset("pose_rgb", pose_cfg(root, ["pose", "pose"]), "train")


def test_test_items_have_one_view_and_a_missing_video_scores_zeros(pose_data):
    root, _ = pose_data
    dataset = build_dataset("pose_rgb", pose_cfg(root), "test")
    assert len(dataset) == 3 and [e.labels for e in dataset.entries] == [(0,), (1,), (2,)]
    assert dataset.entries[2].path == dataset.paths[2] and dataset.list_path.endswith("ntu_2d.pkl")
    views, label, index, ok = dataset[0]
    assert [v.shape for v in views] == [(1, 3, 16, 32, 32), (1, 17, 48, 56, 56)] and ok
    views, label, index, ok = dataset[2]
    assert not ok and int(label) == 2 and all(not v.any() for v in views)
    cfg = pose_cfg(root)
    cfg.DATA.TRAIN_CROP_SIZE = 24  # val clips have the training size
    inputs, label, index, ok = build_dataset("pose_rgb", cfg, "val")[2]  # never replaced
    assert (int(label), index, ok) == (2, 2, False)
    assert [x.shape for x in inputs] == [(3, 16, 24, 24), (17, 48, 56, 56)]


def test_two_stream_model_trains_and_tests_end_to_end(pose_data, tmp_path):
    """A tiny EPAM-Net through the engine: [rgb, heatmaps] batches, the two-stream loss,
    checkpoints, and the test outputs (the sample whose video is missing counted as failed)."""
    from m3a.engine.run import train_and_test
    from m3a.engine.test_loop import METRICS_FILE
    from m3a.utils.logging import read_json_stats

    root, _ = pose_data
    cfg = pose_cfg(root)
    cfg.NUM_GPUS, cfg.OUTPUT_DIR, cfg.LOG_MODEL_INFO = 0, str(tmp_path / "run"), False
    cfg.MODEL.BACKBONE, cfg.MODEL.HEAD, cfg.MODEL.NUM_CLASSES = "epam_net", "i3d", 3
    cfg.MODEL.LOSS_FUNC, cfg.MODEL.HEAD_ACT, cfg.DATA.MULTI_LABEL = "stream_cross_entropy", "softmax", False
    cfg.EPAM.BASE_CHANNELS, cfg.EPAM.RGB_STAGE_BLOCKS, cfg.EPAM.POSE_STAGE_BLOCKS = 4, [1, 1, 1, 1], [1, 1, 1]
    cfg.DATA.NUM_FRAMES, cfg.EPAM.POSE_FRAMES, cfg.EPAM.HEATMAP_SIZE = 2, 6, 8
    cfg.TRAIN.DATASET = cfg.TEST.DATASET = "pose_rgb"
    cfg.POSE.VAL_SPLIT = "xsub_train"
    cfg.TRAIN.BATCH_SIZE, cfg.TEST.BATCH_SIZE = 2, 2
    cfg.TEST.NUM_ENSEMBLE_VIEWS = cfg.TEST.NUM_SPATIAL_CROPS = 1
    cfg.DATA_LOADER.NUM_WORKERS, cfg.SOLVER.MAX_EPOCH, cfg.SOLVER.LR_POLICY = 0, 2, "constant"
    cfg.SOLVER.BASE_LR, cfg.SOLVER.WARMUP_EPOCHS = 0.01, 0.0
    train_and_test(cfg)
    losses = [e["loss"] for e in read_json_stats(cfg.OUTPUT_DIR, "train_epoch")]
    assert len(losses) == 2 and all(np.isfinite(losses))
    with open(os.path.join(cfg.OUTPUT_DIR, METRICS_FILE)) as f:
        metrics = json.load(f)
    assert metrics["num_videos"] == 2 and metrics["failed_videos"] == 1
    assert metrics["failed_paths"][0].endswith("S001C001P003R001A003_rgb.mp4")
    assert 0.0 <= metrics["top1"] <= 1.0


def test_multi_label_annotations_give_multi_hot_targets(tmp_path, pose_data):
    """M-MiT-style pose data: a list of class ids per sample, read with DATA.MULTI_LABEL True;
    with it False a sample of several labels is an error naming it."""
    root, anns = pose_data
    multi = [dict(anns[0], label=[0, 2]), dict(anns[1], label=[1])]
    with open(tmp_path / "mmit_2d.pkl", "wb") as f:
        pickle.dump({"split": {"train": [a["frame_dir"] for a in multi]}, "annotations": multi}, f)
    cfg = pose_cfg(root)
    cfg.POSE.ANN_FILE, cfg.POSE.TRAIN_SPLIT = str(tmp_path / "mmit_2d.pkl"), "train"
    cfg.DATA.MULTI_LABEL = True
    dataset = build_dataset("pose_rgb", cfg, "train")
    assert [e.labels for e in dataset.entries] == [(0, 2), (1,)]
    assert dataset.label(0).tolist() == [1.0, 0.0, 1.0] and dataset.label(1).tolist() == [0.0, 1.0, 0.0]
    cfg.DATA.MULTI_LABEL = False
    with pytest.raises(ValueError, match=r"annotation 0 \(S001C001P001R001A001\) has 2 labels but DATA.MULTI_LABEL"):
        build_dataset("pose_rgb", cfg, "train")
    cfg.DATA.MULTI_LABEL, cfg.MODEL.NUM_CLASSES = True, 2
    with pytest.raises(ValueError, match="has label 2, not below MODEL.NUM_CLASSES 2"):
        build_dataset("pose_rgb", cfg, "train")
