"""Audio embedders: the VGGish network with saved random weights, and the log-mel fallback."""
import logging

import numpy as np
import pytest
import torch

from m3a.prep.audio_embedding import build_audio_embedder
from m3a.prep.logmel import log_mel_examples
from m3a.prep.vggish import VGGish, VGGishPostprocessor, load_postprocessor, load_vggish
from tests.prep.media import tone


@pytest.fixture(scope="module")
def vggish_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vggish")
    torch.manual_seed(0)
    model = VGGish()
    weights = str(folder / "vggish.pth")
    torch.save(model.state_dict(), weights)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    pca = str(folder / "pca.pth")
    torch.save({"pca_eigen_vectors": torch.from_numpy(q), "pca_means": torch.zeros(128, 1)}, pca)
    np.savez(str(folder / "pca.npz"), pca_eigen_vectors=q, pca_means=np.zeros((128, 1)))
    return weights, pca, str(folder / "pca.npz"), model


def test_state_dict_layout_matches_the_pytorch_port():
    keys = {k: tuple(v.shape) for k, v in VGGish().state_dict().items()}
    assert keys["features.0.weight"] == (64, 1, 3, 3)
    assert keys["features.3.weight"] == (128, 64, 3, 3)
    assert keys["features.6.weight"] == (256, 128, 3, 3)
    assert keys["features.8.weight"] == (256, 256, 3, 3)
    assert keys["features.11.weight"] == (512, 256, 3, 3)
    assert keys["features.13.weight"] == (512, 512, 3, 3)
    assert keys["embeddings.0.weight"] == (4096, 12288)
    assert keys["embeddings.2.weight"] == (4096, 4096)
    assert keys["embeddings.4.weight"] == (128, 4096)
    assert len(keys) == 18
    assert sum(v.numel() for v in VGGish().parameters()) == 72141184


def test_vggish_loaded_from_disk_is_deterministic(vggish_files):
    weights, _, _, model = vggish_files
    loaded = load_vggish(weights)
    x = torch.from_numpy(log_mel_examples(tone(2.0, 880.0)))
    with torch.no_grad():
        a = loaded(x.unsqueeze(1))
        b = loaded(x)
        c = model.eval()(x.unsqueeze(1))
    assert a.shape == (2, 128)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_vggish_flattens_in_hwc_order():
    model = VGGish().eval()
    x = torch.randn(1, 1, 96, 64)
    with torch.no_grad():
        feat = model.features(x)
        ours = model.embeddings[0](feat.permute(0, 2, 3, 1).reshape(1, -1))
        manual = torch.zeros(4096)
        w = model.embeddings[0].weight
        for h in range(6):
            for wi in range(4):
                base = (h * 4 + wi) * 512
                manual += w[:, base : base + 512] @ feat[0, :, h, wi]
        manual += model.embeddings[0].bias
    torch.testing.assert_close(ours[0], manual, rtol=1e-4, atol=1e-4)


def test_postprocessor_quantises(vggish_files):
    _, pca_pth, pca_npz, _ = vggish_files
    post = load_postprocessor(pca_pth)
    post_npz = load_postprocessor(pca_npz)
    emb = np.random.default_rng(1).standard_normal((5, 128)) * 3
    out = post(emb)
    assert out.dtype == np.uint8 and out.shape == (5, 128)
    projected = np.clip((post.eigen_vectors @ emb.T).T, -2, 2)
    np.testing.assert_array_equal(out, np.round((projected + 2) * 255 / 4).astype(np.uint8))
    np.testing.assert_array_equal(out, post_npz(emb))
    assert VGGishPostprocessor(np.eye(128), np.zeros(128))(np.full((1, 128), 9.0)).max() == 255


def test_build_vggish_embedder(vggish_files):
    weights, pca, _, _ = vggish_files
    embedder = build_audio_embedder(weights, pca)
    wave = tone(3.0, 500.0)
    out = embedder.embed(wave)
    assert embedder.name == "vggish" and out.shape == (3, 128)
    with torch.no_grad():
        raw = embedder.model(torch.from_numpy(log_mel_examples(wave))).numpy()
    np.testing.assert_array_equal(out, load_postprocessor(pca)(raw).astype(np.float32))
    np.testing.assert_array_equal(out, embedder.embed(wave))


def test_fallback_embedder_warns_and_is_band_stats(caplog):
    with caplog.at_level(logging.WARNING):
        emb = build_audio_embedder()
    assert "fallback" in caplog.text
    wave = tone(2.0, 1000.0)
    out = emb.embed(wave)
    ex = log_mel_examples(wave)
    assert out.shape == (2, 128) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :64], ex.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(out[:, 64:], ex.std(axis=1), rtol=1e-4, atol=1e-6)


def test_wrong_weight_file_is_rejected(tmp_path):
    path = str(tmp_path / "bad.pth")
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises((ValueError, RuntimeError)):
        load_vggish(path)
    with pytest.raises(FileNotFoundError):
        load_vggish(str(tmp_path / "missing.pth"))
