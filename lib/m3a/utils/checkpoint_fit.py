"""Does a checkpoint file fit a model? Keys and shapes compared by name, then loaded.

Used after a model-zoo download (tools/download_model_zoo.py): the file is read with
``torch.load(weights_only=True)`` (``m3a.utils.checkpoint.read_checkpoint``) and compared with
the model by ``m3a.utils.checkpoint.match_state``, as ``load_checkpoint`` does (``module.``
stripped, the model's ``convert_state_dict``); every missing key, unexpected key and shape
difference is listed. Only a file that fits completely is loaded into the model.
"""
import dataclasses
from typing import List, Tuple

import torch.nn as nn

from m3a.utils.checkpoint import extract_state, match_state, read_checkpoint, unwrap_model


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

    Raises ``m3a.utils.checkpoint.CheckpointError`` naming the file for one that cannot be read
    (not a checkpoint, unsafe pickle content, no state dict) or whose layout the model refuses."""
    target = unwrap_model(model)
    match = match_state(extract_state(read_checkpoint(path), path), path, target)
    report = FitReport(path=path, layout=match.layout, tensors=len(match.state), missing=match.absent,
                       unexpected=match.unexpected, mismatched=match.mismatched)
    if report.fits:
        target.load_state_dict(match.usable)  # every key, every shape: a strict load
    return report
