"""The published CLIP / M2CLIP layouts (m2clip_layout.json: keys, shapes, parameter counts) and
small files in those layouts, for the CLIP, M2CLIP and clip_video tests."""
import json
import os

import torch

LAYOUTS = os.path.join(os.path.dirname(__file__), "m2clip_layout.json")


def published(name: str) -> dict:
    """One entry of the layout file (``clip_vit_b16``, ``clip_vit_l14``, ``k400``, ``ssv2``)."""
    with open(LAYOUTS) as f:
        return json.load(f)[name]


def expanded(shapes) -> dict:
    """A state dict of ``(key, shape)`` pairs whose tensors are one element expanded (small files)."""
    return {k: torch.zeros(1).expand(*s) if s else torch.zeros(()) for k, s in shapes}


def save_openai_b16_state(path: str) -> str:
    """Write a state dict in OpenAI's ViT-B/16 layout (that of the TorchScript release file, with
    its integer entries) to ``path``; return ``path``."""
    clip = published("clip_vit_b16")
    state = expanded(clip["state_dict"])
    state.update({k: torch.tensor(v) for k, v in zip(clip["checkpoint_extra_int_keys"], (224, 77, 49408))})
    torch.save(state, path)
    return path
