"""Validation-only evaluation of a checkpoint (``run_net.py --validate CHECKPOINT``).

The checkpoint is loaded strictly (m3a.engine.predict.load_trained_model, with the weights
TEST.WEIGHTS selects) and scored on the validation list exactly as the val phase of training
scores it (one clip per video, m3a.engine.train_loop.validation_results): the same metrics, no
training, no test views. Rank 0 writes ``OUTPUT_DIR/val_metrics.json`` atomically and logs one
result line naming the checkpoint and its epoch.
"""
import json
import logging
import os
from typing import Dict, Optional

from fvcore.common.config import CfgNode

from m3a.engine import amp
from m3a.engine.evaluation import prf_text
from m3a.engine.train_loop import set_seed, validation_results
from m3a.utils import distributed as du
from m3a.utils.file_io import atomic_write_text
from m3a.utils.logging import log_json_stats, setup_logging

logger = logging.getLogger(__name__)

VAL_METRICS_FILE = "val_metrics.json"


def validate_checkpoint(cfg: CfgNode, checkpoint: str) -> Optional[Dict]:
    """Score ``checkpoint`` on the validation list of ``cfg``; return the metrics (rank 0), which
    also name ``checkpoint``, ``epoch`` (its completed epochs), ``weights`` and ``val_list``."""
    from m3a.datasets.loader import construct_loader, list_dataset
    from m3a.engine.predict import load_trained_model
    from m3a.utils.checkpoint import CheckpointError

    set_seed(cfg.RNG_SEED)
    setup_logging(cfg.OUTPUT_DIR)
    device = du.get_device(cfg)
    logger.info(amp.describe_precision(cfg, device))
    if not os.path.isfile(checkpoint):
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    loader = construct_loader(cfg, "val")
    loaded = load_trained_model(checkpoint, cfg, device=device)
    results = validation_results(loader, loaded.model, cfg, device)
    summary = None
    if du.is_master_proc():
        summary = {**results, "checkpoint": checkpoint, "epoch": int(loaded.epoch), "weights": loaded.weights,
                   "val_list": list_dataset(loader).list_path}
        atomic_write_text(os.path.join(cfg.OUTPUT_DIR, VAL_METRICS_FILE), json.dumps(summary, indent=2) + "\n")
        log_json_stats({"_type": "val_checkpoint", **summary}, cfg.OUTPUT_DIR)
        logger.info(
            "validation results: class-wise mAP %.4f | sample-wise mAP %.4f | top-1 %.4f | top-5 %.4f | %s | "
            "%d videos | %d failed to decode | %s (epoch %d) | %s weights | written to %s",
            summary["map_class"], summary["map_sample"], summary["top1"], summary["top5"], prf_text(summary),
            summary["num_videos"], summary["failed_videos"], checkpoint, summary["epoch"], summary["weights"],
            os.path.join(cfg.OUTPUT_DIR, VAL_METRICS_FILE),
        )
    du.synchronize()
    return summary
