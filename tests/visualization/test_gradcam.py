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
    """On the last feature map: Grad-CAM by hand, upsampled, divided by the common maximum."""
    cfg = load_config(tiny[f"{variant}_cfg"])
    model = load_model(cfg, tiny[f"{variant}_ckpt"])
    clip = load_video_views(cfg, tiny["videos"][2])[:1]
    classes = list(range(cfg.MODEL.NUM_CLASSES))
    cam = gradcam.GradCAM(model, target_layer=model.gradcam_layer())
    cams, scores = cam(clip, classes)
    assert cams.shape == (4, 8, 32, 32) and cam.feature_shape[1] == 1  # T' = 8 / 8
    assert cams.min() >= 0 and cams.max() == 1
    with torch.no_grad():
        assert torch.allclose(scores, model(clip)[0])
    fmap = model.forward_features(clip).detach().requires_grad_(True)
    probs = model.head(model.neck(fmap))[0]  # neck and head as in the model's forward, at eval
    raw = []
    for c in classes:
        (grad,) = torch.autograd.grad(torch.logit(probs[c]), fmap, retain_graph=True)
        one = torch.relu((grad[0].mean((1, 2, 3))[:, None, None, None] * fmap[0]).sum(0))
        raw.append(torch.nn.functional.interpolate(one[None, None], size=(8, 32, 32), mode="trilinear",
                                                   align_corners=False)[0, 0])
    raw = torch.stack(raw).detach()
    assert torch.allclose(cams, raw / raw.max(), atol=1e-4)
    peaks = raw.flatten(1).max(1).values
    weaker = int(peaks.argmin())
    assert cams[weaker].max() == pytest.approx(float(peaks[weaker] / peaks.max()), abs=1e-4)  # not stretched
    # One temporal step: the map is the same in every frame.
    assert torch.allclose(cams, cams[:, :1].expand_as(cams))


def _changing_clip(cfg, tiny):
    """8 frames: the first 4 from one test video, the last 4 from another."""
    first = load_video_views(cfg, tiny["videos"][0])[:1]
    second = load_video_views(cfg, tiny["videos"][1])[:1]
    return torch.cat([first[:, :, :4], second[:, :, 4:]], dim=2)


def test_maps_vary_in_time_when_the_content_does(tiny):
    cfg = load_config(tiny["graph_cfg"])
    model = load_model(cfg, tiny["graph_ckpt"])
    clip = _changing_clip(cfg, tiny)
    cam = gradcam.GradCAM(model)
    cams, _ = cam(clip, list(range(cfg.MODEL.NUM_CLASSES)))
    assert cam.layer_name == "backbone.layer3" and cam.feature_shape[1] == 2  # the deepest stage with T' >= 2
    assert cams.max() == 1
    informative = [c for c, empty in enumerate(gradcam.empty_maps(cams)) if not empty]
    assert informative
    for c in informative:
        first, last = cams[c, :2].mean(0), cams[c, -2:].mean(0)
        assert (first - last).abs().max() > 0.05  # the two halves get different maps
        per_frame = cams[c].flatten(1).mean(1)
        assert per_frame.std() > 0
    # min_steps 1 keeps the last feature map: one map for the whole clip.
    flat, _ = gradcam.GradCAM(model, min_steps=1)(clip, informative)
    assert torch.allclose(flat, flat[:, :1].expand_as(flat))


def test_normalize_across_classes_and_empty_maps():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 2.0]], [[0.0, 0.04], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    norm = gradcam.normalize_maps(maps)
    assert torch.allclose(norm[0], torch.tensor([[0.0, 0.5], [1.0, 0.5]]))
    assert torch.allclose(norm[1], torch.tensor([[0.0, 0.01], [0.0, 0.0]]))  # weak evidence stays weak
    assert torch.equal(norm[2], torch.zeros(2, 2))
    assert gradcam.empty_maps(norm) == [False, False, True]
    assert torch.equal(gradcam.normalize_maps(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_overlay():
    frames = np.full((2, 4, 4, 3), 100, np.uint8)
    out = gradcam.overlay(frames, np.zeros((2, 4, 4)), alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    assert np.array_equal(out[0, 0, 0], np.round(50 + 0.5 * np.array([0, 0, 127.5])).astype(np.uint8))


def test_label_panels_enlarges_and_captions():
    panels = [np.zeros((3, 32, 40, 3), np.uint8), np.full((3, 32, 40, 3), 80, np.uint8)]
    video = gradcam.label_panels(panels, ["input", "a rather long class name that is cut (0.93)"])
    assert video.shape == (3, 14 + 32 * 4, 2 * 40 * 4, 3)  # factor 4 to reach 160 px
    header = video[:, :14]
    assert header[:, :, :160].max() > 200 and header[:, :, 160:].max() > 200  # white text in both captions
    assert np.array_equal(video[:, 14:, 160:], panels[1].repeat(4, 1).repeat(4, 2))


def test_gradcam_tool_writes_png_mp4_and_tensorboard(tiny, tmp_path, capsys):
    tool = load_tool("visualize")
    video = tiny["no_audio"]
    rc = tool.main(["gradcam", "--cfg", tiny["fc_cfg"], "--checkpoint", tiny["fc_ckpt"], "--video", video,
                    "--classes", f"{class_names(tiny)[0]},3", "--out", str(tmp_path), "--tensorboard", str(tmp_path / "tb")])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Grad-CAM on backbone.layer3 (T' x H' x W' = 2 x 4 x 4 for a clip of 8 x 32 x 32" in out
    assert len([line for line in out.splitlines() if line.startswith("  ") and ": score " in line]) == 2
    png = mpimg.imread(tmp_path / "test-0003_gradcam.png")
    # 3 rows (input + 2 classes) x 8 frames, and the colour bar on the right
    assert png.shape[:2] == (round(1.7 * 3 * 100), round((1.6 * 8 + 0.9) * 100))
    assert png[..., :3].std() > 0.05
    bar = png[50:450, -70:-40, :3]  # the colour bar: jet from blue (bottom) to red (top)
    assert bar[..., 0].max() > 0.9 and bar[..., 2].max() > 0.9
    cams = np.load(tmp_path / "test-0003_gradcam.npy")
    assert cams.shape == (2, 8, 32, 32) and cams.min() >= 0 and cams.max() <= 1
    assert cams.max() == 1 or cams.max() == 0  # common scale: the strongest map reaches 1
    with av.open(str(tmp_path / "test-0003_gradcam.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (14 + 160, 160 * 3, 3)  # captions above 5x enlarged panels
    assert frames[0][:14, 160:320].max() > 200  # a caption is drawn above the first class
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb"))
    rc = tool.main(["gradcam", "--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "--video", video,
                    "--classes", "flying", "--out", str(tmp_path)])
    assert rc == 1 and "unknown class 'flying'" in capsys.readouterr().err
