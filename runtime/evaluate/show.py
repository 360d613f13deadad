"""The pictures people use to understand a clip: waveform, linear spectrogram and log-mel panels.

Torch-free (numpy, matplotlib): what ``hearkit show`` draws. The log-mel panel is
computed by ``hearkit.frontend.logmel``, so it is exactly what a model with the
same ``FrontendConfig`` sees. Rows of augmented versions come from
``hearkit.recipes.show``, which needs the training package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hearkit.files import save_figure
from hearkit.frontend import FrontendConfig, logmel, power_spectrogram

ROW_INCHES = 3.2  # height of one row of panels


def _pyplot():
    from hearkit.errors import require

    mpl = require("matplotlib", "plot")
    mpl.use("Agg")  # files only; a device has no display
    import matplotlib.pyplot as plt

    return plt


def draw_row(axes, x: np.ndarray, sr: int, cfg: FrontendConfig, title: str, mel_only: np.ndarray | None = None) -> None:
    """Waveform, linear spectrogram (dB) and log-mel of one clip on three matplotlib axes.

    Args:
        axes: three axes, left to right.
        x: the clip (samples,), float32 at ``sr``.
        sr: sample rate in Hz.
        cfg: the front-end whose spectrogram and log-mel are drawn.
        title: the row's name, prefixed to each panel title.
        mel_only: (frames, n_mels) features to draw instead of the clip's log-mel, with the
            audio panels left blank: a feature-level augmentation (Default: None).
    """
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


def draw_rows(rows: Sequence[tuple[str, np.ndarray, np.ndarray | None]], sr: int, cfg: FrontendConfig,
              out_png: str | Path, title: str) -> Path:
    """Draw one row of three panels per ``(name, clip, mel_only)`` (see ``draw_row``) to a PNG.

    Args:
        rows: the rows, top to bottom; ``mel_only`` is None for audio rows.
        sr: sample rate of every clip, in Hz.
        cfg: the front-end drawn.
        out_png: the PNG to write (parent folders are made).
        title: the figure's title.

    Returns:
        ``out_png`` as a Path.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, ROW_INCHES * len(rows)), squeeze=False)
    for ax_row, (name, wav, mel) in zip(axes, rows):
        draw_row(ax_row, wav, sr, cfg, name, mel)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (ROW_INCHES * len(rows))))  # leave room for the title
    out_png = Path(out_png)
    save_figure(fig, out_png, dpi=90)  # atomic: a full disk leaves no half PNG
    return out_png


def clip_title(audio_path: str | Path, x: np.ndarray, sr: int) -> str:
    """The figure title of a clip: its file name, duration and rate."""
    return f"{Path(audio_path).name}  ({len(x) / sr:.2f} s at {sr} Hz)"


def show_clip(audio_path: str | Path, out_png: str | Path, cfg: FrontendConfig) -> Path:
    """Draw waveform / spectrogram / log-mel of an audio file (resampled to ``cfg.sample_rate``) to a PNG."""
    from hearkit.audio import load_audio

    x, sr = load_audio(audio_path, cfg.sample_rate)
    return draw_rows([("original", x, None)], sr, cfg, out_png, clip_title(audio_path, x, sr))
