"""Side-by-side comparison of models (``tools/benchmark.py models``): for every config, the
parameter count, GFLOPs, CPU training and inference clips/s and, given a data set, the test
class-wise and sample-wise mAP after the same short training schedule.

Speeds are measured in this process on synthetic clips at the test size (batch ``batch``; one
warm-up step, then ``steps`` timed steps): a training step is the engine's ``train_step``
(forward, loss, backward, optimiser step) as ``tools/benchmark.py train`` runs it
(:class:`m3a.engine.throughput.Trainer`, the model built as training builds it), an inference
step an eval forward without gradients. The mAPs come from a real run of the engine
(:func:`m3a.engine.run.train_and_test`) of the config with its ``OUTPUT_DIR`` set to
``<out>/<name>``.
"""
import itertools
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from fvcore.common.config import CfgNode

from m3a.config import load_config
from m3a.engine.run import train_and_test
from m3a.engine.throughput import Throughput, Trainer, run_block
from m3a.utils.file_io import atomic_path, atomic_write_text

TABLE_FILE = "models.md"
PLOT_FILE = "models.png"
HEAD_NAMES = {"NONE": "FC", "GRAPH": "GCN", "TRSFMR": "TRSFMR"}


@dataclass
class ModelResult:
    """One config's measurements (mAPs are None without a data set)."""

    name: str
    config: str
    backbone: str
    head: str
    params: int
    gflops: Optional[float]
    train_clips_per_s: float
    infer_clips_per_s: float
    map_class: Optional[float] = None
    map_sample: Optional[float] = None
    run_seconds: Optional[float] = None


def model_name(path: str) -> str:
    """The row name of a config: its file name without the extension."""
    return os.path.splitext(os.path.basename(path))[0]


def check_names(paths: Sequence[str]) -> None:
    """ValueError when two configs would share a row name (and an output folder)."""
    seen: Dict[str, str] = {}
    for path in paths:
        name = model_name(path)
        if name in seen:
            raise ValueError(f"configs {seen[name]} and {path} have the same name '{name}'; rename one")
        seen[name] = path


def compare_config(path: str, opts: Sequence[str], data_dir: Optional[str], epochs: Optional[int],
                   out_dir: str) -> CfgNode:
    """The config of one compared model: ``opts`` applied, ``--data-dir`` and ``--epochs``
    set, its output folder ``<out_dir>/<name>``; no model info logged at build; trained and
    tested."""
    extra = ["OUTPUT_DIR", os.path.join(out_dir, model_name(path)), "LOG_MODEL_INFO", "False",
             "TRAIN.ENABLE", "True", "TEST.ENABLE", "True"]
    if data_dir is not None:
        extra += ["DATA.PATH_TO_DATA_DIR", data_dir]
    if epochs is not None:
        extra += ["SOLVER.MAX_EPOCH", str(epochs)]
    return load_config(path, list(opts) + extra)


def head_label(cfg: CfgNode) -> str:
    """FC, GCN or TRSFMR for the fc / m3a heads (the M3A mode), else the head's name."""
    from m3a.models.build import component_names

    head = component_names(cfg).head
    if head in ("fc", "m3a"):
        return HEAD_NAMES.get(cfg.M3A.MODE, cfg.M3A.MODE)
    return head


def _timed(step: Callable[[], None], steps: int) -> float:
    """Seconds per call of ``step`` over ``steps`` calls after one warm-up call."""
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def measure_speed(trainer: Trainer, batch: int, steps: int) -> Dict[str, float]:
    """CPU training and inference clips/s of ``trainer``'s model on random clips of ``batch``
    items: training steps (:meth:`Trainer.step`) timed by :func:`m3a.engine.throughput.run_block`,
    inference steps an eval forward without gradients; one warm-up step before each."""
    cfg = trainer.cfg
    gen = torch.Generator().manual_seed(cfg.RNG_SEED)
    inputs = [torch.randn(x.shape, generator=gen) for x in trainer.model.example_inputs(cfg, batch)]
    inputs = inputs[0] if len(inputs) == 1 else inputs
    labels = torch.randint(0, cfg.MODEL.NUM_CLASSES, (batch,), generator=gen)
    training = Throughput()
    run_block(trainer, itertools.repeat((inputs, labels)), 1, steps, training)
    trainer.model.eval()
    with torch.no_grad():
        infer_s = _timed(lambda: trainer.model(inputs), steps)
    return {"train": training.per_second, "infer": batch / infer_s}


