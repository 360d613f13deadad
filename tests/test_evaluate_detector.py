"""Detector evaluation (hearkit.evaluate.detector): streaming hits and false alarms, DET sweep, intervals."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from hearkit.classify import DetectionLogic, KeywordSpotter
from hearkit.evaluate.detector import (
    Streams,
    Utterance,
    contains_phrase,
    detections,
    envelope,
    evaluate_detector,
    match,
    negative_files,
    operating_point,
    plot_det,
    poisson_interval,
    positive_files,
    summary_lines,
    utterance_extent,
    wilson,
)

SR = 16000
LABELS = ["_silence_", "_unknown_", "yes", "no"]


def logic_times(times, score, threshold, refractory):
    """The spotter's own DetectionLogic on one label's scores (others never fire)."""
    logic = DetectionLogic(LABELS, thresholds={"yes": threshold, "no": np.inf}, smoothing=1, refractory_seconds=refractory)
    out = []
    for t, s in zip(times, score):
        _, d = logic.update(np.array([0.0, 0.0, s, 0.0]), t)
        if d is not None:
            out.append(d.time)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_swept_detections_equal_the_spotters_logic(seed):
    """Recomputed detections equal DetectionLogic decision by decision (exact: the same comparisons)."""
    rng = np.random.default_rng(seed)
    n = 600
    times = 0.1 * np.arange(1, n + 1)
    score = np.clip(np.cumsum(rng.normal(0, 0.08, n)) % 1.0, 0, 1)  # a wandering score with long runs
    for th in (0.2, 0.5, 0.77):
        for refr in (0.0, 0.35, 1.0, 2.5):
            assert detections(times, score, th, refr).tolist() == logic_times(times, score, th, refr), (th, refr)


def test_match_counts_first_detection_per_utterance_as_hit():
    utts = [Utterance("yes", 1.0, 1.6, "a"), Utterance("yes", 5.0, 5.5, "b")]
    # 1.2 hit; 1.9 second detection of the same utterance: FA; 3.0 outside: FA;
    # 6.0 = end + 0.5 exactly: hit; 6.2 past the window: FA
    hits, fa = match(np.array([1.2, 1.9, 3.0, 6.0, 6.2]), utts)
    assert (hits, fa) == (2, 3)
    assert match(np.array([0.9]), utts) == (0, 1)  # before the start
    assert match(np.array([]), utts) == (0, 0)
    assert match(np.array([2.0, 3.0]), []) == (0, 2)


def test_intervals():
    # Garwood 95 % limits for k = 0, 1, 10 (standard tables), to 1e-3
    np.testing.assert_allclose(poisson_interval(0), (0.0, 3.689), atol=1e-3)
    np.testing.assert_allclose(poisson_interval(1), (0.0253, 5.572), atol=1e-3)
    np.testing.assert_allclose(poisson_interval(10), (4.795, 18.39), atol=1e-2)
    # Wilson: 0 of 10 -> (0, 0.2775); 5 of 10 -> (0.2366, 0.7634)
    np.testing.assert_allclose(wilson(0, 10), (0.0, 0.2775), atol=1e-4)
    np.testing.assert_allclose(wilson(5, 10), (0.2366, 0.7634), atol=1e-4)


def test_phrases_in_transcripts():
    assert contains_phrase("Hey Computer, open", "hey computer")
    assert not contains_phrase("hey there computer", "hey computer")
    assert not contains_phrase("stopping", "stop")
    assert contains_phrase("seven", "seven") and not contains_phrase("", "seven")


def test_utterance_extent_finds_the_word():
    x = np.zeros(SR, np.float32)
    x[4000:9000] = 0.3 * np.sin(np.arange(5000) / 5.0)
    a, b = utterance_extent(x, SR)
    assert abs(a - 4000) <= 160 and abs(b - 9000) <= 160  # one 10-ms frame


def _burst(rng, loud=True):
    x = 0.001 * rng.standard_normal(SR).astype(np.float32)
    if loud:
        x[6000:10000] += 0.5 * rng.standard_normal(4000).astype(np.float32)
    return x


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    pos = tmp_path / "pos"
    (pos / "yes").mkdir(parents=True)
    (pos / "go").mkdir()
    for i in range(12):
        sf.write(pos / "yes" / f"s{i}_nohash_0.wav", _burst(rng), SR)
    sf.write(pos / "go" / "x.wav", _burst(rng), SR)  # not a phrase of the model: ignored
    neg = tmp_path / "neg"
    for sub in ("left", "_unknown_", "yes"):
        (neg / sub).mkdir(parents=True)
    for i in range(30):
        sf.write(neg / "left" / f"n{i}.wav", _burst(rng, loud=False), SR)
    sf.write(neg / "_unknown_" / "yes_abc_nohash_0.wav", _burst(rng), SR)  # says "yes": left out
    sf.write(neg / "_unknown_" / "bird_abc_nohash_0.wav", _burst(rng, loud=False), SR)
    sf.write(neg / "yes" / "y.wav", _burst(rng), SR)                      # left out
    return pos, neg


def test_file_selection(folders):
    pos, neg = folders
    found = positive_files([pos], LABELS)
    assert len(found["yes"]) == 12 and found["no"] == []
    keep, left = negative_files([neg], ["yes", "no"])
    assert len(keep) == 31 and left == {"yes": 2, "no": 0}


def test_evaluate_detector_end_to_end(folders, tmp_path, scorers):
    """Loud bursts between silent gaps are found; quiet negatives never fire at a threshold above their scores."""
    pos, neg = folders
    kws = KeywordSpotter(scorer=scorers.energy, labels=LABELS, sample_rate=SR, window_samples=SR)
    rep = evaluate_detector(kws, Streams([pos], [neg], seed=1))
    yes = rep["phrases"]["yes"]
    assert set(rep["phrases"]) == {"yes"} and yes["curve"]["utterances"] == 12
    fah, frr = envelope(yes["curve"])
    assert np.all(np.diff(fah) >= 0) and np.all(np.diff(frr) <= 0)  # the drawn curve: fewer misses as FA/h grows
    assert frr[0] < 1 and fah[-1] > 0
    p = yes["points"][1]
    assert p["target_fa_per_hour"] == 1.0 and p["frr"] == 0.0 and p["false_alarms"] == 0
    assert rep["left_out"] == {"yes": 2, "no": 0}
    assert 30 / 3600 < rep["negative_hours"] < 32 / 3600  # 31 one-second files (+ flush padding excluded)
    assert len(summary_lines(rep)) == 1 + 3 + 1
    png = plot_det(rep, tmp_path / "det.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_operating_point_takes_fewest_misses_under_the_target():
    curve = {"utterances": 10, "hours": 2.0, "thresholds": [0.1, 0.3, 0.5, 0.7, 0.9],
             "frr": [0.6, 0.1, 0.2, 0.3, 0.9], "false_alarms": [1, 4, 2, 1, 0], "fa_per_hour": [0.5, 2.0, 1.0, 0.5, 0.0]}
    p = operating_point(curve, 1.0)
    assert (p["threshold"], p["frr"], p["misses"], p["false_alarms"], p["reached"]) == (0.5, 0.2, 2, 2, True)
    assert operating_point(curve, 0.5)["threshold"] == 0.7  # 0.3 misses beats 0.6 at the same rate
    assert operating_point(curve, 0.0)["threshold"] == 0.9
    np.testing.assert_allclose(p["fa_per_hour_ci95"], np.array(poisson_interval(2)) / 2.0, rtol=1e-12)
    fah, frr = envelope(curve)
    assert fah.tolist() == [0.0, 0.5, 0.5, 1.0, 2.0] and frr.tolist() == [0.9, 0.3, 0.3, 0.2, 0.1]
