"""Acceptance recipes on the real data: training to accuracy. Slow (10-20 minutes each on 1 core).

Each runs the documented ``hearkit train classify`` recipe and checks the number
the recipe publishes. Run with ``make test-slow`` (or ``pytest -m slow -k recipe``).

The options are the ones that produced the measured numbers (``--threads 1``, seed 0;
torch on one thread repeats a run, more threads change the reduction order and with
it the trajectory by a few tenths of a point). Measured on the shared 2-core machine
under load, wall time of the whole command:

- speech_commands: cnn4-s (36,350 parameters), 91.1 % validation at epoch 28 of 30, 18 min.
- fsdd: cnn4 (98,684), 98.2 % at epoch 38 of 40 (epochs 31-40: 96.8-98.2 %, the last 97.8 %), 12 min.
- urbansound8k: cnn4 (98,684), 69.2 % at epoch 16 of 30 (159 validation clips, so one clip
  is 0.6 points: epochs 14-30 swing between 54 and 69 %, the last is 62.9 %), 32 min.

Why these and not the DS-CNN / BC-ResNet of the first recipes: on 2k-4k clips and
a CPU budget of a few thousand steps the depthwise models had not fitted yet
(BC-ResNet-2 86.1 % on Speech Commands after 20 epochs with 76 % training
accuracy; 1.1-1.8 s per batch of 32 against 0.46 s for cnn4-s), while plain
3×3 convolutions with max-pooling fit in a few hundred steps. FSDD's validation
speaker (theo) says "four" unlike the four training speakers; speed perturbation
(``--speed``) is what fixed it (four -> one confusions 19 -> 3 of 50: 93.8 -> 96.4 %),
milder noise (``--snr 10,30``; theo is clean) took it to 98.2 %, and ``--f-max 4000``
puts all 40 bands where the 8-kHz recordings have content.
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
    # name: (dataset folder, options, metric threshold, max parameters)
    "speech_commands": (
        "speech_commands",
        ["--model", "cnn4-s", "--epochs", "30", "--batch-size", "32", "--lr", "3e-3", "--snr", "5,20", "--gain-db=-12,6"],
        0.89, 40_000,  # seeds 0/1/2 gave 89.3, 90.3, 90.3 % (docs/recipes/keywords.md); seed 0 runs here
    ),
    "fsdd": (
        "fsdd",
        ["--model", "cnn4", "--epochs", "40", "--batch-size", "32", "--lr", "3e-3", "--f-max", "4000", "--speed", "0.85,1.15",
         "--snr", "10,30", "--gain-db=-20,6", "--freq-mask-width", "5", "--time-mask-width", "5"],
        0.97, None,
    ),
    "urbansound8k": (
        "urbansound8k",
        ["--model", "cnn4", "--epochs", "30", "--batch-size", "32", "--lr", "3e-3", "--n-mels", "64", "--gain-db=-12,6",
         "--val-fold", "2"],
        0.60, None,
    ),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_accuracy(name, shared_data, tmp_path):
    folder, extra, threshold, max_params = RECIPES[name]
    # FSDD has no noise recordings of its own; Speech Commands' background cuts serve.
    noise = ["--noise-dir", str(shared_data / "speech_commands" / "_silence_")] if name == "fsdd" else []
    out = tmp_path / name
    r = CliRunner().invoke(cli, ["train", "classify", "--data", str(shared_data / folder), *extra, *noise,
                                 "--threads", "1", "--no-progress", "-o", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    if max_params is not None:
        assert m["parameters"] <= max_params
    assert m["best_val_acc"] >= threshold, f"{name}: validation accuracy {m['best_val_acc']:.4f} < {threshold}"
