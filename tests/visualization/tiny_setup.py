"""Tiny trained models on the session's tiny demo data set (tests/conftest.py: tiny_demo_dir).

``tiny_run`` writes, once per session, a config per head variant (narrow R(2+1)D: width 8, one
block per stage, 32-pixel crops, small relation learners) and a checkpoint in the published
``.pyth`` layout after a few real SGD steps on demo training videos, plus a broken mp4.
"""
import importlib.util
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Variant -> (M3A.MODE, MODAL_TYPE, MODAL_JOINT_TYPE, SGD steps on demo training videos).
VARIANTS = {"graph": ("GRAPH", "RGB_AUDIO_TEXT", "SUM", 4), "fc": ("NONE", "NONE", "NONE", 0),
            "trsfmr": ("TRSFMR", "AUDIOTEXT", "NONE", 0)}
NO_AUDIO_VIDEO = "videos/test/test-0003.mp4"  # the demo set's video without an audio stream
TRAIN_VIDEOS = 2


def write_tiny_cfg(path: str, data_dir: str, mode: str, modal: str, joint: str) -> str:
    """Config of a tiny model on the demo data (4 classes, 384-d audio and 300-d text lexicons)."""
    cfg = {
        "MODEL": {"ARCH": "r2plus1d", "DEPTH": 18, "BASE_WIDTH": 8, "STAGE_BLOCKS": [1, 1, 1, 1],
                  "NUM_CLASSES": 4},
        "M3A": {"MODE": mode, "MODAL_TYPE": modal, "MODAL_JOINT_TYPE": joint, "NLAYERS": 2, "HIDDEN_LAYER": 16},
        "DATA": {"PATH_TO_DATA_DIR": data_dir, "MMIT_VERSION": "demo", "NUM_FRAMES": 8, "SAMPLING_RATE": 2,
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


def train_tiny(cfg, steps: int):
    """Build the model of ``cfg`` and fit it briefly to a few demo training videos (real SGD)."""
    import torch

    from m3a.datasets.video_list import read_video_list
    from m3a.engine.predict import load_video_views
    from m3a.models import build_model

    torch.manual_seed(cfg.RNG_SEED)
    model = build_model(cfg)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    if not steps:
        return model.eval(), optimizer
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    entries = read_video_list(os.path.join(data_dir, "train-demo.csv"), ",", cfg.MODEL.NUM_CLASSES, True)
    clips, targets = [], []
    for entry in entries[:TRAIN_VIDEOS]:
        views = load_video_views(cfg, os.path.join(data_dir, entry.path))[:2]
        target = torch.zeros(cfg.MODEL.NUM_CLASSES)
        target[list(entry.labels)] = 1.0
        clips.append(views)
        targets.append(target.expand(len(views), -1))
    x, y = torch.cat(clips), torch.cat(targets)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), optimizer


def tiny_run(base: str, demo_dir: str) -> dict:
    """Configs, checkpoints and test videos of the tiny variants under ``base`` (built once)."""
    import torch

    from m3a.config import load_config

    run = {"data": demo_dir, "class_names": os.path.join(demo_dir, "categories-demo.txt"),
           "videos": [os.path.join(demo_dir, f"videos/test/test-000{i}.mp4") for i in range(4)],
           "no_audio": os.path.join(demo_dir, NO_AUDIO_VIDEO), "broken": os.path.join(base, "broken.mp4")}
    for key in VARIANTS:
        run[f"{key}_cfg"] = os.path.join(base, f"{key}.yaml")
        run[f"{key}_ckpt"] = os.path.join(base, f"{key}.pyth")
    if os.path.exists(os.path.join(base, ".complete")):
        return run
    os.makedirs(base, exist_ok=True)
    with open(run["broken"], "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + bytes(range(200)))
    for key, (mode, modal, joint, steps) in VARIANTS.items():
        cfg = load_config(write_tiny_cfg(run[f"{key}_cfg"], demo_dir, mode, modal, joint))
        model, optimizer = train_tiny(cfg, steps)
        state = {"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(), "epoch": 1,
                 "cfg": cfg.dump()}
        torch.save(state, run[f"{key}_ckpt"])
    open(os.path.join(base, ".complete"), "w").close()
    return run


def class_names(run: dict) -> list:
    """The demo data set's class names."""
    with open(run["class_names"]) as f:
        return [line.strip() for line in f if line.strip()]


def load_tool(name: str):
    """Import tools/<name>.py as a module (its main() runs in-process)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
