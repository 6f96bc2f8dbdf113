"""t-SNE of node embeddings per layer (Fig. 4) on tiny trained models, and the tsne subcommand."""
import os

import matplotlib.image as mpimg
import numpy as np
import pytest

from m3a.config import load_config
from m3a.engine.predict import load_model
from m3a.visualization.tsne import embed_2d, layer_titles, node_embeddings
from tests.visualization.tiny_setup import class_names, load_tool


def test_embed_2d_keeps_structure():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 8, [20.0] * 8])
    x = np.concatenate([c + rng.normal(size=(6, 8)) for c in centres])
    xy = embed_2d(x, seed=0)
    assert xy.shape == (12, 2) and np.isfinite(xy).all()
    within = np.linalg.norm(xy[:6] - xy[:6].mean(0), axis=1).mean()
    between = np.linalg.norm(xy[:6].mean(0) - xy[6:].mean(0))
    assert between > 2 * within
    with pytest.raises(ValueError):
        embed_2d(x[:2])
    # Identical rows (a broadcast clip feature) map to one point instead of crashing t-SNE.
    assert np.array_equal(embed_2d(np.ones((6, 4))), np.zeros((6, 2), np.float32))


def test_node_embeddings_of_lexicon_learners(tiny):
    cfg = load_config(tiny["graph_cfg"])
    model = load_model(cfg, tiny["graph_ckpt"])
    layers = node_embeddings(model)  # no clip feature: the RGB learner is left out
    assert set(layers) == {"AUDIO", "TEXT"}
    assert [e.shape for e in layers["TEXT"]] == [(4, 300), (4, 16), (4, 64)]
    assert layer_titles(3) == ["input", "layer 1", "output"]
    fc = load_model(load_config(tiny["fc_cfg"]), tiny["fc_ckpt"])
    with pytest.raises(ValueError, match="M3A relation head"):
        node_embeddings(fc)


def test_tsne_tool(tiny, tmp_path, capsys):
    tool = load_tool("visualize")
    rc = tool.main(["tsne", "--cfg", tiny["graph_cfg"], "--checkpoint", tiny["graph_ckpt"],
                    "--video", tiny["videos"][0], "--classes", "0,2",
                    "--out", str(tmp_path), "TENSORBOARD.ENABLE", "True", "TENSORBOARD.LOG_DIR", str(tmp_path / "tb")])
    assert rc == 0, capsys.readouterr().err
    for modality in ("rgb", "audio", "text"):
        img = mpimg.imread(tmp_path / f"tsne_{modality}.png")
        assert img.shape[:2] == (420, 1200) and img[..., :3].std() > 0.02
        with np.load(tmp_path / f"tsne_{modality}.npz") as pts:
            assert [pts[k].shape for k in pts.files] == [(len(class_names(tiny)), 2)] * 3
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb"))


def test_tsne_without_video_says_the_rgb_panel_is_missing(tiny, tmp_path, capsys):
    tool = load_tool("visualize")
    rc = tool.main(["tsne", "--checkpoint", tiny["graph_ckpt"], "--cfg", tiny["graph_cfg"], "--out", str(tmp_path)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "warning: no --video: the RGB relation learner needs a clip feature, so tsne_rgb.png is not drawn" in err
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".png")) == ["tsne_audio.png", "tsne_text.png"]
