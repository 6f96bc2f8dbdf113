"""tools/download_model_zoo.py as a real process against a local HTTP server, and the real manifest."""
import hashlib
import io
import os
import re
import subprocess
import sys
import zipfile

import pytest
import torch
import yaml

from m3a.config import load_config
from m3a.utils.model_zoo import DEFAULT_MANIFEST, load_manifest
from tests.utils.local_http import FileHost

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "download_model_zoo.py")
DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def run_tool(*args, proxy=None):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))
    if proxy:  # www.dropbox.com requests go to the local server
        env.update(http_proxy=proxy, HTTP_PROXY=proxy)
        env.pop("no_proxy", None), env.pop("NO_PROXY", None)
    return subprocess.run([sys.executable, TOOL, "--no-progress", "--backoff", "0.01", *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def host():
    with FileHost({"a.pyth": DATA, "b.pyth": DATA[::-1]}) as h:
        yield h


def write_manifest(path, host, sha_a=SHA):
    entry = dict(title="t", dataset="mmit_v1", num_classes=313, backbone="R(2+1)D-34", config=None, m3a=None,
                 published={"top1": None, "top5": None, "map": None})
    models = {
        "model-a": dict(entry, url=host.url("drive/uc?export=download&id=a.pyth"), sha256=sha_a, filename="a.pyth"),
        "model-b": dict(entry, url=host.url("b.pyth"), sha256="", filename="b.pyth"),
        "model-c": dict(entry, url=None, sha256="", filename="c.pyth"),
    }
    path.write_text(yaml.safe_dump({"models": models}))
    return str(path)


def test_named_download_verified(host, tmp_path):
    manifest = write_manifest(tmp_path / "zoo.yaml", host)
    proc = run_tool("model-a", "--dir", str(tmp_path / "ckpt"), "--manifest", manifest)
    assert proc.returncode == 0, proc.stderr
    assert "SHA-256 verified" in proc.stdout
    assert (tmp_path / "ckpt" / "a.pyth").read_bytes() == DATA


def test_trust_on_first_download_records_and_checks(host, tmp_path):
    manifest = write_manifest(tmp_path / "zoo.yaml", host)
    folder = tmp_path / "ckpt"
    proc = run_tool("model-b", "--dir", str(folder), "--manifest", manifest)
    assert proc.returncode == 0, proc.stderr
    record = (folder / "b.pyth.sha256").read_text().split()
    assert record == [hashlib.sha256(DATA[::-1]).hexdigest(), "b.pyth"]
    assert "trust on first download" in proc.stdout
    # The file is damaged later: the next run detects it against the record and fetches it again.
    (folder / "b.pyth").write_bytes(b"tampered")
    proc = run_tool("model-b", "--dir", str(folder), "--manifest", manifest)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "b.pyth").read_bytes() == DATA[::-1]
    assert (folder / "b.pyth.corrupt").read_bytes() == b"tampered"


def test_all_reports_missing_url_and_continues(host, tmp_path):
    manifest = write_manifest(tmp_path / "zoo.yaml", host)
    proc = run_tool("--all", "--dir", str(tmp_path / "ckpt"), "--manifest", manifest)
    assert proc.returncode == 1
    assert "model-c" in proc.stderr and "not published in the material we have" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "ckpt" / "a.pyth").exists() and (tmp_path / "ckpt" / "b.pyth").exists()


def test_checksum_mismatch_exits_nonzero(host, tmp_path):
    manifest = write_manifest(tmp_path / "zoo.yaml", host, sha_a="f" * 64)
    proc = run_tool("model-a", "--dir", str(tmp_path), "--manifest", manifest)
    assert proc.returncode == 1 and "SHA-256 mismatch" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "a.pyth").exists() and (tmp_path / "a.pyth.corrupt").exists()