def measure_model(cfg: CfgNode, name: str, path: str, batch: int, steps: int) -> ModelResult:
    """Parameters, GFLOPs and clips/s of a freshly built model of ``cfg``, built on the CPU as
    training builds it (:class:`m3a.engine.throughput.Trainer`)."""
    from m3a.models.build import component_names
    from m3a.models.model_info import gflops, params_count

    trainer = Trainer.build(cfg, torch.device("cpu"))
    params, flops = params_count(trainer.model), gflops(trainer.model, cfg)
    speed = measure_speed(trainer, batch, steps)
    return ModelResult(name, path, component_names(cfg).backbone, head_label(cfg), params, flops,
                       speed["train"], speed["infer"])


def _fmt(value: Optional[float], spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def markdown_table(results: Sequence[ModelResult]) -> str:
    """The comparison as a markdown table, one row per model."""
    lines = [
        "| model | backbone | head | params | GFLOPs | train clips/s | inference clips/s | class mAP | sample mAP "
        "| run s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.backbone} | {r.head} | {r.params:,} | {_fmt(r.gflops, '.3f')} | "
            f"{r.train_clips_per_s:.1f} | {r.infer_clips_per_s:.1f} | {_fmt(r.map_class, '.3f')} | "
            f"{_fmt(r.map_sample, '.3f')} | {_fmt(r.run_seconds, '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def plot_map_vs_gflops(results: Sequence[ModelResult], path: str) -> bool:
    """Write a PNG of class-wise mAP against GFLOPs, one labelled point per model that has
    both; False (nothing written) when no model has."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in results if r.map_class is not None and r.gflops is not None]
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(7, 5))
    for r in points:
        ax.scatter(r.gflops, r.map_class, s=30)
        ax.annotate(r.name, (r.gflops, r.map_class), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("GFLOPs per clip (fvcore, log scale)")
    ax.set_ylabel("test class-wise mAP")
    ax.set_title("class-wise mAP against GFLOPs")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return True


def write_outputs(results: Sequence[ModelResult], out_dir: str) -> Dict[str, str]:
    """Write the table (and the plot when there are mAPs) into ``out_dir``; return their paths."""
    written = {"table": os.path.join(out_dir, TABLE_FILE)}
    atomic_write_text(written["table"], markdown_table(results))
    plot = os.path.join(out_dir, PLOT_FILE)
    if plot_map_vs_gflops(results, plot):
        written["plot"] = plot
    return written


def summary_line(results: Sequence[ModelResult]) -> str:
    """``name=value`` pairs of every model: GFLOPs, and the mAPs when measured."""
    pairs = []
    for r in results:
        pairs.append(f"{r.name}_gflops={_fmt(r.gflops, '.4f')}")
        if r.map_class is not None:
            pairs += [f"{r.name}_map_class={r.map_class:.4f}", f"{r.name}_map_sample={r.map_sample:.4f}"]
    return " ".join(pairs)


def compare_models(paths: Sequence[str], opts: Sequence[str], data_dir: Optional[str], epochs: Optional[int],
                   out_dir: str, batch: int = 8, steps: int = 3,
                   log: Callable[[str], None] = print) -> List[ModelResult]:
    """Measure every config of ``paths`` (see the module docstring); mAPs when ``data_dir``."""
    check_names(paths)
    cfgs = [compare_config(p, opts, data_dir, epochs, out_dir) for p in paths]  # bad configs fail first
    results = []
    for i, (path, cfg) in enumerate(zip(paths, cfgs), start=1):
        name = model_name(path)
        log(f"[{i}/{len(paths)}] {name}: measuring parameters, GFLOPs and CPU speed")
        result = measure_model(cfg, name, path, batch, steps)
        log(f"[{i}/{len(paths)}] {name}: {result.params:,} parameters, {_fmt(result.gflops, '.3f')} GFLOPs, "
            f"train {result.train_clips_per_s:.1f} clips/s, inference {result.infer_clips_per_s:.1f} clips/s")
        if data_dir is not None:
            log(f"[{i}/{len(paths)}] {name}: training {cfg.SOLVER.MAX_EPOCH} epochs and testing into {cfg.OUTPUT_DIR}")
            start = time.perf_counter()
            metrics = train_and_test(cfg)
            result.run_seconds = time.perf_counter() - start
            result.map_class, result.map_sample = float(metrics["map_class"]), float(metrics["map_sample"])
            log(f"[{i}/{len(paths)}] {name}: class-wise mAP {result.map_class:.4f}, sample-wise mAP "
                f"{result.map_sample:.4f} ({result.run_seconds:.0f} s)")
        results.append(result)
        write_outputs(results, out_dir)  # a partial table survives an interrupted comparison
    return results
