"""The demo's data synthesis and the whole `hearkit demo` path on a tiny set."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")


def test_synthesized_keyword_set_is_speaker_disjoint(tmp_path):
    from hearkit.datasets import index_dataset
    from hearkit.training.demo import KEYWORDS, synthesize_keywords

    root = synthesize_keywords(tmp_path / "kw", seed=1, train_voices=4, val_voices=2, silence_clips=10)
    idx = index_dataset(root)
    assert idx.format == "speech-commands"
    assert set(KEYWORDS) | {"_unknown_", "_silence_"} == set(idx.labels)
    train = {e.speaker for e in idx.split("train") if e.speaker}
    val = {e.speaker for e in idx.split("val") if e.speaker}
    assert train and val and not train & val
    x, sr = sf.read(next((root / "yes").glob("*.flac")), dtype="float32")
    assert sr == 16000 and len(x) == 16000 and 0.05 < np.abs(x).max() <= 1.0


def test_sentence_truth_lies_inside_the_audio():
    from hearkit.training.demo import KEYWORDS, synthesize_sentence

    wav, truth = synthesize_sentence(seed=3)
    assert len(truth) >= 4 and all(w in KEYWORDS for w, _ in truth)
    assert all(0 < t < len(wav) / 16000 for _, t in truth)
    assert np.isfinite(wav).all()


def test_demo_end_to_end_small(tmp_path):
    """One epoch on a tiny synthesized set: every stage runs and writes its files (accuracy is not the point here)."""
    from click.testing import CliRunner

    from hearkit.cli import main
    from hearkit.training.demo import synthesize_keywords

    out = tmp_path / "demo"
    synthesize_keywords(out / "keywords", train_voices=6, val_voices=2, silence_clips=16)
    r = CliRunner().invoke(main, ["demo", "-o", str(out), "--epochs", "1"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "keywords found" in r.output
    s = json.loads((out / "demo.json").read_text())
    for f in s["files"].values():
        assert (tmp_path / f).exists() or __import__("pathlib").Path(f).exists(), f
    assert s["keywords_in_sentence"] >= 4
