"""Fuzz: random chunkings of streams give what one whole chunk gives.

KeywordSpotter (with the streaming scorer of an export folder, and with the full-window
pipeline), StreamingScorer itself and Transcriber's ``accept_waveform`` are fed one
signal in random chunks: empty chunks, single samples, odd sizes, as int16, float32 or
float64, 1-D, (n, 1) or stereo (n, 2) with both channels equal. The samples are int16
values, so every dtype and layout carries exactly the same float32 samples after
``check_waveform`` (x / 32768; the mean of two equal channels is exact).

Tolerances: detections (label and time) and transcripts (text, word times) are
compared exactly; spotter scores and StreamingScorer logits within atol 1e-6: each
window runs the same graphs on the same samples whatever the chunking, so they are
equal to float rounding of the same arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz
SR = 16000
ATOL = 1e-6  # see the module docstring


def budget(weight: float):
    """The active profile's max_examples times ``weight`` (see conftest.py)."""
    return settings(max_examples=max(3, round(settings.default.max_examples * weight)))


def signal_int16(seed: int, seconds: float) -> np.ndarray:
    """Tone bursts over noise as int16 PCM; seeded, global RNG untouched."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = 300 + 200 * seed
    x = 0.4 * np.sin(2 * np.pi * f * t) * ((t % 1.1) < 0.45) + 0.02 * rng.standard_normal(t.size)
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


SIGNALS = [signal_int16(s, 3.0) for s in range(3)]
chunk_sizes = st.lists(st.sampled_from([0, 1, 2, 3, 159, 160, 161, 1599, 1600]) | st.integers(0, 9000), max_size=40)
layouts = st.sampled_from(["1d", "col", "stereo"])
dtypes = st.sampled_from(["int16", "float32", "float64"])


def as_chunk(x16: np.ndarray, dtype: str, layout: str) -> np.ndarray:
    x = x16 if dtype == "int16" else (x16.astype(np.float64) / 32768.0).astype(dtype)
    if layout == "col":
        return x[:, None]
    if layout == "stereo":
        return np.stack([x, x], axis=1)
    return x


def chunks(x: np.ndarray, sizes) -> list[np.ndarray]:
    """``x`` cut at the sizes in order, the rest as a last chunk."""
    out, pos = [], 0
    for n in sizes:
        out.append(x[pos : pos + n])
        pos += len(out[-1])
    out.append(x[pos:])
    return out


@pytest.fixture(scope="module")
def spotters(clf_export):
    from hearkit.classify import KeywordSpotter

    # the untrained model's posteriors stay near 1/3 (go 0.324-0.340, stop 0.298-0.316 on these signals):
    # thresholds inside those ranges make it fire and re-arm several times, so there are detections to compare
    kw = dict(record=True, thresholds={"go": 0.332, "stop": 0.307}, refractory_seconds=0.2)
    s = {"streaming": KeywordSpotter(clf_export, **kw), "window": KeywordSpotter(clf_export, streaming=False, **kw)}
    assert s["streaming"].streamer is not None and s["window"].streamer is None
    return s


@pytest.fixture(scope="module")
def spotter_reference(spotters):
    ref = {}
    for kind, kws in spotters.items():
        for i, x in enumerate(SIGNALS):
            kws.reset()
            dets = kws.accept_waveform(x) + kws.flush()
            ref[kind, i] = (dets, [(t, s.copy()) for t, s in kws.history])
    return ref


@budget(0.6)
@given(kind=st.sampled_from(["streaming", "window"]), sig=st.integers(0, len(SIGNALS) - 1), sizes=chunk_sizes,
       dtype=dtypes, layout=layouts)
def test_keyword_spotter_any_chunking(fuzz, spotters, spotter_reference, kind, sig, sizes, dtype, layout):
    target = "streams: KeywordSpotter"
    fuzz.example(target)
    kws = spotters[kind]
    kws.reset()
    dets = []
    for c in chunks(as_chunk(SIGNALS[sig], dtype, layout), sizes):
        got, err = fuzz.call(target, kws.accept_waveform, c)
        assert err is None, f"a valid {dtype} {layout} chunk of {len(c)} samples was refused: {err}"
        dets += got
    dets += kws.flush()
    ref_dets, ref_hist = spotter_reference[kind, sig]
    assert [(d.label, d.time) for d in dets] == [(d.label, d.time) for d in ref_dets]
    np.testing.assert_allclose([d.score for d in dets], [d.score for d in ref_dets], rtol=0, atol=ATOL)
    assert [t for t, _ in kws.history] == [t for t, _ in ref_hist]
    np.testing.assert_allclose(np.stack([s for _, s in kws.history]), np.stack([s for _, s in ref_hist]), rtol=0, atol=ATOL)
    assert kws.samples_seen == SIGNALS[sig].size + kws.window_samples // 2


@pytest.fixture(scope="module")
def scorer(spotters):
    return spotters["streaming"].streamer


@budget(0.4)
@given(sig=st.integers(0, len(SIGNALS) - 1), sizes=chunk_sizes)
def test_streaming_scorer_any_chunking(fuzz, scorer, sig, sizes):
    target = "streams: StreamingScorer"
    fuzz.example(target)
    x = SIGNALS[sig].astype(np.float32) / 32768.0
    scorer.reset()
    whole = scorer.push(x)
    scorer.reset()
    got = []
    for c in chunks(x, sizes):
        out, err = fuzz.call(target, scorer.push, c)
        assert err is None, err
        got += out
    assert [e for _, e in got] == [e for _, e in whole]
    np.testing.assert_allclose(np.stack([lg for lg, _ in got]), np.stack([lg for lg, _ in whole]), rtol=0, atol=ATOL)
    assert scorer.samples_received == x.size


@pytest.fixture(scope="module")
def transcriber(ctc_model):
    from hearkit.transcribe import Transcriber

    # 0.5-s chunks with 0.2 s of context: a 3-s signal crosses several chunk edges
    return Transcriber(ctc_model, chunk_seconds=0.5, overlap_seconds=0.2)


@pytest.fixture(scope="module")
def transcript_reference(transcriber):
    return [transcriber.transcribe(x) for x in SIGNALS]


@budget(0.4)
@given(sig=st.integers(0, len(SIGNALS) - 1), sizes=chunk_sizes, dtype=dtypes, layout=layouts,
       partial_every=st.sampled_from([0, 1, 7]))
def test_transcriber_any_chunking(fuzz, transcriber, transcript_reference, sig, sizes, dtype, layout, partial_every):
    """accept_waveform in random chunks (partial results asked now and then) then finalize() == transcribe(whole)."""
    target = "streams: Transcriber"
    fuzz.example(target)
    transcriber.reset()
    for i, c in enumerate(chunks(as_chunk(SIGNALS[sig], dtype, layout), sizes)):
        partial = bool(partial_every) and i % partial_every == 0
        out, err = fuzz.call(target, transcriber.accept_waveform, c, partial=partial)
        assert err is None, err
        assert (out is not None) == partial
    final, err = fuzz.call(target, transcriber.finalize)
    assert err is None, err
    ref = transcript_reference[sig]
    assert final.text == ref.text
    assert [(w.text, w.start, w.end) for w in final.words] == [(w.text, w.start, w.end) for w in ref.words]


def test_references_are_not_empty(spotter_reference, transcript_reference):
    """The comparisons above mean something: every signal gives detections and words."""
    counts = {k: len(v[0]) for k, v in spotter_reference.items()}
    assert all(n >= 2 for n in counts.values()), counts
    assert all(t.words for t in transcript_reference), [t.text for t in transcript_reference]