def test_direct_mode_resumes_interrupted_transfer(host, tmp_path):
    host.cut_first["a.pyth"] = 1
    out = tmp_path / "x.bin"
    proc = run_tool("--url", host.url("a.pyth"), "--sha256", SHA, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == DATA
    assert [r["range"] for r in host.requests] == [None, f"bytes={len(DATA) // 2}-"]


def test_direct_mode_errors(host, tmp_path):
    proc = run_tool("--url", host.url("missing.pyth"), "--out", str(tmp_path / "m"))
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: HTTP 404")
    proc = run_tool("--url", host.url("page.html"), "--out", str(tmp_path / "p"))
    assert proc.returncode == 1 and "HTML page" in proc.stderr
    proc = run_tool("unknown-model")
    assert proc.returncode == 1 and "unknown model-zoo entry 'unknown-model'" in proc.stderr


def test_published_manifest_rows():
    zoo = load_manifest(DEFAULT_MANIFEST)
    rows = ["baseline", "g-va", "g-vt", "g-vat", "t-va", "t-vt", "t-vat"]
    expected = {f"mmit-{v}-{r}" for v in ("v1", "v2") for r in rows} | {"r2plus1d34-ig65m-k400"}
    assert set(zoo) == expected | set(ACTION_ROWS)
    # The mAPs DESIGN.md section 6 lists.
    assert zoo["mmit-v1-baseline"].published["map"] == 61.7
    assert zoo["mmit-v1-g-vat"].published["map"] == 65.0
    assert zoo["mmit-v1-t-vat"].published["map"] == 65.9
    assert zoo["mmit-v2-t-vat"].published["map"] == 66.4
    for name, e in zoo.items():
        if name in ACTION_ROWS:
            continue
        assert e.url.startswith("https://drive.google.com/file/d/"), name
        assert e.sha256 == "" or len(e.sha256) == 64
        if name.startswith("mmit-"):
            assert e.num_classes == (313 if "-v1-" in name else 292)
            assert e.config.startswith(f"configs/Mmit/{e.dataset[-2:]}/")
            assert all(e.published[k] is not None for k in ("top1", "top5", "map"))
            cfg = load_config(os.path.join(ROOT, e.config))  # the config exists and builds this row
            assert cfg.MODEL.NUM_CLASSES == e.num_classes and cfg.DATA.MMIT_VERSION == e.dataset[-2:]
            assert {k: cfg.M3A[k] for k in e.m3a} == e.m3a
    assert zoo["r2plus1d34-ig65m-k400"].config is None


# The released ACTION-Net checkpoints: (dataset, classes, paper's top-1 / top-5, Dropbox folder link).
ACTION_ROWS = {
    "action-net-egogesture-r50-8f": ("egogesture", 83, 94.2, 98.7,
                                     "https://www.dropbox.com/sh/v9373sopxmf3vwh/AACDx4E3exxR_gbHgFK7rsGXa?dl=0"),
    "action-net-jester-r50-8f": ("jester", 27, 97.1, 99.8,
                                 "https://www.dropbox.com/sh/77d5qn31wxwpqw8/AAB-1JZVAb1MuQfnOaKtz4Lya?dl=0"),
}


def test_action_net_manifest_rows():
    zoo = load_manifest(DEFAULT_MANIFEST)
    for name, (dataset, classes, top1, top5, url) in ACTION_ROWS.items():
        e = zoo[name]
        assert (e.dataset, e.num_classes, e.url, e.sha256, e.m3a) == (dataset, classes, url, "", None)
        assert e.published == {"top1": top1, "top5": top5, "map": None}
        assert e.member == ["*.pth.tar", "*.pth"] and e.filename == f"{name}.pth.tar"
        cfg = load_config(os.path.join(ROOT, e.config))
        assert (cfg.MODEL.BACKBONE, cfg.ACTION.VARIANT, cfg.MODEL.NUM_CLASSES, cfg.DATA.NUM_FRAMES) == (
            "action_resnet", "action", classes, 8)


def test_filenames_outside_dir_are_refused(host, tmp_path):
    folder, outside = tmp_path / "ckpt", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    victim = outside / "victim.pyth"
    victim.write_bytes(b"keep me")
    (folder / "link").symlink_to(outside, target_is_directory=True)
    manifest = yaml.safe_load(open(write_manifest(tmp_path / "zoo.yaml", host)))
    good = manifest["models"]["model-b"]
    names = {"dotdot": "../outside/victim.pyth", "absolute": str(victim), "via-link": "link/victim.pyth",
             "deep": "sub/../../outside/new.pyth"}
    models = {name: dict(good, filename=filename) for name, filename in names.items()}
    models["fine"] = dict(good, filename="sub/b.pyth")
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({"models": models}))
    proc = run_tool("--all", "--dir", str(folder), "--manifest", str(tmp_path / "zoo.yaml"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 4
    for name, filename in names.items():
        assert any(e.startswith(f"error: {name}: {name}: filename '{filename}' must be a relative name inside")
                   for e in errors), (name, errors)
    assert victim.read_bytes() == b"keep me" and sorted(p.name for p in outside.iterdir()) == ["victim.pyth"]
    assert (folder / "sub" / "b.pyth").read_bytes() == DATA[::-1]
    assert host.count("b.pyth") == 1  # only the entry inside the folder was fetched


def test_leftover_part_is_not_spliced_into_a_trusted_file(host, tmp_path):
    manifest = write_manifest(tmp_path / "zoo.yaml", host)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "b.pyth.part").write_bytes(DATA[:1000])  # left by another file (here: a.pyth's first bytes)
    proc = run_tool("model-b", "--dir", str(folder), "--manifest", manifest)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "b.pyth").read_bytes() == DATA[::-1]
    assert (folder / "b.pyth.sha256").read_text().split()[0] == hashlib.sha256(DATA[::-1]).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == ["b.pyth", "b.pyth.sha256"]


