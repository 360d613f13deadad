"""The openWakeWord peer (hearkit.evaluate.openwakeword, `hearkit bench wakeword --peer openwakeword`):
the phrase -> official model map, its scores on speech and noise, the sweep, one TFLite thread, the command.

Tests that run openWakeWord skip loudly without ``hearkit[oww]`` (pyopen-wakeword); those that speak
need espeak-ng; the command's test builds a model and needs ``hearkit[train]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hearkit.audio import load_audio
from hearkit.evaluate.detector import FA_TARGETS, Utterance, envelope, match, operating_point
from hearkit.evaluate.openwakeword import (
    NO_OFFICIAL_MODEL,
    OFFICIAL_MODELS,
    ScoreStream,
    official_model,
    official_models,
    score_curve,
    thresholds,
)

SR = 16000
WORDS = ["alexa", "seven", "hello", "election", "alexander", "yesterday", "texas", "relax"]


@pytest.fixture(scope="module")
def oww():
    return pytest.importorskip("pyopen_wakeword", reason="the openWakeWord peer needs hearkit[oww] (pip install pyopen-wakeword)")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> dict:
    """{word: 16-kHz float32 audio} spoken by espeak-ng's default voice."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    d = tmp_path_factory.mktemp("espeak")
    out = {}
    for w in WORDS:
        subprocess.run(["espeak-ng", "-w", str(d / f"{w}.wav"), w], check=True, capture_output=True)
        out[w] = load_audio(d / f"{w}.wav", SR)[0]
    return out


# -- the map (no peer needed) ---------------------------------------------------------------
def test_phrases_map_to_the_five_official_models_and_others_are_skipped():
    assert official_model("alexa") == "alexa" and official_model("Hey Jarvis") == "hey_jarvis"
    assert official_model("hey_mycroft") == official_model("hey-mycroft") == "hey_mycroft"
    assert official_model("hey rhasspy") == "hey_rhasspy" and official_model("okay_nabu") == "okay_nabu"
    assert sorted(OFFICIAL_MODELS.values()) == ["alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu"]
    for other in ("hey computer", "seven", "jarvis", "hey alexa", ""):
        assert official_model(other) is None, other
    found, skipped = official_models(["_silence_", "_unknown_", "alexa", "hey_computer", "okay_nabu"])
    assert found == {"alexa": "alexa", "okay_nabu": "okay_nabu"} and skipped == {"hey_computer": NO_OFFICIAL_MODEL}


def test_no_official_model_is_a_skip_not_an_error():
    """Nothing is streamed (no file is even looked at) and the report says why."""
    from hearkit.evaluate.detector import Streams
    from hearkit.evaluate.openwakeword import evaluate_openwakeword

    lines = []
    rep = evaluate_openwakeword(["_silence_", "seven", "stop"], Streams(["/nonexistent"], ["/nonexistent"]), log=lines.append)
    assert rep["phrases"] == {} and rep["skipped"] == {"seven": NO_OFFICIAL_MODEL, "stop": NO_OFFICIAL_MODEL}
    assert len(lines) == 1 and "no official model for 'seven', 'stop'" in lines[0] and "skipped" in lines[0]


def test_module_imports_without_the_peer_or_torch_and_names_the_extra_when_run():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['pyopen_wakeword'] = None\n"
            "import hearkit.evaluate.openwakeword as o, hearkit.commands.bench_wakeword\n"
            "from hearkit.errors import MissingDependencyError\n"
            "assert not o.available()\n"
            "try:\n    o.OfficialSpotter(['alexa'])\nexcept MissingDependencyError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and 'pip install "hearkit[oww]"' in r.stdout, r.stderr


