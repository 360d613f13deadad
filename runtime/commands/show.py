"""``hearkit show``: the pictures people use to understand a clip."""

from __future__ import annotations

from pathlib import Path

import click

from hearkit.commands.options import config_from_options, frontend_options


def _need_matplotlib():
    from hearkit.errors import require

    mpl = require("matplotlib", "plot")
    mpl.use("Agg")  # files only; a device has no display
    import matplotlib.pyplot as plt

    return plt


def _draw_row(axes, x, sr, cfg, title, mel_only=None):
    """Waveform, linear spectrogram (dB) and log-mel of one clip on three axes.

    With ``mel_only`` (frames, n_mels), only the log-mel panel is drawn, from it.
    """
    import numpy as np

    from hearkit.frontend import logmel, power_spectrogram

    ax_w, ax_s, ax_m = axes
    hop_s = cfg.hop_length / sr
    if mel_only is not None:  # a feature-level augmentation: the audio panels would only repeat the original
        for ax in (ax_w, ax_s):
            ax.axis("off")
        ax_w.text(0.5, 0.5, f"{title}\nacts on the log-mel features\n(right), not on the audio",
                  ha="center", va="center", transform=ax_w.transAxes, fontsize=11)
        im = ax_m.imshow(mel_only.T, origin="lower", aspect="auto", extent=(0, len(mel_only) * hop_s, 0, cfg.n_mels), cmap="viridis")
        ax_m.figure.colorbar(im, ax=ax_m, label="ln(mel)" if cfg.log == "ln" else "dB")
        ax_m.set(xlabel="time (s)", ylabel=f"mel band ({cfg.mel_scale})", title=f"{title}: log-mel ({cfg.n_mels} bands)")
        return
    t = np.arange(len(x)) / sr
    ax_w.plot(t, x, lw=0.5, color="tab:blue")
    top = max(float(np.abs(x).max()) * 1.1, 0.01)  # autoscale: quiet clips are the common case
    ax_w.set(xlim=(0, max(t[-1], 1e-3)), ylim=(-top, top), xlabel="time (s)", ylabel="amplitude", title=f"{title}: waveform")
    p = power_spectrogram(x, cfg)
    if len(p):
        db = 10 * np.log10(np.maximum(p, 1e-10)).T
        extent = (0, len(p) * hop_s, 0, sr / 2 / 1000)
        im = ax_s.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=db.max() - 80, vmax=db.max())
        ax_s.figure.colorbar(im, ax=ax_s, label="dB")
    ax_s.set(xlabel="time (s)", ylabel="frequency (kHz)", title=f"{title}: spectrogram (n_fft {cfg.n_fft})")
    m = logmel(x, cfg)
    if len(m):
        im = ax_m.imshow(m.T, origin="lower", aspect="auto", extent=(0, len(m) * hop_s, 0, cfg.n_mels), cmap="viridis")
        ax_m.figure.colorbar(im, ax=ax_m, label="ln(mel)" if cfg.log == "ln" else "dB")
    ax_m.set(xlabel="time (s)", ylabel=f"mel band ({cfg.mel_scale})", title=f"{title}: log-mel ({cfg.n_mels} bands)")


def draw(audio_path, out_png, cfg, augment=False, noise_dir=None, seed=0) -> Path:
    """Draw waveform / spectrogram / log-mel of a file (and of its augmentations) to a PNG."""
    import numpy as np

    from hearkit.audio import load_audio

    plt = _need_matplotlib()
    x, sr = load_audio(audio_path, cfg.sample_rate)
    rows = [("original", x, None)]
    if augment:
        from hearkit.errors import require

        require("torch", "train")
        from hearkit.training.augment import augment_examples

        noise = None
        if noise_dir is not None:
            from hearkit.datasets import noise_files
            from hearkit.errors import ConfigError

            files = noise_files(noise_dir)
            if not files:
                raise ConfigError(f"--noise-dir {noise_dir}: no audio files in it")
            noise = load_audio(files[seed % len(files)], sr)[0]
            noise = np.resize(noise, len(x))  # loop or cut to the clip's length
        for name, value in augment_examples(x, sr, noise=noise, seed=seed, frontend=cfg).items():
            if name in ("original", "logmel"):  # already the first row
                continue
            value = np.asarray(value)
            if value.ndim == 1:
                rows.append((name, value, None))
            else:  # a log-mel level augmentation (SpecAugment): only the mel panel changes
                rows.append((name, x, value))
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, 3.2 * len(rows)), squeeze=False)
    for ax_row, (name, wav, mel) in zip(axes, rows):
        _draw_row(ax_row, wav, sr, cfg, name, mel)
    fig.suptitle(f"{Path(audio_path).name}  ({len(x) / sr:.2f} s at {sr} Hz)")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (3.2 * len(rows))))  # leave room for the title
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


@click.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True, help="PNG file to write.")
@click.option("--augment", is_flag=True, help="Add rows for time shift, background noise, gain and SpecAugment (needs hearkit[train]).")
@click.option("--noise-dir", type=click.Path(exists=True, file_okay=False), default=None, help="Background noise recordings for --augment (default: generated noise).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random augmentations.")
@frontend_options
def show(audio, out, augment, noise_dir, seed, **kw):
    """Draw the waveform, the linear spectrogram and the log-mel spectrogram of AUDIO to a PNG.

    The log-mel panel is exactly what a model with the same front-end options
    sees. With --augment, each training augmentation is drawn once below.
    """
    cfg = config_from_options(kw)
    path = draw(audio, out, cfg, augment=augment, noise_dir=noise_dir, seed=seed)
    click.echo(f"wrote {path}")
