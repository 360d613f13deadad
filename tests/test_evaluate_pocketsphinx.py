"""The PocketSphinx peer (hearkit.evaluate.pocketsphinx, `hearkit bench wakeword`): spotting, the one-decode
score sweep, times, the report format and the side-by-side command.

Tests that run PocketSphinx skip loudly without ``hearkit[peer]``; those that speak need espeak-ng.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hearkit.audio import load_audio
from hearkit.evaluate.detector import (
    Streams,
    Utterance,
    envelope,
    evaluate_detector,
    match,
    operating_point,
    plot_det,
    positive_stream,
    summary_lines,
)
from hearkit.evaluate.pocketsphinx import (
    KeyphraseDetection,
    PeerStream,
    comparison_lines,
    compare_engines,
    peer_curve,
    plot_det_engines,
    score_log10_threshold,
    threshold_score,
)

SR = 16000
PNG = b"\x89PNG\r\n\x1a\n"
# words PocketSphinx may confuse with the phrases, so the stream holds near misses too
WORDS = ["seven", "stop", "yes", "heaven", "seventy", "step", "yesterday", "shop", "eleven", "hello"]


@pytest.fixture(scope="module")
def pocketsphinx():
    return pytest.importorskip("pocketsphinx", reason="the PocketSphinx peer needs hearkit[peer] (pip install pocketsphinx)")


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


def _between_silences(clips, gap_s=1.5):
    gap = np.zeros(int(gap_s * SR), np.float32)
    return np.concatenate([gap] + [x for c in clips for x in (c, gap)])


def _key(d: KeyphraseDetection):
    return d.label, d.start, d.end, d.score, d.time


# -- PocketSphinx itself --------------------------------------------------------------------
def test_spots_seven_at_a_permissive_threshold_and_not_at_a_strict_one(pocketsphinx, spoken, tmp_path):
    """espeak-ng's "seven" between silences: each one hit at 1e-50 (hit window as hearkit's), none fires at 1e-10.

    espeak's "seven" scores about -930 in PocketSphinx's units here, so it passes 1e-50 (-1125)
    with a margin of ~190 and stays far under 1e-10 (-225).
    """
    from hearkit.evaluate.pocketsphinx import KeyphraseSpotter, spot_stream

    folder = tmp_path / "seven"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"s{i}.wav", spoken["seven"], SR)
    stream = list(positive_stream({"seven": sorted(folder.iterdir())}, SR, seed=0))
    loose = spot_stream(KeyphraseSpotter(["seven"], kws_threshold=1e-50), stream)
    assert len(loose.utterances) == 3 and loose.files == 4  # three positives and the closing silence
    hits, _ = match(np.array([d.time for d in loose.detections]), loose.utterances)
    assert hits == 3  # exact: every utterance is hit
    assert all(-1125 <= d.score < -225 for d in loose.detections)
    strict = spot_stream(KeyphraseSpotter(["seven"], kws_threshold=1e-10), stream)
    assert strict.detections == []
    assert strict.seconds == loose.seconds and loose.cpu_seconds > 0


@pytest.mark.parametrize("strict", [1e-40, 1e-30, 1e-20])
def test_one_permissive_decode_cut_at_a_score_equals_a_decode_at_the_stricter_threshold(pocketsphinx, spoken, strict):
    """Exact equality (phrase, frames, score, time) of every detection: the post-hoc sweep is no approximation."""
    from hearkit.evaluate.pocketsphinx import KeyphraseSpotter, spot_stream

    x = _between_silences([spoken[w] for w in WORDS + WORDS[::-1]], gap_s=0.8)
    labels = ["seven", "stop", "yes"]
    full = spot_stream(KeyphraseSpotter(labels, kws_threshold=1e-50), [x])
    s = threshold_score(strict)
    cut = sorted(_key(d) for d in full.detections if d.score >= s)
    rerun = sorted(_key(d) for d in spot_stream(KeyphraseSpotter(labels, kws_threshold=strict), [x]).detections)
    assert cut == rerun
    assert len(full.detections) > len(rerun)  # the cut removed something: the comparison was not vacuous


def test_same_audio_in_any_chunking_gives_the_same_detections(pocketsphinx, spoken):
    """PocketSphinx's live CMN moves per call; fixed internal chunks make the result independent of the blocks."""
    from hearkit.evaluate.pocketsphinx import KeyphraseSpotter, spot_stream

    x = _between_silences([spoken[w] for w in WORDS], gap_s=0.6)
    sp = KeyphraseSpotter(["seven", "stop", "yes"], kws_threshold=1e-40)
    ref = [_key(d) for d in spot_stream(sp, [x]).detections]
    assert ref
    for n in (160, 777, 1600, 5003):
        got = [_key(d) for d in spot_stream(sp, [x[i : i + n] for i in range(0, x.size, n)]).detections]
        assert got == ref, n