def test_stall_and_size_limits_from_the_command_line(host, tmp_path):
    host.files["slow.pyth"] = DATA[:3000]
    host.trickle["slow.pyth"] = (2, 0.05)  # 40 B/s: 75 s for the whole file; a stall even on a busy machine
    url = host.url("slow.pyth")
    proc = run_tool("--url", url, "--out", str(tmp_path / "slow.pyth"), "--retries", "0",
                    "--stall-bytes", "1K", "--stall-seconds", "0.5")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert re.fullmatch(f"error: giving up on {re.escape(url)} after 1 attempts: stalled: fewer than 1024 bytes "
                        r"arrived in 0.5 s \(\d+ bytes in this attempt\)", proc.stderr.splitlines()[-1]), proc.stderr
    assert not (tmp_path / "slow.pyth").exists() and (tmp_path / "slow.pyth.part").stat().st_size < 1024
    host.no_length.add("a.pyth")
    proc = run_tool("--url", host.url("a.pyth"), "--out", str(tmp_path / "a.pyth"), "--max-size", "100K")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: {host.url('a.pyth')}: the body exceeds the size limit of 102400 bytes "
                                   "(the manifest's size, or --max-size); stopped and removed the partial file")
    assert not (tmp_path / "a.pyth").exists() and not (tmp_path / "a.pyth.part").exists()


def test_manifest_size_is_checked(host, tmp_path):
    manifest = yaml.safe_load(open(write_manifest(tmp_path / "zoo.yaml", host)))
    manifest["models"]["model-b"]["size"] = len(DATA) - 1
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(manifest))
    proc = run_tool("model-b", "--dir", str(tmp_path / "ckpt"), "--manifest", str(tmp_path / "zoo.yaml"))
    assert proc.returncode == 1
    assert f"the server announces {len(DATA)} bytes, the manifest says {len(DATA) - 1}" in proc.stderr
    assert not (tmp_path / "ckpt" / "b.pyth").exists() and not (tmp_path / "ckpt" / "b.pyth.sha256").exists()
    manifest["models"]["model-b"]["size"] = "big"
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(manifest))
    proc = run_tool("model-b", "--manifest", str(tmp_path / "zoo.yaml"))
    assert proc.returncode == 1 and "entry 'model-b': size must be a positive number of bytes, got 'big'" in proc.stderr


# -- Dropbox folder entries and the load check (tiny ACTION-Net models, release file format) ---

TINY = {"ACTION": {"BASE_WIDTH": 8, "STAGE_BLOCKS": [1, 1, 1, 1], "REDUCTION": 4}, "MODEL": {"NUM_CLASSES": 5}}


