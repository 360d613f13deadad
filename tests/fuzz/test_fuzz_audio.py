"""Fuzz: mutated audio files through load_audio, audio_info, iter_blocks, Classifier and Transcriber.

Seeds are small valid files written by soundfile (WAV int16 / int24 / float32, FLAC,
OGG Vorbis, AIFF; 8, 16 and 44.1 kHz; mono and stereo). Each example applies up to
four mutations: flipped or overwritten bytes, truncation, inserted or deleted runs,
the header of another seed spliced in, and extreme integers (0, 1, 2**31, 2**32 - 1,
...) written over header fields (WAV's sizes, channels, rate, block align, bits) or
anywhere. A read either refuses with a one-line ``AudioError`` or returns samples that
are right: float32 mono, finite, within [-1, 1], at the rate asked for, and the same
whether read whole or in blocks.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from hearkit.audio import MAX_SAMPLE_RATE, audio_info, iter_blocks, load_audio

pytestmark = pytest.mark.fuzz
SR = 16000
TARGET = "audio files"


def budget(weight: float):
    """The active profile's max_examples times ``weight`` (see conftest.py)."""
    return settings(max_examples=max(3, round(settings.default.max_examples * weight)))


def _seed(fmt: str, subtype: str, rate: int, channels: int, ext: str) -> tuple[str, bytes]:
    n = int(0.12 * rate)
    t = np.arange(n) / rate
    x = 0.4 * np.sin(2 * np.pi * 440 * t)[:, None] * np.linspace(1, 0.5, channels)[None]
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), rate, format=fmt, subtype=subtype)
    return ext, buf.getvalue()


SEEDS = [
    _seed(fmt, sub, rate, ch, ext)
    for fmt, sub, ext in [("WAV", "PCM_16", "wav"), ("WAV", "FLOAT", "wav"), ("WAV", "PCM_24", "wav"),
                          ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"), ("AIFF", "PCM_16", "aiff")]
    for rate in (8000, 16000, 44100)
    for ch in (1, 2)
]
# canonical WAV header fields: (offset, width in bytes): RIFF size, channels, rate, byte rate,
# block align, bits per sample, data size (soundfile may add chunks; random offsets cover those)
WAV_FIELDS = [(4, 4), (22, 2), (24, 4), (28, 4), (32, 2), (34, 2), (40, 4)]
EXTREMES = [0, 1, 2, 3, 255, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]

_pos = st.integers(0, 1 << 16)
mutation = st.one_of(
    st.tuples(st.just("flip"), _pos, st.integers(1, 255)),
    st.tuples(st.just("set"), _pos, st.integers(0, 255)),
    st.tuples(st.just("truncate"), _pos),
    st.tuples(st.just("insert"), _pos, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), _pos, st.integers(1, 512)),
    st.tuples(st.just("splice"), st.integers(0, len(SEEDS) - 1), st.integers(4, 128)),
    st.tuples(st.just("field"), st.sampled_from(WAV_FIELDS), st.sampled_from(EXTREMES) | st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("int32"), _pos, st.sampled_from(EXTREMES)),
)


def mutate(data: bytes, ops) -> bytes:
    """Apply the mutations in order; positions wrap around the current length."""
    b = bytearray(data)
    for op in ops:
        n = max(len(b), 1)
        kind = op[0]
        if not b and kind in ("flip", "set"):
            continue
        if kind == "flip":
            b[op[1] % n] ^= op[2]
        elif kind == "set":
            b[op[1] % n] = op[2]
        elif kind == "truncate":
            del b[op[1] % n:]
        elif kind == "insert":
            b[op[1] % n : op[1] % n] = op[2]
        elif kind == "delete":
            del b[op[1] % n : op[1] % n + op[2]]
        elif kind == "splice":
            b[: op[2]] = SEEDS[op[1]][1][: op[2]]
        elif kind in ("field", "int32"):
            (off, width), value = (op[1], op[2]) if kind == "field" else ((op[1] % n, 4), op[2])
            raw = struct.pack("<I", value & 0xFFFFFFFF)[:width] if width == 4 else struct.pack("<H", value & 0xFFFF)
            b[off : off + width] = raw
    return bytes(b)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_audio")


@pytest.fixture(scope="module")
def classifier(clf_export):
    from hearkit.classify import Classifier

    return Classifier(clf_export / "pipeline.onnx")


@pytest.fixture(scope="module")
def transcriber(ctc_model):
    from hearkit.transcribe import Transcriber

    return Transcriber(ctc_model, chunk_seconds=0.5, overlap_seconds=0.2)


