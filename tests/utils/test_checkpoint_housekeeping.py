"""Checkpoint folder care: unusable files are skipped with a reason, leftovers removed, old
epochs pruned, a full disk named (on a real 1 MB tmpfs)."""
import logging
import os
import subprocess
import zipfile

import pytest
import torch
import torch.nn as nn

from m3a.config import get_cfg
from m3a.utils import checkpoint as cu


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4))


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum buffers (one step taken), so the optimizer state holds tensors."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 8)).pow(2).mean().backward()
    optimizer.step()
    return optimizer


def _save(out: str, epoch: int, model: nn.Module = None) -> str:
    model = model or _model(epoch)
    return cu.save_checkpoint(out, model, _optimizer(model), None, epoch, get_cfg())


def _drop_first_tensor_record(path: str) -> str:
    """Rewrite ``path`` without its first tensor record: every remaining member keeps a valid
    CRC. Return the dropped member's name."""
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info.filename)) for info in src.infolist()]
    dropped = next(info.filename for info, _ in members if "/data/" in info.filename
                   and info.filename.rsplit("/", 1)[1].isdigit())
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in members:
            if info.filename != dropped:
                dst.writestr(info, data)
    return dropped


def test_missing_tensor_record_is_incomplete_and_skipped(tmp_path, caplog):
    out = str(tmp_path)
    first, second = _save(out, 1), _save(out, 2)
    dropped = _drop_first_tensor_record(second)
    with zipfile.ZipFile(second) as archive:
        assert archive.testzip() is None  # the CRCs alone cannot tell
    assert cu.is_complete(first) and not cu.is_complete(second)
    with caplog.at_level(logging.WARNING, logger="m3a.utils.checkpoint"):
        assert cu.get_last_checkpoint(out) == first
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and second in warned[0] and dropped.split("/", 1)[1] in warned[0], warned


@pytest.mark.parametrize("field, bad", [("model", float("nan")), ("optimizer", float("inf"))])
def test_nonfinite_checkpoint_is_refused_naming_the_key(tmp_path, caplog, field, bad):
    out = str(tmp_path)
    first = _save(out, 1)
    model = _model(2)
    optimizer = _optimizer(model)
    if field == "model":
        with torch.no_grad():
            model[1].weight[2] = bad
        key = "model_state.1.weight"
    else:
        optimizer.state[model[0].bias]["momentum_buffer"][1] = bad
        key = "optimizer_state.state.1.momentum_buffer"
    second = cu.save_checkpoint(out, model, optimizer, None, 2, get_cfg())
    assert cu.is_complete(second)  # readable, but not to be resumed
    with caplog.at_level(logging.WARNING, logger="m3a.utils.checkpoint"):
        assert cu.get_last_checkpoint(out) == first
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and second in warned[0] and f"{key} holds NaN/Inf" in warned[0], warned


def test_temporary_files_are_removed(tmp_path):
    out = str(tmp_path)
    kept = _save(out, 1)
    folder = tmp_path / cu.CHECKPOINT_DIR
    (folder / ".tmp-a1b2.pyth").write_bytes(b"x" * 1000)
    (folder / ".tmp-c3d4.pyth").write_bytes(b"y" * 234)
    (folder / "notes.txt").write_text("mine")
    assert cu.remove_temporary_files(out) == (2, 1234)
    assert sorted(os.listdir(folder)) == sorted([os.path.basename(kept), "notes.txt"])
    assert cu.remove_temporary_files(out) == (0, 0)
    assert cu.remove_temporary_files(str(tmp_path / "absent")) == (0, 0)


def test_prune_keeps_newest_epochs_best_and_later_runs(tmp_path):
    out = str(tmp_path)
    paths = {epoch: _save(out, epoch) for epoch in (1, 2, 3, 4, 5, 9)}  # 9: an earlier, longer run
    model = _model(0)
    best = cu.save_best_checkpoint(out, model, None, None, 2, get_cfg(), "map_class", 0.75)
    assert cu.prune_checkpoints(out, 0, 5) == []
    assert cu.prune_checkpoints(out, 2, 5) == [paths[3], paths[2], paths[1]]
    assert cu.list_checkpoints(out) == [paths[9], paths[5], paths[4]]
    assert os.path.isfile(best)
    assert cu.read_best_record(out) == {"epoch": 2, "metric": "map_class", "value": 0.75}
    assert cu.read_best_record(str(tmp_path / "absent")) is None


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MB tmpfs mounted at tmp_path/disk (needs root and a kernel that allows it)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a 1 MB tmpfs to fill: {proc.stderr.strip() or proc.returncode}")
    try:
        yield str(disk)
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def _open_files_under(folder: str):
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor of the listing itself
            continue
        if target.startswith(folder):
            found.append(target)
    return found


def test_full_disk_names_the_path_and_keeps_the_previous_checkpoint(tiny_disk):
    small, big = nn.Linear(8, 4), nn.Linear(1024, 512)  # ~0.2 KB and ~2 MB of weights
    first = cu.save_checkpoint(tiny_disk, small, None, None, 1, get_cfg())
    target = cu.checkpoint_path(tiny_disk, 2)
    with pytest.raises(cu.CheckpointError) as err:
        cu.save_checkpoint(tiny_disk, big, None, None, 2, get_cfg())
    message = str(err.value)
    print(f"disk-full message: {message}")
    assert message.startswith(f"no space left on device at {target}") and "\n" not in message
    assert cu.get_last_checkpoint(tiny_disk) == first
    assert _open_files_under(tiny_disk) == []  # the failed file is closed: its space is free again
    cu.save_best_checkpoint(tiny_disk, small, None, None, 1, get_cfg(), "map_class", 0.5)
    with pytest.raises(cu.CheckpointError, match="no space left on device at .*checkpoint_best.pyth"):
        cu.save_best_checkpoint(tiny_disk, big, None, None, 2, get_cfg(), "map_class", 0.9)
    folder = os.path.join(tiny_disk, cu.CHECKPOINT_DIR)
    assert sorted(os.listdir(folder)) == [cu.BEST_CHECKPOINT, os.path.basename(first)]  # no temp file
    assert cu.get_last_checkpoint(tiny_disk) == first
    assert cu.read_best_record(tiny_disk)["value"] == 0.5


def test_ctrl_c_during_a_write_stays_a_ctrl_c_and_keeps_the_previous_file(tmp_path):
    """A real signal (SIGALRM handled as SIGINT is) lands at 20 points of a 48 MB write: each
    write either completes or raises KeyboardInterrupt (torch's zip writer reported most of them
    as RuntimeError 'unexpected pos'); the file at the path always loads, no temporary is left."""
    import signal

    path = str(tmp_path / "checkpoint.pyth")
    cu.write_checkpoint({"w": torch.zeros(2)}, path)
    state = {f"w{i}": torch.full((256, 1024), float(i)) for i in range(48)}
    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    outcomes = []
    try:
        for delay_ms in range(2, 62, 3):
            signal.setitimer(signal.ITIMER_REAL, delay_ms / 1000)
            try:
                cu.write_checkpoint(state, path)
                outcomes.append("written")
            except KeyboardInterrupt:
                outcomes.append("interrupted")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            assert os.listdir(tmp_path) == ["checkpoint.pyth"]
            loaded = torch.load(path, weights_only=True)
            assert set(loaded) in ({"w"}, set(state))
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert "interrupted" in outcomes
