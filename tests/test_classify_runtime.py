"""Torch-free keyword-spotting logic on arrays: sliding window, smoothing, thresholds, refractory.

No model here: a deterministic numpy scorer stands in for the network (the seam
between decoding and the network, STYLE), so these run in milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from hearkit.classify import (
    DetectionLogic,
    KeywordSpotter,
    SlidingWindow,
    fit_window,
    is_background_label,
    softmax,
)
from hearkit.errors import ConfigError

SR = 16000
LABELS = ["_silence_", "_unknown_", "yes", "no"]


def bursts(signals, seconds=4.0):
    """Quiet noise with loud bursts at 0.7 s and 2.6 s."""
    x = signals.noise(int(seconds * SR), seed=3, amp=0.001)
    for t in (0.7, 2.6):
        i = int(t * SR)
        x[i : i + 4000] += signals.noise(4000, seed=int(t * 10), amp=0.5)
    return x


def spot(x, chunk, scorer, **kw):
    kws = KeywordSpotter(scorer=scorer, labels=LABELS, sample_rate=SR, window_samples=SR, record=True, **kw)
    dets = []
    for i in range(0, len(x), chunk):
        dets += kws.accept_waveform(x[i : i + chunk])
    return dets, kws


@pytest.mark.parametrize("chunk", [1, 7, 1601, 10**9])
def test_spotter_same_detections_for_any_chunking(signals, scorers, chunk):
    """Windows depend on the samples only, so detections and scores are bit-identical for any chunk size."""
    x = bursts(signals)
    ref, ref_kws = spot(x, len(x), scorers.energy, thresholds=0.6)
    got, kws = spot(x, chunk, scorers.energy, thresholds=0.6)
    assert ref, "the bursts must trigger detections, else this test proves nothing"
    assert got == ref
    assert len(kws.history) == len(ref_kws.history) == int(len(x) // (0.1 * SR))
    for (t1, s1), (t2, s2) in zip(kws.history, ref_kws.history):
        assert t1 == t2
        np.testing.assert_array_equal(s1, s2)  # exact: same window, same arithmetic


def test_spotter_detects_bursts_once_with_refractory(signals, scorers):
    x = bursts(signals)
    dets, _ = spot(x, 1600, scorers.energy, thresholds=0.6, refractory_seconds=1.0)
    times = [d.time for d in dets]
    # each burst fires once (refractory 1 s), near its position (window end within 1 s after the burst)
    assert len(dets) == 2, dets
    assert 0.7 <= times[0] <= 1.8 and 2.6 <= times[1] <= 3.7
    assert all(d.label == "yes" for d in dets)
    # without a refractory period a label still re-arms only once its score has fallen below
    # the threshold: never two detections without a decision below it in between
    again, kws = spot(x, 1600, scorers.energy, thresholds=0.6, refractory_seconds=0.0)
    above = [s[2] >= 0.6 for _, s in kws.history]
    assert 2 <= len(again) < sum(above) / 2
    fired = [i for i, (t, _) in enumerate(kws.history) if t in {d.time for d in again}]
    for a, b in zip(fired, fired[1:]):
        assert not all(above[a:b]), (a, b)


def test_detection_logic_fires_once_per_utterance():
    """A held score fires once; a long utterance fires once; two utterances in a row fire twice."""
    def run(scores, refractory=1.0, smoothing=1):
        logic = DetectionLogic(LABELS, default_threshold=0.5, smoothing=smoothing, refractory_seconds=refractory)
        return [d.time for i, p in enumerate(scores) if (d := logic.update(np.array([0, 1 - p, p, 0]), 0.1 * i)[1])]

    assert run([0.9] * 100) == [0.0]                                     # held for 10 s: one detection
    assert run([0.1] * 5 + [0.8] * 30 + [0.1] * 5) == [pytest.approx(0.5)]  # a 3-s utterance: one
    assert run([0.1] * 5 + [0.8] * 30 + [0.1] * 5, refractory=0.0) == [pytest.approx(0.5)]
    two = [0.1] * 5 + [0.8] * 8 + [0.2] * 3 + [0.8] * 8 + [0.1] * 5    # dips below for 0.3 s between them
    assert run(two, refractory=0.2) == [pytest.approx(0.5), pytest.approx(1.6)]
    assert run(two, refractory=2.5) == [pytest.approx(0.5)]              # the second falls in the refractory period
    # smoothing: re-arming follows the smoothed score, not the raw one
    assert run([0.1] * 3 + [0.9] * 5 + [0.3] + [0.9] * 5, refractory=0.0, smoothing=3) == [pytest.approx(0.4)]


def test_spotter_reset_restarts_time(signals, scorers):
    x = bursts(signals)
    kws = KeywordSpotter(scorer=scorers.energy, labels=LABELS, sample_rate=SR, window_samples=SR, thresholds=0.6)
    first = kws.accept_waveform(x)
    kws.reset()
    again = kws.accept_waveform(x)
    assert first == again and first


def test_detection_logic_thresholds_and_background():
    logic = DetectionLogic(LABELS, thresholds={"no": 0.9}, default_threshold=0.5, smoothing=1, refractory_seconds=0.0)
    # background labels never trigger, even at probability 1
    _, d = logic.update(np.array([1.0, 0.0, 0.0, 0.0]), 0.1)
    assert d is None
    _, d = logic.update(np.array([0.0, 0.0, 0.0, 0.8]), 0.2)
    assert d is None  # 'no' needs 0.9
    _, d = logic.update(np.array([0.0, 0.0, 0.55, 0.45]), 0.3)
    assert d is not None and d.label == "yes" and d.score == pytest.approx(0.55, abs=1e-12)
    assert is_background_label("_unknown_") and not is_background_label("yes")


def test_detection_logic_smoothing_averages_last_decisions():
    logic = DetectionLogic(LABELS, default_threshold=0.7, smoothing=3, refractory_seconds=0.0)
    seq = [0.9, 0.3, 0.3]
    outs = [logic.update(np.array([0, 0, p, 1 - p]), 0.1 * i) for i, p in enumerate(seq)]
    assert outs[0][1] is not None  # first decision averages itself only
    np.testing.assert_allclose(outs[2][0][2], np.mean(seq), atol=1e-12)
    assert outs[2][1] is None


def test_bad_spotter_settings_say_what_is_allowed(scorers):
    with pytest.raises(ConfigError, match="unknown labels"):
        DetectionLogic(LABELS, thresholds={"maybe": 0.5})
    with pytest.raises(ConfigError, match="hop_seconds"):
        KeywordSpotter(scorer=scorers.energy, labels=LABELS, sample_rate=SR, window_samples=SR, hop_seconds=2.0)
    with pytest.raises(ConfigError, match="smoothing"):
        DetectionLogic(LABELS, smoothing=0)
    with pytest.raises(ConfigError):
        KeywordSpotter(scorer=scorers.energy)


def test_sliding_window_positions():
    sw = SlidingWindow(window=10, hop=4)
    out = sw.push(np.arange(1, 13, dtype=np.float32))
    assert [end for _, end in out] == [4, 8, 12]
    np.testing.assert_array_equal(out[0][0], [0, 0, 0, 0, 0, 0, 1, 2, 3, 4])  # starts from zeros
    np.testing.assert_array_equal(out[2][0], np.arange(3, 13))


def test_fit_window_and_softmax():
    np.testing.assert_array_equal(fit_window(np.ones(4, np.float32), 8), [0, 0, 1, 1, 1, 1, 0, 0])  # centred pad
    np.testing.assert_array_equal(fit_window(np.arange(10), 4), [3, 4, 5, 6])  # centred crop
    p = softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5, 0.0]], atol=1e-12)


def test_flush_scores_a_burst_at_the_very_end(signals, scorers):
    """A keyword in the last moments is only centred in a window after the stream ends: flush() scores it."""
    x = signals.noise(int(2.0 * SR), seed=5, amp=0.001)
    x[-3000:] += signals.noise(3000, seed=6, amp=0.5)
    kws = KeywordSpotter(scorer=scorers.energy, labels=LABELS, sample_rate=SR, window_samples=SR, thresholds=0.6)
    # (the zero-filled first window can fire early on; what matters is the end)
    assert [d for d in kws.accept_waveform(x) if d.time > 1.5] == []
    dets = kws.flush()
    # the half window of padding is not audio: the detection is reported at the stream's end (2.0 s)
    assert [d.label for d in dets] == ["yes"] and dets[0].time == pytest.approx(2.0, abs=1e-9)


def test_stereo_chunks_are_downmixed_not_flattened(signals, scorers):
    """(samples, 2) chunks, as a sound card delivers them, give the detections of their mono mix."""
    x = bursts(signals)
    mono, _ = spot(x, 1600, scorers.energy, thresholds=0.6)
    kws = KeywordSpotter(scorer=scorers.energy, labels=LABELS, sample_rate=SR, window_samples=SR, thresholds=0.6)
    st = np.stack([x, x], axis=1)
    got = [d for i in range(0, len(st), 1600) for d in kws.accept_waveform(st[i : i + 1600])]
    assert [(d.label, d.time) for d in got] == [(d.label, d.time) for d in mono] and len(mono) == 2
    assert kws.samples_seen == len(x)
    with pytest.raises(Exception, match="NaN or infinite"):
        kws.accept_waveform(np.array([0.0, np.nan], np.float32))
