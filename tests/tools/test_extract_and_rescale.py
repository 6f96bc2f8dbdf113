"""tools/extract_audio.py and tools/rescale_videos.py on real videos (one without audio)."""
import os

import av
import numpy as np

from m3a.prep.audio_io import read_audio
from m3a.utils.synthetic_video import write_video as write_synthetic
from tests.tools.conftest import VIDEOS, run_tool


def test_extract_audio_lists_videos_without_audio(video_set, tmp_path):
    out = tmp_path / "audio"
    proc = run_tool("extract_audio", "--videos-root", video_set["root"], "--out-root", out, "--workers", 2)
    assert "done: 9" in proc.stdout and "no-audio: 2" in proc.stdout
    assert sorted((out / "no_audio.txt").read_text().split()) == ["c0/n0.mp4", "c2/s0.mp4"]
    wav = str(out / "c1" / "b0.mp4.wav")
    with av.open(wav) as c:
        stream = c.streams.audio[0]
        assert stream.codec_context.name == "pcm_s16le" and stream.codec_context.sample_rate == 16000
        assert stream.codec_context.channels == 1
    np.testing.assert_allclose(read_audio(wav), read_audio(os.path.join(video_set["root"], "c1/b0.mp4")),
                               atol=1.0 / 32767)
    assert not (out / "c0" / "n0.mp4.wav").exists()
    again = run_tool("extract_audio", "--videos-root", video_set["root"], "--out-root", out)
    assert "skipped: 9" in again.stdout


def test_extract_audio_from_list_reports_missing(video_set, tmp_path):
    out = tmp_path / "audio"
    proc = run_tool("extract_audio", "--videos-root", video_set["root"], "--out-root", out, "--list",
                    video_set["list"])
    assert proc.returncode == 0 and "failed: 1" in proc.stdout
    assert "c4/missing.mp4" in (out / "failed.txt").read_text()
    elsewhere = tmp_path / "lists" / "audio-failed.txt"
    proc = run_tool("extract_audio", "--videos-root", video_set["root"], "--out-root", out, "--list",
                    video_set["list"], "--failed-list", elsewhere)
    assert f"1 failed, listed in {elsewhere}" in proc.stdout
    assert "c4/missing.mp4" in elsewhere.read_text()


def test_media_tools_name_a_missing_videos_root(tmp_path):
    for tool in ("extract_audio", "rescale_videos", "extract_frames"):
        proc = run_tool(tool, "--videos-root", tmp_path / "nowhere", "--out-root", tmp_path / "out", check=False)
        assert proc.returncode == 2, tool
        assert f"error: videos root not found: {tmp_path / 'nowhere'}" in proc.stderr, tool


def test_rescale_keeps_audio_and_aspect(video_set, tmp_path):
    out = tmp_path / "small"
    proc = run_tool("rescale_videos", "--videos-root", video_set["root"], "--out-root", out, "--size", 16)
    assert f"done: {len(VIDEOS)}" in proc.stdout
    with av.open(str(out / "c0" / "a0.mp4")) as c:
        v = c.streams.video[0].codec_context
        assert (v.width, v.height) == (22, 16)  # 32x24 -> short side 16, even width
        assert len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(video=0)) == 10
    src = read_audio(os.path.join(video_set["root"], "c0/a0.mp4"))
    dst = read_audio(str(out / "c0" / "a0.mp4"))
    peak = lambda w: np.abs(np.fft.rfft(w[2000:12000])).argmax() * 16000 / 10000
    assert abs(peak(src) - 300) < 5 and abs(peak(dst) - 300) < 5
    with av.open(str(out / "c0" / "n0.mp4")) as c:
        assert len(c.streams.audio) == 0
    again = run_tool("rescale_videos", "--videos-root", video_set["root"], "--out-root", out, "--size", 16)
    assert f"skipped: {len(VIDEOS)}" in again.stdout
    copy = run_tool("rescale_videos", "--videos-root", video_set["root"], "--out-root", tmp_path / "c",
                    "--size", 64, "--list", video_set["list"])
    assert f"copied: {len(VIDEOS)}" in copy.stdout and "failed: 1" in copy.stdout


def test_training_copy_is_small_fast_decoding_with_a_keyframe_every_16_frames_and_audio(video_set, tmp_path):
    src = tmp_path / "src"
    os.makedirs(src / "long")
    write_synthetic(str(src / "long" / "v.mp4"), 64, height=96, width=128, audio=True, seed=3)  # one keyframe
    out = tmp_path / "train"
    proc = run_tool("rescale_videos", "--videos-root", src, "--out-root", out, "--training-copy", "--size", 48)
    assert "done: 1" in proc.stdout
    with av.open(str(out / "long" / "v.mp4")) as c:
        video = c.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (64, 48)
        assert len(c.streams.audio) == 1
        packets = [packet for packet in c.demux(video) if packet.size]
    assert [i for i, packet in enumerate(packets) if packet.is_keyframe] == [0, 16, 32, 48]
    settings = (out / "long" / "v.mp4").read_bytes()  # x264 writes its settings into the stream
    assert b"cabac=0" in settings and b"deblock=0:" in settings  # tune=fastdecode
    with av.open(str(out / "long" / "v.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 64
    # Videos already at most --size are re-encoded too (at their own size), never just copied.
    small = run_tool("rescale_videos", "--videos-root", video_set["root"], "--out-root", tmp_path / "s",
                     "--training-copy", "--size", 64)
    assert f"done: {len(VIDEOS)}" in small.stdout
    with av.open(str(tmp_path / "s" / "c0" / "a0.mp4")) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (32, 24)
