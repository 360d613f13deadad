"""The pictures people use to understand a clip: waveform, linear spectrogram and log-mel panels.

Torch-free (numpy, matplotlib): what ``hearkit show`` draws. The log-mel panel is
computed by ``hearkit.frontend.logmel``, so it is exactly what a model with the
same ``FrontendConfig`` sees. Rows of augmented versions come from
``hearkit.recipes.show``, which needs the training package.

A file longer than ``WHOLE_FILE_SECONDS`` is summarised block by block
(``summarise``): each of ``SUMMARY_COLUMNS`` time columns shows the waveform's
range and the mean power of its frames, so a two-hour file costs a few blocks of
memory, not its whole spectrogram, and the picture still shows where it is loud.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearkit.plots import save_figure
from hearkit.frontend import FrontendConfig, apply_log, logmel, mel_filterbank, power_spectrogram

ROW_INCHES = 3.2  # height of one row of panels
SUMMARY_COLUMNS = 1200  # time columns of a long file's panels: more than the ~400 pixels a panel has at 90 dpi


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
    return _save(plt, fig, len(rows), out_png, title)


def _save(plt, fig, n_rows: int, out_png: str | Path, title: str) -> Path:
    """Title, lay out and write a figure as PNG, then close it: the one place ``hearkit show`` writes."""
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (ROW_INCHES * n_rows)))  # leave room for the title
    out_png = Path(out_png)
    save_figure(fig, out_png, dpi=90)  # atomic: a full disk leaves no half PNG
    return out_png


# -- long files: a summary computed block by block -----------------------------------
@dataclass
class Summary:
    """A long clip reduced to time columns, each spanning ``frames_per_column`` frames.

    Attributes:
        low, high: the waveform's minimum and maximum per column, (columns,) float32.
        power: mean power spectrum of each column's frames, (columns, n_fft // 2 + 1) float64.
        frames_per_column: frames (hops) per column; a column is this many hops long.
        frames: frames of the whole clip.
        samples: samples of the whole clip at ``cfg.sample_rate``.
    """

    low: np.ndarray
    high: np.ndarray
    power: np.ndarray
    frames_per_column: int
    frames: int
    samples: int


class _Columns:
    """Per-column sums (or minima / maxima) of rows that arrive in order, in bounded memory."""

    def __init__(self, width: int, per_column: int, op: str = "sum"):
        self.per, self.op = per_column, op
        fill = {"sum": 0.0, "min": np.inf, "max": -np.inf}[op]
        self.values = np.full((0, width), fill)
        self.counts = np.zeros(0, np.int64)
        self.fill = fill
        self.rows = 0  # rows received so far

    def add(self, x: np.ndarray) -> None:
        if not len(x):
            return
        cols = (self.rows + np.arange(len(x))) // self.per
        starts = np.concatenate([[0], np.flatnonzero(np.diff(cols)) + 1])
        ufunc = {"sum": np.add, "min": np.minimum, "max": np.maximum}[self.op]
        part = ufunc.reduceat(x, starts, axis=0)
        need = int(cols[-1]) + 1
        if need > len(self.counts):  # grows by at most a block's columns at a time
            extra = need - len(self.counts)
            self.values = np.concatenate([self.values, np.full((extra, self.values.shape[1]), self.fill)])
            self.counts = np.concatenate([self.counts, np.zeros(extra, np.int64)])
        idx = cols[starts]
        self.values[idx] = ufunc(self.values[idx], part)
        self.counts[idx] += np.diff(np.concatenate([starts, [len(x)]]))
        self.rows += len(x)


def summarise(blocks: Iterable[np.ndarray], cfg: FrontendConfig, frames_hint: int,
              columns: int = SUMMARY_COLUMNS) -> Summary:
    """Reduce a clip given as blocks to about ``columns`` time columns (``Summary``).

    Args:
        blocks: float32 mono blocks at ``cfg.sample_rate`` (e.g. ``iter_blocks``).
        cfg: the front-end whose frames are pooled.
        frames_hint: the clip's frames, expected (it sets the column width; the last
            column may hold fewer frames, and more frames than expected add columns).
        columns: columns wanted (Default: ``SUMMARY_COLUMNS``).
    """
    from hearkit.audio import frame_segments

    per = max(1, math.ceil(frames_hint / columns))
    wave_low = _Columns(1, per * cfg.hop_length, "min")
    wave_high = _Columns(1, per * cfg.hop_length, "max")
    power = _Columns(cfg.n_bins, per)
    plain = cfg.replace(center=False)  # frame_segments pads the stream's ends itself

    def watched(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for b in blocks:  # the waveform range is taken from the blocks as they pass
            wave_low.add(b[:, None])
            wave_high.add(b[:, None])
            yield b

    for seg in frame_segments(watched(blocks), cfg.n_fft, cfg.hop_length, cfg.center, cfg.pad_mode):
        power.add(power_spectrogram(seg, plain))
    mean = power.values / np.maximum(power.counts, 1)[:, None]
    return Summary(wave_low.values[:, 0].astype(np.float32), wave_high.values[:, 0].astype(np.float32), mean,
                   per, power.rows, wave_low.rows)


def draw_summary_row(axes, s: Summary, cfg: FrontendConfig, title: str) -> None:
    """Waveform range, mean spectrogram (dB) and log-mel of the mean mel power per column, on three axes."""
    ax_w, ax_s, ax_m = axes
    sr = cfg.sample_rate
    col_s = s.frames_per_column * cfg.hop_length / sr  # seconds per column
    t = np.arange(len(s.low)) * col_s
    ax_w.fill_between(t, s.low, s.high, step="post", lw=0, color="tab:blue")
    top = max(float(max(np.abs(s.low).max(), np.abs(s.high).max())) * 1.1, 0.01) if len(t) else 0.01
    ax_w.set(xlim=(0, max(s.samples / sr, 1e-3)), ylim=(-top, top), xlabel="time (s)", ylabel="amplitude",
             title=f"{title}: waveform (range)")
    if len(s.power):
        db = 10 * np.log10(np.maximum(s.power, 1e-10)).T
        extent = (0, len(s.power) * col_s, 0, sr / 2 / 1000)
        im = ax_s.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=db.max() - 80, vmax=db.max())
        ax_s.figure.colorbar(im, ax=ax_s, label="dB")
        # mel power is linear in power, so the mean mel power of a column is its mean spectrum's
        m = apply_log(s.power @ mel_filterbank(cfg).T, cfg).astype(np.float32)
        im = ax_m.imshow(m.T, origin="lower", aspect="auto", extent=(0, len(m) * col_s, 0, cfg.n_mels), cmap="viridis")
        ax_m.figure.colorbar(im, ax=ax_m, label="ln(mel)" if cfg.log == "ln" else "dB")
    ax_s.set(xlabel="time (s)", ylabel="frequency (kHz)", title=f"{title}: spectrogram (n_fft {cfg.n_fft}, mean)")
    ax_m.set(xlabel="time (s)", ylabel=f"mel band ({cfg.mel_scale})", title=f"{title}: log-mel ({cfg.n_mels} bands, mean)")


def draw_summary(s: Summary, cfg: FrontendConfig, out_png: str | Path, title: str) -> Path:
    """One row of summary panels (``draw_summary_row``) to a PNG; returns ``out_png`` as a Path."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, ROW_INCHES), squeeze=False)
    draw_summary_row(axes[0], s, cfg, "original")
    return _save(plt, fig, 1, out_png, title)


