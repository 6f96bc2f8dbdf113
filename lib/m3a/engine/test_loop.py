"""Multi-view testing: every test video's views are scored and combined into one prediction.

Outputs (rank 0, each written atomically) in ``OUTPUT_DIR``:

- ``test_metrics.json``: ``map_class``, ``map_sample``, ``top1``, ``top5``, ``num_videos``
  (videos scored), ``num_views`` (views per video), ``failed_videos`` (count of videos that
  failed to decode and were left out), ``classes_without_positives`` (classes no scored test
  video has: left out of ``map_class``), ``failed_paths``, ``checkpoint`` (the tested file) and
  ``epoch`` (its completed epochs), ``weights`` (``model`` or ``ema``: which of its weights),
  ``ensemble_method``, ``threshold`` (TEST.THRESHOLD) and the precision / recall / F1 at it:
  ``precision_micro``, ``recall_micro``, ``f1_micro``, ``precision_macro``, ``recall_macro``,
  ``f1_macro`` (m3a.engine.evaluation.threshold_metrics).
- ``test_predictions.npz``: ``scores`` (V, N) float32 combined per-video scores, ``labels``
  (V, N) multi-hot or (V,) class indices, ``paths`` (V,) video paths, ``indices`` (V,) list rows.
- ``per_class_ap.csv``: ``class_index,class_name,ap,positives`` (AP empty for classes without a
  positive test video).
- ``TEST.SAVE_RESULTS_PATH`` (if set): a pickle (protocol 4) of the tuple ``(scores, labels)`` of
  numpy arrays as in ``test_predictions.npz``; readable with ``m3a.utils.safe_pickle.load_pickle``.
- Extras (:mod:`m3a.engine.extra_scores`): ``mean_class_accuracy`` in ``test_metrics.json`` for
  single-label data; a model's extra score sets (e.g. EPAM-Net's streams) as ``extra_scores``
  {name: metrics} there and ``scores_<name>`` in ``test_predictions.npz``.
"""
import csv
import json
import logging
import os
import pickle
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.engine import amp
from m3a.datasets.loader import list_dataset
from m3a.engine.evaluation import (class_coverage, compute_metrics, gather_failed, prf_text,
                                   require_decoded, threshold_metrics)
from m3a.engine.inputs import flatten_views, to_device
from m3a.engine import extra_scores
from m3a.engine.train_loop import progress_bar, run_weights, set_seed
from m3a.utils import distributed as du
from m3a.utils import metrics
from m3a.utils.class_names import load_class_names
from m3a.utils.file_io import atomic_path, atomic_write_text
from m3a.utils.logging import log_json_stats, setup_logging

logger = logging.getLogger(__name__)

METRICS_FILE = "test_metrics.json"
PREDICTIONS_FILE = "test_predictions.npz"
PER_CLASS_AP_FILE = "per_class_ap.csv"


def resolve_test_checkpoint(cfg: CfgNode, trained_model: Optional[nn.Module]) -> Optional[str]:
    """Checkpoint to test: TEST.CHECKPOINT_FILE_PATH; else None (the model this run trained);
    else the newest in OUTPUT_DIR. Without any of them, raise FileNotFoundError.

    The model a run trained comes before OUTPUT_DIR's newest file, which may be an older run's.
    """
    from m3a.utils import checkpoint as cu

    if cfg.TEST.CHECKPOINT_FILE_PATH:
        if not os.path.isfile(cfg.TEST.CHECKPOINT_FILE_PATH):
            raise FileNotFoundError(f"TEST.CHECKPOINT_FILE_PATH not found: {cfg.TEST.CHECKPOINT_FILE_PATH}")
        return cfg.TEST.CHECKPOINT_FILE_PATH
    if trained_model is not None:
        return None
    last = cu.get_last_checkpoint(cfg.OUTPUT_DIR)
    if last is not None:
        return last
    raise FileNotFoundError(
        f"nothing to test: TEST.CHECKPOINT_FILE_PATH is empty and {cfg.OUTPUT_DIR}/checkpoints has no checkpoint"
    )


