"""tools/run_net.py end to end on the project's tiny demo data with an M3A head (GCN over
RGB, audio and text nodes), wLSEP loss, AdamW, cosine warm-up, clipping and CPU AMP."""
import json
import os
import subprocess
import sys

from m3a.utils.logging import read_json_stats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIG = """
NUM_GPUS: 0
LOG_PERIOD: 1
LOG_MODEL_INFO: False
MODEL: {{ARCH: r2plus1d, DEPTH: 18, BASE_WIDTH: 8, STAGE_BLOCKS: [1, 1, 1, 1], NUM_CLASSES: 4,
         LOSS_FUNC: wlsep}}
M3A: {{MODE: GRAPH, MODAL_TYPE: RGB_AUDIO_TEXT, MODAL_JOINT_TYPE: SUM, NLAYERS: 2, HIDDEN_LAYER: 16}}
DATA: {{PATH_TO_DATA_DIR: {data}, MMIT_VERSION: demo, NUM_FRAMES: 4, SAMPLING_RATE: 2,
        TRAIN_JITTER_SCALES: [32, 36], TRAIN_CROP_SIZE: 32, TEST_CROP_SIZE: 32, ENSEMBLE_METHOD: max}}
DATA_LOADER: {{NUM_WORKERS: 0}}
TRAIN: {{BATCH_SIZE: 4, MAX_ITERS_PER_EPOCH: 2, ENABLE_AMP: True}}
TEST: {{BATCH_SIZE: 4, NUM_ENSEMBLE_VIEWS: 1, NUM_SPATIAL_CROPS: 3}}
SOLVER: {{OPTIMIZING_METHOD: adamw, BASE_LR: 0.001, LR_POLICY: cosine, MAX_EPOCH: 2,
          WARMUP_EPOCHS: 1.0, WARMUP_START_LR: 0.0001, CLIP_GRAD_L2NORM: 1.0}}
"""


def test_run_net_trains_and_tests_an_m3a_model(tiny_demo_dir, tmp_path):
    cfg_file = tmp_path / "m3a.yaml"
    cfg_file.write_text(CONFIG.format(data=tiny_demo_dir))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "run_net.py"), "--cfg", str(cfg_file), "OUTPUT_DIR", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "class-wise mAP" in proc.stdout and "sample-wise mAP" in proc.stdout

    lrs = [e["lr"] for e in read_json_stats(str(out), "train_iter")]
    assert lrs[0] == 1e-4  # warm-up starts at WARMUP_START_LR
    assert lrs[1] > lrs[0]  # linear rise during the first epoch
    assert os.path.isfile(out / "checkpoints" / "checkpoint_epoch_00002.pyth")
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["num_views"] == 3 and metrics["num_videos"] + metrics["failed_videos"] == 4
    for key in ("map_class", "map_sample", "top1", "top5"):
        assert 0.0 <= metrics[key] <= 1.0
    with open(os.path.join(tiny_demo_dir, "categories-demo.txt")) as f:
        names = [line.strip() for line in f if line.strip()]
    rows = (out / "per_class_ap.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == names
