"""Pictures (matplotlib), and the one atomic way every picture is saved.

``hearkit.plots.detection``: the keyword timeline and the confusion matrix;
``hearkit.plots.clip``: a clip's waveform, spectrogram and log-mel (``hearkit show``).

matplotlib is not a dependency of the device runtime (``pip install "hearkit[plot]"``, or the
training extra); it loads inside the functions, and an import-linter contract keeps it out of
layers 1-4, the device API (docs/design.md §12).
"""

from __future__ import annotations

import os
from pathlib import Path

from hearkit.files import atomic_path


def save_figure(fig, path: str | os.PathLike, **savefig_kw) -> Path:
    """``fig.savefig`` atomically (format from ``path``'s suffix), then close the figure, also on failure.

    Args:
        fig: a matplotlib Figure.
        path: the image to write (its folder is created).
        savefig_kw: passed to ``savefig`` (``dpi=120``, ...).
    """
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or None, **savefig_kw)
    finally:
        import matplotlib.pyplot as plt  # only reached by a caller that drew with it

        plt.close(fig)
    return Path(path)