def test_detection_time_is_when_the_hypothesis_shows_it(pocketsphinx, spoken):
    """Polled every 10 ms, hyp() first shows a detection at the frame the time formula gives (to one
    frame, 10 ms), or earlier when PocketSphinx later moved the detection to a better-scoring end."""
    from hearkit.evaluate.pocketsphinx import REPORT_LAG_FRAMES, KeyphraseSpotter

    x = _between_silences([spoken[w] for w in ("stop", "yes", "stop", "seven")], gap_s=1.0)
    pcm = np.round(x * 32767).astype(np.int16)
    sp = KeyphraseSpotter(["seven", "stop", "yes"], kws_threshold=1e-30)
    dec = sp.decoder
    first_seen, shown = [], 0
    for i in range(0, pcm.size, 160):
        dec.process_raw(pcm[i : i + 160].tobytes(), False, False)
        h = dec.hyp()
        n = len(h.hypstr.split()) if h is not None else 0
        first_seen += [(i + 160) / SR] * max(0, n - shown)
        shown = max(shown, n)
    dec.end_utt()
    ends = [s.end_frame for s in dec.seg()]
    assert ends and len(first_seen) == len(ends)
    formula = [(e + sp.kws_delay + REPORT_LAG_FRAMES) / sp.frate for e in ends]
    assert all(f <= t + 1e-9 for f, t in zip(first_seen, formula))
    assert sum(abs(f - t) <= 0.01 + 1e-9 for f, t in zip(first_seen, formula)) >= 1


def test_a_word_missing_from_the_dictionary_is_named(pocketsphinx):
    from hearkit.errors import ConfigError
    from hearkit.evaluate.pocketsphinx import KeyphraseSpotter

    with pytest.raises(ConfigError, match="xqzvbn"):
        KeyphraseSpotter(["hey_xqzvbn"])


def test_without_pocketsphinx_the_install_command_is_given(monkeypatch):
    from hearkit.errors import MissingDependencyError
    from hearkit.evaluate.pocketsphinx import KeyphraseSpotter

    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"hearkit\[peer\]"):
        KeyphraseSpotter(["seven"])


