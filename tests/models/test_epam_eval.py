"""EPAM-Net testing reports per-stream (rgb, pose) and fused metrics, end to end on the pose demo
(tools/make_pose_demo_data.py, configs/EPAM/DEMO_EPAM.yaml) with a tiny schedule; under two
real gloo processes the stream scores are gathered like the fused ones."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from m3a.config import load_config
from m3a.engine import test_loop
from m3a.engine.run import train_and_test
from m3a.engine.test_loop import METRICS_FILE, PREDICTIONS_FILE
from m3a.models import build_model
from m3a.utils import checkpoint as cu
from m3a.utils import metrics
from tests.engine.test_ddp import free_port
from tests.tools.test_make_pose_demo_data import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def demo_cfg(data: str, out: str):
    cfg = load_config(os.path.join(ROOT, "configs", "EPAM", "DEMO_EPAM.yaml"))
    cfg.DATA.PATH_TO_DATA_DIR, cfg.OUTPUT_DIR = data, out
    cfg.SOLVER.MAX_EPOCH, cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1, 2
    cfg.TRAIN.BATCH_SIZE = cfg.TEST.BATCH_SIZE = 4
    cfg.DATA_LOADER.NUM_WORKERS, cfg.DATA_LOADER.PERSISTENT_WORKERS = 0, False
    return cfg


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """(data folder, output folder) of one tiny two-stream training + test on the pose demo."""
    root = tmp_path_factory.mktemp("pose_demo")
    data, out = str(root / "data"), str(root / "out")
    assert load_tool().main(["--out", data, "--samples-per-class", "4", "--size", "48"]) == 0
    train_and_test(demo_cfg(data, out))
    return data, out


def read(out: str):
    with open(os.path.join(out, METRICS_FILE)) as f:
        summary = json.load(f)
    return summary, dict(np.load(os.path.join(out, PREDICTIONS_FILE)))


def test_the_stream_sets_are_each_classifier_alone():
    cfg = demo_cfg("unused", "unused")
    cfg.BN.NORM_TYPE = "batchnorm"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert model.extra_score_names() == ["rgb", "pose"]
    x = [torch.randn(2, *t.shape[1:]) for t in model.example_inputs(cfg, 2)]
    with torch.no_grad():
        fused, extra = model.forward_with_extra_scores(x)
        features = model.pooled_features(x)  # [rgb | pose], widths 432 and 216 scaled by 8 / 24
        rgb_logits = model.head.rgb_cls_head(features[:, :144])
        pose_logits = model.head.pose_cls_head(features[:, 144:])
    assert model.head.streams == [("rgb", 144), ("pose", 72)]
    torch.testing.assert_close(extra["rgb"], torch.softmax(rgb_logits, 1))
    torch.testing.assert_close(extra["pose"], torch.softmax(pose_logits, 1))
    torch.testing.assert_close(fused, torch.softmax(rgb_logits + pose_logits, 1))
    torch.testing.assert_close(fused, model(x))


def test_the_stream_classifiers_run_once_per_test_batch():
    """The fused scores and the stream sets share one pass of each stream's classifier."""
    cfg = demo_cfg("unused", "unused")
    model = build_model(cfg).eval()
    calls = []
    for stream in ("rgb", "pose"):
        getattr(model.head, f"{stream}_cls_head").register_forward_hook(lambda m, i, o, s=stream: calls.append(s))
    x = [torch.randn(2, *t.shape[1:]) for t in model.example_inputs(cfg, 2)]
    with torch.no_grad():
        model.forward_with_extra_scores(x)
    assert calls == ["rgb", "pose"]


def test_per_stream_and_fused_metrics_in_every_test_output(demo_run):
    _, out = demo_run
    summary, preds = read(out)
    fused, rgb, pose, labels = preds["scores"], preds["scores_rgb"], preds["scores_pose"], preds["labels"]
    assert fused.shape == rgb.shape == pose.shape == (4, 4) and labels.tolist() == [0, 1, 2, 3]
    # The model's fused scores are the softmax of the summed stream logits: with each stream's
    # scores the softmax of its logits, softmax(log rgb + log pose) gives them back.
    recombined = torch.softmax(torch.from_numpy(np.log(rgb) + np.log(pose)), dim=1).numpy()
    np.testing.assert_allclose(fused, recombined, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rgb.sum(1), 1.0, rtol=1e-5)
    assert not np.allclose(rgb, pose)
    extra = summary["extra_scores"]
    assert sorted(extra) == ["pose", "rgb"]
    for name, scores in (("rgb", rgb), ("pose", pose)):
        assert extra[name]["top1"] == pytest.approx(metrics.topk_accuracy(scores, labels, 1))
        assert extra[name]["top5"] == pytest.approx(metrics.topk_accuracy(scores, labels, 5)) == 1.0
        assert extra[name]["mean_class_accuracy"] == pytest.approx(
            balanced_accuracy_score(labels, scores.argmax(1)))
    assert summary["top1"] == pytest.approx(metrics.topk_accuracy(fused, labels, 1))
    assert summary["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(labels, fused.argmax(1)))
    line = [l for l in open(os.path.join(out, "stdout.log")) if "test results:" in l][-1]
    assert f"| mean class acc {summary['mean_class_accuracy']:.4f} |" in line
    assert f"| rgb: top-1 {extra['rgb']['top1']:.4f} top-5 1.0000" in line
    assert f"| pose: top-1 {extra['pose']['top1']:.4f} top-5 1.0000" in line


def test_single_stream_model_reports_no_extra_sets(demo_run, tmp_path):
    data, out = demo_run
    cfg = demo_cfg(data, str(tmp_path / "pose_only"))
    cfg.MODEL.BACKBONE, cfg.MODEL.NECK, cfg.MODEL.LOSS_FUNC = "xshift_pose", "global_avgpool", "cross_entropy"
    cfg.POSE.STREAMS = ["pose"]
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1
    train_and_test(cfg)
    summary, preds = read(cfg.OUTPUT_DIR)
    assert "extra_scores" not in summary and not any(k.startswith("scores_") for k in preds)
    assert 0.0 <= summary["mean_class_accuracy"] <= 1.0


def ddp_test(cfg_args) -> None:
    """Entry point of the child interpreter: test the checkpoint with two gloo ranks."""
    from m3a.utils import distributed as du

    data, out, checkpoint = cfg_args
    cfg = demo_cfg(data, out)
    cfg.TRAIN.ENABLE, cfg.NUM_CPU_PROCESSES = False, 2
    cfg.TEST.CHECKPOINT_FILE_PATH = checkpoint
    cfg.TEST.BATCH_SIZE = 1  # 4 videos over 2 ranks: every rank sees several batches
    du.launch_job(cfg, test_loop.test, init_method=f"tcp://127.0.0.1:{free_port()}")


@pytest.mark.slow
def test_two_process_test_gathers_the_stream_scores(demo_run, tmp_path):
    data, out = demo_run
    ddp_out = str(tmp_path / "ddp")
    code = ("import sys; from tests.models.test_epam_eval import ddp_test; ddp_test(sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", code, data, ddp_out, cu.get_last_checkpoint(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    single, single_preds = read(out)
    ddp, ddp_preds = read(ddp_out)
    for key in ("scores", "scores_rgb", "scores_pose", "labels", "indices"):
        np.testing.assert_allclose(ddp_preds[key], single_preds[key], rtol=1e-5, atol=1e-6)
    assert ddp["num_videos"] == 4
    for name in ("rgb", "pose"):
        assert ddp["extra_scores"][name] == pytest.approx(single["extra_scores"][name]), name