@torch.no_grad()
def run_multiview_inference(loader, model: nn.Module, cfg: CfgNode, device: torch.device) -> Dict[str, np.ndarray]:
    """Score every view, combine them per video, gather all processes; also the failed indices."""
    from m3a.datasets.multiview import combine_views

    model.eval()
    indices, scores, labels, failed = [], [], [], []
    num_views = 0
    extras = extra_scores.ExtraScores(model, cfg.DATA.ENSEMBLE_METHOD)  # the model's extra score sets, if any
    for views, batch_labels, batch_idx, ok in progress_bar(loader, len(loader), "test"):
        flat, b, v = flatten_views(views)
        num_views = v
        with amp.autocast(cfg, device):
            out = extras.forward(to_device(flat, device, non_blocking=True))
        video_scores = combine_views(out.float().reshape(b, v, -1), cfg.DATA.ENSEMBLE_METHOD).cpu()
        ok = ok.bool().cpu()
        extras.keep(b, v, ok)
        failed.append(batch_idx[~ok].cpu().numpy())
        scores.append(video_scores[ok].numpy())
        labels.append(batch_labels[ok].cpu().numpy())
        indices.append(batch_idx[ok].cpu().numpy())
    gathered = extras.gather(indices, scores, labels)  # the main scores and the extra sets
    gathered["failed"] = gather_failed(failed)
    require_decoded(len(gathered["indices"]), gathered["failed"], list_dataset(loader))
    gathered["num_views"] = max(du.all_gather_objects(num_views))
    return gathered


def trained_model_source(cfg: CfgNode) -> Tuple[str, int]:
    """(file, epochs) of the model a run trained: its last epoch's checkpoint path (which
    exists when the run saved it)."""
    from m3a.utils import checkpoint as cu

    return cu.checkpoint_path(cfg.OUTPUT_DIR, cfg.SOLVER.MAX_EPOCH), cfg.SOLVER.MAX_EPOCH


def write_test_outputs(
    cfg: CfgNode, results: Dict, dataset_paths: List[str], checkpoint: str, epoch: int, weights: str = "model"
) -> Dict:
    """Write metrics, predictions, per-class AP and the results pickle; return the metrics dict."""
    scores, labels = results["scores"], results["labels"]
    summary = compute_metrics(scores, labels)
    summary.update(class_coverage(scores, labels))
    failed_paths = [dataset_paths[i] for i in results["failed"]]
    summary.update(
        {
            "num_videos": int(len(results["indices"])),
            "num_views": int(results["num_views"]),
            "failed_videos": len(failed_paths),
            "failed_paths": failed_paths,
            "checkpoint": checkpoint,
            "epoch": int(epoch),
            "ensemble_method": cfg.DATA.ENSEMBLE_METHOD,
            "weights": weights,
        }
    )
    summary.update(threshold_metrics(cfg, scores, labels, int(results["num_views"])))
    out = cfg.OUTPUT_DIR
    summary.update(extra_scores.summary_metrics(results))
    atomic_write_text(os.path.join(out, METRICS_FILE), json.dumps(summary, indent=2) + "\n")
    paths = np.array([dataset_paths[i] for i in results["indices"]], dtype=str)
    with atomic_path(os.path.join(out, PREDICTIONS_FILE)) as tmp:
        np.savez(tmp, scores=scores.astype(np.float32), labels=labels, paths=paths, indices=results["indices"],
                 **extra_scores.prediction_arrays(results))
    _write_per_class_ap(cfg, scores, labels)
    if cfg.TEST.SAVE_RESULTS_PATH:
        with atomic_path(cfg.TEST.SAVE_RESULTS_PATH) as tmp:
            with open(tmp, "wb") as f:
                pickle.dump((scores.astype(np.float32), np.asarray(labels)), f, protocol=4)
    return summary


def _write_per_class_ap(cfg: CfgNode, scores: np.ndarray, labels: np.ndarray) -> None:
    names = load_class_names(cfg)
    num_classes = cfg.MODEL.NUM_CLASSES
    if len(scores):
        multi_hot = metrics.labels_to_multi_hot(labels, scores.shape[1])
        ap = metrics.per_class_ap(scores, multi_hot)
        positives = multi_hot.sum(axis=0).astype(int)
    else:
        ap, positives = np.full(num_classes, np.nan), np.zeros(num_classes, int)
    with atomic_path(os.path.join(cfg.OUTPUT_DIR, PER_CLASS_AP_FILE)) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class_index", "class_name", "ap", "positives"])
            for c in range(len(ap)):
                name = names[c] if c < len(names) else str(c)
                writer.writerow([c, name, "" if np.isnan(ap[c]) else f"{ap[c]:.6f}", positives[c]])


