"""Single-video prediction: library numbers vs a direct computation, and tools/predict.py."""
import json
import os

import pytest
import torch

from m3a.config import load_config
from m3a.datasets.decoder import DecodeError
from m3a.engine.predict import load_model, load_video_views, predict_videos, score_views, top_classes
from m3a.utils.class_names import load_class_names
from tests.visualization.tiny_setup import CLASSES, load_tool, tiny_run


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return tiny_run(str(tmp_path_factory.getbasetemp() / "tiny_zoo"))


def test_views_are_decoded_once_per_video(tiny):
    cfg = load_config(tiny["graph_cfg"])
    views = load_video_views(cfg, os.path.join(tiny["data"], "with_audio.mp4"))  # 56 x 40: wide
    assert views.shape == (2 * 3, 3, 8, 32, 32)
    assert not torch.equal(views[0], views[3])  # two different clips (clip-major order)
    assert not torch.equal(views[0], views[2])  # left and right crops of the first clip
    with pytest.raises(DecodeError, match="broken.mp4"):
        load_video_views(cfg, os.path.join(tiny["data"], "broken.mp4"))


@pytest.mark.parametrize("variant", ["graph", "fc"])
def test_scores_match_direct_max_over_views(tiny, variant):
    cfg = load_config(tiny[f"{variant}_cfg"])
    model = load_model(cfg, tiny[f"{variant}_ckpt"])
    saved = torch.load(tiny[f"{variant}_ckpt"], weights_only=True)["model_state"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    views = load_video_views(cfg, os.path.join(tiny["data"], "with_audio.mp4"))
    with torch.no_grad():
        direct = torch.stack([model(v[None])[0] for v in views]).amax(0)
    combined = score_views(model, views, "max", chunk=4)
    assert torch.allclose(combined, direct, atol=1e-5)
    assert ((combined > 0) & (combined < 1)).all()  # sigmoid scores at eval
    top = top_classes(combined, CLASSES, 3)
    assert [t["index"] for t in top] == torch.argsort(direct, descending=True)[:3].tolist()
    assert top[0]["name"] == CLASSES[top[0]["index"]] and top[0]["score"] >= top[1]["score"] >= top[2]["score"]


def test_predict_videos_reports_broken_video(tiny):
    cfg = load_config(tiny["trsfmr_cfg"])
    model = load_model(cfg, tiny["trsfmr_ckpt"])
    videos = [os.path.join(tiny["data"], v) for v in ("no_audio.mp4", "broken.mp4", "with_audio.mp4")]
    results = predict_videos(cfg, model, videos, load_class_names(cfg), k=4)
    assert [r.ok for r in results] == [True, False, True]
    assert "broken.mp4" in results[1].error and results[1].topk == []
    assert len(results[0].topk) == 4


def test_predict_tool_text_and_json(tiny, capsys):
    tool = load_tool("predict")
    videos = [os.path.join(tiny["data"], v) for v in ("with_audio.mp4", "broken.mp4", "no_audio.mp4")]
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "--topk", "2", "--json",
                    *videos, "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1"])
    out, err = capsys.readouterr()
    assert rc == 1  # one video failed
    doc = json.loads(out)
    assert [d["ok"] for d in doc] == [True, False, True]
    assert len(doc[0]["topk"]) == 2 and doc[0]["topk"][0]["name"] in CLASSES
    assert "broken.mp4" in err and "Traceback" not in err
    # Text mode with the overrides: one centre view, combined by sum, equals the single view's score.
    cfg = load_config(tiny["graph_cfg"], ["TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1"])
    model = load_model(cfg, tiny["graph_ckpt"])
    with torch.no_grad():
        want = model(load_video_views(cfg, videos[2]))[0]
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "--topk", "1", videos[2],
                    "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1", "DATA.ENSEMBLE_METHOD", "sum"])
    out, _ = capsys.readouterr()
    assert rc == 0
    best = int(want.argmax())
    assert out.splitlines()[1].split() == [f"{float(want[best]):.4f}", CLASSES[best], f"({best})"]


def test_predict_tool_errors(tiny, capsys):
    tool = load_tool("predict")
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", "/nonexistent.pyth", "x.mp4"])
    assert rc == 1 and "checkpoint not found" in capsys.readouterr().err
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "x.mp4", "DATA.NOPE", "1"])
    assert rc == 1 and "DATA.NOPE" in capsys.readouterr().err