# -- the sweep (no peer needed) ---------------------------------------------------------------
def _streams(seed=0):
    """Scores every 80 ms: 40 positives with peaks of varied height in the positive stream, 1 h of
    negatives with spurious peaks of varied height."""
    rng = np.random.default_rng(seed)
    hop = 0.08
    tp = np.arange(0, 400, hop)
    sp = np.full(tp.size, 0.01)  # a flat floor: a random one makes every threshold under it thousands of runs
    utts = []
    for k in range(40):
        start = 5.0 + 9.5 * k
        utts.append(Utterance("alexa", start, start + 0.7, f"p{k}"))
        i = int((start + 0.8) / hop)
        sp[i : i + 4] = rng.uniform(0.2, 1.0)  # a peak just after the utterance's end: a hit if it fires
    sp[int(200.0 / hop)] = 0.95  # a spurious peak between utterances: a false alarm in the positive stream
    tn = np.arange(0, 3600 - 400, hop)
    sn = np.full(tn.size, 0.01)
    for t in rng.uniform(0, tn[-1], 30):
        sn[int(t / hop) : int(t / hop) + 3] = rng.uniform(0.1, 1.0)
    pos = ScoreStream({"alexa": tp}, {"alexa": sp}, 400.0, utts)
    neg = ScoreStream({"alexa": tn}, {"alexa": sn}, 3200.0)
    return pos, neg


def test_sweep_gives_misses_that_fall_as_false_alarms_rise():
    pos, neg = _streams()
    c = score_curve(pos, neg, "alexa")
    th = np.asarray(c["thresholds"])
    assert np.all(np.diff(th) > 0) and th[0] == 0.0 and th[-1] > pos.scores["alexa"].max()
    assert c["utterances"] == 40 and c["hours"] == pytest.approx(1.0)
    assert c["frr"][-1] == 1.0 and c["false_alarms"][-1] == 0  # the cut above every score fires nothing
    # each negative peak's height is a threshold: the low-false-alarm end is exact
    peaks = np.unique(neg.scores["alexa"][neg.scores["alexa"] > 0.05])
    assert set(peaks) <= set(th)
    # above the noise floor (one plateau per utterance and per spurious event) a stricter threshold never
    # fires more or hits more; under it, one run above the threshold can span utterances (envelope's caveat)
    above = th > 0.02
    assert np.all(np.diff(np.asarray(c["false_alarms"])[above]) <= 0) and np.all(np.diff(np.asarray(c["frr"])[above]) >= 0)
    fah, frr = envelope(c)
    assert np.all(np.diff(fah) >= 0) and np.all(np.diff(frr) <= 1e-12)
    points = [operating_point(c, t) for t in FA_TARGETS]
    assert [p["target_fa_per_hour"] for p in points] == list(FA_TARGETS)
    assert all(a["misses"] >= b["misses"] for a, b in zip(points, points[1:]))
    assert all(p["fa_per_hour"] <= p["target_fa_per_hour"] + 1e-9 for p in points if p["reached"])
    # the hit rule: at a threshold under every peak, every utterance is hit (peaks 0.1-0.3 s after its end)
    low = next(i for i, t in enumerate(th) if t > 0.02)
    assert c["frr"][low] == 0.0


def test_thresholds_hold_every_utterances_best_score_in_its_window():
    pos, neg = _streams(1)
    th = set(thresholds(pos, neg, "alexa", pos.utterances).tolist())
    tp, sp = pos.times["alexa"], pos.scores["alexa"]
    for u in pos.utterances:
        w = sp[(tp >= u.start) & (tp <= u.end + 0.5)]
        assert w.max() in th


# -- openWakeWord itself ------------------------------------------------------------------------
def _between_silences(clips, gap_s=1.5):
    gap = np.zeros(int(gap_s * SR), np.float32)
    return np.concatenate([gap] + [x for c in clips for x in (c, gap)])


