"""tools/run_net.py on the tiny demo data: bad input and Ctrl-C end in one short stderr line
that names the thing (real subprocesses, real videos, real signals)."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from m3a.config import load_config
from m3a.models import build_model
from m3a.utils import checkpoint as cu

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_NET = os.path.join(REPO, "tools", "run_net.py")

CONFIG = """NUM_GPUS: 0
LOG_PERIOD: 1
LOG_MODEL_INFO: False
MODEL: {{ARCH: r3d, DEPTH: 18, BASE_WIDTH: 8, STAGE_BLOCKS: [1, 1, 1, 1], NUM_CLASSES: 4}}
M3A: {{MODE: NONE}}
DATA: {{PATH_TO_DATA_DIR: {data}, MMIT_VERSION: demo, NUM_FRAMES: 4, SAMPLING_RATE: 2,
        TRAIN_JITTER_SCALES: [32, 36], TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32}}
DATA_LOADER: {{NUM_WORKERS: 0}}
TRAIN: {{BATCH_SIZE: 4, EVAL_PERIOD: 0}}
TEST: {{BATCH_SIZE: 4, NUM_ENSEMBLE_VIEWS: 1, NUM_SPATIAL_CROPS: 1}}
SOLVER: {{BASE_LR: 0.01, LR_POLICY: constant, MAX_EPOCH: 1}}
"""


@pytest.fixture(scope="module")
def cfg_file(tiny_demo_dir, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("run_net_errors") / "tiny.yaml"
    path.write_text(CONFIG.format(data=tiny_demo_dir))
    return str(path)


def _command(cfg_file, out, *overrides):
    return [sys.executable, RUN_NET, "--cfg", cfg_file, "OUTPUT_DIR", str(out), *map(str, overrides)]


def _env():
    return dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))


def run_net(cfg_file, out, *overrides):
    return subprocess.run(_command(cfg_file, out, *overrides), capture_output=True, text=True, env=_env(), timeout=120)


def _short_error(proc, code=2, prefix="error: "):
    """The single stderr line of a run that stopped with exit ``code``."""
    assert proc.returncode == code, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr[-3000:]
    return lines[0]


def test_empty_list(cfg_file, tiny_demo_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_demo_dir, data, ignore=shutil.ignore_patterns("videos"))
    (data / "train-demo.csv").write_text("\n")
    line = _short_error(run_net(cfg_file, tmp_path / "out", "DATA.PATH_TO_DATA_DIR", data, "DATA.PATH_PREFIX", tiny_demo_dir))
    assert line == f"error: {data / 'train-demo.csv'}: the list holds no videos"


def test_wrong_path_prefix_names_the_list_and_first_video(cfg_file, tiny_demo_dir, tmp_path):
    proc = run_net(cfg_file, tmp_path / "out", "DATA.PATH_PREFIX", tmp_path / "nowhere")
    line = _short_error(proc)
    first = open(os.path.join(tiny_demo_dir, "train-demo.csv")).readline().split(",")[0]
    assert line == (
        f"error: {os.path.join(tiny_demo_dir, 'train-demo.csv')}: none of its 16 videos exists "
        f"(first: {tmp_path / 'nowhere' / first}); check DATA.PATH_PREFIX and DATA.PATH_TO_DATA_DIR"
    )
    # The ~110-line config goes to the log file, not to the terminal before the error.
    assert len(proc.stdout.splitlines()) <= 5 and "MAX_EPOCH" not in proc.stdout
    assert "full config in" in proc.stdout
    assert "MAX_EPOCH: 1" in (tmp_path / "out" / "stdout.log").read_text()


def test_videos_failing_in_a_loader_worker(cfg_file, tiny_demo_dir, tmp_path):
    """Only one listed video exists: a worker gives up after DATA.NUM_RETRIES replacements."""
    data = tmp_path / "data"
    shutil.copytree(tiny_demo_dir, data, ignore=shutil.ignore_patterns("videos"))
    lines = (data / "train-demo.csv").read_text().splitlines()
    (data / "train-demo.csv").write_text("\n".join(lines[:1] + [f"gone/{i}.mp4,0" for i in range(40)]) + "\n")
    proc = run_net(cfg_file, tmp_path / "out", "DATA.PATH_TO_DATA_DIR", data, "DATA.PATH_PREFIX", tiny_demo_dir,
                   "DATA.NUM_RETRIES", 0, "DATA_LOADER.NUM_WORKERS", 1)
    line = _short_error(proc)
    assert line.startswith("error: 1 videos in a row failed to decode (DATA.NUM_RETRIES = 0); last: ")
    assert "gone/" in line and "Traceback" not in proc.stderr


def test_yaml_syntax_error_keeps_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("NUM_GPUS: 0\nSOLVER:\n  BASE_LR: [0.1\n  MAX_EPOCH: 2\n")
    line = _short_error(run_net(str(bad), tmp_path / "out"))
    assert line == (f"error: {bad}:4:12: invalid YAML: expected ',' or ']', but got ':' "
                    "(while parsing a flow sequence from line 3, column 12)")


def test_shape_mismatch_is_summarised(cfg_file, tmp_path):
    ckpt = tmp_path / "narrow.pyth"
    torch.save({"model_state": build_model(load_config(cfg_file)).state_dict()}, ckpt)
    proc = run_net(cfg_file, tmp_path / "out", "TRAIN.ENABLE", False, "MODEL.BASE_WIDTH", 16,
                   "TEST.CHECKPOINT_FILE_PATH", ckpt)
    line = _short_error(proc)
    assert line.startswith(f"error: {ckpt}: shape mismatch for 61 key(s) (does the config match the checkpoint's?): "
                           "conv1.weight: checkpoint (8, 3, 3, 7, 7) vs model (16, 3, 3, 7, 7); ")
    assert line.endswith("; ... and 58 more") and len(line) < 400


def test_single_label_loss_on_a_multi_label_list(cfg_file, tiny_demo_dir, tmp_path):
    lines = open(os.path.join(tiny_demo_dir, "train-demo.csv")).read().splitlines()
    first = next(i for i, text in enumerate(lines) if text.count(",") > 1)
    line = _short_error(run_net(cfg_file, tmp_path / "out", "MODEL.LOSS_FUNC", "cross_entropy"))
    video = lines[first].split(",")[0]
    assert line.startswith(f"error: {os.path.join(tiny_demo_dir, 'train-demo.csv')}:{first + 1}: '{video}' has "
                           f"{lines[first].count(',')} labels but MODEL.LOSS_FUNC cross_entropy is single-label")
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_class_names_ending_in_numbers_reach_per_class_ap(cfg_file, tmp_path):
    ckpt = tmp_path / "model.pyth"
    torch.save({"model_state": build_model(load_config(cfg_file)).state_dict()}, ckpt)
    names = tmp_path / "names.txt"
    names.write_text("top 10\ntop 20\nbottom 3\nmiddle 1\n")
    out = tmp_path / "out"
    proc = run_net(cfg_file, out, "TRAIN.ENABLE", False, "TEST.CHECKPOINT_FILE_PATH", ckpt,
                   "DATA.CLASS_NAMES_FILE", names)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    rows = (out / "per_class_ap.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == ["top 10", "top 20", "bottom 3", "middle 1"]
    names.write_text("top,0\nbottom,2\n")  # a broken index column stops before any inference
    line = _short_error(run_net(cfg_file, tmp_path / "out2", "TRAIN.ENABLE", False, "TEST.CHECKPOINT_FILE_PATH", ckpt,
                                "DATA.CLASS_NAMES_FILE", names))
    assert line.startswith(f"error: {names}:2: index 2 is outside 0..1")


def _default_sigint() -> None:
    """Give the child the default SIGINT action: a shell runs background jobs (e.g. `make test &`)
    with SIGINT ignored, and an ignored signal would be inherited, so Ctrl-C could not be tested."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_how_to_resume_then_a_finished_run_says_so(cfg_file, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_command(cfg_file, out, "SOLVER.MAX_EPOCH", 100000, "DATA_LOADER.NUM_WORKERS", 1),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            start_new_session=True, preexec_fn=_default_sigint)
    try:
        deadline = time.time() + 90
        while cu.get_last_checkpoint(str(out)) is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole process group
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    last = cu.get_last_checkpoint(str(out))
    assert last is not None
    interrupted = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert _short_error(interrupted, code=130, prefix="interrupted") == (
        f"interrupted; re-run the same command to resume from {last}"
    )

    # Re-run with MAX_EPOCH = the epochs already done: nothing to train, then testing.
    epochs = torch.load(last, weights_only=True)["epoch"]
    done = run_net(cfg_file, out, "SOLVER.MAX_EPOCH", epochs)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    assert f"training already finished: {epochs} of {epochs} epochs in {last}; nothing to train" in done.stdout
    assert "start epoch" not in done.stdout and "test results:" in done.stdout
