"""tools/gen_audio_lexicon.py on real videos: silence/no-audio handling, formats, resuming."""
import numpy as np
import torch

from m3a.utils.lexicon import load_audio_lexicon
from m3a.prep.audio_io import read_audio
from m3a.prep.logmel import log_mel_examples
from m3a.prep.vggish import random_vggish
from m3a.utils.safe_pickle import load_pickle
from tests.tools.conftest import run_tool


def test_fallback_lexicon_npz_and_legacy_pickle(video_set, tmp_path):
    out = tmp_path / "mmit-m3a" / "audio-lexicon-t.npz"
    args = ["--list", video_set["list"], "--videos-root", video_set["root"],
            "--class-names", video_set["names"], "--out", out]
    proc = run_tool("gen_audio_lexicon", *args, "--on-empty", "zeros",
                    "--legacy-pickle", "--workers", 2)
    assert "kept: 8" in proc.stdout and "no-audio: 2" in proc.stdout
    assert "silent: 1" in proc.stdout and "unreadable: 1" in proc.stdout
    assert "fallback" in proc.stderr and "'whistling' has no non-silent" in proc.stderr
    lex = load_audio_lexicon(str(out), 5)
    assert lex["label"]["engine running"] == ["c3/q1.mp4"]  # q0 is silent
    assert lex["label"]["singing"] == ["c0/a2.mp4", "c1/b0.mp4", "c1/b1.mp4", "c3/q1.mp4"]
    assert lex["label"]["rain/storm"] == ["c0/a0.mp4"]  # s0 has no audio; a0 is labelled 0,2
    assert all(v.shape == (384,) and v.dtype == np.float32 for v in lex["audio"].values())
    published = load_pickle(str(out.with_suffix(".pkl")))
    assert list(published["label"]) == list(lex["label"])
    for key, value in lex["audio"].items():
        np.testing.assert_array_equal(published["audio"][key], value)
    # 8 clips: 7 whitened axes with unit variance, the rest zero.
    feats = np.stack([lex["audio"][k] for k in lex["label"]["dog+barking"] + ["c1/b0.mp4", "c3/q1.mp4"]])
    assert np.all(feats[:, 7:] == 0)
    # Without the zero fallback the empty class is a one-line error naming it.
    proc = run_tool("gen_audio_lexicon", *args, check=False)
    assert proc.returncode == 2 and "whistling" in proc.stderr and "Traceback" not in proc.stderr


def test_resume_from_cache_and_settings_check(video_set, tmp_path):
    out = tmp_path / "a.npz"
    args = ["--list", video_set["list"], "--videos-root", video_set["root"], "--class-names",
            video_set["names"], "--out", out, "--on-empty", "zeros"]
    run_tool("gen_audio_lexicon", *args)
    first = load_audio_lexicon(str(out))
    assert len(list((tmp_path / "a.npz.parts").iterdir())) == 1
    again = run_tool("gen_audio_lexicon", *args)
    assert "11 clips done, 1 to go" in again.stderr  # the missing file is retried, not cached
    second = load_audio_lexicon(str(out))
    for key in first["audio"]:
        np.testing.assert_array_equal(first["audio"][key], second["audio"][key])
    changed = run_tool("gen_audio_lexicon", *args, "--examples-per-clip", 2, check=False)
    assert changed.returncode == 2 and "other settings" in changed.stderr


def test_vggish_weights_from_disk(video_set, tmp_path):
    weights = tmp_path / "vggish.pth"
    model = random_vggish(0)
    torch.save(model.state_dict(), weights)
    small = tmp_path / "small.csv"
    small.write_text("c0/a0.mp4,0\nc1/b0.mp4,1\nc3/q1.mp4,2,1\n")
    names = tmp_path / "names.txt"
    names.write_text("x\ny\nz\n")
    out = tmp_path / "v.npz"
    run_tool("gen_audio_lexicon", "--list", small, "--videos-root", video_set["root"], "--class-names",
             names, "--out", out, "--vggish", weights, "--no-whiten")
    lex = load_audio_lexicon(str(out), 3)
    assert lex["label"]["y"] == ["c1/b0.mp4", "c3/q1.mp4"]
    wave = read_audio(f"{video_set['root']}/c1/b0.mp4")
    with torch.no_grad():
        emb = model(torch.from_numpy(log_mel_examples(wave))).numpy()
    # A 1 s clip has one 0.96 s example, repeated three times.
    np.testing.assert_allclose(lex["audio"]["c1/b0.mp4"], np.tile(emb[0], 3), rtol=1e-5, atol=1e-6)