def test_official_alexa_scores_its_phrase_far_above_noise_and_other_words(oww, spoken):
    """espeak-ng's "alexa" between silences scores ~1.0 (checked: 0.9995) within the hit window; white
    noise and other words stay low. Any chunking gives the same scores at the same times."""
    from hearkit.evaluate.openwakeword import CHUNK_SAMPLES, OfficialSpotter, spot_stream

    sp = OfficialSpotter(["alexa"])
    x = _between_silences([spoken["alexa"]])
    s = spot_stream(sp, [x])
    times, scores = s.times["alexa"], s.scores["alexa"]
    assert np.all(np.diff(times) >= 0) and times[-1] <= s.seconds + 1e-9 and s.cpu_seconds > 0
    assert np.allclose(np.diff(np.unique(times))[:-1], CHUNK_SAMPLES / SR)  # a score every 80 ms; the last part chunk
    start, end = 1.5, 1.5 + spoken["alexa"].size / SR
    in_window = (times >= start) & (times <= end + 0.5)
    assert scores[in_window].max() > 0.9
    assert match(times[scores >= 0.5][:1], [Utterance("alexa", start, end, "a")]) == (1, 0)
    again = spot_stream(sp, [x[i : i + 777] for i in range(0, x.size, 777)])
    np.testing.assert_array_equal(again.scores["alexa"], scores)
    np.testing.assert_array_equal(again.times["alexa"], times)
    noise = (0.05 * np.random.default_rng(0).standard_normal(4 * SR)).astype(np.float32)
    others = _between_silences([spoken[w] for w in ("seven", "hello", "yesterday")], gap_s=0.8)
    low = spot_stream(sp, [noise, others]).scores["alexa"]
    assert low.max() < 0.3 < 0.9 < scores.max()
    sp.close()


