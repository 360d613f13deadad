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
    from hearkit.recipes.demo import KEYWORDS, synthesize_keywords

    root = synthesize_keywords(tmp_path / "kw", seed=1, train_voices=4, val_voices=2, silence_clips=10)
    idx = index_dataset(root)
    assert idx.format == "speech-commands"
    assert set(KEYWORDS) | {"_unknown_", "_silence_"} == set(idx.labels)
    train = {e.speaker for e in idx.split("train") if e.speaker}
    val = {e.speaker for e in idx.split("val") if e.speaker}
    assert train and val and not train & val
    x, sr = sf.read(next((root / "yes").glob("*.flac")), dtype="float32")
    assert sr == 16000 and len(x) == 16000 and 0.05 < np.abs(x).max() <= 1.0


def test_demo_voices_are_the_measured_ones():
    """Seed 0 draws the speakers the demo's figures were measured with (before synthesis moved to recipes.voices)."""
    from hearkit.recipes.demo import demo_voices
    from hearkit.recipes.voices import ESPEAK_WPM

    got = [(v.engine, v.name, round(v.rate * ESPEAK_WPM), v.pitch, v.warp, v.gap_ms) for v in demo_voices(3, 0)]
    assert got == [("espeak-ng", "en-gb-x-gbcwmd+anika", 173, 22, 1.0, 0),
                   ("espeak-ng", "en-gb-scotland+linda", 182, 45, 1.0, 0),
                   ("espeak-ng", "en-gb-x-gbcwmd+Mario", 181, 42, 1.0, 0)]


def test_level_trim_keeps_the_margin_and_silence():
    """trim_mode="level" (the demo's): near-silent ends cut to LEVEL_TRIM_KEEP samples; an all-quiet clip is kept whole."""
    from hearkit.recipes.voices import LEVEL_TRIM_KEEP, TRIM_THRESHOLD, trim_level

    x = np.zeros(3000, np.float32)
    x[1000:1500] = 0.5
    y = trim_level(x)
    # KEEP samples before the first loud one, KEEP - 1 after the last (the measured trim's slice)
    assert len(y) == 500 + 2 * LEVEL_TRIM_KEEP - 1 and np.abs(y).max() == 0.5
    quiet = np.full(100, TRIM_THRESHOLD / 2, np.float32)
    assert np.array_equal(trim_level(quiet), quiet)


def test_sentence_truth_lies_inside_the_audio():
    from hearkit.recipes.demo import KEYWORDS, synthesize_sentence

    wav, truth = synthesize_sentence(seed=3)
    assert len(truth) >= 4 and all(w in KEYWORDS for w, _ in truth)
    assert all(0 < t < len(wav) / 16000 for _, t in truth)
    assert np.isfinite(wav).all()


def test_demo_end_to_end_small(tmp_path):
    """One epoch on a tiny synthesized set: every stage runs and writes its files (accuracy is not the point here)."""
    from click.testing import CliRunner

    from hearkit.cli import main
    from hearkit.recipes.demo import synthesize_keywords

    out = tmp_path / "demo"
    synthesize_keywords(out / "keywords", train_voices=6, val_voices=2, silence_clips=16)
    r = CliRunner().invoke(main, ["demo", "-o", str(out), "--epochs", "1"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "keywords found" in r.output
    s = json.loads((out / "demo.json").read_text())
    for f in s["files"].values():
        assert (tmp_path / f).exists() or __import__("pathlib").Path(f).exists(), f
    assert s["keywords_in_sentence"] >= 4


def test_sentence_scoring_counts_a_second_detection_as_a_false_alarm():
    from hearkit.classify import Detection
    from hearkit.recipes.demo import score_sentence

    truth = [("yes", 2.0), ("stop", 5.0)]
    dets = [Detection("yes", 2.1, 0.9), Detection("yes", 3.1, 0.8), Detection("stop", 4.7, 0.9), Detection("go", 8.0, 0.7)]
    hits, false = score_sentence(truth, dets)
    assert hits == truth
    assert [(d.label, d.time) for d in false] == [("yes", 3.1), ("go", 8.0)]  # 3.1 s: the same 'yes' fired again
    assert score_sentence(truth, [Detection("yes", 3.3, 0.9)]) == ([], [Detection("yes", 3.3, 0.9)])  # 1.3 s late


def test_sentence_report_names_each_detection_hit_or_false_alarm_and_keeps_the_truth():
    """demo.json's sentence part: the text, every word's time, which keywords were found, and why each detection counts."""
    from hearkit.classify import Detection
    from hearkit.recipes.demo import match_sentence, sentence_report

    words = [{"word": "hello", "start": 0.5, "end": 0.9, "keyword": False},
             {"word": "yes", "start": 1.6, "end": 2.0, "keyword": True},
             {"word": "stop", "start": 3.0, "end": 3.5, "keyword": True}]
    dets = [Detection("yes", 2.1, 0.9), Detection("yes", 2.6, 0.8), Detection("go", 5.0, 0.7)]
    rep = sentence_report(words, dets, {"yes": 0.6, "stop": 0.6})
    assert rep["sentence"]["text"] == "hello yes stop"
    assert [w["word"] for w in rep["sentence"]["words"]] == ["hello", "yes", "stop"]
    assert rep["truth"] == [{"word": "yes", "start": 1.6, "end": 2.0, "found": True, "detection_time": 2.1},
                            {"word": "stop", "start": 3.0, "end": 3.5, "found": False, "detection_time": None}]
    assert [d["outcome"] for d in rep["detections"]] == ["hit", "false alarm", "false alarm"]
    assert rep["detections"][0]["matched"] == {"word": "yes", "start": 1.6, "end": 2.0}
    assert rep["detections"][1]["matched"] is None
    assert rep["thresholds"] == {"yes": 0.6, "stop": 0.6} and "false alarm" in rep["hit_rule"]
    assert match_sentence([("yes", 1.8)], dets) == [0, None, None]


def test_sentence_words_are_the_measured_sentence():
    """The words' extents add no audio: the keyword centres are what synthesize_sentence gave before."""
    from hearkit.recipes.demo import KEYWORDS, SENTENCE_WORDS, sentence_words, synthesize_sentence

    wav, words = sentence_words()
    wav2, truth = synthesize_sentence()
    np.testing.assert_array_equal(wav, wav2)
    assert [w["word"] for w in words] == list(SENTENCE_WORDS)
    assert [(w["word"], (w["start"] + w["end"]) / 2) for w in words if w["keyword"]] == truth
    assert {w for w, _ in truth} == set(KEYWORDS)
    for a, b in zip(words, words[1:]):
        assert a["start"] < a["end"] < b["start"]  # in order, with a gap between words
    assert words[-1]["end"] <= len(wav) / 16000