def clip_title(audio_path: str | Path, x: np.ndarray, sr: int) -> str:
    """The figure title of a clip: its file name, duration and rate."""
    return f"{Path(audio_path).name}  ({len(x) / sr:.2f} s at {sr} Hz)"


def show_clip(audio_path: str | Path, out_png: str | Path, cfg: FrontendConfig) -> Path:
    """Draw waveform / spectrogram / log-mel of an audio file (resampled to ``cfg.sample_rate``) to a PNG.

    A file up to ``WHOLE_FILE_SECONDS`` is drawn frame by frame; a longer one is
    read block by block and drawn as ``SUMMARY_COLUMNS`` columns (``summarise``).
    """
    from hearkit.audio import WHOLE_FILE_SECONDS, audio_info, iter_blocks, load_audio, resampled_length

    info = audio_info(audio_path)
    if info["duration"] <= WHOLE_FILE_SECONDS:
        x, sr = load_audio(audio_path, cfg.sample_rate)
        return draw_rows([("original", x, None)], sr, cfg, out_png, clip_title(audio_path, x, cfg.sample_rate))
    hint = cfg.num_frames(resampled_length(info["frames"], info["sample_rate"], cfg.sample_rate))
    s = summarise(iter_blocks(audio_path, cfg.sample_rate), cfg, hint)
    col_s = s.frames_per_column * cfg.hop_length / cfg.sample_rate
    title = (f"{Path(audio_path).name}  ({s.samples / cfg.sample_rate:.2f} s at {cfg.sample_rate} Hz; "
             f"one column per {col_s:.2f} s: range of the samples, mean power of {s.frames_per_column} frames)")
    return draw_summary(s, cfg, out_png, title)
