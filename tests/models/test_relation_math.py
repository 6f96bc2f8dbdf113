"""The relation learners and joins agree with a direct numpy computation of DESIGN.md section 1."""
import random

import numpy as np
import pytest
import torch

from m3a.models.m3a_head import M3AJointLearning
from m3a.models.node_features import load_m3a_inputs
from m3a.models.relation_learner import RelationLearner, normalize_adjacency, sinusoidal_encoding
from tests.models.helpers import tiny_cfg

N = 5


def leaky(x):
    return np.where(x > 0, x, 0.2 * x)


def np_adjacency(psi, t, p):
    a = (psi >= t).astype(np.float64)
    if p > 0:
        a = a * p / (a.sum(0, keepdims=True) + 1e-6)
    a = a + np.eye(len(a))
    d = np.diag(a.sum(1) ** -0.5)
    return (a @ d).T @ d


def np_gcn(learner, x, adj):
    layers = sorted(k for k in learner.relation_learner if k.startswith("graph_"))
    for i, name in enumerate(layers):
        g = learner.relation_learner[name]
        x = adj @ (x @ g.weight.detach().numpy()) + g.bias.detach().numpy()
        if i < len(layers) - 1:
            x = leaky(x)
    return x


def arr(t):
    return t.detach().numpy().astype(np.float64)


def np_layer_norm(x, ln):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + ln.eps) * arr(ln.weight) + arr(ln.bias)


def np_attention(mha, q, k, v):
    e, h = mha.embed_dim, mha.num_heads
    if mha.in_proj_weight is not None:
        wq, wk, wv = np.split(arr(mha.in_proj_weight), 3)
    else:
        wq, wk, wv = arr(mha.q_proj_weight), arr(mha.k_proj_weight), arr(mha.v_proj_weight)
    bq, bk, bv = np.split(arr(mha.in_proj_bias), 3)
    qp, kp, vp = q @ wq.T + bq, k @ wk.T + bk, v @ wv.T + bv
    dh = e // h
    heads = []
    for i in range(h):
        sl = slice(i * dh, (i + 1) * dh)
        s = qp[..., sl] @ np.swapaxes(kp[..., sl], -1, -2) / np.sqrt(dh)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        heads.append(s @ vp[..., sl])
    return np.concatenate(heads, -1) @ arr(mha.out_proj.weight).T + arr(mha.out_proj.bias)


def np_transformer(learner, x, cross=False):
    layers = learner.relation_learner
    n = learner.nlayers
    for i in range(n):
        enc = layers[f"trsfmr_encoder_{i + 1}"]
        x = np_layer_norm(x + np_attention(enc.self_attn, x, x, x), enc.norm)
        if i < n - 1 or not cross:
            x = leaky(x)
    if not cross:
        fc = layers[f"trsfmr_decoder_{n}_fc"]
        x = x @ arr(fc.weight).T + arr(fc.bias)
    return x


# ---------------------------------------------------------------------------------------------
def test_adjacency_by_hand():
    psi = np.array([[0, 0.5, 0.1], [0.2, 0, 0.9], [0.4, 0.4, 0]])
    adj = normalize_adjacency(psi, 0.4, 0.25).numpy()
    np.testing.assert_allclose(adj, np_adjacency(psi, 0.4, 0.25), atol=1e-6)
    # A = [[0,1,0],[0,0,1],[1,1,0]]; reweighted + I rows [1, .125, 0], [0, 1, .25], [.25, .125, 1]
    r = np.array([1.125, 1.25, 1.375])
    assert adj[1, 0] == pytest.approx(0.125 / np.sqrt(r[1] * r[0]), abs=1e-6)
    assert adj[0, 1] == pytest.approx(0.0, abs=1e-9)
    assert adj[2, 2] == pytest.approx(1.0 / r[2], abs=1e-6)


def test_adjacency_p0_is_plain_a_plus_i():
    rng = np.random.default_rng(3)
    psi = rng.random((N, N))
    np.fill_diagonal(psi, 0)
    a = (psi >= 0.4).astype(np.float64) + np.eye(N)
    r = a.sum(1)
    expected = np.array([[a[j, i] / np.sqrt(r[i] * r[j]) for j in range(N)] for i in range(N)])
    np.testing.assert_allclose(normalize_adjacency(psi, 0.4, 0.0).numpy(), expected, atol=1e-6)


def test_gcn_matches_numpy():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    adj = normalize_adjacency(rng.random((N, N)), 0.4, 0.25)
    learner = RelationLearner("GRAPH", 3, 4, 8, 3)
    x = torch.randn(N, 4)
    np.testing.assert_allclose(
        learner(x, adj).detach().numpy(), np_gcn(learner, arr(x), arr(adj)), rtol=1e-4, atol=1e-5
    )
    xb = torch.randn(2, N, 4)  # batched node features (visual modality)
    np.testing.assert_allclose(
        learner(xb, adj).detach().numpy(), np_gcn(learner, arr(xb), arr(adj)), rtol=1e-4, atol=1e-5
    )
    assert list(learner.relation_learner) == ["graph_1", "graph_2", "graph_3"]


