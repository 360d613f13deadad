"""Acceptance recipes on the real data: training to accuracy. Slow (tens of minutes to hours on 2 cores).

Each runs the documented ``hearkit train classify`` recipe and checks the number
the issue asks for. Run with ``make test-slow`` (or ``pytest -m slow -k recipe``).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("tqdm")

from click.testing import CliRunner  # noqa: E402

from hearkit.cli import main as cli  # noqa: E402

pytestmark = pytest.mark.slow

RECIPES = {
    # name: (dataset folder, extra options, metric threshold, max parameters)
    "speech_commands": ("speech_commands", ["--model", "bcresnet-2", "--epochs", "40", "--batch-size", "32", "--lr", "5e-3"], 0.90, 40_000),
    "fsdd": ("fsdd", ["--model", "bcresnet-1", "--epochs", "30", "--batch-size", "32", "--lr", "5e-3"], 0.97, None),
    "urbansound8k": ("urbansound8k", ["--model", "dscnn-s", "--epochs", "40", "--batch-size", "32", "--val-fold", "2"], 0.60, None),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_accuracy(name, shared_data, tmp_path):
    folder, extra, threshold, max_params = RECIPES[name]
    noise = ["--noise-dir", str(shared_data / "speech_commands" / "_silence_")] if name == "fsdd" else []
    out = tmp_path / name
    r = CliRunner().invoke(cli, ["train", "classify", "--data", str(shared_data / folder), *extra, *noise,
                                 "--threads", "2", "--no-progress", "-o", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    if max_params is not None:
        assert m["parameters"] <= max_params
    assert m["best_val_acc"] >= threshold, f"{name}: validation accuracy {m['best_val_acc']:.4f} < {threshold}"