def test_streaming_cost_runs_tflite_on_one_thread(oww):
    """The share of a core is measured on one TFLite thread: the process holds one thread while it runs
    (left alone, TFLite starts a pool of 8 here)."""
    code = ("import os, json\n"
            "from hearkit.evaluate.openwakeword import stream_cpu_share\n"
            "r = stream_cpu_share('hey jarvis', seconds=3.0)\n"
            "r['threads_seen'] = len(os.listdir('/proc/self/task'))\n"
            "print(json.dumps(r))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["model"] == "hey_jarvis.tflite" and out["hop_seconds"] == 0.08 and out["threads"] == 1
    assert 0 < out["cpu_share_percent"] < 100 and out["threads_seen"] == 1


# -- end to end: report and command ---------------------------------------------------------------
@pytest.fixture(scope="module")
def folders(spoken, tmp_path_factory):
    """Positives: "alexa" and "seven" at three pitches; negatives: the other words; a noise folder."""
    d = tmp_path_factory.mktemp("owwdata")
    for w in ("alexa", "seven"):
        (d / "pos" / w).mkdir(parents=True)
        for k, rate in enumerate((0.94, 1.0, 1.06)):  # crude speaker variety: resampled playback
            x = spoken[w]
            y = np.interp(np.arange(0, x.size, rate), np.arange(x.size), x).astype(np.float32)
            sf.write(d / "pos" / w / f"{w}{k}_nohash_0.wav", y, SR)
    (d / "neg" / "other").mkdir(parents=True)
    for w in WORDS[2:]:
        sf.write(d / "neg" / "other" / f"{w}.wav", spoken[w], SR)
    (d / "noise").mkdir()
    sf.write(d / "noise" / "hum.wav", (0.05 * np.random.default_rng(1).standard_normal(3 * SR)).astype(np.float32), SR)
    return d


@pytest.fixture(scope="module")
def kws_export(make_classifier_export):
    """An fp32 export of an untrained cnn4-s with the phrases "alexa" (official model) and "seven" (none)."""
    return make_classifier_export(["_silence_", "_unknown_", "alexa", "seven"])


def test_bench_wakeword_shows_openwakewords_row_beside_hearkit(oww, folders, kws_export, tmp_path):
    """Its row for "alexa" (every espeak "alexa" hit, at no false alarm), "-" for "seven" (no official model,
    said on stderr), its mean marked as covering 1 of 2 phrases, its CPU figure, and its line in the DET plot."""
    from hearkit.commands.bench_wakeword import bench_wakeword

    args = [str(kws_export), "--positives", str(folders / "pos"), "--negatives", str(folders / "neg"),
            "--noise", str(folders / "noise"), "--snr", "10", "--peer", "openwakeword"]
    png = tmp_path / "det.png"
    r = CliRunner().invoke(bench_wakeword, args + ["--plot", str(png)])
    assert r.exit_code == 0, r.output
    out = r.stdout.splitlines()
    assert "hearkit FRR" in out[1] and "openwakeword FRR" in out[1] and "pocketsphinx" not in r.stdout
    alexa = [line for line in out if line.startswith("alexa")]
    seven = [line for line in out if line.startswith("seven")]
    assert len(alexa) == len(seven) == 3
    assert all(line.count("%") == 2 for line in alexa) and all(line.rstrip().endswith("-") for line in seven)
    assert all("(1 of 2 phrases)" in line for line in out if line.startswith("mean"))
    assert len(next(line for line in out if line.startswith("CPU s per hour")).split()[-2:]) == 2
    assert "no official model for 'seven'" in r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    r = CliRunner().invoke(bench_wakeword, args + ["--json"])
    assert r.exit_code == 0, r.output
    reps = json.loads(r.stdout)
    assert list(reps) == ["hearkit", "openwakeword"]
    ow = reps["openwakeword"]
    assert ow["models"] == {"alexa": "alexa"} and ow["skipped"] == {"seven": NO_OFFICIAL_MODEL}
    assert list(ow["phrases"]) == ["alexa"] and ow["threads"] == 1 and ow["cpu_seconds_per_hour"] > 0
    assert ow["positive_hours"] == pytest.approx(reps["hearkit"]["positive_hours"], rel=1e-9)
    assert ow["negative_hours"] == pytest.approx(reps["hearkit"]["negative_hours"], rel=1e-9)
    c = ow["phrases"]["alexa"]["curve"]
    assert c["utterances"] == 3 and c["frr"][-1] == 1.0 and c["false_alarms"][-1] == 0
    assert [p["frr"] for p in ow["phrases"]["alexa"]["points"]] == [0.0, 0.0, 0.0]  # all hit, no false alarm


def test_bench_wakeword_peer_option(tmp_path, folders, kws_export):
    from hearkit.commands.bench_wakeword import bench_wakeword

    r = CliRunner().invoke(bench_wakeword, ["--help"])
    assert r.exit_code == 0 and "--peer" in r.output and "openwakeword" in r.output
    args = [str(kws_export), "--positives", str(folders / "pos"), "--negatives", str(folders / "neg")]
    r = CliRunner().invoke(bench_wakeword, args + ["--peer", "pocketsphinx,nope"])
    assert r.exit_code == 2 and "nope" in r.output
    r = CliRunner().invoke(bench_wakeword, args + ["--peer", "none"])
    assert r.exit_code == 0 and "hearkit FRR" in r.stdout and "FRR" not in r.stdout.replace("hearkit FRR", "")


def test_bench_wakeword_default_skips_a_peer_that_is_not_installed(monkeypatch, folders, kws_export):
    """By default a missing extra is one line on stderr and the table goes on; asked for by name, it is an error."""
    import hearkit.commands.bench_wakeword as cmd

    monkeypatch.setattr(cmd, "_installed", lambda module: module != "pyopen_wakeword")
    args = [str(kws_export), "--positives", str(folders / "pos"), "--negatives", str(folders / "neg"), "--no-pocketsphinx"]
    r = CliRunner().invoke(cmd.bench_wakeword, args)
    assert r.exit_code == 0 and 'openwakeword: not installed (pip install "hearkit[oww]"): skipped' in r.stderr
    assert "openwakeword FRR" not in r.stdout and "hearkit FRR" in r.stdout
    monkeypatch.setitem(sys.modules, "pyopen_wakeword", None)  # import fails as if not installed
    r = CliRunner().invoke(cmd.bench_wakeword, args + ["--peer", "openwakeword"])  # hearkit's main prints it in one line
    assert r.exit_code != 0 and type(r.exception).__name__ == "MissingDependencyError" and "hearkit[oww]" in str(r.exception)
