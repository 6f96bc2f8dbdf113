"""A tiny real data folder (mp4 videos, lexicons, class names) and config for zoo-area tests."""
import os
from collections import OrderedDict

import numpy as np
import yaml

from m3a.datasets.lexicon import save_audio_lexicon, save_graph_adj, save_text_lexicon
from m3a.utils.synthetic_video import write_video

CLASSES = ["running", "jumping", "swimming", "drumming", "dancing", "cooking"]
VEC = 12  # audio and text lexicon width of the tiny models


def make_tiny_data(root: str) -> str:
    """Write videos (one with audio, one without), lexicons and categories-tiny.txt under ``root``."""
    rng = np.random.default_rng(0)
    n = len(CLASSES)
    os.makedirs(os.path.join(root, "mmit-m3a"), exist_ok=True)
    write_video(os.path.join(root, "with_audio.mp4"), 24, fps=12, height=40, width=56, audio=True, seed=1)
    write_video(os.path.join(root, "no_audio.mp4"), 30, fps=15, height=48, width=48, seed=2)
    with open(os.path.join(root, "broken.mp4"), "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + os.urandom(200))
    labels = [[0, 1], [1, 2], [2], [3, 4], [4, 0], [5, 3], [1, 4]]
    psi = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                hits = sum(1 for s in labels if i in s)
                psi[i, j] = sum(1 for s in labels if i in s and j in s) / max(hits, 1)
    save_graph_adj(os.path.join(root, "mmit-m3a", "graph-adj-tiny.npz"), psi)
    save_text_lexicon(os.path.join(root, "mmit-m3a", "text-lexicon-tiny.npz"), rng.normal(size=(n, VEC)))
    audio = {f"clip{k}": rng.normal(size=VEC).astype(np.float32) for k in range(9)}
    label = OrderedDict((c, [f"clip{i}", f"clip{(i + 3) % 9}"]) for i, c in enumerate(CLASSES))
    save_audio_lexicon(os.path.join(root, "mmit-m3a", "audio-lexicon-tiny.npz"), {"label": label, "audio": audio})
    with open(os.path.join(root, "categories-tiny.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    return root


def write_tiny_cfg(path: str, data_dir: str, mode: str = "GRAPH", modal: str = "RGB_AUDIO_TEXT",
                   joint: str = "SUM") -> str:
    """A config of a tiny R(2+1)D (width 8, one block per stage) with small M3A learners."""
    cfg = {
        "MODEL": {"ARCH": "r2plus1d", "DEPTH": 18, "BASE_WIDTH": 8, "STAGE_BLOCKS": [1, 1, 1, 1],
                  "NUM_CLASSES": len(CLASSES)},
        "M3A": {"MODE": mode, "MODAL_TYPE": modal, "MODAL_JOINT_TYPE": joint, "NLAYERS": 2, "HIDDEN_LAYER": 16,
                "AUDIO_VEC_SIZE": VEC, "TEXT_VEC_SIZE": VEC},
        "DATA": {"PATH_TO_DATA_DIR": data_dir, "MMIT_VERSION": "tiny", "NUM_FRAMES": 8, "SAMPLING_RATE": 2,
                 "TARGET_FPS": 15, "TEST_CROP_SIZE": 32, "TRAIN_CROP_SIZE": 32, "TRAIN_JITTER_SCALES": [32, 40],
                 "ENSEMBLE_METHOD": "max"},
        "TEST": {"NUM_ENSEMBLE_VIEWS": 2, "NUM_SPATIAL_CROPS": 3},
        "NUM_GPUS": 0,
        "LOG_MODEL_INFO": False,
        "RNG_SEED": 0,
    }
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


TRAIN_LABELS = {"with_audio.mp4": [0, 1], "no_audio.mp4": [3, 4]}
# Variant -> (M3A.MODE, MODAL_TYPE, MODAL_JOINT_TYPE, SGD steps on the labelled videos).
VARIANTS = {"graph": ("GRAPH", "RGB_AUDIO_TEXT", "SUM", 4), "fc": ("NONE", "RGB", "NONE", 0),
            "trsfmr": ("TRSFMR", "AUDIOTEXT", "NONE", 0)}


def train_tiny(cfg, steps: int = 6):
    """Build the model of ``cfg`` and fit it briefly to the two labelled videos (real SGD steps)."""
    import torch

    from m3a.engine.predict import load_video_views
    from m3a.models import build_model

    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg)
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    clips, targets = [], []
    for name, labels in TRAIN_LABELS.items():
        views = load_video_views(cfg, os.path.join(data_dir, name))[:2]
        target = torch.zeros(cfg.MODEL.NUM_CLASSES)
        target[labels] = 1.0
        clips.append(views)
        targets.append(target.expand(len(views), -1))
    x, y = torch.cat(clips), torch.cat(targets)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), optimizer


def tiny_run(base: str) -> dict:
    """Data, configs and trained checkpoints (published .pyth layout) of the tiny variants, built once."""
    import torch

    from m3a.config import load_config

    done = os.path.join(base, ".complete")
    run = {"data": os.path.join(base, "data")}
    for key in VARIANTS:
        run[f"{key}_cfg"] = os.path.join(base, f"{key}.yaml")
        run[f"{key}_ckpt"] = os.path.join(base, f"{key}.pyth")
    if os.path.exists(done):
        return run
    make_tiny_data(run["data"])
    for key, (mode, modal, joint, steps) in VARIANTS.items():
        write_tiny_cfg(run[f"{key}_cfg"], run["data"], mode, modal, joint)
        cfg = load_config(run[f"{key}_cfg"])
        model, optimizer = train_tiny(cfg, steps)
        state = {"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(), "epoch": 1,
                 "cfg": cfg.dump()}
        torch.save(state, run[f"{key}_ckpt"])
    open(done, "w").close()
    return run


def load_tool(name: str):
    """Import tools/<name>.py as a module (its main() runs in-process)."""
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(root, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
