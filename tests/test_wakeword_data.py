"""Wake-word sets from text (hearkit.recipes.wakeword) and the synthetic voices behind them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from hearkit.errors import ConfigError
from hearkit.recipes import voices as hv
from hearkit.recipes.wakeword import (
    WakewordConfig,
    band_limit,
    build_wakeword_set,
    edit_distance,
    label_of,
    near_miss_texts,
    realise,
    room_response,
    tokenize,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")


def test_tokenize_and_distance():
    assert tokenize("s'Ev@n") == ["s", "E", "v", "@", "n"]
    assert tokenize("h'eI k@mpj'u:t#3") == ["h", "eI", "k", "@", "m", "p", "j", "u:", "t#", "3"]
    assert edit_distance(["s", "E", "v"], ["s", "E", "v"]) == 0
    assert edit_distance(["s", "E", "v", "@", "n"], ["h", "E", "v", "@", "n"]) == 1
    assert edit_distance([], ["a", "b"]) == 2
    assert label_of("Hey, Computer!") == "hey_computer"


def test_config_refuses_bad_values():
    with pytest.raises(ConfigError, match="at least one phrase"):
        WakewordConfig(phrases=())
    with pytest.raises(ConfigError, match="nothing to say"):
        WakewordConfig(phrases=("!!",))
    with pytest.raises(ConfigError, match="1 to 5 words"):
        WakewordConfig(phrases=("one two three four five six",))
    with pytest.raises(ConfigError, match="unknown engine 'sam'"):
        WakewordConfig(phrases=("stop",), engines=("espeak-ng", "sam"))
    with pytest.raises(ConfigError, match="must differ"):
        WakewordConfig(phrases=("hey robot", "Hey, robot"))
    with pytest.raises(ConfigError, match="val_share"):
        WakewordConfig(phrases=("stop",), val_share=1.0)


def test_room_and_band():
    rng = np.random.default_rng(0)
    h = room_response(rng)
    assert h.dtype == np.float32 and np.abs(h).max() == pytest.approx(1.0, abs=1e-6) and len(h) > 800
    x = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    y = band_limit(x, 4000.0)
    spec = np.abs(np.fft.rfft(y))
    assert spec[4010:].max() < 1e-3 * spec.max()  # bins above 4 kHz (1 Hz per bin) are empty, to 1e-3 of the peak
    word = 0.5 * np.sin(np.arange(8000) / 3.0).astype(np.float32)
    out = realise(word, 16000, rng, reverb=1.0, bandlimit=0.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert out.shape == (16000,) and -45 < rms_db < -14  # placed at a level in LEVEL_DBFS (rest of the window quiet)
    assert realise(np.zeros(20000, np.float32), 16000, rng, 0.0, 0.0) is None  # longer than the window


@needs_espeak
def test_voices_speak_every_installed_engine():
    have = hv.available_voices()
    assert "espeak-ng" in have
    vs = hv.random_voices(30, seed=3, engines=have)
    assert len({v.key for v in vs}) == 30 and all("_" not in v.key for v in vs)  # keys are speaker ids in file names
    for engine in have:
        v = next(v for v in vs if v.engine == engine) if any(v.engine == engine for v in vs) else hv.Voice(engine, have[engine][0])
        x = hv.speak("stop", v)
        assert x.dtype == np.float32 and 0.15 * 16000 < len(x) < 2.0 * 16000, (engine, len(x))
    slow, fast = (hv.speak("seven", hv.Voice("espeak-ng", "en-us+m3", warp=w)) for w in (0.9, 1.1))
    assert len(slow) / len(fast) == pytest.approx(1.1 / 0.9, rel=0.05)  # warp resamples: rate follows it
    assert hv.phonemes(["seven", "stop, now"]) == ["s'Ev@n", "st2'0p n'aU"]


@needs_espeak
def test_near_misses_never_say_the_phrase():
    rng = np.random.default_rng(0)
    nm = near_miss_texts("hey computer", rng, lexicon=["computer", "commuter", "hey", "hay", "tree", "compute", "hater"])
    assert nm["partial"] == ["computer", "hey"]
    phon = "".join(tokenize(hv.phonemes(["hey computer"])[0]))
    assert nm["phonemes"] and phon not in nm["phonemes"]
    assert "commuter" in nm["words"] and "computer" not in nm["words"] and "hey computer" not in nm["words"]


@needs_espeak
def test_build_set_layout_split_by_voice_and_refusals(tmp_path):
    from hearkit.datasets import index_dataset

    neg = tmp_path / "neg"
    (neg / "stop").mkdir(parents=True)
    (neg / "left").mkdir()
    rng = np.random.default_rng(0)
    sf.write(neg / "stop" / "a.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)  # says the phrase
    sf.write(neg / "left" / "b.wav", (0.1 * rng.standard_normal(48000)).astype(np.float32), 16000)
    cfg = WakewordConfig(phrases=("stop",), voices=10, near_misses=6, other_words=6, negatives=(str(neg),),
                         negative_windows=5, silence=10, reverb=0.5, workers=2)
    out = tmp_path / "set"
    s = build_wakeword_set(cfg, out)
    assert s["left_out"] == {"stop": 1} and s["clips"]["real_negative_windows"] == 5
    assert s["clips"]["stop"] == 10 and s["window_seconds"] == 1.0
    idx = index_dataset(out)
    assert set(idx.labels) == {"stop", "_unknown_", "_silence_"}
    train_spk = {e.speaker for e in idx.split("train") if e.label == "stop"}
    val_spk = {e.speaker for e in idx.split("val") if e.label == "stop"}
    assert len(val_spk) == 2 and not train_spk & val_spk  # 15 % of 10 voices, disjoint
    for e in idx.examples[:5]:
        x, sr = sf.read(e.path)
        assert sr == 16000 and len(x) == 16000
    assert json.loads((out / "wakeword.json").read_text())["labels"] == ["stop"]
    # an occupied folder is refused without --force, and one hearkit did not write even with it
    with pytest.raises(ConfigError, match="--force"):
        build_wakeword_set(cfg, out)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="wakeword.json"):
        build_wakeword_set(cfg, other, force=True)
    assert (other / "notes.txt").read_text() == "keep"


@needs_espeak
def test_real_recordings_of_the_phrase_join_training_only(tmp_path):
    from click.testing import CliRunner

    from hearkit.cli import main
    from hearkit.datasets import index_dataset

    rec = tmp_path / "rec"
    (rec / "hey_robot").mkdir(parents=True)
    (rec / "other").mkdir()
    rng = np.random.default_rng(3)
    sf.write(rec / "hey_robot" / "a.wav", (0.3 * rng.standard_normal(8000)).astype(np.float32), 16000)
    sf.write(rec / "hey_robot" / "b.flac", (0.3 * rng.standard_normal(48000)).astype(np.float32), 16000)  # 3 s: cut
    sf.write(rec / "hey_robot" / "c.wav", (0.3 * rng.standard_normal(4000)).astype(np.float32), 8000)  # resampled
    sf.write(rec / "other" / "d.wav", (0.3 * rng.standard_normal(8000)).astype(np.float32), 16000)  # not the phrase
    out = tmp_path / "ww"
    r = CliRunner().invoke(main, ["data", "wakeword", "hey robot", "-o", str(out), "--voices", "4", "--near-misses", "1",
                                  "--other-words", "1", "--negative-windows", "0", "--reverb", "0",
                                  "--recordings", str(rec), "--recording-repeats", "3"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "wakeword.json").read_text())
    assert s["clips"]["real_positive_recordings"] == 3 and s["clips"]["hey_robot"] == 4 + 3 * 3
    idx = index_dataset(out)
    real = [e for e in idx.examples if e.label == "hey_robot" and "/rec" in e.path]
    assert len(real) == 9 and {e.split for e in real} == {"train"}  # validation stays unseen synthetic voices
    assert len({e.speaker for e in real}) == 3  # one speaker key per recording
    for e in real:
        x, sr = sf.read(e.path)
        assert sr == 16000 and len(x) == round(s["window_seconds"] * 16000) and np.abs(x).max() <= 1.0
    # a recording is cut to its utterance before it is placed: 0.4 s of "speech" in 1.5 s of its own noise
    from hearkit.recipes.wakeword import RECORDING_MARGIN_S, trimmed_recording

    x = (0.003 * rng.standard_normal(24000)).astype(np.float32)  # about -50 dBFS of room noise
    x[9600:16000] += (0.2 * np.sin(np.arange(6400) * 0.2)).astype(np.float32)  # 0.6-1.0 s
    y = trimmed_recording(x, 16000)
    want = 6400 + 2 * RECORDING_MARGIN_S * 16000
    assert abs(len(y) - want) <= 2 * 160, (len(y), want)  # within one 10-ms frame each side
    start = 9600 - int(RECORDING_MARGIN_S * 16000)  # the sine starts on a frame boundary
    assert np.array_equal(y, x[start : start + len(y)])  # the recording's own samples, cut
    # a folder without any recording of the phrase is one clear error
    (tmp_path / "none" / "other").mkdir(parents=True)
    sf.write(tmp_path / "none" / "other" / "d.wav", np.zeros(800, np.float32), 16000)
    r = CliRunner().invoke(main, ["data", "wakeword", "hey robot", "-o", str(tmp_path / "ww2"), "--voices", "4",
                                  "--near-misses", "1", "--other-words", "1", "--negative-windows", "0",
                                  "--recordings", str(tmp_path / "none")])
    assert r.exit_code == 2 and "Error:" in r.output and not (tmp_path / "ww2").exists(), r.output


@needs_espeak
def test_cli_data_wakeword(tmp_path):
    from click.testing import CliRunner

    from hearkit.cli import main

    out = tmp_path / "ww"
    args = ["data", "wakeword", "hey robot", "-o", str(out), "--voices", "4", "--near-misses", "2", "--other-words", "2",
            "--negative-windows", "0", "--reverb", "0"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "hey_robot 4" in r.output and (out / "hey_robot").is_dir() and (out / "validation_list.txt").is_file()
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "--force" in r.output


def test_cli_data_join(tmp_path):
    """Joined manifests keep every utterance and their audio paths resolve from the new place."""
    from click.testing import CliRunner

    from hearkit.cli import main
    from hearkit.manifest import read_manifest

    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        sf.write(d / "x.wav", np.zeros(1600, np.float32), 16000)
        (d / "manifest.jsonl").write_text(json.dumps({"audio_filepath": "x.wav", "duration": 0.1, "text": f"word {name}"}) + "\n")
    r = CliRunner().invoke(main, ["data", "join", str(tmp_path / "a"), str(tmp_path / "b" / "manifest.jsonl"), "-o", str(tmp_path / "j")])
    assert r.exit_code == 0, r.output
    m = read_manifest(tmp_path / "j" / "manifest.jsonl")
    assert [u.text for u in m] == ["word a", "word b"]
    assert [u.audio for u in m] == [str(tmp_path / n / "x.wav") for n in ("a", "b")]
    r = CliRunner().invoke(main, ["data", "join", str(tmp_path / "a"), "-o", str(tmp_path / "j")])
    assert r.exit_code == 2 and "--force" in r.output


def test_negative_windows_straddle_recordings_as_a_stream_does(tmp_path):
    """Half the windows hold one recording; the other half, cut from the recordings back to back, mostly hold two."""
    from hearkit.recipes.wakeword import _cut_windows

    files = []
    for i in range(60):
        p = tmp_path / f"{i}.wav"
        sf.write(p, np.full(8000 + 400 * i, (i + 1) / 100, np.float32), 16000)  # each file one constant level
        files.append(p)
    w = _cut_windows(files, 30, 16000, np.random.default_rng(0))
    sources = [len(set(np.round(x[np.abs(x) > 0], 3))) for _, x in w]
    assert len(w) == 30 and all(x.shape == (16000,) for _, x in w)
    assert all(s == 1 for s in sources[:15])
    assert sum(s >= 2 for s in sources[15:]) >= 8


@needs_espeak
def test_mine_adds_the_highest_scoring_negative_windows(tmp_path, make_classifier_export):
    from click.testing import CliRunner

    from hearkit.cli import main

    out = tmp_path / "set"
    build_wakeword_set(WakewordConfig(phrases=("stop",), voices=4, near_misses=1, other_words=1, negative_windows=0,
                                      silence=4, reverb=0.0, workers=2), out)
    export = make_classifier_export(["_silence_", "_unknown_", "stop"])
    neg = tmp_path / "neg" / "left"
    neg.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        sf.write(neg / f"n{i}.wav", (0.1 * rng.standard_normal(32000)).astype(np.float32), 16000)
    before = len(list((out / "_unknown_").iterdir()))
    r = CliRunner().invoke(main, ["data", "mine", str(export), str(out), "--negatives", str(tmp_path / "neg"),
                                  "--windows", "3", "--min-score", "0"])
    assert r.exit_code == 0, r.output
    hard = sorted((out / "_unknown_").glob("hard*"))
    assert len(hard) == 3 and len(list((out / "_unknown_").iterdir())) == before + 3
    ends = sorted(int(p.name[4:].split("_")[0], 16) for p in hard)
    assert all(b - a >= 16000 for a, b in zip(ends, ends[1:]))  # one window per second at most
    info = json.loads((out / "wakeword.json").read_text())
    assert info["hard_negatives"][0]["added"] == 3
    assert not any("hard" in line for line in (out / "validation_list.txt").read_text().split())  # training only
    # a folder streams (each log-mel frame once); a lone pipeline file scores each window whole:
    # the same windows, the same audio, scores within 1e-5
    import shutil

    from hearkit.recipes.wakeword import mine_hard_negatives

    found = []
    for i, m in enumerate((export, tmp_path / "lone" / "pipeline.onnx")):
        if i:
            m.parent.mkdir()
            shutil.copy2(export / "pipeline.onnx", m)
        s = tmp_path / f"set{i}"
        shutil.copytree(out, s)
        for h in s.glob("_unknown_/hard*"):
            h.unlink()
        summary = mine_hard_negatives(m, [tmp_path / "neg"], s, windows=5, min_score=0.0)
        hard = sorted(s.glob("_unknown_/hard*"))
        found.append(([h.name for h in hard], [sf.read(h)[0] for h in hard], summary))
    assert found[0][0] == found[1][0] and len(found[0][0]) == 5
    assert all(np.array_equal(a, b) for a, b in zip(found[0][1], found[1][1]))
    assert found[0][2]["scored_windows"] == found[1][2]["scored_windows"] and found[0][2]["hours"] == found[1][2]["hours"]
    np.testing.assert_allclose(found[0][2]["score_quantiles"], found[1][2]["score_quantiles"], atol=1e-5, rtol=0)


@needs_espeak
def test_a_failed_build_leaves_no_half_written_set(tmp_path, monkeypatch):
    import hearkit.recipes.wakeword as ww

    calls = {"n": 0}
    real = ww._noise_clips

    def broken(*a, **k):  # fails after the synthetic clips were written
        calls["n"] += 1
        raise OSError("No space left on device")

    monkeypatch.setattr(ww, "_noise_clips", broken)
    cfg = WakewordConfig(phrases=("stop",), voices=4, near_misses=1, other_words=1, negative_windows=0, silence=2,
                         reverb=0.0, workers=2)
    with pytest.raises(OSError, match="No space"):
        build_wakeword_set(cfg, tmp_path / "set")
    assert calls["n"] == 1 and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(ww, "_noise_clips", real)


def test_engine_and_piper_voice_errors_are_one_line(tmp_path, monkeypatch):
    """Unknown engine, missing voice file, missing .onnx.json, piper-tts missing: one line, exit 2, nothing written."""
    import sys

    from click.testing import CliRunner

    from hearkit.cli import main

    onnx = tmp_path / "v.onnx"
    onnx.write_bytes(b"not read before the checks")
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(b"")
    (tmp_path / "v.onnx.json").write_text(json.dumps({"num_speakers": 1, "audio": {"sample_rate": 22050}}))
    monkeypatch.setitem(sys.modules, "piper", None)  # as if piper-tts were not installed
    base = ["data", "wakeword", "stop", "--voices", "4", "--negative-windows", "0"]
    cases = [
        (["--engines", "espeak-ng,klatt"], "unknown engine 'klatt'"),
        (["--piper-voice", str(tmp_path / "nope.onnx")], "no such file"),
        (["--piper-voice", str(lone)], "lone.onnx.json is missing"),
        (["--piper-voice", str(onnx)], 'pip install "hearkit[piper]"'),
        (["--engines", "piper"], "needs a voice"),
        (["--piper-voice", str(onnx), "--engines", "espeak-ng"], "leave piper out"),
    ]
    for i, (extra, msg) in enumerate(cases):
        out = tmp_path / f"set{i}"
        r = CliRunner().invoke(main, [*base, "-o", str(out), *extra])
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert r.exit_code == 2 and len(errors) == 1 and msg in errors[0], (extra, r.output)
        assert "Traceback" not in r.output and not out.exists()


@needs_espeak
def test_a_phrase_nothing_can_say_is_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import hearkit.recipes.voices as voices
    from hearkit.cli import main

    for phrase, msg in (("", "nothing to say"), ("'", "nothing to say"), ("' ''", "nothing to say")):
        r = CliRunner().invoke(main, ["data", "wakeword", phrase, "-o", str(tmp_path / "a"), "--voices", "4"])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (phrase, r.output)

    def mute(text, voice, *a, **k):
        raise voices.SynthError(f"{voice.engine} voice {voice.name} produced no audio for {text!r}")

    monkeypatch.setattr(voices, "speak", mute)  # as an engine that cannot say the phrase
    r = CliRunner().invoke(main, ["data", "wakeword", "zzyzx", "-o", str(tmp_path / "b"), "--voices", "4",
                                  "--engines", "espeak-ng", "--negative-windows", "0"])
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "none of the engines (espeak-ng) can say it" in errors[0], r.output
    assert not (tmp_path / "b").exists()


@needs_espeak
def test_a_set_does_not_depend_on_where_its_negatives_lie(tmp_path):
    """Real negative windows are named, and put in validation, by their path under the sources' common folder:
    the same recordings in another folder (another machine; the wake-word demo's own -o) give the same set."""
    import shutil

    rng = np.random.default_rng(0)
    first = tmp_path / "here" / "neg"
    (first / "talk").mkdir(parents=True)
    for i in range(12):
        sf.write(first / "talk" / f"n{i}.wav", (0.1 * rng.standard_normal(24000)).astype(np.float32), 16000)
    second = tmp_path / "elsewhere" / "deeper" / "neg"
    shutil.copytree(first, second)
    sets = []
    for k, neg in enumerate((first, second)):
        out = tmp_path / f"set{k}"
        build_wakeword_set(WakewordConfig(phrases=("stop",), voices=4, near_misses=1, other_words=1, negative_windows=20,
                                          negatives=(str(neg),), silence=2, reverb=0.0, workers=1), out)
        sets.append(out)
    names = [sorted(p.name for p in (s / "_unknown_").iterdir() if p.name.startswith("real")) for s in sets]
    assert len(names[0]) == 20 and names[0] == names[1]
    assert (sets[0] / "validation_list.txt").read_text() == (sets[1] / "validation_list.txt").read_text()
    for name in names[0]:
        assert (sets[0] / "_unknown_" / name).read_bytes() == (sets[1] / "_unknown_" / name).read_bytes()
