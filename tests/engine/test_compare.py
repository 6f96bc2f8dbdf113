"""tools/benchmark.py models (m3a.engine.compare): two demo family configs on the tiny demo data,
one short epoch each; the table, the PNG and the last line hold the measured values."""
import json
import os
import subprocess
import sys

import pytest

from m3a.config import load_config
from m3a.engine import compare

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = [os.path.join(REPO, "configs", "demo", "families", f"video_resnet_{h}.yaml") for h in ("fc", "gcn")]
# The tiny data set has 4 classes and 64-px videos; two iterations of 4 clips per epoch.
TINY = [
    "MODEL.NUM_CLASSES", "4", "DATA.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "2", "DATA.TRAIN_JITTER_SCALES", "[32, 36]",
    "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA_LOADER.NUM_WORKERS", "0",
    "TRAIN.BATCH_SIZE", "4", "TRAIN.MAX_ITERS_PER_EPOCH", "2", "TRAIN.CHECKPOINT_PERIOD", "1", "TEST.BATCH_SIZE", "4",
    "TEST.NUM_ENSEMBLE_VIEWS", "1", "M3A.HIDDEN_LAYER", "16",
]


def _rows(table: str) -> dict:
    """{model name: [cells]} of the markdown table."""
    lines = table.strip().splitlines()
    assert lines[0].startswith("| model | backbone | head | params | GFLOPs |")
    return {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}


@pytest.mark.slow
def test_models_subcommand_trains_two_configs_and_writes_table_and_plot(tiny_demo_dir, tmp_path):
    from m3a.models import build_model

    out = tmp_path / "compare"
    cmd = [sys.executable, os.path.join(REPO, "tools", "benchmark.py"), "models", "--cfg", CONFIGS[0], "--cfg",
           CONFIGS[1], "--data-dir", tiny_demo_dir, "--epochs", "1", "--batch", "2", "--steps", "1", "--out",
           str(out)] + TINY
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[1/2] video_resnet_fc: training 1 epochs" in proc.stdout  # progress while it runs
    rows = _rows((out / compare.TABLE_FILE).read_text())
    assert list(rows) == ["video_resnet_fc", "video_resnet_gcn"]
    last = proc.stdout.strip().splitlines()[-1]
    values = dict(pair.split("=") for pair in last.split())
    for name, head in (("video_resnet_fc", "FC"), ("video_resnet_gcn", "GCN")):
        cells = rows[name]
        assert cells[1:3] == ["video_resnet", head]
        cfg = load_config(CONFIGS[0 if head == "FC" else 1], TINY + ["DATA.PATH_TO_DATA_DIR", tiny_demo_dir])
        model = build_model(cfg)
        assert int(cells[3].replace(",", "")) == sum(p.numel() for p in model.parameters())
        gflops, train, infer = float(cells[4]), float(cells[5]), float(cells[6])
        assert 0 < gflops < 1 and train > 0 and infer > 0
        metrics = json.loads((out / name / "test_metrics.json").read_text())
        assert metrics["epoch"] == 1 and metrics["num_videos"] == 4
        assert float(cells[7]) == pytest.approx(metrics["map_class"], abs=5e-4)
        assert float(cells[8]) == pytest.approx(metrics["map_sample"], abs=5e-4)
        assert float(values[f"{name}_map_class"]) == pytest.approx(metrics["map_class"], abs=5e-5)
        assert float(values[f"{name}_gflops"]) == pytest.approx(gflops, abs=5e-4)
    # The GCN head adds its relation learners to the same backbone.
    assert int(rows["video_resnet_gcn"][3].replace(",", "")) > int(rows["video_resnet_fc"][3].replace(",", ""))
    png = (out / compare.PLOT_FILE).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def _result(name, gflops, map_class=None):
    return compare.ModelResult(name, f"{name}.yaml", "video_resnet", "FC", 1234567, gflops, 10.25, 99.0,
                               map_class, None if map_class is None else map_class / 2, None if map_class is None else 3.0)


def test_table_and_last_line_without_a_data_set(tmp_path):
    results = [_result("a", 0.5), _result("b", None)]
    table = compare.markdown_table(results)
    rows = _rows(table)
    assert rows["a"][3:] == ["1,234,567", "0.500", "10.2", "99.0", "n/a", "n/a", "n/a"]
    assert rows["b"][4] == "n/a"
    assert compare.summary_line(results) == "a_gflops=0.5000 b_gflops=n/a"
    written = compare.write_outputs(results, str(tmp_path))
    assert list(written) == ["table"] and not (tmp_path / compare.PLOT_FILE).exists()  # no mAP: no plot
    assert (tmp_path / compare.TABLE_FILE).read_text() == table


def test_plot_has_one_point_per_model_with_map_and_gflops(tmp_path):
    results = [_result("a", 0.5, 0.8), _result("b", 0.05, 0.6), _result("c", None, 0.7)]
    assert compare.summary_line(results).split()[1] == "a_map_class=0.8000"
    written = compare.write_outputs(results, str(tmp_path))
    assert written["plot"] == str(tmp_path / compare.PLOT_FILE)
    import matplotlib.image

    image = matplotlib.image.imread(written["plot"])
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_configs_with_the_same_name_are_refused(tmp_path):
    with pytest.raises(ValueError, match="same name 'video_resnet_fc'"):
        compare.check_names([CONFIGS[0], str(tmp_path / "video_resnet_fc.yaml")])


def test_bad_options_fail_before_any_work(capsys):
    sys.path.insert(0, os.path.join(REPO, "tools"))
    try:
        import benchmark
    finally:
        sys.path.pop(0)
    assert benchmark.main(["models", "--cfg", CONFIGS[0], "--epochs", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
    assert benchmark.main(["models", "--cfg", CONFIGS[0], "MODEL.NOPE", "1"]) == 2
    assert "MODEL.NOPE" in capsys.readouterr().err
