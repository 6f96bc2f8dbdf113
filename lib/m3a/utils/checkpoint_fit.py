"""Does a checkpoint file fit a model? Keys and shapes compared by name, then loaded.

Used after a model-zoo download (tools/download_model_zoo.py): the file is read with
``torch.load(weights_only=True)`` (``m3a.utils.checkpoint.read_checkpoint``), its state dict
mapped to the model's keys as ``load_checkpoint`` does (``module.`` stripped, the model's
``convert_state_dict``), and every missing key, unexpected key and shape difference is listed.
Only a file that fits completely is loaded into the model.
"""
import dataclasses
from typing import List, Tuple

import torch.nn as nn

from m3a.utils.checkpoint import apply_checkpoint, convert_for, extract_state, read_checkpoint, unwrap_model


@dataclasses.dataclass
class FitReport:
    """How the checkpoint's state dict compares with the model's, key by key."""

    path: str
    layout: str
    tensors: int  # tensors in the (converted) checkpoint state dict
    missing: List[str]  # model keys the checkpoint lacks
    unexpected: List[str]  # checkpoint keys the model lacks
    mismatched: List[Tuple[str, tuple, tuple]]  # (key, checkpoint shape, model shape)

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def problems(self, shown: int = 10) -> List[str]:
        """One line per kind of difference, naming up to ``shown`` keys each."""

        def names(items: List[str]) -> str:
            more = f", ... and {len(items) - shown} more" if len(items) > shown else ""
            return ", ".join(items[:shown]) + more

        lines = []
        if self.missing:
            lines.append(f"{len(self.missing)} model key(s) missing from the checkpoint: {names(self.missing)}")
        if self.unexpected:
            lines.append(f"{len(self.unexpected)} checkpoint key(s) not in the model: {names(self.unexpected)}")
        if self.mismatched:
            shapes = [f"{k} checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched]
            lines.append(f"{len(shapes)} shape(s) differ: {names(shapes)}")
        return lines


def check_fit(path: str, model: nn.Module) -> FitReport:
    """Compare the checkpoint at ``path`` with ``model``; load it into ``model`` when it fits.

    Raises ``m3a.utils.checkpoint.CheckpointError`` for a file that cannot be read (not a
    checkpoint, unsafe pickle content, no state dict)."""
    ckpt = read_checkpoint(path)
    target = unwrap_model(model)
    state, layout = convert_for(target, extract_state(ckpt, path))
    model_state = target.state_dict()
    report = FitReport(
        path=path, layout=layout, tensors=len(state),
        missing=[k for k in model_state if k not in state],
        unexpected=[k for k in state if k not in model_state],
        mismatched=[(k, tuple(v.shape), tuple(model_state[k].shape)) for k, v in state.items()
                    if k in model_state and v.shape != model_state[k].shape],
    )
    if report.fits:
        apply_checkpoint(ckpt, path, target)
    return report
