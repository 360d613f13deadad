"""Minimal reproducers of what the fuzz targets found, one per distinct fault.

Each was a strict xfail until the module it names was fixed; now each guards its fix.
A new finding gets a reproducer here (strict-xfail while it is open, with an entry of
the same name in conftest.py's ``KNOWN_FAILURES`` / ``KNOWN_WRONG``). The rule every
test states: a one-line ``HearkitError``, or a right result.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from hearkit.errors import HearkitError

pytestmark = pytest.mark.fuzz


def refused(fn, *args, **kwargs) -> HearkitError:
    """Call ``fn``; it must raise a HearkitError with a one-line message (anything else fails the test)."""
    with pytest.raises(HearkitError) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value) and str(e.value).strip()
    return e.value


DEEP = "[" * 100000 + "]" * 100000  # json.loads -> RecursionError
HUGE = "1" * 5000  # json.loads / int() -> ValueError: Exceeds the limit (4300 digits)


# -- model metadata --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classify_props():
    from hearkit.frontend import FrontendConfig
    from hearkit.metadata import ModelInfo

    return ModelInfo(task="classify", input="waveform", frontend=FrontendConfig(), labels=("a", "b"),
                     window_samples=16000).to_props()


@pytest.fixture(scope="module")
def ctc_props():
    from hearkit.frontend import FrontendConfig
    from hearkit.metadata import ModelInfo

    return ModelInfo(task="ctc", input="waveform", frontend=FrontendConfig(), vocab=("<blank>", " ", "a"), blank=0,
                     subsampling=2).to_props()


def from_props(props, **changes):
    from hearkit.metadata import ModelInfo

    return ModelInfo.from_props({**props, **{f"hearkit.{k}": v for k, v in changes.items()}}, source="m.onnx")


def test_metadata_json_deep_nesting(classify_props):
    refused(from_props, classify_props, metrics=DEEP)


def test_metadata_json_huge_integer(classify_props):
    refused(from_props, classify_props, metrics='{"loss": %s}' % HUGE)


def test_frontend_json_deep_nesting(classify_props):
    refused(from_props, classify_props, frontend=DEEP)


def test_frontend_json_huge_integer(classify_props):
    refused(from_props, classify_props, frontend='{"n_fft": %s}' % HUGE)


@pytest.mark.parametrize("field,value", [("f_min", [1]), ("f_max", {"a": 1}), ("f_min", "abc"), ("power", None)])
def test_frontend_float_fields_wrong_type(classify_props, field, value):
    fe = json.loads(classify_props["hearkit.frontend"])
    fe[field] = value
    refused(from_props, classify_props, frontend=json.dumps(fe))


def test_metadata_duplicate_labels(classify_props):
    refused(from_props, classify_props, labels='["go", "stop", "go"]')


@pytest.mark.parametrize("window", ["0", "-5", "7"])
def test_metadata_window_unbounded(classify_props, window):
    refused(from_props, classify_props, window_samples=window)


def test_metadata_subsampling_unbounded(ctc_props):
    refused(from_props, ctc_props, subsampling="-3")


@pytest.mark.parametrize("field,value", [("sample_rate", 742808), ("n_fft", 10**8), ("n_mels", 100000), ("eps", 1e999)])
def test_metadata_frontend_unbounded(classify_props, field, value):
    fe = json.loads(classify_props["hearkit.frontend"])
    fe[field] = value
    if field == "sample_rate":
        fe["f_max"] = value / 2
    refused(from_props, classify_props, frontend=json.dumps(fe))


def test_metadata_vocab_unbounded(ctc_props):
    refused(from_props, ctc_props, vocab='["<blank>"]', blank="0")


# -- bundle manifests ----------------------------------------------------------------------------

def write_bundle(tmp_path, manifest_text: str):
    b = tmp_path / "bundle"
    b.mkdir()
    (b / "pipeline.onnx").write_bytes(b"graph")
    (b / "manifest.json").write_text(manifest_text)
    return b


def test_bundle_manifest_deep_nesting(tmp_path):
    from hearkit import artifacts

    b = write_bundle(tmp_path, '{"format": "hearkit-bundle", "schema": 1, "x": %s}' % DEEP)
    refused(artifacts.load_manifest, b)


def test_bundle_manifest_huge_integer(tmp_path):
    from hearkit import artifacts

    b = write_bundle(tmp_path, '{"format": "hearkit-bundle", "schema": %s, "files": {}}' % HUGE)
    refused(artifacts.resolve, b)


# -- text readers --------------------------------------------------------------------------------

def jsonl(tmp_path, raw: bytes):
    p = tmp_path / "manifest.jsonl"
    p.write_bytes(raw)
    return p


def test_manifest_non_utf8(tmp_path):
    from hearkit.manifest import read_manifest

    refused(read_manifest, jsonl(tmp_path, b'{"audio_filepath": "a.wav", "text": "caf\xe9"}\n'))


def test_manifest_json_deep_nesting(tmp_path):
    from hearkit.manifest import read_manifest

    refused(read_manifest, jsonl(tmp_path, DEEP.encode() + b"\n"))


def test_manifest_json_huge_integer(tmp_path):
    from hearkit.manifest import read_manifest

    refused(read_manifest, jsonl(tmp_path, b'{"audio_filepath": "a.wav", "text": "a", "duration": %s}\n' % HUGE.encode()))


@pytest.mark.parametrize("value", ["5", "[]", "{}", "null"])
def test_manifest_audio_filepath_wrong_type(tmp_path, value):
    from hearkit.manifest import read_manifest

    refused(read_manifest, jsonl(tmp_path, b'{"audio_filepath": %s, "text": "a"}\n' % value.encode()))


@pytest.mark.parametrize("value", ['"abc"', '""', "[1]", '{"s": 1}'])
def test_manifest_duration_wrong_type(tmp_path, value):
    from hearkit.manifest import read_manifest

    refused(read_manifest, jsonl(tmp_path, b'{"audio_filepath": "a.wav", "text": "a", "duration": %s}\n' % value.encode()))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-1", "86401"])
def test_manifest_duration_unchecked(tmp_path, value):
    from hearkit.manifest import read_manifest

    p = jsonl(tmp_path, b'{"audio_filepath": "a.wav", "text": "a", "duration": %s}\n' % value.encode())
    try:
        m = read_manifest(p)
    except HearkitError as e:
        assert "\n" not in str(e)
        return
    d = m.utterances[0].duration
    assert math.isfinite(d) and 0 <= d <= 86400, d


def test_librispeech_non_utf8(tmp_path):
    from hearkit.manifest import read_librispeech

    (tmp_path / "1" / "2").mkdir(parents=True)
    (tmp_path / "1" / "2" / "1-2.trans.txt").write_bytes(b"1-2-0000 CAF\xc9\n")
    refused(read_librispeech, tmp_path)


def test_lexicon_non_utf8(tmp_path):
    from hearkit.ctc import Lexicon

    (tmp_path / "words.txt").write_bytes(b"yes\n\xffno\n")
    refused(Lexicon.load, tmp_path / "words.txt")


def test_arpa_non_utf8(tmp_path):
    from hearkit.lm import NGramLM

    (tmp_path / "lm.arpa").write_bytes(b"\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\tcaf\xe9\n\n\\end\\\n")
    refused(NGramLM.load, tmp_path / "lm.arpa")


def test_arpa_huge_count(tmp_path):
    from hearkit.lm import NGramLM

    (tmp_path / "lm.arpa").write_text("\\data\\\nngram 1=%s\n\n\\1-grams:\n-1.0\tgo\n\n\\end\\\n" % ("9" * 5000))
    refused(NGramLM.load, tmp_path / "lm.arpa")


# -- running models ---------------------------------------------------------------------------------

def test_classify_short_window_ort_error(tmp_path, clf_export):
    onnx = pytest.importorskip("onnx")
    from hearkit.classify import Classifier

    m = onnx.load(str(clf_export / "pipeline.onnx"))
    for e in m.metadata_props:
        if e.key == "hearkit.window_samples":
            e.value = "16"
    onnx.save(m, str(tmp_path / "pipeline.onnx"))

    def run():
        return Classifier(tmp_path / "pipeline.onnx").classify(np.zeros(8000, np.float32))

    refused(run)


def test_classify_huge_window_memory(tmp_path, clf_export):
    onnx = pytest.importorskip("onnx")
    from hearkit.classify import Classifier

    m = onnx.load(str(clf_export / "pipeline.onnx"))
    for e in m.metadata_props:
        if e.key == "hearkit.window_samples":
            e.value = str(10**12)  # fails at once, allocating nothing, unlike 5e9
    onnx.save(m, str(tmp_path / "pipeline.onnx"))

    def run():
        return Classifier(tmp_path / "pipeline.onnx").classify(np.zeros(8000, np.float32))

    refused(run)


@pytest.mark.parametrize("subsampling", ["-1", "1000000000"])
def test_transcribe_bad_subsampling_ort_error(tmp_path, ctc_model, subsampling):
    onnx = pytest.importorskip("onnx")
    from hearkit.transcribe import Transcriber

    m = onnx.load(str(ctc_model))
    for e in m.metadata_props:
        if e.key == "hearkit.subsampling":
            e.value = subsampling
    onnx.save(m, str(tmp_path / "pipeline.onnx"))
    x = (0.1 * np.random.default_rng(0).standard_normal(12000)).astype(np.float32)

    def run():
        return Transcriber(tmp_path / "pipeline.onnx", chunk_seconds=0.5, overlap_seconds=0.2).transcribe(x)

    refused(run)


# -- audio ----------------------------------------------------------------------------------------

def float_wav(tmp_path, x: np.ndarray, rate: int = 16000):
    p = tmp_path / "clip.wav"
    sf.write(p, x.astype(np.float32), rate, subtype="FLOAT")
    return p


def right_or_refused(fn, *args):
    """``fn(*args)`` or None when it refused with a one-line HearkitError."""
    try:
        return fn(*args)
    except HearkitError as e:
        assert "\n" not in str(e)
        return None


def test_audio_out_of_range(tmp_path):
    from hearkit.audio import load_audio

    out = right_or_refused(load_audio, float_wav(tmp_path, np.full(1600, 3.0)))
    assert out is None or np.abs(out[0]).max() <= 1.0  # tolerance 0: the [-1, 1] contract


def test_audio_rate_unchecked(tmp_path):
    from hearkit.audio import MAX_SAMPLE_RATE, load_audio

    buf = io.BytesIO()
    sf.write(buf, np.zeros(1600, np.float32), 16000, format="WAV", subtype="PCM_16")
    raw = bytearray(buf.getvalue())
    raw[24:28] = (4_873_576).to_bytes(4, "little")  # the fmt chunk's sample rate field
    p = tmp_path / "clip.wav"
    p.write_bytes(bytes(raw))
    out = right_or_refused(load_audio, p)
    assert out is None or 1 <= out[1] <= MAX_SAMPLE_RATE


def test_audio_empty_result(tmp_path):
    from hearkit.audio import load_audio

    p = tmp_path / "one.wav"
    sf.write(p, np.full(1, 0.1, np.float32), 44100, subtype="PCM_16")
    out = right_or_refused(load_audio, p, 16000)
    assert out is None or out[0].size > 0


def test_audio_nonfinite_result(tmp_path):
    from hearkit.audio import load_audio

    out = right_or_refused(load_audio, float_wav(tmp_path, np.full(800, 3e38), rate=8000), 16000)
    assert out is None or np.isfinite(out[0]).all()


def test_classify_nonfinite_scores(tmp_path, clf_export):
    from hearkit.classify import Classifier

    clf = Classifier(clf_export / "pipeline.onnx")
    p = float_wav(tmp_path, np.full(16000, 1e30))
    pred = right_or_refused(clf.classify, p)
    assert pred is None or all(np.isfinite(v) for v in pred.scores.values()), pred
