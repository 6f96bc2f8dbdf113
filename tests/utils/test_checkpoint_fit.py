"""m3a.utils.checkpoint_fit: the model-zoo fit check compares through checkpoint.match_state, so a
model's own layout error names the file as load_checkpoint's does, and nothing is loaded."""
import pytest
import torch

from m3a.models import build_model
from m3a.utils.checkpoint import CheckpointError
from m3a.utils.checkpoint_fit import check_fit
from tests.models.test_epam_checkpoints import constant_state, mmaction_file
from tests.models.test_epam_net import LAYOUT, epam_cfg


def test_layout_error_names_the_file(tmp_path):
    model = build_model(epam_cfg(60))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = constant_state([(k, [24, 5, 1, 3, 3] if k == "backbone.conv1_s.conv.weight" else s)
                            for k, s in LAYOUT["ntu60_pose_xshift"]["state_dict"]])
    path = tmp_path / "pose.pth"
    mmaction_file(path, state)
    with pytest.raises(CheckpointError) as err:
        check_fit(str(path), model)
    assert str(err.value).startswith(f"{path}: a stream file (backbone.*, cls_head.* keys) whose "
                                     "backbone.conv1_s.conv.weight has shape (24, 5, 1, 3, 3)")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_stream_file_fits_only_its_stream(tmp_path):
    """A pose stream file converts (epam_pose_stream layout); the other stream is listed as missing."""
    model = build_model(epam_cfg(60))
    path = tmp_path / "pose.pth"
    mmaction_file(path, constant_state(LAYOUT["ntu60_pose_xshift"]["state_dict"]))
    report = check_fit(str(path), model)
    assert (report.layout, report.unexpected, report.mismatched) == ("epam_pose_stream", [], [])
    assert report.missing == [k for k in model.state_dict() if not k.startswith("pose_")] and not report.fits
    assert report.tensors == len(LAYOUT["ntu60_pose_xshift"]["state_dict"])
