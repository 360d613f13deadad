"""Accuracy of an exported classification model on a dataset split (torch-free): ``hearkit eval`` for ``task=classify``.

Clips go through ``hearkit.Classifier`` in batches, so the figures are those a
device gets; the report is ``hearkit.evaluate.metrics.classification_report``'s.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hearkit.errors import ConfigError


def eval_classify(
    model: str | os.PathLike,
    data: str | os.PathLike | None = None,
    fmt: str | None = None,
    split: str = "val",
    val_fold: int | None = None,
    test_fold: int | None = None,
    confusion: str | os.PathLike | None = None,
    batch_size: int = 32,
    progress: bool = True,
    **unused,
) -> dict:
    """Accuracy and per-class report of a classification model on a dataset split.

    Args:
        model: a classification ``pipeline*.onnx`` (or anything ``Classifier`` opens).
        data: labelled dataset folder (Speech Commands, UrbanSound8K or folder-per-label).
        fmt: dataset format (Default: detected).
        split: ``val`` | ``test`` | ``train`` | ``all`` (Default: val).
        val_fold, test_fold: UrbanSound8K folds (Default: the dataset's own split).
        confusion: write the confusion matrix as PNG here (Default: None; needs hearkit[plot]).
        batch_size: clips per onnxruntime call (Default: 32).
        progress: a status line on stderr (Default: True).
        unused: the generic ``hearkit eval`` options of other tasks; ``manifest`` is refused.

    Returns:
        ``classification_report``'s dict (``accuracy``, ``per_class``, ``confusion``) plus
        ``model``, ``data``, ``format``, ``split``, ``clips`` and ``labels``.
    """
    from hearkit.classify import Classifier, is_background_label
    from hearkit.datasets import index_dataset
    from hearkit.evaluate.metrics import classification_report
    from hearkit.plots.detection import plot_confusion
    from hearkit.progress import StatusLine

    if unused.get("manifest"):
        raise ConfigError("--manifest is for CTC models; a classification model takes --data DIR")
    if not data:
        raise ConfigError("eval of a classification model needs --data DIR")
    clf = Classifier(model)
    kw = {"val_fold": val_fold, "test_fold": test_fold} if (val_fold or test_fold) else {}
    idx = index_dataset(data, fmt, **kw)
    unknown = sorted(set(idx.labels) - set(clf.labels))
    if unknown and "_unknown_" in clf.labels and idx.format == "speech-commands":
        # a keyword model: words it was not trained on count as _unknown_, as in training
        idx = index_dataset(data, idx.format, keywords=[lab for lab in clf.labels if not is_background_label(lab)])
        unknown = sorted(set(idx.labels) - set(clf.labels))
    if unknown:
        raise ConfigError(f"{data}: labels {unknown} are not among the model's labels {clf.labels}")
    ex = idx.split(split)
    if not ex:
        raise ConfigError(f"{data}: the '{split}' split is empty; choose another with --split")
    y = np.array([clf.labels.index(e.label) for e in ex])
    logits = []
    line = StatusLine()
    for i in range(0, len(ex), batch_size):
        logits.append(clf.logits([e.path for e in ex[i : i + batch_size]], batch_size=batch_size))
        if progress:
            done = min(i + batch_size, len(ex))
            line.show(f"eval: {done}/{len(ex)} clips", 100.0 * done / len(ex))
    line.close()
    pred = np.concatenate(logits).argmax(1)
    rep = classification_report(y, pred, clf.labels)
    rep.update({"model": str(clf.path), "data": str(data), "format": idx.format, "split": split, "clips": len(ex),
                "labels": clf.labels})
    if confusion:
        plot_confusion(rep["confusion"], clf.labels, confusion,
                       title=f"{Path(clf.path).name} on {Path(data).name}/{split}: {100 * rep['accuracy']:.2f} %")
    return rep
