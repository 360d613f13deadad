"""The pictures of an evaluation: the keyword timeline and the confusion matrix, as PNG (matplotlib).

matplotlib is not a dependency of the device runtime (``pip install "hearkit[plot]"`` or the
training extra brings it); it loads inside the functions, and an import-linter contract keeps it
out of layers 1-4 (docs/design.md §12).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hearkit.classify import is_background_label
from hearkit.plots import save_figure

HIT, FALSE_ALARM = "hit", "false alarm"  # the outcomes a timeline's detections can be drawn with


def plot_timeline(history, labels, detections, path: str | os.PathLike, title: str = "",
                  thresholds: Mapping[str, float] | None = None,
                  truth: Sequence[tuple[str, float, float]] | None = None,
                  outcomes: Sequence[str] | None = None) -> Path:
    """Draw smoothed scores over time with the detections, thresholds and ground truth marked; write a PNG.

    Args:
        history: list of (time s, smoothed posteriors (n_labels,)).
        labels: label names.
        detections: ``Detection`` list.
        path: output PNG.
        title: the plot's title (Default: none).
        thresholds: {label: threshold} the detections were made with, drawn as dashed lines in the
            label's colour; one grey line when all are equal (Default: None, not drawn).
        truth: ground truth as (text, start s, end s): spans of a label of the model are shaded in
            its colour, other speech in grey, and named in a row under the scores unless the text
            is "" (Default: None, not drawn).
        outcomes: per detection ``"hit"`` or ``"false alarm"``: hits drawn solid black, false alarms
            dashed red (Default: None, every detection solid black).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if outcomes is not None and len(outcomes) != len(detections):
        raise ValueError(f"outcomes has {len(outcomes)} entries for {len(detections)} detections")
    path = Path(path)
    if truth:  # a row under the scores names what was said, where
        fig, (ax, said) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [6, 1]})
    else:
        fig, ax = plt.subplots(figsize=(12, 4.4))
        said = None
    colour: dict[str, str] = {}
    if history:
        t = np.array([h[0] for h in history])
        s = np.stack([h[1] for h in history])
        for k, lab in enumerate(labels):
            bg = is_background_label(lab)
            # matplotlib hides legend entries whose label starts with "_"
            (line,) = ax.plot(t, s[:, k], label=f"{lab.strip('_')} (background)" if bg else lab,
                              lw=0.8 if bg else 1.5, ls=":" if bg else "-")
            colour[lab] = line.get_color()
    extra = []
    if thresholds:
        values = {round(float(v), 6) for v in thresholds.values()}
        if len(values) == 1:
            (v,) = values
            ax.axhline(v, color="0.35", lw=1.0, ls="--")
            extra.append(Line2D([], [], color="0.35", ls="--", label=f"threshold {v:.3g}"))
        else:
            for lab, v in thresholds.items():
                ax.axhline(float(v), color=colour.get(lab, "0.35"), lw=1.0, ls="--")
            extra.append(Line2D([], [], color="0.35", ls="--", label="threshold (label's colour)"))
    for text, start, end in truth or ():
        target = text in colour and not is_background_label(text)
        shade = colour[text] if target else "0.6"
        ax.axvspan(start, end, color=shade, alpha=0.15 if target else 0.1, lw=0)
        said.axvspan(start, end, 0.1, 0.9, color=shade, alpha=0.35 if target else 0.2, lw=0)
        if text:
            said.text((start + end) / 2, 0.5, text, ha="center", va="center", fontsize=8, clip_on=True,
                      color="k" if target else "0.4", fontweight="bold" if target else "normal")
    if truth:
        extra.append(Patch(color="0.6", alpha=0.3, label="ground truth: what was said"))
    # black and red, not a colour of the label cycle (tab:green, tab:red, ...): a hit never looks like a score line
    styles = {HIT: ("black", "-"), FALSE_ALARM: ("red", "--")}
    for i, d in enumerate(detections):
        c, ls = styles.get(outcomes[i], ("k", "-")) if outcomes is not None else ("k", "-")
        for a in (ax, said) if said is not None else (ax,):
            a.axvline(d.time, color=c, lw=1.2, ls=ls, alpha=0.8)
        ax.annotate(d.label, (d.time, 1.02), ha="center", fontsize=8, color=c, annotation_clip=False)
    if outcomes is not None:
        extra += [Line2D([], [], color=c, ls=ls, label=f"detection: {name}") for name, (c, ls) in styles.items()]
    ax.set_ylabel("smoothed posterior")
    ax.set_ylim(0, 1.08)
    if said is not None:
        said.set_yticks([])
        said.set_ylabel("said", rotation=0, ha="right", va="center")
        said.set_xlabel("time (s)")
    else:
        ax.set_xlabel("time (s)")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles + extra, names + [h.get_label() for h in extra], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside the plot: it hides no score or detection
    if title:
        ax.set_title(title, fontsize=9, pad=14)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)  # atomic: a full disk leaves no half PNG
    return path


def plot_confusion(cm, labels: list[str], path: str | os.PathLike, title: str = "") -> Path:
    """Confusion matrix as PNG (rows: truth, columns: prediction; cells: counts, colour: row share)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(labels)
    size = max(4.0, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)  # atomic: a full disk leaves no half PNG
    return Path(path)
