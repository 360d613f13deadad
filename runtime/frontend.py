"""The log-mel front-end contract (docs/design.md §4): config, numpy reference, streaming.

``FrontendConfig`` is the single description of the features a model expects.
It travels inside every exported model as JSON (``hearkit.frontend``), and every
backend (numpy here, torch in ``hearkit.training.frontend``, the ONNX graphs in
``hearkit.export.frontend``) computes the same function of it:

    frames   = hop-spaced windows of n_fft samples (after centre padding if ``center``)
    power    = |rfft(frame * window)|^2                     (n_fft // 2 + 1 bins)
    mel      = power @ mel_filterbank(config).T             (n_mels)
    logmel   = ln(mel + eps)            if log == "ln"
             = 10 * log10(max(mel, 1e-10))  if log == "db"

There is no clip-dependent normalisation: the same second of audio gives the
same features alone, in a long file or in 10 ms pieces.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from hearkit.audio import downmix
from hearkit.errors import ConfigError
from hearkit.limits import LIMITS, check

DB_FLOOR = 1e-10  # power floor of the dB log, as librosa.power_to_db(amin=1e-10)
WINDOWS = ("hann", "hamming", "rect")
PAD_MODES = ("reflect", "constant")
MEL_SCALES = ("htk", "slaney")
MEL_NORMS = ("none", "slaney")
LOGS = ("ln", "db")


@dataclass(frozen=True)
class FrontendConfig:
    """Log-mel front-end parameters. Validated on creation; ``None`` fields are resolved.

    Attributes:
        sample_rate: audio rate in Hz the model expects (Default: 16000).
        n_fft: FFT size in samples (Default: 512).
        win_length: window length in samples, <= n_fft, centred in the FFT frame
            (Default: None = n_fft).
        hop_length: samples between frames (Default: 160, 10 ms at 16 kHz).
        window: ``hann`` (periodic) | ``hamming`` (periodic) | ``rect`` (Default: hann).
        center: pad n_fft // 2 samples on both sides so frame t is centred at
            t * hop. Streaming needs ``False`` (Default: False).
        pad_mode: ``reflect`` | ``constant`` (zeros); used only when ``center`` (Default: reflect).
        n_mels: mel bands (Default: 40).
        f_min: lowest filter edge in Hz (Default: 20.0).
        f_max: highest filter edge in Hz (Default: None = sample_rate / 2).
        mel_scale: ``htk`` | ``slaney`` (Default: htk).
        mel_norm: ``none`` | ``slaney`` (area normalisation) (Default: none).
        log: ``ln`` = ln(mel + eps) | ``db`` = 10 log10(max(mel, 1e-10)) (Default: ln).
        eps: floor added before ``ln`` (Default: 1e-6).
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int | None = None
    hop_length: int = 160
    window: str = "hann"
    center: bool = False
    pad_mode: str = "reflect"
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float | None = None
    mel_scale: str = "htk"
    mel_norm: str = "none"
    log: str = "ln"
    eps: float = 1e-6
    power: float = field(default=2.0)

    def __post_init__(self):
        def fail(msg):
            raise ConfigError(f"invalid front-end config: {msg}")

        # Every size is bounded (hearkit.limits, docs/design.md §13): an n_fft of 1e8 from a
        # model's metadata grew one command to 22 GB, a rate of 1e12 asked the resampler for terabytes.
        if self.win_length is None:
            object.__setattr__(self, "win_length", self.n_fft)
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            v = getattr(self, name)
            if isinstance(v, (str, bytes)):  # check() reads numeric strings; a config holds numbers
                fail(f"{name} must be {LIMITS[name].describe()}, got {v!r}")
            try:
                object.__setattr__(self, name, check(name, v))
            except ConfigError as e:
                fail(str(e))
        if not self.win_length <= self.n_fft:
            fail(f"win_length must be in 1..n_fft ({self.n_fft}), got {self.win_length!r}")
        if self.f_max is None:
            object.__setattr__(self, "f_max", self.sample_rate / 2)
        for name in ("f_min", "f_max", "power"):  # float() of a JSON list or string would be a bare TypeError
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                fail(f"{name} must be a number, got {v!r}")
        object.__setattr__(self, "f_min", float(self.f_min))
        object.__setattr__(self, "f_max", float(self.f_max))
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            fail(
                f"need 0 <= f_min < f_max <= sample_rate/2 ({self.sample_rate / 2:g}), "
                f"got f_min={self.f_min:g}, f_max={self.f_max:g}"
            )
        for name, allowed in (
            ("window", WINDOWS),
            ("pad_mode", PAD_MODES),
            ("mel_scale", MEL_SCALES),
            ("mel_norm", MEL_NORMS),
            ("log", LOGS),
        ):
            if getattr(self, name) not in allowed:
                fail(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if not isinstance(self.center, bool):
            fail(f"center must be true or false, got {self.center!r}")
        if isinstance(self.eps, (str, bytes)) or not (isinstance(self.eps, (int, float)) and self.eps > 0):
            fail(f"eps must be > 0, got {self.eps!r}")
        try:
            object.__setattr__(self, "eps", check("eps", self.eps))  # inf passes "> 0" and makes every frame inf
        except ConfigError as e:
            fail(str(e))
        if float(self.power) != 2.0:
            fail(f"only power 2 (power spectrum) is supported, got {self.power!r}")
        object.__setattr__(self, "power", 2.0)
        if self.center and self.pad_mode == "reflect" and self.n_fft // 2 >= 1 << 30:
            fail("n_fft too large")

    # -- derived -------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        """Number of rfft bins, n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    @property
    def cache_samples(self) -> int:
        """Samples a streaming front-end carries between chunks (n_fft - hop, at least 0)."""
        return max(0, self.n_fft - self.hop_length)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` samples of audio."""
        n = num_samples + (2 * (self.n_fft // 2) if self.center else 0)
        return 0 if n < self.n_fft else 1 + (n - self.n_fft) // self.hop_length

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "FrontendConfig":
        return config_from_dict(cls, d)

    @classmethod
    def from_json(cls, s: str) -> "FrontendConfig":
        try:
            d = json.loads(s)
        except ValueError as e:  # not JSON, or an integer of thousands of digits (Python's 4300-digit limit)
            raise ConfigError(f"invalid front-end config: not JSON ({e})") from e
        except RecursionError as e:  # "[[[[..." nested deeper than the parser's stack
            raise ConfigError("invalid front-end config: JSON nested too deeply") from e
        if not isinstance(d, dict):
            raise ConfigError("invalid front-end config: expected a JSON object")
        return cls.from_dict(d)

    def replace(self, **changes) -> "FrontendConfig":
        return dataclasses.replace(self, **changes)


def config_from_dict(cls, d: dict):
    """``cls(**d)`` for a front-end config dataclass, refusing keys it does not have."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"invalid front-end config: unknown keys {unknown}; allowed: {sorted(known)}")
    return cls(**d)


def frontend_from_dict(d: dict):
    """The front-end config of a checkpoint or model: ``FrontendConfig``, or the speech embedding's
    ``hearkit.embedding.EmbeddingConfig`` when ``d["kind"]`` says so (docs/design.md §17)."""
    if isinstance(d, dict) and d.get("kind") is not None:
        from hearkit.embedding import KIND, EmbeddingConfig

        if d["kind"] != KIND:
            raise ConfigError(f"invalid front-end config: kind must be {KIND!r} or absent (log-mel), got {d['kind']!r}")
        return EmbeddingConfig.from_dict(d)
    return FrontendConfig.from_dict(d)


def frontend_from_json(s: str):
    """``frontend_from_dict`` of a JSON text (a model's ``hearkit.frontend`` metadata)."""
    try:
        d = json.loads(s)
    except ValueError as e:
        raise ConfigError(f"invalid front-end config: not JSON ({e})") from e
    except RecursionError as e:
        raise ConfigError("invalid front-end config: JSON nested too deeply") from e
    if not isinstance(d, dict):
        raise ConfigError("invalid front-end config: expected a JSON object")
    return frontend_from_dict(d)


# -- mel filterbank -----------------------------------------------------------
def hz_to_mel(f, scale: str = "htk"):
    """Hz to mel, as librosa.hz_to_mel (``htk`` or Slaney's ``slaney``)."""
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels)


def mel_to_hz(m, scale: str = "htk"):
    """Mel to Hz, the inverse of ``hz_to_mel``."""
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), float64.

    Same construction as librosa.filters.mel (triangles in Hz between mel-spaced
    edges; optional Slaney area normalisation).
    """
    fftfreqs = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_bins)
    m_lo, m_hi = hz_to_mel(cfg.f_min, cfg.mel_scale), hz_to_mel(cfg.f_max, cfg.mel_scale)
    mel_f = mel_to_hz(np.linspace(m_lo, m_hi, cfg.n_mels + 2), cfg.mel_scale)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if cfg.mel_norm == "slaney":
        weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights


def window(cfg: FrontendConfig) -> np.ndarray:
    """Analysis window of win_length samples, zero-padded to n_fft and centred; float64."""
    n = cfg.win_length
    k = np.arange(n)
    if cfg.window == "hann":  # periodic, as scipy.signal.get_window("hann", n, fftbins=True)
        w = 0.5 - 0.5 * np.cos(2 * np.pi * k / n)
    elif cfg.window == "hamming":
        w = 0.54 - 0.46 * np.cos(2 * np.pi * k / n)
    else:
        w = np.ones(n)
    left = (cfg.n_fft - n) // 2
    out = np.zeros(cfg.n_fft)
    out[left : left + n] = w
    return out


def apply_log(mel: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """The config's log of mel power."""
    if cfg.log == "ln":
        return np.log(mel + cfg.eps)
    return 10.0 * np.log10(np.maximum(mel, DB_FLOOR))


# -- numpy reference ----------------------------------------------------------
def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    n = 0 if x.shape[-1] < n_fft else 1 + (x.shape[-1] - n_fft) // hop
    if n == 0:
        return np.zeros(x.shape[:-1] + (0, n_fft), x.dtype)
    return np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop, :][..., :n, :]


def power_spectrogram(x: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """|STFT|^2 of (..., samples) float audio; returns (..., frames, n_fft // 2 + 1) float64."""
    x = np.asarray(x, dtype=np.float64)
    if cfg.center:
        pad = cfg.n_fft // 2
        widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
        if cfg.pad_mode == "reflect" and x.shape[-1] <= pad:
            raise ConfigError(
                f"reflect padding needs more than n_fft//2 = {pad} samples, got {x.shape[-1]}"
            )
        x = np.pad(x, widths, mode=cfg.pad_mode)
    fr = _frames(x, cfg.n_fft, cfg.hop_length) * window(cfg)
    spec = np.fft.rfft(fr, n=cfg.n_fft, axis=-1)
    return spec.real**2 + spec.imag**2


def logmel(x: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Log-mel features of (..., samples) audio: (..., frames, n_mels) float32.

    The reference implementation: float64 inside, the oracle the other backends
    are tested against (besides librosa).
    """
    power = power_spectrogram(x, cfg)
    mel = power @ mel_filterbank(cfg).T
    return apply_log(mel, cfg).astype(np.float32)


class StreamingFrontend:
    """Numpy front-end fed in chunks of any size; emits the frames offline ``logmel`` would.

    Needs ``center=False``: a centred first frame would look at samples before
    the stream began. Between chunks it carries the samples not yet consumed by
    a complete frame (at most n_fft - 1 of them).

    Example:
        >>> fe = StreamingFrontend(FrontendConfig())
        >>> frames = [fe.accept_waveform(chunk) for chunk in chunks]   # each (k, n_mels)
    """

    def __init__(self, cfg: FrontendConfig):
        if cfg.center:
            raise ConfigError("streaming needs center=False (a centred frame would need samples before the stream)")
        self.cfg = cfg
        self._fb = mel_filterbank(cfg).T
        self._win = window(cfg)
        self.reset()

    def reset(self) -> None:
        """Forget all buffered audio."""
        self._buf = np.zeros(0, np.float64)
        self.frames_emitted = 0

    def accept_waveform(self, chunk: np.ndarray) -> np.ndarray:
        """Add samples; return the newly complete frames, shape (k, n_mels) float32 (k may be 0)."""
        chunk = downmix(chunk).astype(np.float64, copy=False)  # (samples, channels) averaged, not interleaved
        buf = np.concatenate([self._buf, chunk])
        cfg = self.cfg
        n = 0 if buf.size < cfg.n_fft else 1 + (buf.size - cfg.n_fft) // cfg.hop_length
        if n == 0:
            self._buf = buf
            return np.zeros((0, cfg.n_mels), np.float32)
        fr = _frames(buf, cfg.n_fft, cfg.hop_length) * self._win
        spec = np.fft.rfft(fr, n=cfg.n_fft, axis=-1)
        out = apply_log((spec.real**2 + spec.imag**2) @ self._fb, cfg).astype(np.float32)
        self._buf = buf[n * cfg.hop_length :]
        self.frames_emitted += n
        return out