def tiny_config(path, classes=5):
    """The EgoGesture 8f config at a tiny width (stem 8, one block per stage)."""
    cfg = dict(TINY, MODEL={"NUM_CLASSES": classes})
    cfg["_BASE_"] = os.path.join(ROOT, "configs", "ActionNet", "EGOGESTURE_ACTION_R50_8F.yaml")
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def release_zip(cfg_file):
    """A Dropbox folder archive holding a checkpoint of the config's model as ACTION-Net saves it."""
    from m3a.models import build_model

    model = build_model(load_config(cfg_file, ["LOG_MODEL_INFO", "False"]))
    ckpt, archive = io.BytesIO(), io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "optimizer": {"state": {}, "param_groups": []}}, ckpt)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("EgoGesture-resnet50/2021/clip_len_8frame_sample_rate_1_checkpoint.pth.tar", ckpt.getvalue())
        zf.writestr("EgoGesture-resnet50/2021/log.csv", "epoch\tloss\n")
    return archive.getvalue(), ckpt.getvalue()


def test_dropbox_entry_is_extracted_and_loads_into_its_config(host, tmp_path):
    share = "sh/v9373sopxmf3vwh/AACDx4E3exxR_gbHgFK7rsGXa"
    fits, wrong = tiny_config(tmp_path / "tiny.yaml"), tiny_config(tmp_path / "tiny7.yaml", classes=7)
    host.files["ego.zip"], ckpt = release_zip(fits)
    host.serve_dropbox(share, "ego.zip")
    entry = dict(title="t", dataset="egogesture", num_classes=5, backbone="ACTION-Net", m3a=None,
                 published={"top1": None, "top5": None, "map": None}, sha256="", member=["*.pth.tar", "*.pth"],
                 url=f"http://www.dropbox.com/{share}?dl=0")
    models = {"ego": dict(entry, config=fits, filename="ego.pth.tar"),
              "ego7": dict(entry, config=wrong, filename="ego7.pth.tar")}
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({"models": models}))
    folder = tmp_path / "ckpt"
    proc = run_tool("ego", "--dir", str(folder), "--manifest", str(tmp_path / "zoo.yaml"), proxy=host.base)
    assert proc.returncode == 0, proc.stderr
    sha = hashlib.sha256(ckpt).hexdigest()
    assert f"ego: downloaded {folder / 'ego.pth.tar'}; SHA-256 {sha} (no published hash" in proc.stdout
    tensors = len(torch.load(folder / "ego.pth.tar", weights_only=True)["state_dict"])
    assert f"ego: loads into {fits} ({tensors} tensors, native layout)" in proc.stdout
    assert (folder / "ego.pth.tar").read_bytes() == ckpt
    assert sorted(os.listdir(folder)) == ["ego.pth.tar", "ego.pth.tar.sha256"]
    # The same file under a config of another class count: downloaded and kept, but it does not fit.
    proc = run_tool("ego7", "--dir", str(folder), "--manifest", str(tmp_path / "zoo.yaml"), proxy=host.base)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: ego7: {folder / 'ego7.pth.tar'} does not fit {wrong}:",
        "  2 shape(s) differ: new_fc.weight checkpoint (5, 256) vs model (7, 256), "
        "new_fc.bias checkpoint (5,) vs model (7,)",
    ]
    assert (folder / "ego7.pth.tar").read_bytes() == ckpt


