"""The VGGish log-mel front-end: 0.96 s examples of 96 frames x 64 mel bands.

Definition (as published with VGGish): audio at 16 kHz; frames of 25 ms (400 samples) every
10 ms (160 samples) with a periodic Hann window; magnitude of a 512-point FFT; 64 mel bands
between 125 and 7500 Hz on the HTK mel scale (triangles in mel, no area normalisation, the DC
bin left out); ``log(mel + 0.01)``; examples of 96 frames taken every 96 frames.
"""
import numpy as np

SAMPLE_RATE = 16000
WINDOW_LENGTH = 400
HOP_LENGTH = 160
FFT_LENGTH = 512
NUM_MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96
EXAMPLE_HOP_FRAMES = 96


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """HTK mel scale: 1127 * ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_weight_matrix(
    num_bins: int = FFT_LENGTH // 2 + 1,
    sample_rate: int = SAMPLE_RATE,
    num_bands: int = NUM_MEL_BANDS,
    low_hz: float = MEL_MIN_HZ,
    high_hz: float = MEL_MAX_HZ,
) -> np.ndarray:
    """(num_bins, num_bands) matrix of triangular mel filters over the FFT bins."""
    bin_mel = hz_to_mel(np.linspace(0.0, sample_rate / 2.0, num_bins))
    edges = np.linspace(hz_to_mel(low_hz), hz_to_mel(high_hz), num_bands + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin carries no band energy
    return weights


def resample_linear(waveform: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a 1-D signal by linear interpolation (used only when a caller passes != 16 kHz)."""
    if rate_in == rate_out or waveform.size == 0:
        return waveform
    n_out = int(round(waveform.size * rate_out / rate_in))
    t_out = np.arange(n_out) * (rate_in / rate_out)
    return np.interp(t_out, np.arange(waveform.size), waveform)


def _as_mono(waveform: np.ndarray) -> np.ndarray:
    wav = np.asarray(waveform, dtype=np.float64)
    if wav.ndim == 2:  # (samples, channels)
        wav = wav.mean(axis=1)
    if wav.ndim != 1:
        raise ValueError(f"expected a 1-D waveform or (samples, channels), got {wav.shape}")
    return wav


def log_mel_spectrogram(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(frames, 64) log-mel spectrogram of a mono waveform, resampled to 16 kHz if needed."""
    wav = resample_linear(_as_mono(waveform), sample_rate, SAMPLE_RATE)
    if wav.size < WINDOW_LENGTH:
        return np.zeros((0, NUM_MEL_BANDS), dtype=np.float64)
    num_frames = 1 + (wav.size - WINDOW_LENGTH) // HOP_LENGTH
    index = np.arange(WINDOW_LENGTH)[None, :] + HOP_LENGTH * np.arange(num_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WINDOW_LENGTH) / WINDOW_LENGTH)
    magnitude = np.abs(np.fft.rfft(wav[index] * window, n=FFT_LENGTH, axis=1))
    return np.log(magnitude @ mel_weight_matrix() + LOG_OFFSET)


def frame_examples(log_mel: np.ndarray) -> np.ndarray:
    """Cut (frames, 64) into (n, 96, 64) examples every 96 frames, dropping the incomplete tail."""
    n = 0 if log_mel.shape[0] < EXAMPLE_FRAMES else 1 + (log_mel.shape[0] - EXAMPLE_FRAMES) // EXAMPLE_HOP_FRAMES
    if n == 0:
        return np.zeros((0, EXAMPLE_FRAMES, log_mel.shape[1]), dtype=np.float32)
    starts = EXAMPLE_HOP_FRAMES * np.arange(n)
    return np.stack([log_mel[s : s + EXAMPLE_FRAMES] for s in starts]).astype(np.float32)


def log_mel_examples(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n, 96, 64) float32 VGGish input examples of a mono waveform (n = 0 when under 0.96 s)."""
    return frame_examples(log_mel_spectrogram(waveform, sample_rate))
