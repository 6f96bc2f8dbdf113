"""read_audio on real encoded files: AAC in mp4, PCM wav, and a video without audio."""
import numpy as np

from m3a.prep.audio_io import has_audio_stream, read_audio
from tests.prep.media import tone, write_video, write_wav


def test_reads_aac_track_of_mp4(tmp_path):
    path = write_video(str(tmp_path / "v.mp4"), 2.0, tone(2.0, 440.0))
    wave = read_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - 32000) < 2048  # AAC adds priming/padding samples
    assert abs(np.sqrt(np.mean(wave**2)) - 0.5 / np.sqrt(2)) < 0.02
    spectrum = np.abs(np.fft.rfft(wave[4000:20000]))
    assert abs(spectrum.argmax() * 16000 / 16000 - 440) < 3  # 1 Hz per bin for 16000 samples
    assert has_audio_stream(path)


def test_video_without_audio_gives_none(tmp_path):
    path = write_video(str(tmp_path / "silent.mp4"), 1.0, None)
    assert read_audio(path) is None
    assert not has_audio_stream(path)


def test_wav_round_trip_and_resampling(tmp_path):
    original = tone(1.0, 300.0)
    path = write_wav(str(tmp_path / "a.wav"), original)
    wave = read_audio(path)
    np.testing.assert_allclose(wave, original, atol=1e-4)
    half = read_audio(path, sample_rate=8000)
    assert half.size == 8000
    assert np.abs(half).max() <= 1.0