def test_module_imports_without_pocketsphinx_or_torch():
    """The module is torch-free and imports pocketsphinx only when it runs."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['pocketsphinx'] = None; "
            "import hearkit.evaluate.pocketsphinx, hearkit.commands.bench_wakeword; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# -- thresholds and scoring (no PocketSphinx needed) ------------------------------------------------
def test_threshold_conversion_round_trips():
    """PocketSphinx's own rule: -1e-40 is score -900, 1e-30 is -675 (kws_search.c), and each cut's
    log10 threshold maps back to exactly its score, one step (0.0444 in log10) apart."""
    assert threshold_score(1e-40) == -900 and threshold_score(1e-30) == -675 and threshold_score(1.0) == 0
    for s in range(-1200, 50, 7):
        x = score_log10_threshold(s)
        assert threshold_score(10**x) == s and threshold_score(10 ** (x + 0.0444)) == s + 1, s
    assert score_log10_threshold(-900) > -40 > score_log10_threshold(-901)
    from hearkit.errors import ConfigError

    with pytest.raises(ConfigError, match="positive"):
        threshold_score(0.0)


def _peer_streams():
    utts = [Utterance("yes", 2.0, 2.6, "a"), Utterance("yes", 6.0, 6.5, "b"), Utterance("no", 10.0, 10.5, "c")]
    d = KeyphraseDetection
    pos = PeerStream([d("yes", 2.3, -100, 0, 0), d("yes", 2.9, -500, 0, 0),   # hit; second of one utterance: FA
                      d("yes", 6.8, -300, 0, 0),                              # hit at end + 0.3 s
                      d("yes", 10.2, -400, 0, 0),                             # wrong phrase's utterance: FA
                      d("no", 10.3, -50, 0, 0)], 12.0, utts)
    neg = PeerStream([d("yes", 1.0, -200, 0, 0), d("no", 3.0, -600, 0, 0)], 3588.0)
    return pos, neg


def test_peer_curve_counts_hits_and_false_alarms_with_hearkits_rules():
    pos, neg = _peer_streams()
    c = peer_curve(pos, neg, "yes")
    assert c["scores"] == [-500, -400, -300, -200, -100, -99]
    assert c["utterances"] == 2 and c["hours"] == pytest.approx(1.0, rel=1e-12)
    assert c["false_alarms"] == [3, 2, 1, 1, 0, 0]  # -500: 2.9 (repeat), 10.2, neg 1.0; ...
    np.testing.assert_allclose(c["frr"], [0, 0, 0, 0.5, 0.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(c["fa_per_hour"], c["false_alarms"], rtol=1e-12)  # one hour streamed
    assert np.all(np.diff(c["thresholds"]) > 0)  # stricter cut, higher log10 kws_threshold
    p = operating_point(c, 1.0)
    assert (p["frr"], p["false_alarms"], p["threshold"], p["reached"]) == (0.0, 1, c["thresholds"][2], True)
    assert operating_point(c, 0.0)["threshold"] == c["thresholds"][4]  # at 0 FA/h: 50 % misses beats the cut above every score
    fah, frr = envelope(c)
    assert np.all(np.diff(fah) >= 0) and np.all(np.diff(frr) <= 0)
    assert peer_curve(PeerStream([], 10.0, []), PeerStream([], 10.0), "yes")["false_alarms"] == [0]


def _report(engine, frr_shift=0.0):
    pos, neg = _peer_streams()
    phrases = {}
    for name in ("yes", "no"):
        c = peer_curve(pos, neg, name)
        c["frr"] = [min(1.0, f + frr_shift) for f in c["frr"]]
        phrases[name] = {"curve": c, "points": [operating_point(c, t) for t in (0.5, 1.0, 2.0)]}
    return {"engine": engine, "phrases": phrases, "negative_hours": 3588 / 3600, "positive_hours": 12 / 3600,
            "negative_files": 2, "left_out": {"yes": 1, "no": 0}, "snr_db": 10.0, "cpu_seconds_per_hour": 81.5,
            "mean_frr": {str(t): float(np.mean([p["points"][i]["frr"] for p in phrases.values()]))
                         for i, t in enumerate((0.5, 1.0, 2.0))}}


def test_side_by_side_lines_and_one_det_png(tmp_path):
    reps = {"hearkit": _report("hearkit"), "pocketsphinx": _report("pocketsphinx", 0.25)}
    reps["hearkit"]["phrases"]["no"]["points"][0]["reached"] = False  # as when a model's scores saturate
    lines = comparison_lines(reps)
    assert "hearkit FRR" in lines[1] and "pocketsphinx FRR" in lines[1]
    assert len(lines) == 2 + 2 * 3 + 3 + 1 + 1  # header, columns, phrase x target, means, CPU, the * note
    yes1 = next(line for line in lines if line.startswith("yes") and " 1  " in line)
    assert yes1.count("%") == 2 and yes1.count("at 1.00") == 2  # an FRR per engine, at the rate reached
    assert lines[-2].split()[-2:] == ["81.5", "81.5"]
    assert lines[-1].startswith("*") and sum("*" in line for line in lines) == 2  # the point and the note
    png = plot_det_engines(reps, tmp_path / "both.png")
    assert png.read_bytes()[:8] == PNG


def test_compare_engines_gives_hearkits_report_unchanged_plus_cpu(tmp_path):
    """The timing wrapper changes nothing the evaluation sees: curves equal evaluate_detector's exactly."""
    from hearkit.classify import KeywordSpotter

    rng = np.random.default_rng(0)
    pos, neg = tmp_path / "pos", tmp_path / "neg"
    (pos / "yes").mkdir(parents=True)
    (neg / "left").mkdir(parents=True)
    for i in range(6):
        x = 0.001 * rng.standard_normal(SR).astype(np.float32)
        x[6000:10000] += 0.5 * rng.standard_normal(4000).astype(np.float32)
        sf.write(pos / "yes" / f"p{i}.wav", x, SR)
        sf.write(neg / "left" / f"n{i}.wav", 0.001 * rng.standard_normal(SR).astype(np.float32), SR)

    def energy_scorer(w):
        n = w.shape[1]
        mid = np.log(np.mean(w[:, n // 4 : 3 * n // 4] ** 2, axis=1) + 1e-8)
        edge = np.log(np.mean(np.concatenate([w[:, : n // 4], w[:, 3 * n // 4 :]], axis=1) ** 2, axis=1) + 1e-8)
        return np.stack([np.zeros_like(mid), np.full_like(mid, -5.0), 2 * (mid - edge)], axis=1)

    def spotter():
        return KeywordSpotter(scorer=energy_scorer, labels=["_silence_", "_unknown_", "yes"], sample_rate=SR,
                              window_samples=SR)

    ref = evaluate_detector(spotter(), Streams([pos], [neg], seed=3))
    out = compare_engines(spotter(), Streams([pos], [neg], seed=3), pocketsphinx=False)
    assert list(out) == ["hearkit"]
    rep = out["hearkit"]
    assert rep["phrases"]["yes"]["curve"] == ref["phrases"]["yes"]["curve"]
    assert rep["phrases"]["yes"]["points"] == ref["phrases"]["yes"]["points"]
    assert rep["engine"] == "hearkit" and rep["cpu_seconds"] > 0
    hours = rep["negative_hours"] + rep["positive_hours"]
    assert rep["cpu_seconds_per_hour"] == pytest.approx(rep["cpu_seconds"] / hours, rel=1e-12)


# -- end to end with PocketSphinx ------------------------------------------------------------------
@pytest.fixture(scope="module")
def folders(spoken, tmp_path_factory):
    """Positives: "seven" and "stop" at three pitches; negatives: the other words, twice."""
    d = tmp_path_factory.mktemp("peerdata")
    for w in ("seven", "stop"):
        (d / "pos" / w).mkdir(parents=True)
        for k, rate in enumerate((0.94, 1.0, 1.06)):  # crude speaker variety: resampled playback
            x = spoken[w]
            y = np.interp(np.arange(0, x.size, rate), np.arange(x.size), x).astype(np.float32)
            sf.write(d / "pos" / w / f"{w}{k}_nohash_0.wav", y, SR)
    (d / "neg" / "other").mkdir(parents=True)
    for k in range(2):
        for w in WORDS[2:]:
            sf.write(d / "neg" / "other" / f"{w}{k}.wav", spoken[w], SR)
    (d / "noise").mkdir()
    sf.write(d / "noise" / "hum.wav", (0.05 * np.random.default_rng(1).standard_normal(3 * SR)).astype(np.float32), SR)
    return d


def test_evaluate_pocketsphinx_report_is_what_summary_lines_and_plot_det_take(pocketsphinx, folders, tmp_path):
    from hearkit.evaluate.pocketsphinx import THRESHOLD_UNIT, evaluate_pocketsphinx

    rep = evaluate_pocketsphinx(["_silence_", "seven", "stop"],
                                Streams([folders / "pos"], [folders / "neg"], noise=[folders / "noise"], snr_db=10.0, seed=0))
    assert set(rep["phrases"]) == {"seven", "stop"} and rep["snr_db"] == 10.0
    assert rep["engine"] == "pocketsphinx" and rep["threshold_unit"] == THRESHOLD_UNIT
    for name in ("seven", "stop"):
        c = rep["phrases"][name]["curve"]
        assert c["utterances"] == 3
        assert c["frr"][-1] == 1.0 and c["false_alarms"][-1] == 0  # the cut above every score fires nothing
        assert len(rep["phrases"][name]["points"]) == 3
    assert set(rep["mean_frr"]) == {"0.5", "1.0", "2.0"}
    assert rep["cpu_seconds_per_hour"] > 0 and rep["left_out"] == {"seven": 0, "stop": 0}
    assert len(summary_lines(rep)) == 1 + 2 * 3 + 1
    assert plot_det(rep, tmp_path / "ps.png").read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def kws_export(tmp_path_factory):
    """An fp32 export of an untrained cnn4-s with the phrases "seven" and "stop"."""
    torch = pytest.importorskip("torch", reason="building the test model needs hearkit[train]")
    from hearkit.export.exporter import export_classifier
    from hearkit.frontend import FrontendConfig
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.models import build_model

    tmp = tmp_path_factory.mktemp("peerkws")
    torch.manual_seed(0)
    cfg = FrontendConfig()
    labels = ["_silence_", "_unknown_", "seven", "stop"]
    net = build_model("cnn4-s", len(labels), cfg.n_mels)
    save_checkpoint({"task": "classify", "model": net.config(), "frontend": cfg.to_dict(), "labels": labels,
                     "window_samples": SR, "state_dict": net.state_dict(), "metrics": {}, "train_config": {}},
                    tmp / "kws.pt")
    export_classifier(tmp / "kws.pt", tmp / "export", quantize=(), log=lambda m: None)
    return tmp / "export"


def test_bench_wakeword_prints_both_engines_and_draws_one_png(pocketsphinx, folders, kws_export, tmp_path):
    from hearkit.commands.bench_wakeword import bench_wakeword

    png = tmp_path / "det.png"
    args = [str(kws_export), "--positives", str(folders / "pos"), "--negatives", str(folders / "neg"),
            "--noise", str(folders / "noise"), "--snr", "10"]
    r = CliRunner().invoke(bench_wakeword, args + ["--plot", str(png)])
    assert r.exit_code == 0, r.output
    out = r.stdout.splitlines()
    assert "hearkit FRR" in out[1] and "pocketsphinx FRR" in out[1]
    rows = [line for line in out if line.startswith(("seven", "stop"))]
    assert len(rows) == 2 * 3 and all(line.count("%") == 2 for line in rows)  # an FRR per engine
    cpu = next(line for line in out if line.startswith("CPU s per hour"))
    assert len([float(v) for v in cpu.split()[-2:]]) == 2
    assert png.read_bytes()[:8] == PNG

    r = CliRunner().invoke(bench_wakeword, args + ["--json"])
    assert r.exit_code == 0, r.output
    reps = json.loads(r.stdout)
    assert list(reps) == ["hearkit", "pocketsphinx"]
    assert reps["hearkit"]["phrases"].keys() == reps["pocketsphinx"]["phrases"].keys() == {"seven", "stop"}
    assert reps["hearkit"]["positive_hours"] == pytest.approx(reps["pocketsphinx"]["positive_hours"], rel=1e-9)

    r = CliRunner().invoke(bench_wakeword, args + ["--no-pocketsphinx"])
    assert r.exit_code == 0 and "pocketsphinx" not in r.stdout and "hearkit FRR" in r.stdout


def test_bench_wakeword_checks_its_options(tmp_path):
    from hearkit.commands.bench_wakeword import bench_wakeword

    r = CliRunner().invoke(bench_wakeword, ["--help"])
    assert r.exit_code == 0 and "--no-pocketsphinx" in r.output and "--kws-threshold" in r.output
    r = CliRunner().invoke(bench_wakeword, [str(tmp_path), "--positives", str(tmp_path), "--negatives", str(tmp_path),
                                            "--noise", str(tmp_path)])
    assert r.exit_code == 2 and "--noise needs --snr" in r.output