def _log_classes_left_out(count: int, num_classes: int) -> None:
    """Say how many classes the class-wise mAP averaged over, when some had no positive."""
    if count:
        logger.info("class-wise mAP is the mean over the %d of %d classes with a positive test video; "
                    "%d classes without one are left out", num_classes - count, num_classes, count)


def zero_shot(model: nn.Module, cfg: CfgNode) -> nn.Module:
    """``model`` scoring the classes of ``cfg`` (DATA.CLASS_NAMES_FILE, MODEL.NUM_CLASSES) by
    name; ValueError for a head that cannot (one without ``set_class_names``)."""
    from m3a.utils.class_names import class_names_path, read_class_names

    names = read_class_names(class_names_path(cfg), cfg.MODEL.NUM_CLASSES)
    getattr(model, "module", model).set_class_names(names)
    logger.info("zero-shot: scoring %d class names from %s", len(names), class_names_path(cfg))
    return model


def test(cfg: CfgNode, trained_model: Optional[nn.Module] = None) -> Optional[Dict]:
    """Multi-view test of a checkpoint (or ``trained_model``); return the metrics (rank 0)."""
    from m3a.datasets.loader import construct_loader

    set_seed(cfg.RNG_SEED)
    setup_logging(cfg.OUTPUT_DIR)
    device = du.get_device(cfg)
    logger.info(amp.describe_precision(cfg, device))
    load_class_names(cfg)  # a bad class-names file stops the run now, not after inference
    loader = construct_loader(cfg, "test")
    checkpoint = resolve_test_checkpoint(cfg, trained_model)
    if checkpoint is None:
        checkpoint, epoch = trained_model_source(cfg)
        # The file this run saved, when there is one: every process then tests the same weights
        # and BN statistics (under DDP each process's in-memory BN statistics are its own).
        checkpoint = checkpoint if os.path.isfile(checkpoint) else None
    if checkpoint is None:
        model, checkpoint, weights = trained_model, "(model trained in this run, not saved)", run_weights(cfg)
        logger.info("testing the model trained in this run (not saved)")
    else:
        from m3a.engine.predict import load_trained_model

        # Zero-shot: the model is the checkpoint's own; only the class names come from cfg.
        loaded = load_trained_model(checkpoint, None if cfg.TEST.ZERO_SHOT else cfg, device=device)
        model, epoch, weights = loaded.model, loaded.epoch, loaded.weights
        logger.info("testing checkpoint %s", checkpoint)
    if cfg.TEST.ZERO_SHOT:
        model = zero_shot(model, cfg)
    results = run_multiview_inference(loader, model, cfg, device)
    summary = None
    if du.is_master_proc():
        summary = write_test_outputs(cfg, results, list(loader.dataset.paths), checkpoint, epoch, weights)
        log_json_stats({"_type": "test", **{k: v for k, v in summary.items() if k != "failed_paths"}}, cfg.OUTPUT_DIR)
        logger.info(
            "test results: class-wise mAP %.4f | sample-wise mAP %.4f | top-1 %.4f | top-5 %.4f | %s | "
            "%d videos x %d views | %d failed to decode%s | %s (epoch %d) | %s weights%s",
            summary["map_class"],
            summary["map_sample"],
            summary["top1"],
            summary["top5"],
            prf_text(summary),
            summary["num_videos"],
            summary["num_views"],
            summary["failed_videos"],
            f" (listed in {METRICS_FILE})" if summary["failed_videos"] else "",
            summary["checkpoint"],
            summary["epoch"],
            summary["weights"],
            extra_scores.result_text(summary),
        )
        _log_classes_left_out(summary["classes_without_positives"], cfg.MODEL.NUM_CLASSES)
    du.synchronize()
    return summary
