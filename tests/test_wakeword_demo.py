"""hearkit demo --wakeword: the pieces that make its test material, and the whole run (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hearkit.recipes.voices import available_voices

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def test_unseen_voices_are_none_of_the_training_speakers():
    from hearkit.recipes.voices import random_voices
    from hearkit.recipes.wakeword_demo import unseen_voices

    if not available_voices():
        pytest.skip("no synthesiser installed")
    train = {v.key for v in random_voices(300, seed=0)}
    test = unseen_voices(120, train_seed=0, train_voices=300, seed=104_729)
    assert len(test) == 120 and not train & {v.key for v in test}
    assert len({v.key for v in test}) == 120


def test_carriers_keep_training_and_test_sentences_apart():
    from hearkit.recipes.wakeword_demo import TEST_CARRIERS, TRAIN_CARRIERS

    assert not set(TRAIN_CARRIERS) & set(TEST_CARRIERS)
    assert len(TRAIN_CARRIERS) >= 20 and len(TEST_CARRIERS) >= 15


def test_score_stream_counts_one_hit_per_phrase_and_every_other_detection_as_false():
    from hearkit.recipes.wakeword_demo import score_stream

    d = [SimpleNamespace(label="hey_robot", time=t) for t in (1.2, 1.6, 5.0, 9.9)]
    hits, false = score_stream([(1.0, 1.5), (9.0, 9.5)], d, "hey_robot", after=0.5)
    assert hits == 2  # 1.2 hits the first, 9.9 is within 0.5 s of the second's end
    assert [x.time for x in false] == [1.6, 5.0]


@needs_espeak
def test_spoken_sentences_mark_where_the_phrase_is():
    from hearkit.recipes.voices import random_voices
    from hearkit.recipes.wakeword_demo import spoken_sentences

    wav, truth = spoken_sentences("hey robot", random_voices(4, seed=5, engines={"espeak-ng": ("en-us",)}), seed=1)
    assert len(truth) == 2  # every other sentence holds the phrase
    for start, end in truth:
        assert 0 <= start < end <= len(wav) / 16000 and 0.3 < end - start < 2.5  # seconds, one spoken phrase
        seg = wav[int(start * 16000):int(end * 16000)]
        assert np.sqrt(np.mean(seg ** 2)) > 10 ** (-40 / 20)  # speech there, above -40 dBFS


@pytest.mark.slow
@needs_espeak
def test_demo_wakeword_end_to_end(tmp_path):
    from click.testing import CliRunner

    from hearkit.cli import main

    r = CliRunner().invoke(main, ["demo", "--wakeword", "hey robot", "-o", str(tmp_path / "d"), "--epochs", "5"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "d" / "demo.json").read_text())
    assert s["phrase"] == "hey robot" and 0.0 <= s["threshold"] <= 1.0 and "detector" in s["threshold_note"]
    assert s["det"]["sweep_threshold"] is not None and "threshold" not in s["det"]["point"]
    assert len(s["truth"]) == s["phrases_in_sentences"] and all(d["outcome"] in ("hit", "false alarm") for d in s["detections"])
    assert s["phrases_in_sentences"] == 6 and s["test_material"]["positives"] >= 50
    for f in s["files"].values():
        assert Path(f).is_file(), f


def test_stream_report_names_each_detection_and_the_phrase_times():
    from hearkit.recipes.wakeword_demo import stream_report

    sentences = [{"text": "hey robot good morning", "speaker": "a", "start": 0.5, "end": 3.0, "phrase": [0.5, 1.2]},
                 {"text": "the bus leaves", "speaker": "b", "start": 4.0, "end": 6.0, "phrase": None},
                 {"text": "lock the door hey robot", "speaker": "c", "start": 7.0, "end": 9.5, "phrase": [8.6, 9.5]}]
    d = [SimpleNamespace(label="hey_robot", time=t, score=0.9) for t in (1.4, 5.0)]
    rep = stream_report("hey robot", "hey_robot", sentences, d)
    assert [s["text"] for s in rep["sentences"]] == ["hey robot good morning", "the bus leaves", "lock the door hey robot"]
    assert rep["truth"] == [{"phrase": "hey robot", "start": 0.5, "end": 1.2, "found": True, "detection_time": 1.4},
                            {"phrase": "hey robot", "start": 8.6, "end": 9.5, "found": False, "detection_time": None}]
    assert [x["outcome"] for x in rep["detections"]] == ["hit", "false alarm"]
    assert rep["detections"][0]["matched"] == {"start": 0.5, "end": 1.2} and rep["detections"][1]["matched"] is None


@needs_espeak
def test_sentence_stream_says_what_was_spoken_where():
    """The texts and extents come with the same audio and phrase times as spoken_sentences."""
    from hearkit.recipes.voices import random_voices
    from hearkit.recipes.wakeword_demo import sentence_stream, spoken_sentences

    voices = random_voices(4, seed=5, engines={"espeak-ng": ("en-us",)})
    wav, sentences = sentence_stream("hey robot", voices, seed=1)
    wav2, truth = spoken_sentences("hey robot", voices, seed=1)
    np.testing.assert_array_equal(wav, wav2)
    assert [tuple(s["phrase"]) for s in sentences if s["phrase"]] == truth
    assert [("hey robot" in s["text"]) for s in sentences] == [True, False, True, False]
    for s in sentences:
        assert 0 < s["start"] < s["end"] <= len(wav) / 16000
        if s["phrase"]:
            assert s["start"] <= s["phrase"][0] < s["phrase"][1] <= s["end"]


def test_a_demo_on_the_speech_embedding_gets_two_second_clips(tmp_path, monkeypatch):
    """--model emb-dnn: the set's clips are the 2 s its head sees; cnn4-s keeps the automatic length."""
    pytest.importorskip("torch")
    import hearkit.recipes.wakeword as ww
    from hearkit.recipes.wakeword_demo import EMBEDDING_WINDOW_S, WakewordDemoConfig, run_wakeword_demo

    seen = []

    def stop(cfg, *args, **kwargs):
        seen.append(cfg.window_seconds)
        raise RuntimeError("set config seen")

    monkeypatch.setattr(ww, "build_wakeword_set", stop)
    monkeypatch.setattr("hearkit.recipes.wakeword_demo.write_sentences", lambda *a, **k: 0)
    for model in ("emb-dnn", "cnn4-s"):
        with pytest.raises(RuntimeError, match="set config seen"):
            run_wakeword_demo(WakewordDemoConfig(phrase="hey robot", out=str(tmp_path / model), model=model, voices=4))
    assert seen == [EMBEDDING_WINDOW_S, 0.0] and EMBEDDING_WINDOW_S == 2.0
