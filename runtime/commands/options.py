"""Click options shared by commands that take a front-end configuration."""

from __future__ import annotations

import click

from hearkit.frontend import LOGS, MEL_NORMS, MEL_SCALES, FrontendConfig

_D = FrontendConfig()


def frontend_options(f):
    """Decorate a command with the FrontendConfig fields as options (defaults from FrontendConfig)."""
    opts = [
        click.option("--sample-rate", type=click.IntRange(min=1), default=_D.sample_rate, show_default=True, help="Model sample rate in Hz; audio is resampled to it."),
        click.option("--n-fft", type=click.IntRange(min=2), default=_D.n_fft, show_default=True, help="FFT size in samples."),
        click.option("--win-length", type=click.IntRange(min=1), default=None, help="Window length in samples (default: n_fft)."),
        click.option("--hop-length", type=click.IntRange(min=1), default=_D.hop_length, show_default=True, help="Samples between frames."),
        click.option("--n-mels", type=click.IntRange(min=1), default=_D.n_mels, show_default=True, help="Mel bands."),
        click.option("--f-min", type=float, default=_D.f_min, show_default=True, help="Lowest mel edge in Hz."),
        click.option("--f-max", type=float, default=None, help="Highest mel edge in Hz (default: sample_rate/2)."),
        click.option("--mel-scale", type=click.Choice(MEL_SCALES), default=_D.mel_scale, show_default=True),
        click.option("--mel-norm", type=click.Choice(MEL_NORMS), default=_D.mel_norm, show_default=True),
        click.option("--log", "log_kind", type=click.Choice(LOGS), default=_D.log, show_default=True, help="ln = ln(mel + eps); db = 10 log10(max(mel, 1e-10))."),
        click.option("--eps", type=float, default=_D.eps, show_default=True, help="Floor added before ln."),
        click.option("--center/--no-center", default=_D.center, show_default=True, help="Centre frames (pad n_fft/2 each side). Streaming needs --no-center."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def config_from_options(kw: dict) -> FrontendConfig:
    """Pop the front-end options out of a command's kwargs and build the config (ConfigError on bad values)."""
    return FrontendConfig(
        sample_rate=kw.pop("sample_rate"),
        n_fft=kw.pop("n_fft"),
        win_length=kw.pop("win_length"),
        hop_length=kw.pop("hop_length"),
        n_mels=kw.pop("n_mels"),
        f_min=kw.pop("f_min"),
        f_max=kw.pop("f_max"),
        mel_scale=kw.pop("mel_scale"),
        mel_norm=kw.pop("mel_norm"),
        log=kw.pop("log_kind"),
        eps=kw.pop("eps"),
        center=kw.pop("center"),
    )


def parse_range(text: str, what: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` -> (low, high); a BadParameter naming the option ``what`` otherwise."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as e:
        raise click.BadParameter(f"{what} must be LOW,HIGH (two numbers), got {text!r}") from e
    if lo > hi:
        raise click.BadParameter(f"{what} must have LOW <= HIGH, got {text!r}")
    return lo, hi
