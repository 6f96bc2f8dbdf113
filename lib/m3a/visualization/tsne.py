"""t-SNE of the relation learners' node embeddings, layer by layer (Fig. 4 of the paper)."""
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from m3a.utils.file_io import atomic_path  # noqa: E402


def node_embeddings(model: nn.Module, features: Optional[torch.Tensor] = None) -> Dict[str, List[np.ndarray]]:
    """Per-layer node embeddings {modality: [input, layer 1, ..., output]} as (N, D) arrays.

    ``features`` is one clip's pooled feature (C,), needed for the RGB learner (and CROSS).
    Raises ValueError for a model without an M3A relation head.
    """
    model.eval()
    layers = model.node_embeddings(features)
    return {m: [e.detach().float().cpu().numpy() for e in embs] for m, embs in layers.items()}


def embed_2d(embeddings: np.ndarray, seed: int = 0, perplexity: Optional[float] = None) -> np.ndarray:
    """t-SNE of (N, D) embeddings to (N, 2); perplexity defaults to min(30, (N - 1) / 3).

    Identical rows (e.g. the RGB learner's input, one clip feature broadcast to every node) have
    no layout to find: they map to the origin.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"t-SNE needs at least 3 embeddings of shape (N, D), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("t-SNE input has NaN or infinite values")
    if np.ptp(x, axis=0).max() <= 1e-12 * max(1.0, np.abs(x).max()):
        return np.zeros((len(x), 2), dtype=np.float32)
    if perplexity is None:
        perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # One thread: node counts are small, and OpenMP threads next to torch's oversubscribe the CPU.
    with threadpool_limits(limits=1):
        return tsne.fit_transform(x).astype(np.float32)


def layer_titles(count: int) -> List[str]:
    """Panel titles: input, layer 1 .. layer count-2, output."""
    return ["input"] + [f"layer {i}" for i in range(1, count - 1)] + ["output"] if count > 1 else ["input"]


def plot_tsne_layers(
    points: Sequence[np.ndarray],
    titles: Sequence[str],
    class_names: Sequence[str],
    out_png: str,
    highlight: Sequence[int] = (),
    suptitle: str = "",
) -> None:
    """One scatter panel per layer. Highlighted classes (e.g. a video's actions) are green and
    numbered, the others grey; with no highlight every class is coloured and numbered."""
    n = len(class_names)
    marked = set(int(i) for i in highlight) or set(range(n))
    colors = plt.get_cmap("tab20")(np.arange(n) % 20) if not highlight else None
    fig, axes = plt.subplots(1, len(points), figsize=(4.0 * len(points), 4.2), dpi=100, squeeze=False)
    for ax, xy, title in zip(axes[0], points, titles):
        for i in range(n):
            if highlight:
                color = "#2a9d2a" if i in marked else "#b0b0b0"
            else:
                color = colors[i]
            ax.scatter(xy[i, 0], xy[i, 1], s=28 if i in marked else 10, color=color, zorder=3 if i in marked else 2)
            if i in marked:
                ax.annotate(str(i), (xy[i, 0], xy[i, 1]), fontsize=7, xytext=(2, 2), textcoords="offset points")
        same = np.ptp(xy, axis=0).max() == 0
        ax.set_title(f"{title} (all nodes identical)" if same else title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if highlight:
        legend = ", ".join(f"{i}: {class_names[i]}" for i in sorted(marked))
        fig.text(0.5, 0.01, legend, ha="center", fontsize=7, wrap=True)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
