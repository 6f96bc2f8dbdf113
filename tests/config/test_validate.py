"""Every config value is checked when the config is loaded: one line naming the key, the value and
the valid range or choices (issue: values accepted silently before)."""
import pytest

from m3a.config import ConfigError, load_config


@pytest.mark.parametrize("key, value, words", [
    ("TRAIN.BATCH_SIZE", "0", "TRAIN.BATCH_SIZE must be an integer >= 1, got 0"),
    ("TRAIN.BATCH_SIZE", "-4", "TRAIN.BATCH_SIZE must be an integer >= 1, got -4"),
    ("TEST.BATCH_SIZE", "0", "TEST.BATCH_SIZE must be an integer >= 1"),
    ("SOLVER.MAX_EPOCH", "-1", "SOLVER.MAX_EPOCH must be an integer >= 1, got -1"),
    ("DATA.SAMPLING_RATE", "-2", "DATA.SAMPLING_RATE must be an integer >= 1"),
    ("DATA_LOADER.NUM_WORKERS", "-1", "DATA_LOADER.NUM_WORKERS must be >= 0"),
    ("NUM_CPU_PROCESSES", "0", "NUM_CPU_PROCESSES must be an integer >= 1"),
    ("LOG_PERIOD", "0", "LOG_PERIOD must be an integer >= 1, got 0"),
    ("DATA.TARGET_FPS", "0", "DATA.TARGET_FPS must be > 0, got 0"),
    ("DATA.NUM_FRAMES", "0", "DATA.NUM_FRAMES must be an integer >= 1"),
    ("DATA.MEAN", "[0.5, 0.5]", r"DATA.MEAN must have 3 values \(DATA.INPUT_CHANNEL_NUM\[0\]\), got \[0.5, 0.5\]"),
    ("SOLVER.BASE_LR", "-1.0", "SOLVER.BASE_LR must be > 0, got -1.0"),
    ("SOLVER.BASE_LR", "abc", r"SOLVER.BASE_LR must be a float, got 'abc' \(a str\)"),
    ("SOLVER.OPTIMIZING_METHOD", "adam", "must be one of sgd, adamw, got 'adam'; did you mean 'adamw'"),
    ("MODEL.LOSS_FUNC", "bce_logits", "MODEL.LOSS_FUNC must be one of .*did you mean 'bce_logit'"),
    ("SOLVER.LR_POLICY", "cosin", "SOLVER.LR_POLICY must be one of .*did you mean 'cosine'"),
    ("TRAIN.DATASET", "kinetic", "TRAIN.DATASET must be one of charades, kinetics, mmit.*'kinetics'"),
    ("MODEL.ARCH", "r2plus1", "MODEL.ARCH must be one of"),
    ("DATA.TRAIN_JITTER_SCALES", "[320, 256]", r"must be \[min, max\] with 1 <= min <= max"),
])
def test_bad_values_are_named_at_config_time(key, value, words):
    with pytest.raises(ConfigError, match=words) as err:
        load_config(None, [key, value])
    assert "\n" not in str(err.value)