@pytest.mark.parametrize("cross", [False, True])
def test_transformer_matches_numpy(cross):
    torch.manual_seed(1)
    learner = RelationLearner("TRSFMR", 2, 6, 16, 3, nhead=2, cross=cross).eval()
    x = torch.randn(2, N, 6)
    expected = np_transformer(learner, arr(x), cross)
    np.testing.assert_allclose(learner(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    fc = learner.relation_learner["trsfmr_decoder_2_fc"] if not cross else None
    if fc is not None:
        assert float(fc.weight.detach().abs().max()) <= 0.1
    else:
        assert not any("decoder" in k for k in learner.relation_learner)


def test_positional_encoding_matches_formula():
    pe = sinusoidal_encoding(4, 6).numpy()
    for n in range(4):
        for i in range(3):
            angle = n / 10000 ** (2 * i / 6)
            assert pe[n, 2 * i] == pytest.approx(np.sin(angle), abs=1e-6)
            assert pe[n, 2 * i + 1] == pytest.approx(np.cos(angle), abs=1e-6)


def _joint(tiny_data_dir, mode, modal, joint, nhead=1, nlayers=2, feature_dim=8):
    data_dir, _ = tiny_data_dir
    cfg = tiny_cfg(data_dir, mode, modal, joint)
    cfg.M3A.NLAYERS, cfg.M3A.TRSFMR_NHEAD = nlayers, nhead
    torch.manual_seed(2)
    return M3AJointLearning(cfg, feature_dim, load_m3a_inputs(cfg)).eval(), cfg


@pytest.mark.parametrize("mode", ["GRAPH", "TRSFMR"])
def test_sum_join_is_eq3(tiny_data_dir, mode):
    head, cfg = _joint(tiny_data_dir, mode, "RGB_AUDIO_TEXT", "SUM", nhead=2)
    _, arrays = tiny_data_dir
    x = torch.randn(3, 8)
    X = arr(x)
    adj = arr(head.adj_hat) if mode == "GRAPH" else None
    audio = arr(head.audio_features[head.audio_fixed_index])
    text = arrays["text"]

    def learn(modality, nodes):
        learner = head.multi_modal[modality]
        return np_gcn(learner, nodes, adj) if mode == "GRAPH" else np_transformer(learner, nodes)

    z_v = learn("RGB", np.repeat(X[:, None, :], N, axis=1)).mean(1)  # (B, N)
    z_a = X @ learn("AUDIO", audio).T
    z_t = X @ learn("TEXT", text).T
    np.testing.assert_allclose(head(x).detach().numpy(), z_v + z_a + z_t, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("modal", ["RGB_AUDIO_TEXT", "RGB_TEXT", "AUDIO_TEXT"])
def test_cross_join_matches_numpy(tiny_data_dir, modal):
    head, cfg = _joint(tiny_data_dir, "TRSFMR", modal, "CROSS", nhead=2, nlayers=1)
    _, arrays = tiny_data_dir
    x = torch.randn(3, 8)
    X = arr(x)
    mods = modal.split("_")
    nodes = {"RGB": np.repeat(X[:, None, :], N, axis=1), "TEXT": arrays["text"][None]}
    if "AUDIO" in mods:
        nodes["AUDIO"] = arr(head.audio_features[head.audio_fixed_index])[None]
    outs = [np_transformer(head.multi_modal[m], nodes[m], cross=True) for m in mods]
    outs = [np.broadcast_to(o, (3,) + o.shape[1:]) if o.shape[0] == 1 else o for o in outs]
    q, k = outs[0], outs[1]
    v = outs[2] if len(outs) == 3 else outs[1]
    layers = head.multi_modal["CROSS_FUSION"].relation_x_fusion
    layer = layers["trsfmr_decoder_cross"]
    fused = leaky(np_layer_norm(q + np_attention(layer.cross_attn, q, k, v), layer.norm))
    fc = layers["trsfmr_decoder_cross_fc"]
    per_node = fused @ arr(fc.weight).T + arr(fc.bias)  # (B, N, C)
    expected = np.einsum("bnc,bc->bn", per_node, X)
    np.testing.assert_allclose(head(x).detach().numpy(), expected, rtol=1e-4, atol=1e-5)


def test_audio_fixed_draw_follows_the_release_procedure(tiny_data_dir):
    head, cfg = _joint(tiny_data_dir, "GRAPH", "AUDIO", "NONE")
    cfg.M3A.AUDIO_SYNONYM_SIZE = 2
    head = M3AJointLearning(cfg, 8, load_m3a_inputs(cfg))
    _, arrays = tiny_data_dir
    keys = list(arrays["audio"])
    rng = random.Random(cfg.RNG_SEED)
    members = list(arrays["label"].values())
    synonyms = [[m[rng.randint(0, len(m) - 1)] for _ in range(2)] for m in members]
    chosen = [s[rng.randint(0, 1)] for s in synonyms]
    expected = np.stack([arrays["audio"][k] for k in chosen])
    np.testing.assert_array_equal(head.audio_nodes().numpy(), expected)
    assert [keys[i] for i in head.audio_fixed_index.tolist()] == chosen


def test_audio_random_sampling_redraws_in_training_only(tiny_data_dir):
    data_dir, _ = tiny_data_dir
    cfg = tiny_cfg(data_dir, "GRAPH", "AUDIO", "NONE")
    cfg.M3A.AUDIO_SAMPLING = "random"
    head = M3AJointLearning(cfg, 8, load_m3a_inputs(cfg))
    head.train()
    draws = {tuple(head.audio_nodes().flatten().tolist()) for _ in range(10)}
    assert len(draws) > 1
    head.eval()
    fixed = head.audio_nodes()
    assert torch.equal(fixed, head.audio_features[head.audio_fixed_index])
    assert torch.equal(fixed, head.audio_nodes())
