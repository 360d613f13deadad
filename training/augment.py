"""Data augmentation for both trainers (keywords/sounds and CTC speech), batched in torch.

Waveform stage (batch, samples): random speed (tempo and pitch together), random
time shift, noise at a random SNR, random gain, band limiting. Feature stage
(batch, frames, n_mels): SpecAugment frequency and time masks, vocal tract length
perturbation, mixup. Every function takes a ``torch.Generator`` so runs are
reproducible and the global RNG is left alone.

Where the two tasks need different semantics, the one function has an option, and
each trainer keeps what its measured recipes ran with (and the same random draws):

| | classify (``train_classify``) | CTC (``train_ctc``) |
| --- | --- | --- |
| ``speed_perturb`` | ``keep_length=True``: fixed window, about its centre | ``keep_length=False``: each utterance changes length, no word is cut |
| ``add_noise`` | recorded noise (``bank``), exact SNR per clip | white noise (``bank=None``) |
| ``random_gain`` | ``gain_clip=False`` (its default) | ``gain_clip=True``, as a 16-bit recording |
| ``spec_augment`` | fixed-size batch; fill: each clip's mean | ``lengths``: per utterance inside its length, time masks a fraction of it (``time_mask_fraction``); fill: the batch mean |

One ``AugmentConfig`` switches and sizes each step for both trainers; each has its own
defaults (``AugmentConfig()`` is the Speech Commands recipe's, ``train_ctc.DEFAULT_AUGMENT``
the connected-words recipe's). Classifiers run the waveform stage through
``augment_waveform``; the CTC trainer calls the same functions in its own order, on
utterances of different lengths (``hearkit.training.train_ctc``).

The SpecAugment masks are ours (docs/design.md §7: no torchaudio); they are a few lines.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from hearkit.errors import ConfigError

POWER_FLOOR = 1e-10  # mean-square floor when computing an SNR, avoids dividing by silence
MASK_FILLS = ("mean", "batch-mean")  # SpecAugment fills besides a number


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, and how strong.

    Attributes:
        speed: resample each clip by a random speed factor, which moves pitch and
            formants together like another speaker's voice (Ko et al. 2015 speed
            perturbation) (Default: False).
        speed_range: (low, high) speed factor, drawn uniformly (Default: (0.9, 1.1)).
        time_shift: shift clips by a random offset, zero-filled (Default: True).
        max_shift_s: largest shift either way, in seconds (Default: 0.1).
        noise: mix background noise (needs noise clips) (Default: True).
        noise_prob: share of clips that get noise (Default: 0.8).
        snr_db: (low, high) SNR range in dB, drawn uniformly (Default: (5, 20), the Speech
            Commands recipe; FSDD's clean validation speaker wanted (10, 30)).
        gain: random gain (Default: True).
        gain_db: (low, high) gain range in dB (Default: (-12, 6), the Speech Commands recipe).
        gain_clip: clip the gained clip to [-1, 1], as a 16-bit recording of a louder source would
            be (Default: False).
        band_limit_prob: share of clips low-passed at ``band_limit_hz``, as an 8 kHz recording
            resampled to 16 kHz looks (Default: 0.0).
        band_limit_hz: cut-off of that low-pass (Default: 4000).
        vtlp: (low, high) vocal tract length perturbation factors drawn per clip on the log-mel,
            or None for off: formants move, timing is kept (Default: None).
        spec_augment: SpecAugment masks on the log-mel (Default: True).
        freq_masks: number of frequency masks (Default: 2).
        freq_mask_width: largest mask width in mel bands (Default: 7).
        time_masks: number of time masks (Default: 2).
        time_mask_width: largest mask width in frames (Default: 10).
        time_mask_fraction: with per-utterance ``lengths`` (CTC), the largest time mask as a
            fraction of each utterance's frames instead of ``time_mask_width`` (Default: None).
        mask_value: ``"mean"`` fills masks with each clip's mean log-mel (a neutral value
            for the model's input norm), ``"batch-mean"`` with the mean of the whole batch
            (the CTC trainer's), or a number (Default: "mean").
        mixup: mix pairs of clips and their targets (Default: False).
        mixup_alpha: Beta(α, α) for the mixing weight (Default: 0.2).
    """

    speed: bool = False
    speed_range: tuple[float, float] = (0.9, 1.1)
    time_shift: bool = True
    max_shift_s: float = 0.1
    noise: bool = True
    noise_prob: float = 0.8
    snr_db: tuple[float, float] = (5.0, 20.0)
    gain: bool = True
    gain_db: tuple[float, float] = (-12.0, 6.0)
    gain_clip: bool = False
    band_limit_prob: float = 0.0
    band_limit_hz: float = 4000.0
    vtlp: tuple[float, float] | None = None
    spec_augment: bool = True
    freq_masks: int = 2
    freq_mask_width: int = 7
    time_masks: int = 2
    time_mask_width: int = 10
    time_mask_fraction: float | None = None
    mask_value: str | float = "mean"
    mixup: bool = False
    mixup_alpha: float = 0.2

    def __post_init__(self):
        def fail(msg):
            raise ConfigError(f"invalid augmentation config: {msg}")

        object.__setattr__(self, "snr_db", tuple(float(v) for v in self.snr_db))
        object.__setattr__(self, "gain_db", tuple(float(v) for v in self.gain_db))
        object.__setattr__(self, "speed_range", tuple(float(v) for v in self.speed_range))
        if self.vtlp is not None:
            object.__setattr__(self, "vtlp", tuple(float(v) for v in self.vtlp))
        for name in ("snr_db", "gain_db", "speed_range", "vtlp"):
            lo_hi = getattr(self, name)
            if lo_hi is not None and (len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]):
                fail(f"{name} must be (low, high) with low <= high, got {lo_hi}")
        for name in ("speed_range", "vtlp"):
            lo_hi = getattr(self, name)
            if lo_hi is not None and lo_hi[0] <= 0:
                fail(f"{name} must be positive factors, got {lo_hi}")
        if not 0 <= self.band_limit_prob <= 1:
            fail(f"band_limit_prob must be in 0..1, got {self.band_limit_prob}")
        if not self.band_limit_hz > 0:
            fail(f"band_limit_hz must be > 0, got {self.band_limit_hz}")
        if self.max_shift_s < 0:
            fail(f"max_shift_s must be >= 0, got {self.max_shift_s}")
        if not 0 <= self.noise_prob <= 1:
            fail(f"noise_prob must be in 0..1, got {self.noise_prob}")
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width"):
            if int(getattr(self, name)) < 0:
                fail(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.mixup_alpha <= 0:
            fail(f"mixup_alpha must be > 0, got {self.mixup_alpha}")
        if not (self.mask_value in MASK_FILLS or isinstance(self.mask_value, (int, float))):
            fail(f"mask_value must be one of {list(MASK_FILLS)} or a number, got {self.mask_value!r}")
        if self.time_mask_fraction is not None and not 0 <= self.time_mask_fraction <= 1:
            fail(f"time_mask_fraction must be in 0..1, got {self.time_mask_fraction}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all."""
        return cls(speed=False, time_shift=False, noise=False, gain=False, spec_augment=False, mixup=False)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


# -- waveform stage -------------------------------------------------------------------
def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play one utterance ``x`` (samples,) ``factor`` times faster (pitch and tempo together, as
    sox ``speed``); the length becomes len / factor.

    Linear interpolation (np.interp) instead of a polyphase resampler: for factors near 1
    its imaging stays far below speech content, and it costs ~2 ms per 10 s utterance
    (2.06 ms, timeit on this 2-core x86 machine, factor 1.1).
    """
    n_out = max(1, int(round(len(x) / factor)))
    return np.interp(np.arange(n_out) * factor, np.arange(len(x)), x).astype(np.float32)


def speed_perturb(x, speed_range: tuple[float, float], gen: torch.Generator, keep_length: bool = True):
    """Play each clip at a random speed factor r drawn uniformly in ``speed_range`` (one draw per clip).

    Args:
        x: ``keep_length=True``: a (batch, samples) tensor; ``False``: a sequence of (samples,)
            float32 arrays of any lengths (utterances before padding).
        speed_range: (low, high) factors; r > 1 is faster and higher, r < 1 slower and lower.
        gen: the random generator.
        keep_length: True (classifiers): the window keeps its length, read about its centre
            (``_speed_window``). False (CTC): each utterance becomes len / r samples long
            (``change_speed``), so no word is cut off.

    Returns:
        A (batch, samples) tensor, or a list of float32 arrays.
    """
    if not keep_length:
        factors = _uniform(len(x), *speed_range, gen)
        return [change_speed(u, float(f)) for u, f in zip(x, factors)]
    return _speed_window(x, speed_range, gen)


def _speed_window(x: torch.Tensor, speed_range: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """Play each clip of (batch, samples) at a random speed in ``speed_range``, about its centre.

    Output sample t reads input position c + (t - c)·r (c = the window centre, r the
    factor) with linear interpolation, so r > 1 is faster and higher, r < 1 slower
    and lower; the length is kept and positions outside the clip are silence. A
    gather with linear interpolation instead of a polyphase resampler: it is batched,
    and for factors near 1 its imaging stays far below the content of speech.
    """
    b, n = x.shape
    r = _uniform(b, *speed_range, gen).to(x.dtype)
    c = (n - 1) / 2.0
    pos = c + (torch.arange(n, dtype=x.dtype).unsqueeze(0) - c) * r.unsqueeze(1)  # (b, n) input positions
    valid = (pos >= 0) & (pos <= n - 1)
    lo = pos.floor().clamp(0, max(n - 2, 0))  # the last interval ends exactly on sample n - 1
    frac = (pos - lo).clamp(0, 1)
    lo = lo.long()
    a = x.gather(1, lo)
    b_next = x.gather(1, (lo + 1).clamp(max=n - 1))
    return torch.where(valid, a + (b_next - a) * frac, torch.zeros((), dtype=x.dtype))


def time_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each clip of (batch, samples) by a random offset in [-max_shift, max_shift], zero-filled.

    The length is kept: samples shifted out are dropped, the gap is silence.
    """
    if max_shift <= 0:
        return x
    b, n = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=gen)
    idx = torch.arange(n).unsqueeze(0) - shifts.unsqueeze(1)  # output t takes input t - shift
    valid = (idx >= 0) & (idx < n)
    return torch.where(valid, x.gather(1, idx.clamp(0, n - 1)), torch.zeros((), dtype=x.dtype))


def mix_at_snr(x: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """Add ``noise`` to ``x`` (both (batch, samples)) scaled to the given SNR per clip.

    SNR = 10 log10(mean(x²) / mean((g·noise)²)); clips or noise that are silent
    get no noise rather than a division by zero.
    """
    px = x.square().mean(dim=1)
    pn = noise.square().mean(dim=1)
    g = torch.sqrt(px / (pn.clamp_min(POWER_FLOOR) * 10.0 ** (snr_db / 10.0)))
    g = torch.where((px > POWER_FLOOR) & (pn > POWER_FLOOR), g, torch.zeros_like(g))
    return x + g.unsqueeze(1) * noise


def add_noise(x: torch.Tensor, prob: float, snr_db: tuple[float, float], gen: torch.Generator,
              bank: "NoiseBank | None" = None) -> torch.Tensor:
    """Noise at a random SNR (dB, uniform in ``snr_db``) on a random share ``prob`` of the clips in (batch, samples).

    Args:
        x: (batch, samples) waveforms.
        prob: share of clips that get noise.
        snr_db: (low, high) SNR range in dB.
        gen: the random generator.
        bank: recorded noise to crop from (classifiers): each clip's noise is scaled to the exact
            SNR (``mix_at_snr``) and silent clips get none. None (CTC): white Gaussian noise
            scaled to the clip's mean square / 10^(snr/10), so the SNR holds in expectation;
            a silent clip gets noise at the level of ``POWER_FLOOR``.

    The draws keep each trainer's order (bank: crops, SNRs, picks; white: picks, SNRs, noise),
    so recipes measured before these functions were shared repeat exactly.
    """
    b = x.shape[0]
    if bank is not None:
        n = bank.sample(b, x.shape[1], gen)
        snr = _uniform(b, *snr_db, gen)
        use = torch.rand(b, generator=gen) < prob
        return torch.where(use.unsqueeze(1), mix_at_snr(x, n, snr), x)
    pick = torch.rand(b, generator=gen) < prob
    if not pick.any():
        return x
    power = x.square().mean(dim=1).clamp_min(POWER_FLOOR)
    snr = snr_db[0] + (snr_db[1] - snr_db[0]) * torch.rand(b, generator=gen)
    scale = torch.sqrt(power / 10 ** (snr / 10)) * pick
    return x + torch.randn(x.shape, generator=gen) * scale[:, None]


def random_gain(x: torch.Tensor, gain_db: tuple[float, float], gen: torch.Generator, clip: bool = False) -> torch.Tensor:
    """Scale each clip of (batch, samples) by a gain drawn uniformly in dB.

    Args:
        clip: clip the result to [-1, 1], as a 16-bit recording of a louder source would be
            (Default: False).
    """
    g = 10.0 ** (_uniform(x.shape[0], *gain_db, gen) / 20.0)
    y = x * g.unsqueeze(1).to(x.dtype)
    return y.clamp_(-1.0, 1.0) if clip else y


def band_limit(x: torch.Tensor, prob: float, cutoff_hz: float, sample_rate: int, gen: torch.Generator) -> torch.Tensor:
    """Remove everything above ``cutoff_hz`` from a random share ``prob`` of the clips in (batch, samples).

    Brick-wall FFT low-pass of the whole clip, which is what an 8 kHz recording
    resampled to 16 kHz looks like (nothing above 4 kHz). Free Spoken Digits are such
    recordings; band-limiting some Speech Commands clips keeps the model from
    taking "band-limited" as a cue for the few FSDD speakers it was trained on.
    """
    b, n = x.shape
    pick = torch.rand(b, generator=gen) < prob
    if not pick.any() or cutoff_hz >= sample_rate / 2:
        return x
    spec = torch.fft.rfft(x[pick], dim=1)
    keep = torch.fft.rfftfreq(n, d=1.0 / sample_rate) <= cutoff_hz
    out = x.clone()
    out[pick] = torch.fft.irfft(spec * keep.to(spec.dtype), n=n, dim=1).to(x.dtype)
    return out


class NoiseBank:
    """Background-noise recordings held in memory; draws random crops of any length.

    Args:
        clips: float32 mono arrays at the model rate (each at least one sample).
    """

    def __init__(self, clips: list[np.ndarray]):
        clips = [np.asarray(c, np.float32).reshape(-1) for c in clips if np.asarray(c).size > 0]
        if not clips:
            raise ConfigError("the noise bank is empty: no usable noise clips")
        self.clips = [torch.from_numpy(c) for c in clips]

    @classmethod
    def from_files(cls, files: list[str], sample_rate: int) -> "NoiseBank":
        """Load noise files at ``sample_rate`` (unreadable files raise ``AudioError`` with the path)."""
        from hearkit.audio import load_audio

        return cls([load_audio(f, sample_rate)[0] for f in files])

    def __len__(self) -> int:
        return len(self.clips)

    def sample(self, batch: int, samples: int, gen: torch.Generator) -> torch.Tensor:
        """(batch, samples) random crops; clips shorter than ``samples`` are tiled."""
        out = torch.empty(batch, samples)
        which = torch.randint(len(self.clips), (batch,), generator=gen)
        for i, k in enumerate(which.tolist()):
            c = self.clips[k]
            if c.numel() < samples:
                c = c.repeat(-(-samples // c.numel()))
            start = int(torch.randint(c.numel() - samples + 1, (1,), generator=gen))
            out[i] = c[start : start + samples]
        return out


def augment_waveform(
    x: torch.Tensor, cfg: AugmentConfig, sample_rate: int, gen: torch.Generator, noise: NoiseBank | None = None
) -> torch.Tensor:
    """The waveform stage on (batch, samples) of equal length: speed, shift, band limit, noise, gain.

    ``noise`` is the recorded noise to crop from; without it ``cfg.noise`` adds none here (the
    CTC trainer, which adds white noise, calls ``add_noise`` itself: its utterances differ in
    length and its speed change keeps none).
    """
    if cfg.speed:
        x = speed_perturb(x, cfg.speed_range, gen)
    if cfg.time_shift:
        x = time_shift(x, int(round(cfg.max_shift_s * sample_rate)), gen)
    if cfg.band_limit_prob > 0:
        x = band_limit(x, cfg.band_limit_prob, cfg.band_limit_hz, sample_rate, gen)
    if cfg.noise and noise is not None:
        x = add_noise(x, cfg.noise_prob, cfg.snr_db, gen, bank=noise)
    if cfg.gain:
        x = random_gain(x, cfg.gain_db, gen, clip=cfg.gain_clip)
    return x


# -- feature stage ---------------------------------------------------------------------
def _masks(b: int, length: int, count: int, width: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, length) bool: ``count`` spans per clip, each of width uniform in [0, width]."""
    mask = torch.zeros(b, length, dtype=torch.bool)
    pos = torch.arange(length)
    for _ in range(count):
        w = torch.randint(0, min(width, length) + 1, (b,), generator=gen)
        start = (torch.rand(b, generator=gen) * (length - w + 1)).long()
        mask |= (pos >= start.unsqueeze(1)) & (pos < (start + w).unsqueeze(1))
    return mask


def spec_augment(feats: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
                 lengths: torch.Tensor | None = None) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) frequency and time masks on (batch, frames, n_mels).

    Args:
        feats: (batch, frames, n_mels) log-mel.
        cfg: ``freq_masks``, ``freq_mask_width``, ``time_masks``, ``time_mask_width`` (or
            ``time_mask_fraction`` with ``lengths``) and ``mask_value``.
        gen: the random generator.
        lengths: (batch,) valid frames per utterance of a padded batch (CTC), or None: every
            clip fills the window (classifiers). Given, each utterance's masks are drawn in
            turn inside its own frames, so a mask never falls on padding only; without,
            the masks of the whole batch are drawn at once.

    Masked cells get ``cfg.mask_value``: each clip's mean log-mel (``"mean"``), the batch's
    (``"batch-mean"``), or the number.
    """
    b, t, f = feats.shape
    if cfg.mask_value == "mean":
        fill = feats.mean(dim=(1, 2), keepdim=True)
    elif cfg.mask_value == "batch-mean":
        fill = feats.mean().expand(b, 1, 1)
    else:
        fill = torch.full((b, 1, 1), float(cfg.mask_value))
    fill = fill.to(feats.dtype)
    if lengths is not None:
        return _spec_augment_utterances(feats, lengths, cfg, gen, fill)
    if cfg.time_mask_fraction is not None:
        raise ConfigError("time_mask_fraction needs per-utterance lengths")
    fmask = _masks(b, f, cfg.freq_masks, cfg.freq_mask_width, gen).unsqueeze(1)  # (b, 1, f)
    tmask = _masks(b, t, cfg.time_masks, cfg.time_mask_width, gen).unsqueeze(2)  # (b, t, 1)
    return torch.where(fmask | tmask, fill, feats)


def _spec_augment_utterances(feats: torch.Tensor, lengths: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
                             fill: torch.Tensor) -> torch.Tensor:
    """The per-utterance masks of ``spec_augment`` (the CTC trainer's draws, in its order)."""
    f = feats.clone()
    b, _, m = f.shape
    for j in range(b):
        v = fill[j, 0, 0]
        for _ in range(cfg.freq_masks):
            wdt = int(torch.randint(0, cfg.freq_mask_width + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, m - wdt), (1,), generator=gen))
            f[j, :, s : s + wdt] = v
        n = int(lengths[j])
        tmax = max(1, int(cfg.time_mask_fraction * n)) if cfg.time_mask_fraction is not None else cfg.time_mask_width
        for _ in range(cfg.time_masks):
            wdt = int(torch.randint(0, tmax + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, n - wdt), (1,), generator=gen))
            f[j, s : s + wdt, :] = v
    return f


def vtlp(feats: torch.Tensor, warp_range: tuple[float, float], mel_hz: np.ndarray, gen: torch.Generator) -> torch.Tensor:
    """Vocal tract length perturbation (Jaitly & Hinton 2013) on log-mel features (batch, frames, n_mels).

    Each clip gets a factor a from ``warp_range``; band m then holds what the input
    had at frequency hz_m / a (``mel_hz``: the bands' centre frequencies), read by linear
    interpolation between bands and held at the edges. a > 1 moves formants up (a
    shorter vocal tract), a < 1 down; unlike speed perturbation the timing is kept, so
    tempo and voice vary independently.
    """
    b, _, m = feats.shape
    a = _uniform(b, *warp_range, gen).double()
    hz = torch.from_numpy(np.asarray(mel_hz, dtype=np.float64))
    src_hz = hz.unsqueeze(0) / a.unsqueeze(1)  # (b, m): where each output band reads from
    # Fractional band index of src_hz: the centres are increasing, so interpolate on them.
    pos = np.interp(src_hz.numpy().ravel(), hz.numpy(), np.arange(m)).reshape(b, m)  # clamped to [0, m-1]
    pos = torch.from_numpy(pos).to(feats.dtype)
    lo = pos.floor().long().clamp(0, m - 2)
    frac = (pos - lo).unsqueeze(1)  # (b, 1, m)
    lo = lo.unsqueeze(1).expand(-1, feats.shape[1], -1)
    a0 = feats.gather(2, lo)
    a1 = feats.gather(2, lo + 1)
    return a0 + (a1 - a0) * frac


def mel_centres_hz(fe) -> np.ndarray:
    """Centre frequencies (Hz) of the mel bands of a front-end config."""
    from hearkit.frontend import hz_to_mel, mel_to_hz

    edges = mel_to_hz(np.linspace(hz_to_mel(fe.f_min, fe.mel_scale), hz_to_mel(fe.f_max, fe.mel_scale), fe.n_mels + 2),
                      fe.mel_scale)
    return edges[1:-1]


def mixup(
    feats: torch.Tensor, targets: torch.Tensor, alpha: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al. 2018): convex mixes of clip pairs and of their target distributions.

    Args:
        feats: (batch, ...) inputs.
        targets: (batch, n_labels) target probabilities (one-hot or smoothed).
        alpha: Beta(α, α) parameter of the mixing weight.

    Returns:
        mixed ``(feats, targets)``; the weight is one per clip.
    """
    b = feats.shape[0]
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
    # torch.distributions has no generator argument: draw via uniform and the inverse is
    # not closed-form, so sample Gammas from our generator's seed instead.
    seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lam = beta.sample((b,))
    lam = torch.maximum(lam, 1 - lam)  # the clip keeps its own identity as the larger part
    perm = torch.randperm(b, generator=gen)
    shape = (b,) + (1,) * (feats.dim() - 1)
    mixed = lam.view(shape) * feats + (1 - lam.view(shape)) * feats[perm]
    mixed_t = lam.unsqueeze(1) * targets + (1 - lam.unsqueeze(1)) * targets[perm]
    return mixed, mixed_t


def augment_examples(
    waveform: np.ndarray,
    sr: int,
    cfg: AugmentConfig | None = None,
    noise: np.ndarray | None = None,
    seed: int = 0,
    frontend=None,
) -> dict[str, np.ndarray]:
    """Draw each augmentation once on one clip, for ``hearkit show --augment``.

    Args:
        waveform: (samples,) float32 mono at ``sr``.
        sr: sample rate in Hz.
        cfg: strengths (Default: ``AugmentConfig()``); every augmentation is drawn
            whether or not it is switched on, with its configured strength.
        noise: (samples,) noise clip for the noise and mixup panels (Default: None,
            seeded white noise at -30 dBFS).
        seed: RNG seed.
        frontend: ``FrontendConfig`` for the log-mel panels (Default: the default config at ``sr``).

    Returns:
        ``{"original", "time_shift", "noise", "gain"}`` -> waveforms (samples,) and
        ``{"logmel", "spec_augment", "mixup"}`` -> log-mel (frames, n_mels), all float32.
    """
    from hearkit.frontend import FrontendConfig
    from hearkit.training.frontend import LogMel

    cfg = cfg or AugmentConfig()
    fe = frontend or FrontendConfig(sample_rate=int(sr))
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.as_tensor(np.asarray(waveform, np.float32)).reshape(1, -1)
    if noise is None:
        noise_t = torch.randn(x.shape, generator=gen) * 10 ** (-30 / 20)
    else:
        noise_t = NoiseBank([noise]).sample(1, x.shape[1], gen)
    out = {"original": x[0]}
    out["time_shift"] = time_shift(x, int(round(cfg.max_shift_s * sr)), gen)[0]
    out["noise"] = mix_at_snr(x, noise_t, _uniform(1, *cfg.snr_db, gen))[0]
    out["gain"] = random_gain(x, cfg.gain_db, gen)[0]
    lm = LogMel(fe)
    with torch.no_grad():
        feats = lm(x)
        out["logmel"] = feats[0]
        out["spec_augment"] = spec_augment(feats, cfg, gen)[0]
        pair = torch.cat([feats, lm(noise_t)[:, : feats.shape[1]]])
        mixed, _ = mixup(pair, torch.eye(2), cfg.mixup_alpha, gen)
        out["mixup"] = mixed[0]
    return {k: v.numpy().astype(np.float32) for k, v in out.items()}