def read_blocks(path, sample_rate):
    """``iter_blocks`` in 50-ms blocks (a few per seed file), collected."""
    return list(iter_blocks(path, sample_rate, block_seconds=0.05))


def assert_top(pred):
    """The label and score are the best of the scores."""
    assert pred.score == max(pred.scores.values()) and pred.scores[pred.label] == pred.score, pred


def check_samples(fuzz, x, sr, want_sr, what):
    """A returned waveform is float32 mono, non-empty, finite, in [-1, 1] (tolerance 0: the contract), at ``want_sr``.

    ``sr`` None skips the rate checks (iter_blocks yields samples only).
    """
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.ndim == 1, (what, x.dtype, x.shape)
    if fuzz.wrong("audio_empty_result", x.size == 0, f"{what}: zero samples returned instead of an EmptyAudioError"):
        return
    fuzz.wrong("audio_nonfinite_result", not np.isfinite(x).all(), f"{what}: non-finite samples returned")
    peak = float(np.abs(x).max())
    fuzz.wrong("audio_out_of_range", peak > 1.0, f"{what}: samples up to {peak:g} returned, outside [-1, 1]")
    if sr is None:
        return  # iter_blocks yields samples only
    if want_sr is not None:
        assert sr == want_sr, (what, sr, want_sr)
    fuzz.wrong("audio_rate_unchecked", not 1 <= sr <= MAX_SAMPLE_RATE,
               f"{what}: a header rate of {sr} Hz was returned (audio.py refuses rates above {MAX_SAMPLE_RATE} Hz)")


@budget(3.0)
@given(seed=st.integers(0, len(SEEDS) - 1), ops=st.lists(mutation, min_size=1, max_size=4), resample=st.booleans())
def test_mutated_audio_is_read_right_or_refused(fuzz, workdir, seed, ops, resample):
    """audio_info, load_audio and iter_blocks: a one-line AudioError or the right samples, whole equal to blocks."""
    fuzz.example(TARGET)
    ext, data = SEEDS[seed]
    path = workdir / f"clip.{ext}"
    path.write_bytes(mutate(data, ops))
    want_sr = SR if resample else None

    info, _ = fuzz.call(TARGET, audio_info, path)
    if info is not None:
        assert info["channels"] >= 1 and info["frames"] >= 0 and np.isfinite(info["duration"]), info

    loaded, _ = fuzz.call(TARGET, load_audio, path, want_sr)
    if loaded is not None:
        x, sr = loaded
        check_samples(fuzz, x, sr, want_sr, f"load_audio({path.name})")
    blocks, _ = fuzz.call(TARGET, read_blocks, path, want_sr)
    if blocks is not None:
        y = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        check_samples(fuzz, y, None, None, f"iter_blocks({path.name})")
        if loaded is not None and not resample:
            # the same decoder and the same float32 downmix, so equal to the bit (tolerance 0); with
            # resampling the streamed resampler differs at its filter edges, so only the shape is checked
            fuzz.wrong("blocks_differ_from_whole", y.shape != x.shape or not np.array_equal(y, x),
                       f"iter_blocks gave {y.shape} samples, load_audio {x.shape}, or other values")


@budget(1.0)
@given(seed=st.integers(0, len(SEEDS) - 1), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_audio_through_the_python_api(fuzz, workdir, classifier, transcriber, seed, ops):
    """Classifier.classify and Transcriber.transcribe on a mutated file: a one-line refusal or a well-formed result."""
    target = "audio files via API"
    fuzz.example(target)
    ext, data = SEEDS[seed]
    path = workdir / f"api.{ext}"
    path.write_bytes(mutate(data, ops))

    pred, _ = fuzz.call(target, classifier.classify, path)
    if pred is not None:
        p = np.array(list(pred.scores.values()))
        assert pred.label in classifier.labels and list(pred.scores) == classifier.labels
        # softmax in float64 sums to 1 within 1e-12; the 1e-6 tolerance is generous
        fuzz.wrong("classify_nonfinite_scores", not (np.isfinite(p).all() and (p >= 0).all() and abs(p.sum() - 1.0) <= 1e-6),
                   f"classify({path.name}) returned scores {pred.scores}") or \
            assert_top(pred)

    tr, _ = fuzz.call(target, transcriber.transcribe, path)
    if tr is not None:
        letters = set("".join(transcriber.vocab[1:]))
        assert set(tr.text) <= letters, tr.text
        assert tr.text == " ".join(w.text for w in tr.words)
        times = [t for w in tr.words for t in (w.start, w.end)]
        assert times == sorted(times) and all(np.isfinite(times)), tr
