"""A new network family is one entry in ``hearkit.training.models.MODELS``: nothing else changes.

A test double (a mean-pooled linear classifier no recipe uses) is registered for the test
only; the CLI trains it, the exporter writes and verifies its graphs, and the torch-free
runtime runs them. No module outside the registry names it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs hearkit[train]")

from click.testing import CliRunner  # noqa: E402

from hearkit.cli import main  # noqa: E402
from hearkit.training import models  # noqa: E402
from hearkit.training.checkpoint import load_checkpoint  # noqa: E402


class MeanPoolLinear(models.LogMelClassifier):
    """Log-mel frames averaged over time, then one linear layer: the smallest classifier there is."""

    name = "mean-linear"

    def __init__(self, n_labels: int, n_mels: int, scale: float = 1.0):
        super().__init__()
        self.hparams = {"n_labels": n_labels, "n_mels": n_mels, "scale": scale}
        self.scale = scale
        self.norm = torch.nn.BatchNorm1d(n_mels)
        self.out = torch.nn.Linear(n_mels, n_labels)

    def forward(self, x):  # (batch, frames, n_mels) -> (batch, n_labels)
        return self.out(self.norm(self.scale * x.mean(dim=1)))


def test_a_new_family_trains_exports_verifies_and_runs(tmp_path, monkeypatch, tonegen):
    monkeypatch.setitem(models.MODELS, MeanPoolLinear.name, MeanPoolLinear)
    data = tonegen.make_tones(tmp_path / "tones", clip_seconds=0.5, speakers=8, val_speakers=2, silence=True)
    run = CliRunner().invoke(main, ["train", "classify", "--data", str(data), "--model", "mean-linear", "--epochs", "3",
                                    "--batch-size", "8", "--window-seconds", "0.5", "--threads", "1", "--no-progress",
                                    "-o", str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    ck = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ck["model"]["name"] == "mean-linear" and ck["model"]["scale"] == 1.0

    r = CliRunner().invoke(main, ["export", str(tmp_path / "run" / "best.pt"), "-o", str(tmp_path / "out"),
                                  "--data", str(data)])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "out" / "export.json").read_text())
    assert summary["model"]["name"] == "mean-linear" and "int8" in summary["variants"]
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "out"), "--data", str(data), "--latency-runs", "0"])
    assert r.exit_code == 0, r.output  # torch vs ONNX fp32 vs int8 within the default thresholds

    import hearkit

    clf = hearkit.Classifier(tmp_path / "out")
    clip = next((data / "high").iterdir())
    pred = clf.classify(clip)
    assert pred.label in clf.labels and np.isfinite(pred.score)
    r = CliRunner().invoke(main, ["run", str(tmp_path / "out"), str(clip)])
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[0])["label"] == pred.label, r.output
