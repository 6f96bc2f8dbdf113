"""Single-video prediction on the tiny demo data: library numbers vs a direct computation, and
tools/predict.py (text, JSON, broken and audio-less videos, errors)."""
import json
import os

import pytest
import torch

from m3a.config import load_config
from m3a.datasets.decoder import DecodeError
from m3a.engine.predict import load_model, load_video_views, predict_videos, score_views, top_classes
from m3a.utils.class_names import load_class_names
from tests.visualization.tiny_setup import class_names, load_tool, tiny_run


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, tiny_demo_dir):
    return tiny_run(str(tmp_path_factory.getbasetemp() / "tiny_zoo"), tiny_demo_dir)


def test_views_of_one_video(tiny):
    cfg = load_config(tiny["graph_cfg"])
    views = load_video_views(cfg, tiny["videos"][0])  # 86 x 64 frames: three distinct crops
    assert views.shape == (2 * 3, 3, 8, 32, 32)
    assert not torch.equal(views[0], views[3])  # two different clips (clip-major order)
    assert not torch.equal(views[0], views[2])  # left and right crops of the first clip
    with pytest.raises(DecodeError, match="broken.mp4"):
        load_video_views(cfg, tiny["broken"])


@pytest.mark.parametrize("variant", ["graph", "fc"])
def test_scores_match_direct_max_over_views(tiny, variant):
    cfg = load_config(tiny[f"{variant}_cfg"])
    model = load_model(cfg, tiny[f"{variant}_ckpt"])
    saved = torch.load(tiny[f"{variant}_ckpt"], weights_only=True)["model_state"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    views = load_video_views(cfg, tiny["videos"][1])
    with torch.no_grad():
        direct = torch.stack([model(v[None])[0] for v in views]).amax(0)
    combined = score_views(model, views, "max", chunk=4)
    assert torch.allclose(combined, direct, atol=1e-5)
    assert ((combined > 0) & (combined < 1)).all()  # sigmoid scores at eval
    names = class_names(tiny)
    top = top_classes(combined, names, 3)
    assert [t["index"] for t in top] == torch.argsort(direct, descending=True)[:3].tolist()
    assert top[0]["name"] == names[top[0]["index"]] and top[0]["score"] >= top[1]["score"] >= top[2]["score"]


def test_predict_videos_reports_broken_video(tiny):
    cfg = load_config(tiny["trsfmr_cfg"])
    model = load_model(cfg, tiny["trsfmr_ckpt"])
    videos = [tiny["no_audio"], tiny["broken"], tiny["videos"][0]]
    results = predict_videos(cfg, model, videos, load_class_names(cfg), k=4)
    assert [r.ok for r in results] == [True, False, True]  # the video without audio works
    assert "broken.mp4" in results[1].error and results[1].topk == []
    assert sorted(t["index"] for t in results[0].topk) == [0, 1, 2, 3]


def test_mismatched_checkpoint_is_refused(tiny):
    from m3a.utils.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="not in the checkpoint"):
        load_model(load_config(tiny["graph_cfg"]), tiny["fc_ckpt"])


def test_predict_tool_text_and_json(tiny, capsys):
    tool = load_tool("predict")
    names = class_names(tiny)
    videos = [tiny["videos"][0], tiny["broken"], tiny["no_audio"]]
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "--topk", "2", "--json",
                    *videos, "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1"])
    out, err = capsys.readouterr()
    assert rc == 1  # one video failed
    doc = json.loads(out)
    assert [d["ok"] for d in doc] == [True, False, True]
    assert len(doc[0]["topk"]) == 2 and doc[0]["topk"][0]["name"] in names
    assert "broken.mp4" in err and "Traceback" not in err
    # Text mode with overrides: one centre view combined by sum equals that view's score.
    cfg = load_config(tiny["graph_cfg"], ["TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1"])
    model = load_model(cfg, tiny["graph_ckpt"])
    with torch.no_grad():
        want = model(load_video_views(cfg, videos[2]))[0]
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "--topk", "1", videos[2],
                    "TEST.NUM_ENSEMBLE_VIEWS", "1", "TEST.NUM_SPATIAL_CROPS", "1", "DATA.ENSEMBLE_METHOD", "sum"])
    out, _ = capsys.readouterr()
    assert rc == 0
    best = int(want.argmax())
    assert out.splitlines()[0] == videos[2]
    assert out.splitlines()[1] == f"  {float(want[best]):.4f}  {names[best]} ({best})"


def test_predict_tool_errors(tiny, capsys):
    tool = load_tool("predict")
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", "/nonexistent.pyth", "x.mp4"])
    assert rc == 1 and "checkpoint not found" in capsys.readouterr().err
    rc = tool.main(["--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"], "x.mp4", "DATA.NOPE", "1"])
    assert rc == 1 and "DATA.NOPE" in capsys.readouterr().err


def test_mismatch_names_the_model_keys_the_checkpoint_was_trained_with(tiny):
    from m3a.engine.predict import load_trained_model
    from m3a.utils.checkpoint import CheckpointError, save_checkpoint

    fc_cfg = load_config(tiny["fc_cfg"])
    model = load_model(fc_cfg, tiny["fc_ckpt"])
    out = os.path.dirname(tiny["fc_ckpt"]) + "/with_cfg"
    path = save_checkpoint(out, model, None, None, 1, fc_cfg)  # records its config
    with pytest.raises(CheckpointError, match=r"trained with M3A.MODE NONE \(config: GRAPH\)"):
        load_trained_model(path, load_config(tiny["graph_cfg"]))
