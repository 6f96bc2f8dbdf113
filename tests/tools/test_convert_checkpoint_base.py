"""tools/convert_checkpoint.py --base: an M2CLIP release checkpoint (its trainable keys only) over a
CLIP file becomes one checkpoint with every key, which testing loads strictly."""
import os

import torch

from m3a.config import load_config
from m3a.models import build_model
from m3a.models.clip.model import CLIP
from m3a.models.m2clip import clip_spec
from m3a.utils.checkpoint import load_checkpoint
from tests.tools.conftest import ROOT, run_tool

CFG = os.path.join(ROOT, "configs", "demo", "M2CLIP_DEMO.yaml")
NAMES = ["red square sliding", "green square bouncing", "blue triangle spinning"]


def _demo_model(data_dir):
    cfg = load_config(CFG, ["DATA.PATH_TO_DATA_DIR", str(data_dir), "MODEL.NUM_CLASSES", "3",
                            "M2CLIP.MLM.VOCAB_SIZE", "9", "LOG_MODEL_INFO", "False"])
    return cfg, build_model(cfg)


def test_release_adapters_over_a_clip_file_give_a_complete_checkpoint(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "categories-seen.txt").write_text("".join(n + "\n" for n in NAMES))
    cfg, model = _demo_model(data)
    torch.manual_seed(1)
    clip = CLIP(clip_spec(cfg)).state_dict()
    torch.save(clip, tmp_path / "clip.pt")
    trainable = {model.published_key(k): torch.randn_like(p) for k, p in model.named_parameters()
                 if p.requires_grad}
    torch.save({"model": trainable, "optimizer": {}, "lr_sched": {}, "next_epoch": 3}, tmp_path / "release.pth")
    args = [tmp_path / "release.pth", tmp_path / "out.pyth", "--cfg", CFG, "DATA.PATH_TO_DATA_DIR", data,
            "MODEL.NUM_CLASSES", "3", "M2CLIP.MLM.VOCAB_SIZE", "9"]

    alone = run_tool("convert_checkpoint", *args)  # without the CLIP weights: all but the trainable keys missing
    assert f"{len(model.state_dict()) - len(trainable)} missing, 0 unexpected" in alone.stdout

    done = run_tool("convert_checkpoint", *args, "--base", tmp_path / "clip.pt")
    assert "base " in done.stdout and "0 missing, 0 unexpected" in done.stdout
    _, fresh = _demo_model(data)
    info = load_checkpoint(str(tmp_path / "out.pyth"), fresh)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    state = fresh.state_dict()
    for key, value in trainable.items():
        assert torch.equal(state[key], value), key
    for key, value in clip.items():
        assert torch.equal(state[key], value.float()), key


def test_a_key_in_no_file_is_an_error_not_an_untrained_weight(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "categories-seen.txt").write_text("".join(n + "\n" for n in NAMES))
    cfg, model = _demo_model(data)
    clip = CLIP(clip_spec(cfg)).state_dict()
    del clip["ln_final.weight"]
    torch.save(clip, tmp_path / "clip.pt")
    trainable = {model.published_key(k): p.detach() for k, p in model.named_parameters() if p.requires_grad}
    torch.save({"model": trainable}, tmp_path / "release.pth")
    done = run_tool("convert_checkpoint", tmp_path / "release.pth", tmp_path / "out.pyth", "--cfg", CFG,
                    "--base", tmp_path / "clip.pt", "DATA.PATH_TO_DATA_DIR", data, "MODEL.NUM_CLASSES", "3",
                    "M2CLIP.MLM.VOCAB_SIZE", "9", check=False)
    assert done.returncode == 1 and not (tmp_path / "out.pyth").exists()
    assert "1 model key(s) are in neither it nor the --base files" in done.stderr
    assert "ln_final.weight" in done.stderr
