"""The human-readable line logged at the end of every training epoch (besides the JSON stats)."""
from typing import Dict, Optional

from fvcore.common.config import CfgNode

from m3a.engine.evaluation import prf_text


def epoch_summary(
    cfg: CfgNode, cur_epoch: int, train_stats: Dict[str, float], val: Optional[Dict[str, float]],
    train_seconds: float, val_seconds: float, ema: bool = False,
) -> str:
    """``epoch 3/24: train loss 0.4123, lr 0.00123 | val (ema) class mAP 0.6123, sample mAP ...,
    top-1 ..., top-5 ..., P/R/F1@0.5 micro p/r/f macro p/r/f | 12.3 s (train 10.2 s, val 2.1 s) |
    failed videos: 0 train, 0 val``; ``no validation`` in the val part when ``val`` is None."""
    head = (f"epoch {cur_epoch + 1}/{cfg.SOLVER.MAX_EPOCH}: train loss {train_stats['loss']:.4f}, "
            f"lr {train_stats['lr']:.4g}")
    failed = f"failed videos: {train_stats['failed_videos']} train"
    if val is None:
        middle, val_seconds = "no validation", 0.0
    else:
        middle = (f"val{' (ema)' if ema else ''} class mAP {val['map_class']:.4f}, sample mAP {val['map_sample']:.4f}, "
                  f"top-1 {val['top1']:.4f}, top-5 {val['top5']:.4f}, {prf_text(val)}")
        failed += f", {val['failed_videos']} val"
    seconds = train_seconds + val_seconds
    timing = f"{seconds:.1f} s (train {train_seconds:.1f} s, val {val_seconds:.1f} s)"
    return f"{head} | {middle} | {timing} | {failed}"
