"""Augmentation properties: achieved SNR, length-keeping shift, mask counts, gain, mixup."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hearkit.errors import ConfigError  # noqa: E402
from hearkit.training.augment import (  # noqa: E402
    AugmentConfig,
    NoiseBank,
    add_noise,
    augment_examples,
    augment_waveform,
    band_limit,
    mel_centres_hz,
    mix_at_snr,
    mixup,
    random_gain,
    spec_augment,
    speed_perturb,
    time_shift,
    vtlp,
)

SR = 16000


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mix_at_snr_achieves_requested_snr(signals):
    x = torch.from_numpy(np.stack([signals.chirp(SR, SR, amp=a) for a in (0.5, 0.05, 0.9)]))
    n = torch.from_numpy(np.stack([signals.noise(SR, seed=s, amp=0.2) for s in range(3)]))
    snr = torch.tensor([0.0, 10.0, 25.0])
    y = mix_at_snr(x, n, snr)
    achieved = 10 * torch.log10(x.square().mean(1) / (y - x).square().mean(1))
    assert torch.allclose(achieved, snr, atol=0.5)  # the contract: within 0.5 dB


def test_noise_bank_tiles_short_clips_and_silence_gets_no_noise(signals):
    bank = NoiseBank([signals.noise(100, seed=1)])
    n = bank.sample(2, 1000, _gen())
    assert n.shape == (2, 1000) and float(n.abs().max()) > 0
    quiet = torch.zeros(2, 1000)
    assert torch.equal(mix_at_snr(quiet, n, torch.tensor([5.0, 5.0])), quiet)


def test_time_shift_keeps_length_and_moves_content():
    x = torch.arange(1, 101, dtype=torch.float32).repeat(8, 1)
    y = time_shift(x, 10, _gen(3))
    assert y.shape == x.shape
    for row in y:
        nz = row.nonzero().flatten()
        shift = int(row[nz[0]].item()) - 1 - int(nz[0])  # a value v lands at index v-1+shift
        shift = -shift
        assert -10 <= shift <= 10
        assert int((row == 0).sum()) == abs(shift)  # the gap is zero-filled, exactly |shift| samples
    assert torch.equal(time_shift(x, 0, _gen()), x)


def test_speed_perturb_moves_pitch_keeps_length_and_centre():
    t = torch.arange(SR, dtype=torch.float32) / SR
    x = torch.sin(2 * torch.pi * 440 * t).repeat(2, 1)
    assert torch.equal(speed_perturb(x, (1.0, 1.0), _gen()), x)  # factor 1 is exactly the identity
    for r in (0.9, 1.1):
        y = speed_perturb(x, (r, r), _gen())
        assert y.shape == x.shape
        mid = y[0, SR // 4 : 3 * SR // 4].numpy()  # inside the clip at either factor
        peak_hz = np.abs(np.fft.rfft(mid * np.hanning(mid.size))).argmax() * SR / mid.size
        assert abs(peak_hz - 440 * r) <= 4  # 2-Hz FFT bins; the tone moves with the speed
    # about the centre: at 0.5 the window reads only the middle half of the clip (no silence);
    # at 2.0 the whole clip fills the middle half and the ends read past its edges (silence)
    y = speed_perturb(torch.ones(1, 1001), (0.5, 0.5), _gen())
    assert float(y[0, 500]) == 1.0 and float(y[0, 0]) == 1.0
    y = speed_perturb(torch.ones(1, 1001), (2.0, 2.0), _gen())
    assert float(y[0, 500]) == 1.0 and float(y[0, 0]) == 0.0 and float(y[0, -1]) == 0.0
    assert int((y[0] != 0).sum()) == 501  # twice as fast: the 1001 samples fill the middle half
    with pytest.raises(ConfigError, match="speed_range"):
        AugmentConfig(speed_range=(0.0, 1.1))


def test_band_limit_removes_the_band_above_the_cutoff_on_the_picked_share():
    x = torch.randn(64, SR, generator=_gen(3))
    y = band_limit(x, 0.5, 4000.0, SR, _gen(4))
    spec_x, spec_y = torch.fft.rfft(x).abs(), torch.fft.rfft(y).abs()
    freqs = torch.fft.rfftfreq(SR, 1 / SR)
    above, below = freqs > 4000, freqs <= 4000
    picked = (spec_y[:, above].amax(dim=1) < 1e-3 * spec_x[:, above].amax(dim=1))  # 60 dB down (float32 FFT noise)
    assert 16 <= int(picked.sum()) <= 48  # about half of 64 picked (binomial, p = 0.5: outside is < 1e-4)
    # the band below the cut-off is kept on every clip (float32 round trip: 1e-3 of the peak)
    assert torch.allclose(spec_y[:, below], spec_x[:, below], atol=1e-3 * float(spec_x.max()))
    assert torch.equal(y[~picked], x[~picked])  # the others are untouched
    assert torch.equal(band_limit(x, 0.0, 4000.0, SR, _gen()), x)


def test_vtlp_moves_a_formant_by_the_factor_and_keeps_timing():
    from hearkit.frontend import FrontendConfig

    hz = mel_centres_hz(FrontendConfig(n_mels=64))
    assert hz.shape == (64,) and np.all(np.diff(hz) > 0) and 20 < hz[0] < hz[-1] < 8000
    bands = torch.arange(64, dtype=torch.float32)
    feats = (-((bands - 30) ** 2) / 4.0).expand(2, 50, 64).clone()  # one peak at band 30 in every frame
    assert torch.allclose(vtlp(feats, (1.0, 1.0), hz, _gen()), feats, atol=1e-5)  # factor 1: identity (float32)
    for a in (0.9, 1.1):
        out = vtlp(feats, (a, a), hz, _gen())
        assert out.shape == feats.shape
        peak = int(out[0, 0].argmax())
        expect = int(np.abs(hz - hz[30] * a).argmin())  # the band whose centre is closest to the moved peak
        assert abs(peak - expect) <= 1  # within one band (linear interpolation between bands)
        assert torch.equal(out[:, 0], out[:, 49])  # same warp in every frame: timing untouched


def test_spec_augment_masks_zero_the_right_count():
    feats = torch.randn(16, 100, 40) + 5.0  # no natural zeros
    cfg = AugmentConfig(freq_masks=1, freq_mask_width=7, time_masks=1, time_mask_width=10, mask_value=0.0)
    out = spec_augment(feats, cfg, _gen(1))
    for b in range(16):
        zero = out[b] == 0
        rows = zero.all(dim=1).sum().item()  # fully masked frames
        cols = zero.all(dim=0).sum().item()  # fully masked bands
        assert rows <= 10 and cols <= 7
        # every zero lies in a masked frame or band, and the count is exactly their union
        assert zero.sum().item() == rows * 40 + cols * 100 - rows * cols
    assert (out == 0).any()
    mean_fill = spec_augment(feats, AugmentConfig(freq_masks=2, time_masks=0), _gen(2))
    changed = mean_fill != feats
    assert torch.allclose(mean_fill[changed], feats.mean(dim=(1, 2), keepdim=True).expand_as(feats)[changed], atol=1e-6)


def test_gain_range_and_switches():
    x = torch.ones(200, 10)
    g = random_gain(x, (-6.0, 6.0), _gen())[:, 0]
    db = 20 * torch.log10(g)
    assert float(db.min()) >= -6.0 - 1e-4 and float(db.max()) <= 6.0 + 1e-4 and float(db.std()) > 1
    off = augment_waveform(x, AugmentConfig.off(), SR, _gen())
    assert torch.equal(off, x)


def test_mixup_mixes_targets_with_the_same_weights():
    feats = torch.eye(4).reshape(4, 1, 4) * 10
    targets = torch.eye(4)
    f, t = mixup(feats, targets, 0.4, _gen(5))
    assert torch.allclose(t.sum(1), torch.ones(4), atol=1e-6)
    assert torch.allclose(f.reshape(4, 4) / 10, t, atol=1e-6)  # features mixed exactly as targets
    assert float(t.max(1).values.min()) >= 0.5 - 1e-6  # each clip keeps the larger share


def test_augment_examples_for_show(signals):
    x = signals.chirp(SR, SR)
    out = augment_examples(x, SR, AugmentConfig(), noise=signals.noise(SR // 2, seed=2), seed=4)
    assert set(out) == {"original", "time_shift", "noise", "gain", "logmel", "spec_augment", "mixup"}
    for k in ("original", "time_shift", "noise", "gain"):
        assert out[k].shape == x.shape and out[k].dtype == np.float32
    assert out["logmel"].shape == out["spec_augment"].shape == out["mixup"].shape == (97, 40)
    again = augment_examples(x, SR, AugmentConfig(), noise=signals.noise(SR // 2, seed=2), seed=4)
    assert all(np.array_equal(out[k], again[k]) for k in out)  # seeded


def test_config_validation():
    with pytest.raises(ConfigError, match="snr_db"):
        AugmentConfig(snr_db=(10, 0))
    with pytest.raises(ConfigError, match="noise_prob"):
        AugmentConfig(noise_prob=2)
    with pytest.raises(ConfigError, match="vtlp"):
        AugmentConfig(vtlp=(0.0, 1.1))
    with pytest.raises(ConfigError, match="vtlp"):
        AugmentConfig(vtlp=(1.1, 0.9))
    with pytest.raises(ConfigError, match="band_limit_prob"):
        AugmentConfig(band_limit_prob=1.5)
    assert AugmentConfig(vtlp=[0.9, 1.1]).vtlp == (0.9, 1.1)  # from a saved config's list


def test_augment_waveform_band_limits_and_clips_the_gain_when_asked():
    """The CTC recipe's steps through the classifier's waveform stage: band limit, then a clipped gain."""
    x = 0.5 * torch.randn(8, SR, generator=_gen(6))
    off = AugmentConfig.off()
    y = augment_waveform(x, dataclasses.replace(off, band_limit_prob=1.0, band_limit_hz=4000.0), SR, _gen())
    above = torch.fft.rfftfreq(SR, 1 / SR) > 4000.0
    # nothing above the cut-off on every clip (prob 1); below it the spectrum is the input's
    assert float(torch.fft.rfft(y).abs()[:, above].max()) < 1e-3 * float(torch.fft.rfft(x).abs()[:, above].max())
    loud = dataclasses.replace(off, gain=True, gain_db=(12.0, 12.0))
    assert float(augment_waveform(x, loud, SR, _gen()).abs().max()) > 1.5  # 0.5 σ x 4: unclipped by default
    assert float(augment_waveform(x, dataclasses.replace(loud, gain_clip=True), SR, _gen()).abs().max()) <= 1.0


def test_add_noise_white_reaches_the_snr_on_the_picked_share(signals):
    """The CTC trainer's mode (no bank): white noise scaled to the clip's power; unpicked clips untouched."""
    x = torch.from_numpy(np.stack([signals.chirp(SR, SR, amp=a) for a in (0.5, 0.05, 0.9, 0.2)]))
    y = add_noise(x, 1.0, (20.0, 20.0), _gen(1))
    achieved = 10 * torch.log10(x.square().mean(1) / (y - x).square().mean(1))
    # the scale assumes unit noise power; 16000 Gaussian samples have it within ~1 % (0.05 dB)
    assert torch.allclose(achieved, torch.full((4,), 20.0), atol=0.3)
    assert torch.equal(add_noise(x, 0.0, (20.0, 20.0), _gen(1)), x)
    half = add_noise(x.repeat(16, 1), 0.5, (10.0, 30.0), _gen(2))
    touched = (half != x.repeat(16, 1)).any(dim=1)
    assert 16 <= int(touched.sum()) <= 48  # about half of 64 (binomial, p = 0.5: outside is < 1e-4)


def test_speed_perturb_of_utterances_changes_their_lengths_with_the_same_draws():
    waves = [np.zeros(n, np.float32) for n in (16000, 8000, 12345)]
    out = speed_perturb(waves, (0.8, 1.2), _gen(7), keep_length=False)
    r = 0.8 + 0.4 * torch.rand(3, generator=_gen(7))  # the factors drawn, one per utterance
    assert [len(y) for y in out] == [max(1, int(round(n / float(f)))) for n, f in zip((16000, 8000, 12345), r)]
    assert all(y.dtype == np.float32 for y in out)


def test_random_gain_clip_keeps_16_bit_range():
    x = torch.full((4, 100), 0.5)
    y = random_gain(x, (20.0, 20.0), _gen(), clip=True)
    assert torch.equal(y, torch.ones(4, 100))
    assert float(random_gain(x, (20.0, 20.0), _gen()).max()) == pytest.approx(5.0, rel=1e-6)  # unclipped: 10x


def test_spec_augment_with_lengths_masks_inside_each_utterance():
    """The CTC trainer's masks: per utterance, time masks up to a fraction of its own length, batch-mean fill."""
    feats = torch.randn(3, 100, 40) + 5.0
    lengths = torch.tensor([100, 50, 20])
    cfg = AugmentConfig(freq_masks=0, time_masks=2, time_mask_fraction=0.1, mask_value="batch-mean")
    out = spec_augment(feats, cfg, _gen(3), lengths=lengths)
    fill = feats.mean()
    masked = (out == fill).all(dim=2)  # (batch, frames) fully masked frames
    assert bool(masked.any())
    for j, n in enumerate(lengths.tolist()):
        assert not masked[j, n:].any()  # never past the utterance's end
        assert int(masked[j].sum()) <= 2 * max(1, int(0.1 * n))  # two masks of at most 10 % each
    changed = out != feats
    assert torch.allclose(out[changed], fill.expand_as(out)[changed], atol=0)
    with pytest.raises(ConfigError, match="lengths"):
        spec_augment(feats, cfg, _gen(3))
    with pytest.raises(ConfigError, match="mask_value"):
        AugmentConfig(mask_value="median")