def test_load_check_names_missing_and_unexpected_keys(host, tmp_path):
    cfg_file = tiny_config(tmp_path / "tiny.yaml")
    _, ckpt = release_zip(cfg_file)
    state = torch.load(io.BytesIO(ckpt), weights_only=True)["state_dict"]
    state["base_model.extra.weight"] = state.pop("base_model.conv1.weight")  # one renamed key
    buffer = io.BytesIO()
    torch.save({"state_dict": state, "optimizer": {}}, buffer)
    host.files["odd.pth.tar"] = buffer.getvalue()
    entry = dict(title="t", dataset="egogesture", num_classes=5, backbone="ACTION-Net", m3a=None, config=cfg_file,
                 published={}, sha256="", url=host.url("odd.pth.tar"), filename="odd.pth.tar")
    host.files["junk.pth"] = b"not a checkpoint"
    junk = dict(entry, url=host.url("junk.pth"), filename="junk.pth")
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({"models": {"odd": entry, "junk": junk}}))
    proc = run_tool("odd", "junk", "--dir", str(tmp_path / "ckpt"), "--manifest", str(tmp_path / "zoo.yaml"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = proc.stderr.splitlines()
    assert errors[1:3] == [
        "  1 model key(s) missing from the checkpoint: base_model.conv1.weight",
        "  1 checkpoint key(s) not in the model: base_model.extra.weight",
    ]
    assert len(errors) == 4 and errors[3].startswith(f"error: junk: {tmp_path / 'ckpt' / 'junk.pth'}: cannot read")
    # --no-load-check skips the check.
    proc = run_tool("odd", "--no-load-check", "--dir", str(tmp_path / "ckpt"), "--manifest", str(tmp_path / "zoo.yaml"))
    assert proc.returncode == 0 and "already present" in proc.stdout and "loads into" not in proc.stdout


def test_direct_mode_member(host, tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("run/a.pth", b"weights")
        zf.writestr("run/b.txt", b"notes")
    host.files["f.zip"] = archive.getvalue()
    out = tmp_path / "a.pth"
    proc = run_tool("--url", host.url("f.zip"), "--member", "*.pth", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == b"weights" and sorted(os.listdir(tmp_path)) == ["a.pth", "a.pth.sha256"]
    proc = run_tool("--url", host.url("f.zip"), "--member", "*.bin", "--out", str(tmp_path / "b.bin"))
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("no member matches *.bin; its files: run/a.pth (7 bytes), run/b.txt (5 bytes)")


@pytest.mark.parametrize("name, layout", [("action-net-egogesture-r50-8f", "egogesture_action_r50_8f"),
                                          ("action-net-jester-r50-8f", "jester_action_r50_8f")])
def test_release_layout_fits_the_rows_config(name, layout, tmp_path):
    """A file with the release's 528 keys and shapes (train.py's format) fits the row's config."""
    from m3a.models import build_model
    from m3a.utils.checkpoint_fit import check_fit
    from tests.models.test_action_net_checkpoints import constant_state
    from tests.models.test_action_net import published_keys

    entry = load_manifest(DEFAULT_MANIFEST)[name]
    model = build_model(load_config(os.path.join(ROOT, entry.config), ["LOG_MODEL_INFO", "False"]))
    keys = published_keys(layout)
    path = tmp_path / "clip_len_8frame_sample_rate_1_checkpoint.pth.tar"
    torch.save({"state_dict": constant_state(keys), "optimizer": {"state": {}, "param_groups": []}}, path)
    report = check_fit(str(path), model)
    assert report.fits and (report.tensors, report.layout) == (528, "native")
    assert dict(keys)["new_fc.weight"] == [entry.num_classes, 2048]
    assert sum(p.numel() for p in model.parameters()) == {83: 27_895_919, 27: 27_781_175}[entry.num_classes]


def test_load_check_skips_missing_data_but_fails_malformed_data(host, tmp_path):
    """An M3A row whose data folder lacks the lexicon is skipped (exit 0); a lexicon that is there
    but unreadable fails the row with the file named (exit 1)."""
    data = tmp_path / "data"
    cfg_file = tmp_path / "g_va.yaml"
    cfg_file.write_text(f"_BASE_: {os.path.join(ROOT, 'configs', 'Mmit', 'v1', 'R2PLUS1D_G_VA.yaml')}\n"
                        f"DATA:\n  PATH_TO_DATA_DIR: {data}\n")
    entry = dict(title="t", dataset="mmit_v1", num_classes=313, backbone="R(2+1)D-34", m3a=None, config=str(cfg_file),
                 published={}, sha256=SHA, url=host.url("a.pyth"), filename="a.pyth")
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump({"models": {"g": entry}}))
    args = ("g", "--dir", str(tmp_path / "ckpt"), "--manifest", str(tmp_path / "zoo.yaml"))
    proc = run_tool(*args)
    assert proc.returncode == 0, proc.stderr
    assert (f"g: load check skipped: the model of {cfg_file} cannot be built without its data (graph-adj file "
            f"not found: {data}/mmit-m3a/graph-adj-v1.npz or {data}/mmit-m3a/graph-adj-v1.pkl)") in proc.stdout
    (data / "mmit-m3a").mkdir(parents=True)
    (data / "mmit-m3a" / "graph-adj-v1.npz").write_bytes(b"not an npz archive")
    proc = run_tool(*args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "skipped" not in proc.stdout
    assert proc.stderr.startswith(f"error: g: the model of {cfg_file} cannot be built: "
                                  f"{data}/mmit-m3a/graph-adj-v1.npz: cannot read")
