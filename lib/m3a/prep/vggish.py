"""VGGish in PyTorch: the VGG-like audio network (128-d embeddings) and its PCA post-processor.

Weights come from user-supplied files in the layout of the common PyTorch port: a state dict
with ``features.{0,3,6,8,11,13}.{weight,bias}`` (3x3 convs 64, 128, 256, 256, 512, 512, max-pool
after the 1st, 2nd, 4th and 6th) and ``embeddings.{0,2,4}.{weight,bias}`` (fc 12288 -> 4096 ->
4096 -> 128, ReLU after each). The post-processor takes ``pca_eigen_vectors`` (128, 128) and
``pca_means`` (128, 1), projects, clips to [-2, 2] and quantises to 8 bits (0..255).
"""
import os
from typing import Dict

import numpy as np
import torch
from torch import nn

EMBEDDING_SIZE = 128
QUANTIZE_MIN = -2.0
QUANTIZE_MAX = 2.0
_CONV_PLAN = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


def _make_features() -> nn.Sequential:
    layers, channels = [], 1
    for item in _CONV_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """VGGish network: (n, 1, 96, 64) log-mel examples -> (n, 128) embeddings."""

    def __init__(self):
        super().__init__()
        self.features = _make_features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_SIZE),
            nn.ReLU(inplace=True),
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """Embed (n, 1, 96, 64) (or (n, 96, 64)) examples into (n, 128)."""
        if examples.dim() == 3:
            examples = examples.unsqueeze(1)
        x = self.features(examples)  # (n, 512, 6, 4)
        # Flatten in height-width-channel order, the order of the original (TensorFlow) weights.
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.embeddings(x)


class VGGishPostprocessor:
    """PCA projection, clipping to [-2, 2] and 8-bit quantisation of VGGish embeddings."""

    def __init__(self, eigen_vectors: np.ndarray, means: np.ndarray):
        self.eigen_vectors = np.asarray(eigen_vectors, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64).reshape(-1, 1)
        if self.eigen_vectors.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE):
            raise ValueError(f"pca_eigen_vectors must be (128, 128), got {self.eigen_vectors.shape}")
        if self.means.shape != (EMBEDDING_SIZE, 1):
            raise ValueError(f"pca_means must hold 128 values, got {self.means.size}")

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, 128) raw embeddings -> (n, 128) uint8 quantised PCA embeddings."""
        projected = (self.eigen_vectors @ (np.asarray(embeddings, np.float64).T - self.means)).T
        clipped = np.clip(projected, QUANTIZE_MIN, QUANTIZE_MAX)
        scaled = (clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))
        return np.round(scaled).astype(np.uint8)


def _load_tensor_dict(path: str) -> Dict[str, np.ndarray]:
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return {k: v.numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in state.items()}


def load_vggish(weights: str) -> VGGish:
    """Build VGGish in eval mode and load ``features.*`` / ``embeddings.*`` weights from a file."""
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"VGGish weights not found: {weights}")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if k.startswith(("features.", "embeddings."))}
    model = VGGish()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights}: not a VGGish state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()


def load_postprocessor(pca_params: str) -> VGGishPostprocessor:
    """Load ``pca_eigen_vectors`` and ``pca_means`` from a ``.pth`` or ``.npz`` file."""
    if not os.path.isfile(pca_params):
        raise FileNotFoundError(f"VGGish PCA parameters not found: {pca_params}")
    params = _load_tensor_dict(pca_params)
    for key in ("pca_eigen_vectors", "pca_means"):
        if key not in params:
            raise ValueError(f"{pca_params}: missing '{key}'")
    return VGGishPostprocessor(params["pca_eigen_vectors"], params["pca_means"])
