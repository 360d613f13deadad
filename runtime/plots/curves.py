"""A training run's curves: one panel per quantity over the epochs (``curves.png`` of a run folder)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hearkit.plots import save_figure


def plot_curves(history: Sequence[dict], path: str | os.PathLike, panels: Sequence[dict],
                best_epoch: int | None = None) -> Path | None:
    """Draw ``history`` (one dict per epoch, with ``epoch``) as side-by-side panels.

    Args:
        history: the run's rows.
        path: the PNG to write (atomically).
        panels: one dict per panel: ``title``, ``ylabel``, ``lines`` ([(label, key, scale), ...]:
            ``scale * row[key]`` per epoch) and optionally ``floor`` ((value, label): a dotted
            reference line).
        best_epoch: the epoch ``best.pt`` holds, marked in every panel (Default: None).

    Returns the path, or None without matplotlib (the ``plot`` extra): a run's curves are a
    convenience, and training goes on without them.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.3), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, key, scale in panel["lines"]:
            ax.plot(ep, [scale * h[key] for h in history], label=label)
        if panel.get("floor") is not None:
            ax.axhline(panel["floor"][0], color="0.5", ls=":", label=panel["floor"][1])
        if best_epoch is not None:
            ax.axvline(best_epoch, color="0.3", ls="--", lw=0.8, label=f"best.pt (epoch {best_epoch})")
        ax.set(xlabel="epoch", ylabel=panel["ylabel"], title=panel["title"])
        if len(panel["lines"]) > 1 or panel.get("floor") is not None or best_epoch is not None:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
