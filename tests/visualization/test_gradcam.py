"""Grad-CAM maps on a tiny trained model, overlays, grid PNG, mp4, and the gradcam subcommand."""
import os

import av
import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from m3a.config import load_config
from m3a.engine.predict import load_model, load_video_views
from m3a.visualization import gradcam
from tests.visualization.tiny_setup import class_names, load_tool


@pytest.mark.parametrize("variant", ["graph", "fc"])
def test_maps_match_hand_computation(tiny, variant):
    cfg = load_config(tiny[f"{variant}_cfg"])
    model = load_model(cfg, tiny[f"{variant}_ckpt"])
    clip = load_video_views(cfg, tiny["videos"][2])[:1]
    classes = list(range(cfg.MODEL.NUM_CLASSES))
    cams, scores = gradcam.GradCAM(model)(clip, classes)
    assert cams.shape == (4, 8, 32, 32)
    assert cams.min() >= 0 and cams.max() <= 1
    with torch.no_grad():
        assert torch.allclose(scores, model(clip)[0])
    fmap = model.forward_features(clip).detach().requires_grad_(True)
    probs = model.head(model.neck(fmap))[0]  # neck and head as in the model's forward, at eval
    informative = 0
    for c in classes:
        (grad,) = torch.autograd.grad(torch.logit(probs[c]), fmap, retain_graph=True)
        raw = torch.relu((grad[0].mean((1, 2, 3))[:, None, None, None] * fmap[0]).sum(0))
        up = torch.nn.functional.interpolate(raw[None, None], size=(8, 32, 32), mode="trilinear",
                                             align_corners=False)[0, 0]
        if up.max() > up.min():
            want = (up - up.min()) / (up.max() - up.min())
            informative += 1
            assert cams[c].max() == 1 and cams[c].std() > 0  # non-constant, full range
        else:  # no positive evidence anywhere: Grad-CAM's map is empty
            want = torch.zeros_like(up)
        assert torch.allclose(cams[c], want, atol=1e-4)
    assert informative >= 1


def test_normalize_and_overlay():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 2.0]], [[3.0, 3.0], [3.0, 3.0]]])
    norm = gradcam.normalize_maps(maps)
    assert torch.allclose(norm[0], torch.tensor([[0.0, 0.5], [1.0, 0.5]]))
    assert torch.equal(norm[1], torch.zeros(2, 2))
    frames = np.full((2, 4, 4, 3), 100, np.uint8)
    out = gradcam.overlay(frames, np.zeros((2, 4, 4)), alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert np.array_equal(out[0, 0, 0], np.round(50 + 0.5 * np.array([0, 0, 127.5])).astype(np.uint8))


def test_gradcam_tool_writes_png_mp4_and_tensorboard(tiny, tmp_path, capsys):
    tool = load_tool("visualize")
    video = tiny["no_audio"]
    rc = tool.main(["gradcam", "--cfg", tiny["fc_cfg"], "--checkpoint", tiny["fc_ckpt"], "--video", video,
                    "--classes", f"{class_names(tiny)[0]},3", "--out", str(tmp_path), "--tensorboard", str(tmp_path / "tb")])
    assert rc == 0, capsys.readouterr().err
    png = mpimg.imread(tmp_path / "test-0003_gradcam.png")
    assert png.shape[:2] == (round(1.7 * 3 * 100), round(1.6 * 8 * 100))  # 3 rows (input + 2 classes) x 8 frames
    assert png[..., :3].std() > 0.05
    cams = np.load(tmp_path / "test-0003_gradcam.npy")
    assert cams.shape == (2, 8, 32, 32) and cams.min() >= 0 and cams.max() <= 1
    assert any(c.max() == 1 and c.std() > 0 for c in cams)  # at least one informative, non-constant map
    with av.open(str(tmp_path / "test-0003_gradcam.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (32, 32 * 3, 3)
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb"))
    rc = tool.main(["gradcam", "--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "--video", video,
                    "--classes", "flying", "--out", str(tmp_path)])
    assert rc == 1 and "unknown class 'flying'" in capsys.readouterr().err
