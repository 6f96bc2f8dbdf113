"""The VGGish log-mel front-end against a separate, loop-based numpy computation."""
import math

import numpy as np
import pytest

from m3a.prep.logmel import log_mel_examples, log_mel_spectrogram, mel_weight_matrix


def _chirp(seconds=2.0, rate=16000, f0=100.0, f1=7000.0):
    t = np.arange(int(seconds * rate)) / rate
    return 0.6 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))


def _reference_log_mel(wave):
    """Straightforward loops: periodic Hann, |FFT_512|, HTK triangles 125-7500 Hz, log(x + 0.01)."""
    win, hop, nfft, bands = 400, 160, 512, 64
    hann = np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / win) for n in range(win)])
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)  # HTK scale (a constant factor of 1127 ln)
    lo, hi = mel(125.0), mel(7500.0)
    edges = [lo + (hi - lo) * i / (bands + 1) for i in range(bands + 2)]
    nbins = nfft // 2 + 1
    weights = np.zeros((nbins, bands))
    for k in range(1, nbins):  # bin 0 (DC) stays out
        m = mel(k * 8000.0 / (nbins - 1))
        for b in range(bands):
            left, centre, right = edges[b], edges[b + 1], edges[b + 2]
            if left < m <= centre:
                weights[k, b] = (m - left) / (centre - left)
            elif centre < m < right:
                weights[k, b] = (right - m) / (right - centre)
    rows = []
    start = 0
    while start + win <= len(wave):
        frame = np.zeros(nfft)
        frame[:win] = wave[start : start + win] * hann
        spectrum = np.abs(np.fft.fft(frame))[:nbins]
        rows.append(np.log(spectrum @ weights + 0.01))
        start += hop
    return np.array(rows)


def test_log_mel_matches_reference_on_chirp():
    wave = _chirp()
    ours = log_mel_spectrogram(wave, 16000)
    ref = _reference_log_mel(wave)
    assert ours.shape == ref.shape == (198, 64)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_examples_are_96_frame_windows_hop_96():
    wave = _chirp(3.0)
    spec = log_mel_spectrogram(wave)
    ex = log_mel_examples(wave)
    assert spec.shape == (298, 64)
    assert ex.shape == (3, 96, 64) and ex.dtype == np.float32
    for i in range(3):
        np.testing.assert_allclose(ex[i], spec[96 * i : 96 * i + 96], rtol=1e-6)
    assert log_mel_examples(wave[:15000]).shape == (0, 96, 64)  # under 0.96 s


def test_chirp_energy_moves_up_the_mel_bands():
    spec = log_mel_spectrogram(_chirp())
    peaks = spec.argmax(axis=1)
    assert peaks[10] < 15 and peaks[-10] > 55
    assert np.all(np.diff(peaks[::20]) >= 0)


def test_other_sample_rates_are_resampled_to_16k():
    rate = 32000
    t = np.arange(2 * rate) / rate
    wave32 = 0.5 * np.sin(2 * np.pi * 1000 * t)
    wave16 = wave32[::2]
    a = log_mel_spectrogram(wave32, rate)
    b = log_mel_spectrogram(wave16, 16000)
    assert a.shape == b.shape
    np.testing.assert_allclose(a[:, 20:40], b[:, 20:40], atol=1e-3)


def test_mel_matrix_shape_and_dc_bin():
    w = mel_weight_matrix()
    assert w.shape == (257, 64)
    assert np.all(w[0] == 0) and np.all(w.max(axis=0) > 0.5)


def test_rejects_bad_shape():
    with pytest.raises(ValueError):
        log_mel_spectrogram(np.zeros((2, 2, 2)))