def test_nan_in_a_yaml_file_is_refused(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("SOLVER:\n  BASE_LR: .nan\n")
    with pytest.raises(ConfigError, match="SOLVER.BASE_LR must be > 0, got nan"):
        load_config(str(path))


def test_unknown_key_suggests_the_near_miss(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'SOLVER.BASE_LRR'; did you mean 'BASE_LR'"):
        load_config(None, ["SOLVER.BASE_LRR", "0.1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("DATA:\n  NUM_FRAME: 4\n")
    with pytest.raises(ConfigError, match="did you mean 'NUM_FRAMES'"):
        load_config(str(bad))


def test_base_loop_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ConfigError, match="_BASE_ files include each other: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_config(str(tmp_path / "a.yaml"))


def test_output_dir_that_is_a_file(tmp_path):
    path = tmp_path / "out"
    path.write_text("")
    with pytest.raises(ConfigError, match=f"OUTPUT_DIR {path} exists and is not a folder"):
        load_config(None, ["OUTPUT_DIR", str(path)])


def test_step_policy_needs_consistent_steps():
    with pytest.raises(ConfigError, match="needs SOLVER.LRS and at least as many SOLVER.STEPS"):
        load_config(None, ["SOLVER.LR_POLICY", "steps_with_relative_lrs", "SOLVER.LRS", "[1, 0.1]",
                           "SOLVER.STEPS", "[0]"])


def test_every_shipped_config_passes(tmp_path):
    import glob
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
    files = [f for f in glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True)
             if not f.endswith("model_zoo.yaml")]
    assert len(files) >= 16
    for path in files:
        load_config(path)


@pytest.mark.parametrize("overrides, words", [
    (["TRAIN.ACCUM_STEPS", "0"], "TRAIN.ACCUM_STEPS must be an integer >= 1, got 0"),
    (["TRAIN.BATCH_SIZE", "6", "TRAIN.ACCUM_STEPS", "4"],
     "TRAIN.BATCH_SIZE 6 must be a multiple of TRAIN.ACCUM_STEPS 4"),
    (["TRAIN.EMA.DECAY", "1.0"], r"TRAIN.EMA.DECAY must be in \[0, 1\), got 1.0"),
    (["MIXUP.PROB", "1.5"], r"MIXUP.PROB must be in \[0, 1\], got 1.5"),
    (["MIXUP.SWITCH_PROB", "-0.1"], r"MIXUP.SWITCH_PROB must be in \[0, 1\]"),
    (["MIXUP.ALPHA", "-1.0"], "MIXUP.ALPHA must be >= 0"),
    (["MIXUP.CUTMIX_ALPHA", "-1.0"], "MIXUP.CUTMIX_ALPHA must be >= 0"),
    (["TEST.THRESHOLD", "1.5"], r"TEST.THRESHOLD must be in \[0, 1\]"),
    (["TEST.WEIGHTS", "emma"], "TEST.WEIGHTS must be one of auto, ema, model, got 'emma'; did you mean 'ema'"),
])
def test_training_extras_are_checked_at_config_time(overrides, words):
    with pytest.raises(ConfigError, match=words) as err:
        load_config(None, overrides)
    assert "\n" not in str(err.value)


def test_training_extras_defaults_are_valid():
    cfg = load_config(None, ["TRAIN.BATCH_SIZE", "64", "TRAIN.ACCUM_STEPS", "4", "TRAIN.EMA.ENABLE", "True",
                             "MIXUP.ENABLE", "True"])
    assert (cfg.TRAIN.ACCUM_STEPS, cfg.TRAIN.EMA.DECAY, cfg.TEST.THRESHOLD, cfg.TEST.WEIGHTS) == (4, 0.999, 0.5, "auto")


@pytest.mark.parametrize("views", ["3", "2"])
def test_tsn_rounded_with_several_test_clips_is_refused_at_load_time(views):
    """tsn_rounded takes one test clip; load_config names both keys (before: only the sampler's
    builder did, when a loader was built)."""
    with pytest.raises(ConfigError) as err:
        load_config(None, ["DATA.TEMPORAL_SAMPLER", "tsn_rounded", "TEST.NUM_ENSEMBLE_VIEWS", views])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("DATA.TEMPORAL_SAMPLER tsn_rounded takes one test clip")
    assert message.endswith(f"TEST.NUM_ENSEMBLE_VIEWS must be 1, got {views}")
    cfg = load_config(None, ["DATA.TEMPORAL_SAMPLER", "tsn_rounded", "TEST.NUM_ENSEMBLE_VIEWS", "1"])
    assert cfg.DATA.TEMPORAL_SAMPLER == "tsn_rounded"
    assert load_config(None, ["DATA.TEMPORAL_SAMPLER", "tsn", "TEST.NUM_ENSEMBLE_VIEWS", "3"]).TEST.NUM_ENSEMBLE_VIEWS == 3
