"""configs/demo/M2CLIP_DEMO.yaml: the demo-size M2CLIP builds over the demo's seen class names and
trains a step with all four losses (masked LM on), changing adapters only."""
import os

import numpy as np
import torch

from m3a.config import load_config
from m3a.engine.train_loop import train_step
from m3a.models import build_model
from m3a.models.losses import get_loss_func
from m3a.models.m2clip_head import prompt_vocab
from m3a.prep.demo_render import demo_actions

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "demo", "M2CLIP_DEMO.yaml")
SEEN = [a.name for c, a in enumerate(demo_actions(12)) if c not in (7, 9, 11)]


def demo_cfg(tmp_path):
    (tmp_path / "categories-seen.txt").write_text("\n".join(SEEN) + "\n")
    return load_config(CONFIG, ["DATA.PATH_TO_DATA_DIR", str(tmp_path), "LOG_MODEL_INFO", "False"])


def test_demo_config_builds_the_demo_size_m2clip(tmp_path):
    cfg = demo_cfg(tmp_path)
    m = cfg.M2CLIP
    assert (m.ARCH, m.PROMPT, m.MLM.ENABLE, cfg.MODEL.NUM_CLASSES) == ("custom", "a {}", True, 9)
    assert m.MLM.VOCAB_SIZE == len(prompt_vocab([m.PROMPT.format(n) for n in SEEN])) == 22
    model = build_model(cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (sum(p.numel() for p in model.parameters()), trainable) == (3_605_568, 113_535)
    model.eval()
    with torch.no_grad():
        scores = model(torch.zeros(2, 3, 8, 64, 64))
    assert scores.shape == (2, 9) and torch.all((scores > 0) & (scores < 1))  # sigmoid of scaled cosines


def test_demo_config_trains_a_step_on_multi_label_targets(tmp_path):
    cfg = demo_cfg(tmp_path)
    model = build_model(cfg).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.SOLVER.BASE_LR)
    targets = torch.zeros(2, 9)
    targets[0, [0, 1]] = targets[1, 5] = 1
    loss_fn = get_loss_func(cfg.MODEL.LOSS_FUNC)(reduction="mean")
    for _ in range(2):
        loss = train_step(model, torch.randn(2, 3, 8, 64, 64), targets, loss_fn, optimizer,
                          torch.amp.GradScaler("cpu", enabled=False), cfg, torch.device("cpu"))
        assert np.isfinite(loss) and loss > 0
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all("adapter" in k for k in changed)
    assert any(k.startswith("mlm_adapter.") for k in changed)  # the masked-LM loss trains
    assert any(k.startswith("transformer.") for k in changed)  # so do the text adapters
