"""Wrong answers with exit 0, and audio in: out-of-range, NaN and multi-channel audio,
models that output NaN, NaN checkpoints, hostile metadata.csv, FIFOs and devices as audio.

The audio policy under test is docs/design.md §14: float peaks up to ``CLIP_PEAK`` are clipped
with one warning, beyond are refused; NaN/Inf refused; (samples, channels) averaged,
(channels, samples) refused; every model output checked finite. Each case ends in exit 2 and
one line naming the file or argument (user files unchanged), or in the correct result.

Models are hand-made ONNX graphs with hearkit metadata (milliseconds to build), so a model
that outputs NaN, or whose scores follow the input's mean, needs no training.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearkit.audio import CLIP_PEAK, MAX_CHANNELS, ChunkChecker, check_waveform, load_audio
from hearkit.errors import (
    ConfigError,
    EmptyAudioError,
    HearkitWarning,
    ModelError,
    NonFiniteAudioError,
    NotAudioError,
    OutOfRangeAudioError,
    check_finite,
)
from hearkit.frontend import FrontendConfig
from hearkit.metadata import ModelInfo

onnx = pytest.importorskip("onnx", reason="building the test graphs needs onnx (hearkit[export])")
from onnx import TensorProto, helper  # noqa: E402

SR = 16000
WINDOW = 8000  # samples the hand-made classifier takes (0.5 s)
LABELS = ["neg", "quiet", "pos"]
VOCAB = ["_", " ", "a", "b"]


def tone(seconds: float = 0.5, amp: float = 0.5, freq: float = 440.0, dc: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t) + dc).astype(np.float32)


# -- hand-made models ------------------------------------------------------------------------
def _save(graph, info: ModelInfo, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="test")
    model.ir_version = 8
    for k, v in info.to_props().items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


def _const(name, values):
    a = np.asarray(values, np.float32)
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.FLOAT, a.shape, a.ravel()))


def classifier_graph(path: Path, kind: str = "ok", input: str = "waveform") -> Path:
    """logits = mean(input) * [-20, 0, 20] + bias: 'pos' for audio with a positive mean, 'neg' for a negative one.

    kind: ``ok``; ``nan`` / ``inf`` (the bias holds one); ``log`` (log of the mean: NaN for a
    negative mean, -inf for zero, finite otherwise).
    """
    axes = [1] if input == "waveform" else [1, 2]
    shape = ["batch", "samples"] if input == "waveform" else ["batch", "frames", 40]
    bias = {"ok": [0.0, 1.0, 0.0], "nan": [0.0, np.nan, 0.0], "inf": [0.0, np.inf, 0.0], "log": [0.0, 0.0, 0.0]}[kind]
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=axes, keepdims=0),
             helper.make_node("Unsqueeze", ["m", "ax"], ["m1"]), _const("w", [[-20.0, 0.0, 20.0]]), _const("b", [bias])]
    nodes.insert(0, helper.make_node("Constant", [], ["ax"], value=helper.make_tensor("ax_t", TensorProto.INT64, [1], [1])))
    src = "m1"
    if kind == "log":
        nodes.append(helper.make_node("Log", ["m1"], ["lm"]))
        src = "lm"
    nodes += [helper.make_node("Mul", [src, "w"], ["s"]), helper.make_node("Add", ["s", "b"], ["logits"])]
    g = helper.make_graph(nodes, "clf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])])
    info = ModelInfo(task="classify", input=input, frontend=FrontendConfig(), labels=tuple(LABELS), window_samples=WINDOW)
    return _save(g, info, path)


def ctc_graph(path: Path, kind: str = "ok") -> Path:
    """log_probs (1, samples // 160, 4): per 160-sample frame, 'a' for a positive mean, 'b' for a negative, else blank."""
    stride = FrontendConfig().hop_length
    i64 = lambda name, v: helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.INT64, [len(v)], v))  # noqa: E731
    bias = {"ok": [0.0, -10.0, -5.0, -5.0], "nan": [0.0, np.nan, -5.0, -5.0]}[kind]
    nodes = [
        helper.make_node("Shape", ["waveform"], ["shp"]), i64("one", [1]), i64("zero", [0]), i64("stride", [stride]),
        i64("shape3", [1, -1, stride]),
        helper.make_node("Slice", ["shp", "one", "stride"], ["n"]),  # (samples,)
        helper.make_node("Div", ["n", "stride"], ["f"]),
        helper.make_node("Mul", ["f", "stride"], ["keep"]),
        helper.make_node("Slice", ["waveform", "zero", "keep", "one"], ["cut"]),
        helper.make_node("Reshape", ["cut", "shape3"], ["fr"]),
        helper.make_node("ReduceMean", ["fr"], ["m"], axes=[2], keepdims=1),  # (1, frames, 1)
        _const("w", [[[0.0, 0.0, 50.0, -50.0]]]), _const("b", [[bias]]),
        helper.make_node("Mul", ["m", "w"], ["s"]), helper.make_node("Add", ["s", "b"], ["z"]),
        helper.make_node("LogSoftmax", ["z"], ["log_probs"], axis=-1),
    ]
    g = helper.make_graph(nodes, "ctc", [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, "samples"])],
                          [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, [1, "frames", len(VOCAB)])])
    info = ModelInfo(task="ctc", input="waveform", frontend=FrontendConfig(), vocab=tuple(VOCAB), blank=0, subsampling=1)
    return _save(g, info, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    out = {k: classifier_graph(d / f"clf-{k}.onnx", k) for k in ("ok", "nan", "inf", "log")}
    out.update({f"ctc-{k}": ctc_graph(d / f"ctc-{k}.onnx", k) for k in ("ok", "nan")})
    return out


@pytest.fixture(scope="module")
def export_dir(make_classifier_export):
    """An fp32 export folder of an untrained cnn4-s (its front-end streams: center=False, 10 ms hop)."""
    return make_classifier_export(["a", "b", "c"], model="cnn4-s")


def write(path: Path, x: np.ndarray, subtype: str = "FLOAT", sr: int = SR, **kw) -> Path:
    sf.write(path, x, sr, subtype=subtype, **kw)
    return path


# -- the policy itself -------------------------------------------------------------------------
def test_in_range_floats_pass_unchanged():
    x = tone(amp=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at exactly full scale
        y = check_waveform(x)
    np.testing.assert_array_equal(y, x)  # exact: nothing to clip


@pytest.mark.parametrize("peak", [1.0001, 1.3, CLIP_PEAK], ids=lambda p: f"peak{p:g}")
def test_overshoot_is_clipped_with_one_warning(peak):
    x = tone(amp=peak)
    with pytest.warns(HearkitWarning, match=r"<array>: \d+ of 8000 samples outside \[-1, 1\].*clipped"):
        y = check_waveform(x)
    assert y.max() <= 1.0 and y.min() >= -1.0  # exact bounds of np.clip
    np.testing.assert_array_equal(y, np.clip(x, -1, 1))


@pytest.mark.parametrize("peak", [CLIP_PEAK * 1.0001, 3.0, 32767.0, 8388607.0, 1e30], ids=lambda p: f"peak{p:g}")
def test_far_out_of_range_is_refused(peak):
    x = tone()
    x[100] = peak
    with pytest.raises(OutOfRangeAudioError, match=r"far outside \[-1, 1\]"):
        check_waveform(x, "clip.wav")


def test_float64_beyond_float32_is_refused_as_out_of_range_not_inf():
    x = np.array([0.0, 1e300, -1e300])
    with pytest.raises(OutOfRangeAudioError, match="1e\\+300"):
        check_waveform(x)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_signed_pcm_is_scaled(dtype):
    full = np.iinfo(dtype).max
    x = np.array([0, full // 2, -full - 1, full], dtype=dtype)
    y = check_waveform(x)
    np.testing.assert_allclose(y, [0.0, 0.5, -1.0, 1.0], atol=2.0 / 256)  # tolerance: one int8 step
    assert y.min() >= -1.0 and y.max() <= 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_unsigned_pcm_is_offset_binary(dtype):
    half = 2 ** (8 * np.dtype(dtype).itemsize - 1)
    y = check_waveform(np.array([half, 0, 2 * half - 1], dtype=dtype))
    np.testing.assert_allclose(y, [0.0, -1.0, 1.0], atol=1.0 / 128)  # silence is the midpoint; one uint8 step


def test_uint8_array_equals_the_8bit_wav_libsndfile_reads(tmp_path):
    x = np.arange(256, dtype=np.uint8).repeat(40)
    p = write(tmp_path / "u8.wav", (x.astype(np.float32) - 128) / 128, "PCM_U8")
    y_file, _ = load_audio(p)
    np.testing.assert_allclose(check_waveform(x), y_file, atol=1e-7)  # both exact k/128


@pytest.mark.parametrize("channels", [1, 2, 4, MAX_CHANNELS])
def test_samples_by_channels_are_averaged(channels):
    x = tone()
    y = check_waveform(np.stack([x] * channels, axis=1))
    np.testing.assert_allclose(y, x, atol=1e-7)  # float32 mean of equal values


@pytest.mark.parametrize("shape", [(2, 8000), (MAX_CHANNELS, 100), (1, 8000)], ids=str)
def test_channels_first_is_refused_with_the_hint(shape):
    with pytest.raises(NotAudioError, match=r"looks like \(channels, samples\).*x\.T"):
        check_waveform(np.zeros(shape, np.float32))


def test_chunk_checker_warns_once_per_stream():
    check = ChunkChecker()
    loud = tone(0.1, amp=1.5)
    with pytest.warns(HearkitWarning, match="later clipping in this stream is not reported") as rec:
        for _ in range(5):
            check(loud)
    assert len(rec) == 1
    check.reset()
    with pytest.warns(HearkitWarning):
        check(loud)
    assert check(np.zeros((0, 2), np.float32)).shape == (0,)


def test_check_finite_names_the_source():
    assert check_finite(np.ones(3), "m.onnx", "scores").shape == (3,)
    with pytest.raises(ModelError, match=r"m\.onnx: produced NaN and infinite scores \(2 of 3 values\)"):
        check_finite(np.array([np.nan, np.inf, 0.0]), "m.onnx", "scores")


# -- files out of range, NaN, in every format: `hearkit run` refuses in one line ----------------
def _spike(x, v):
    x = x.copy()
    x[len(x) // 2] = v
    return x


OUT_OF_RANGE = {
    "spike-2.5": lambda: _spike(tone(), 2.5),
    "int16-scale-as-float": lambda: tone() * 32767,
    "int24-scale-as-float": lambda: tone() * 8388607,
    "negative-only-100": lambda: -np.abs(tone()) * 200,
    "dc-offset-3": lambda: tone(dc=3.0),
    "right-channel-only-50": lambda: np.stack([tone(), tone() * 100], axis=1),
    "one-sample-file-1e6": lambda: np.array([1e6], np.float32),
    "huge-1e30": lambda: _spike(tone(), 1e30),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_RANGE))
def test_run_refuses_float_wav_far_out_of_range(hostile, models, tmp_path, name):
    p = write(tmp_path / f"{name}.wav", OUT_OF_RANGE[name]())
    with hostile.unchanged(tmp_path):
        line = hostile.refused(hostile.cli("run", models["ok"], p), p.name, "outside [-1, 1]")
    assert "_silence_" not in line and "NaN" not in line


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "DOUBLE", "wav"), ("AIFF", "FLOAT", "aiff"), ("AU", "FLOAT", "au"),
                                             ("W64", "FLOAT", "w64"), ("CAF", "FLOAT", "caf"), ("RF64", "FLOAT", "rf64")])
def test_every_float_container_is_held_to_the_range(hostile, models, tmp_path, fmt, subtype, ext):
    p = tmp_path / f"loud.{ext}"
    sf.write(p, tone() * 300, SR, format=fmt, subtype=subtype)
    with hostile.unchanged(tmp_path):
        hostile.refused(hostile.cli("run", models["ok"], p), p.name, "reach 150")


NON_FINITE = {
    "one-nan": lambda: _spike(tone(), np.nan),
    "all-nan": lambda: np.full(8000, np.nan, np.float32),
    "plus-inf": lambda: _spike(tone(), np.inf),
    "minus-inf": lambda: _spike(tone(), -np.inf),
    "nan-in-left-channel": lambda: np.stack([_spike(tone(), np.nan), tone()], axis=1),
    "double-1e300-overflows-float32": lambda: _spike(tone().astype(np.float64), 1e300),
}


@pytest.mark.parametrize("name", sorted(NON_FINITE))
def test_run_refuses_non_finite_wav(hostile, models, tmp_path, name):
    x = NON_FINITE[name]()
    p = write(tmp_path / f"{name}.wav", x, "DOUBLE" if x.dtype == np.float64 else "FLOAT")
    with hostile.unchanged(tmp_path):
        hostile.refused(hostile.cli("run", models["ok"], p), p.name, "NaN or infinite")


@pytest.mark.parametrize("cmd", ["stream", "transcribe"])
@pytest.mark.parametrize("bad", ["nan", "far"])
def test_streaming_commands_refuse_bad_samples_late_in_the_file(hostile, models, tmp_path, cmd, bad):
    """The bad sample sits in the third second: iter_blocks checks every block, not the first only."""
    x = tone(3.0, amp=0.3)
    x[int(2.5 * SR)] = np.nan if bad == "nan" else 40.0
    p = write(tmp_path / "late.wav", x)
    model = models["ok"] if cmd == "stream" else models["ctc-ok"]
    with hostile.unchanged(tmp_path):
        hostile.refused(hostile.cli(cmd, model, p), "late.wav", "NaN" if bad == "nan" else "outside [-1, 1]")


@pytest.mark.parametrize("peak", [1.01, 1.5, 1.99], ids=lambda p: f"peak{p:g}")
def test_run_clips_slight_overshoot_with_a_warning_and_the_clipped_result(hostile, models, tmp_path, peak):
    x = tone(dc=0.1, amp=peak - 0.1)
    loud = write(tmp_path / "loud.wav", x)
    clipped = write(tmp_path / "clipped.wav", np.clip(x, -1, 1))
    with hostile.unchanged(tmp_path):
        # in-process the warning reaches pytest's recorder; the subprocess test below sees the CLI's line
        with pytest.warns(HearkitWarning, match=r"loud\.wav: \d+ of 8000 samples outside \[-1, 1\].*clipped"):
            out = hostile.cli("run", models["ok"], loud)
        ref = hostile.cli("run", models["ok"], clipped)
    assert out.code == 0 and ref.code == 0, str(out)
    got, want = json.loads(out.stdout), json.loads(ref.stdout)
    assert got["label"] == want["label"]
    assert got["score"] == pytest.approx(want["score"], abs=1e-5)  # both printed rounded to 5 digits


def test_the_clip_warning_is_one_line_on_stderr(hostile, models, tmp_path):
    p = write(tmp_path / "loud.wav", tone(amp=1.2))
    out = hostile.subprocess("run", models["ok"], p, timeout=60)
    assert out.code == 0, str(out)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "loud.wav" in lines[0], str(out)
    assert json.loads(out.stdout)["label"] in LABELS


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_integer_and_float_files_give_the_same_answer(hostile, models, tmp_path, subtype):
    x = tone(dc=-0.2, amp=0.5)
    p = write(tmp_path / f"{subtype}.wav", x, subtype)
    out = hostile.cli("run", models["ok"], p)
    assert out.code == 0, str(out)
    r = json.loads(out.stdout)
    assert r["label"] == "neg"
    # mean -0.2 through logits [4, 1, -4]; 8-bit quantisation moves the mean by < 1/128
    assert r["score"] == pytest.approx(0.9523, abs=0.01)


# -- FIFOs, devices, folders given as audio ------------------------------------------------------
def _special(kind: str, tmp_path: Path) -> Path:
    if kind == "fifo":
        p = tmp_path / "pipe.wav"
        os.mkfifo(p)
    elif kind == "socket":
        p = tmp_path / "sock.wav"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()
    elif kind == "directory":
        p = tmp_path / "folder.wav"
        p.mkdir()
    elif kind.startswith("link-to-"):
        p = tmp_path / "link.wav"
        p.symlink_to(_special(kind[len("link-to-"):], tmp_path) if not kind.endswith("null") else "/dev/null")
    else:
        p = Path(kind)
    return p


SPECIAL = ["fifo", "socket", "/dev/null", "/dev/zero", "/dev/urandom", "link-to-fifo", "link-to-dev-null"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files_are_not_regular_files(hostile, models, tmp_path, kind):
    p = _special(kind, tmp_path)
    line = hostile.refused(hostile.cli("run", models["ok"], p), str(p), "not a regular file")
    assert "empty" not in line


@pytest.mark.parametrize("cmd", ["stream", "transcribe", "features"])
def test_a_fifo_never_hangs_a_command(hostile, models, tmp_path, cmd):
    """A real process with a timeout: opening a FIFO without a writer would block forever."""
    p = _special("fifo", tmp_path)
    model = {"stream": models["ok"], "transcribe": models["ctc-ok"], "features": None}[cmd]
    args = (cmd, model, p) if model is not None else (cmd, p, "-o", tmp_path / "f.npy")
    hostile.refused(hostile.subprocess(*args, timeout=60), str(p), "not a regular file")


def test_a_directory_is_named_as_such(hostile, models, tmp_path):
    p = _special("directory", tmp_path)
    hostile.refused(hostile.cli("run", models["ok"], p), str(p), "directory")


@pytest.mark.parametrize("kind", ["fifo", "/dev/null"])
def test_load_audio_api_refuses_special_files(hostile, tmp_path, kind):
    p = _special(kind, tmp_path)
    hostile.api_refused(load_audio, p, names=(str(p), "not a regular file"))


# -- arrays passed to the Python API: every entry point applies the same policy ----------------
def _apis(models):
    import hearkit

    clf = hearkit.Classifier(models["ok"])
    kws = hearkit.KeywordSpotter(models["ok"], hop_seconds=0.1)
    tr = hearkit.Transcriber(models["ctc-ok"], chunk_seconds=1.0, overlap_seconds=0.1)
    tr_stream = hearkit.Transcriber(models["ctc-ok"], chunk_seconds=1.0, overlap_seconds=0.1)
    return {
        "Classifier.classify": clf.classify,
        "KeywordSpotter.accept_waveform": kws.accept_waveform,
        "Transcriber.transcribe": tr.transcribe,
        "Transcriber.accept_waveform": tr_stream.accept_waveform,
    }


API_NAMES = ["Classifier.classify", "KeywordSpotter.accept_waveform", "Transcriber.transcribe",
             "Transcriber.accept_waveform"]

BAD_ARRAYS = {
    # name: (array maker, words the error names)
    "bool": (lambda: np.ones(1600, bool), ("dtype bool",)),
    "complex": (lambda: np.ones(1600, np.complex64), ("dtype complex64",)),
    "object": (lambda: np.array([0.1, "x"] * 800, dtype=object), ("dtype object",)),
    "strings": (lambda: np.array(["0.1"] * 1600), ("dtype <U3",)),
    "scalar": (lambda: np.float32(0.5), ("shape ()",)),
    "3-d": (lambda: np.zeros((800, 2, 2), np.float32), ("shape (800, 2, 2)",)),
    "channels-first-stereo": (lambda: np.zeros((2, 1600), np.float32), ("(channels, samples)", "x.T")),
    "channels-first-8": (lambda: np.zeros((8, 1600), np.float32), ("(channels, samples)",)),
    "too-many-channels": (lambda: np.zeros((1600, 64), np.float32), ("64 channels",)),
    "nan": (lambda: _spike(tone(0.1), np.nan), ("NaN or infinite",)),
    "inf": (lambda: _spike(tone(0.1), -np.inf), ("NaN or infinite",)),
    "int16-as-float": (lambda: tone(0.1) * 32767, ("far outside [-1, 1]",)),
    "float64-1e300": (lambda: _spike(tone(0.1).astype(np.float64), 1e300), ("far outside [-1, 1]",)),
}


@pytest.mark.parametrize("api", API_NAMES)
@pytest.mark.parametrize("bad", sorted(BAD_ARRAYS))
def test_api_refuses_bad_arrays(hostile, models, api, bad):
    make, names = BAD_ARRAYS[bad]
    hostile.api_refused(_apis(models)[api], make(), names=names)


@pytest.mark.parametrize("api", ["Classifier.classify", "Transcriber.transcribe"])
def test_offline_api_refuses_empty_audio(hostile, models, api):
    with pytest.raises(EmptyAudioError, match="zero samples"):
        _apis(models)[api](np.zeros(0, np.float32))


@pytest.mark.parametrize("api", ["KeywordSpotter.accept_waveform", "Transcriber.accept_waveform"])
@pytest.mark.parametrize("empty", [(0,), (0, 2)], ids=str)
def test_streaming_api_takes_empty_chunks(models, api, empty):
    """An empty chunk is no audio: no error, and the stream after it answers as if it never came."""
    burst = _burst()
    with_empty, plain = _apis(models)[api], _apis(models)[api]
    with_empty(np.zeros(empty, np.float32))
    assert repr(with_empty(burst)) == repr(plain(burst))


# -- multi-channel chunks are downmixed in every streaming API ------------------------------------
def _chunks(x: np.ndarray, sizes=(1, 799, 1600, 37, 3200)):
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(x[i : i + n])
        i, k = i + n, k + 1
    return out


def _burst() -> np.ndarray:
    """2 s: silence, 0.5 s of a positive-mean burst, silence (the toy classifier's 'pos')."""
    x = np.zeros(2 * SR, np.float32)
    x[int(0.7 * SR) : int(1.2 * SR)] = tone(0.5, amp=0.2, dc=0.3)
    return x


@pytest.mark.parametrize("layout", ["stereo", "4-channels", "int16-stereo"])
def test_keyword_spotter_downmixes_chunks(models, layout):
    import hearkit

    x = _burst()
    mono = hearkit.KeywordSpotter(models["ok"], hop_seconds=0.1, record=True)
    want = [d for c in _chunks(x) for d in mono.accept_waveform(c)]
    if layout == "stereo":
        multi = np.stack([x, x], axis=1)
    elif layout == "4-channels":
        multi = np.stack([x, x, x * 0.5, x * 1.5], axis=1)  # averages to x
    else:
        multi = np.round(np.stack([x, x], axis=1) * 32767).astype(np.int16)
    kws = hearkit.KeywordSpotter(models["ok"], hop_seconds=0.1, record=True)
    got = [d for c in _chunks(multi) for d in kws.accept_waveform(c)]
    assert [d.label for d in want] == ["pos"], want
    assert [d.label for d in got] == ["pos"]
    assert got[0].time == pytest.approx(want[0].time, abs=1e-9)  # the same hop
    assert got[0].score == pytest.approx(want[0].score, abs=1e-3)  # int16 rounding of 0.5-amplitude audio


def test_streaming_scorer_downmixes_and_refuses_channels_first(hostile, export_dir):
    from hearkit.classify import StreamingScorer

    fe = FrontendConfig()
    a, b = StreamingScorer(export_dir, SR, 1600), StreamingScorer(export_dir, SR, 1600)
    x = tone(1.0, amp=0.3)
    want = [l for c in _chunks(x) for l, _ in a.push(c)]
    got = [l for c in _chunks(np.stack([x, x], axis=1)) for l, _ in b.push(c)]
    assert len(got) == len(want) == SR // 1600 and fe.hop_length == 160
    np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-5)  # same frames, float32 rounding
    hostile.api_refused(b.push, np.zeros((2, 1600), np.float32), names=("(channels, samples)",))


def test_sliding_window_refuses_rather_than_interleaves(hostile):
    from hearkit.classify import SlidingWindow

    hostile.api_refused(SlidingWindow(10, 4).push, np.zeros((6, 2), np.float32), names=("shape (6, 2)",))


@pytest.mark.parametrize("layout", ["stereo", "int16-stereo", "odd-chunks-stereo"])
def test_transcriber_streaming_downmixes_chunks(models, layout):
    import hearkit

    x = np.concatenate([np.zeros(1600), np.full(1600, 0.5), np.zeros(1600), np.full(1600, -0.5),
                        np.zeros(800)]).astype(np.float32)
    multi = np.stack([x, x], axis=1)
    if layout == "int16-stereo":
        multi = np.round(multi * 32767).astype(np.int16)
    sizes = (123, 4000, 1) if layout == "odd-chunks-stereo" else (1600,)
    tr = hearkit.Transcriber(models["ctc-ok"], chunk_seconds=0.2, overlap_seconds=0.05)
    for c in _chunks(multi, sizes):
        tr.accept_waveform(c, partial=False)
    assert tr.finalize().text == hearkit.Transcriber(models["ctc-ok"]).transcribe(x).text == "ab"


def test_classifier_and_transcriber_take_samples_by_channels(models):
    import hearkit

    x = tone(dc=-0.2)
    clf = hearkit.Classifier(models["ok"])
    p1, p2 = clf.classify(x), clf.classify(np.stack([x, x], axis=1))
    assert p1.label == p2.label == "neg" and p1.score == pytest.approx(p2.score, abs=1e-6)  # same samples
    y = np.concatenate([np.full(1600, 0.5), np.zeros(1600)]).astype(np.float32)
    tr = hearkit.Transcriber(models["ctc-ok"])
    assert tr.transcribe(np.stack([y, y, y], axis=1)).text == tr.transcribe(y).text == "a"


# -- models that output NaN or Inf: one line naming the model file, never NaN with exit 0 ---------
@pytest.mark.parametrize("kind", ["nan", "inf", "log"])
def test_run_refuses_non_finite_scores(hostile, models, tmp_path, kind):
    p = write(tmp_path / "clip.wav", tone(dc=-0.1))
    with hostile.unchanged(tmp_path):
        out = hostile.cli("run", models[kind], p)
    line = hostile.refused(out, models[kind].name, "scores")
    assert "NaN" in line or "infinite" in line
    assert out.stdout == ""  # nothing half-reported


@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_stream_refuses_non_finite_scores(hostile, models, tmp_path, kind):
    p = write(tmp_path / "clip.wav", tone(1.0))
    hostile.refused(hostile.cli("stream", models[kind], p), models[kind].name, "scores")


def test_input_dependent_nan_is_caught_on_the_clip_that_makes_it(hostile, models):
    import hearkit

    clf = hearkit.Classifier(models["log"])
    assert clf.classify(tone(dc=0.1)).label in LABELS  # log of a positive mean: finite
    hostile.api_refused(clf.classify, tone(dc=-0.1), names=(models["log"].name, "NaN"))
    hostile.api_refused(clf.classify_batch, [tone(dc=0.1), tone(dc=-0.1)], names=(models["log"].name,))


def test_keyword_spotter_refuses_non_finite_scores(hostile, models):
    import hearkit

    kws = hearkit.KeywordSpotter(models["nan"], hop_seconds=0.1)
    hostile.api_refused(kws.accept_waveform, tone(0.2), names=(models["nan"].name, "NaN scores"))


def test_keyword_spotter_refuses_a_custom_scorer_that_gives_nan(hostile):
    import hearkit

    kws = hearkit.KeywordSpotter(scorer=lambda w: np.full((len(w), 2), np.nan), labels=["a", "b"], sample_rate=SR,
                                 window_samples=1600, hop_seconds=0.1)
    hostile.api_refused(kws.accept_waveform, tone(0.2), names=("scorer", "NaN"))


@pytest.fixture(scope="module")
def nan_network_export(export_dir, tmp_path_factory):
    """A copy of the export whose log-mel-input network (model.onnx) outputs NaN, front-end and pipeline intact."""
    import shutil

    d = tmp_path_factory.mktemp("nan_export") / "export"
    shutil.copytree(export_dir, d)  # pipeline.onnx stays finite: the spotter reads its metadata there
    classifier_graph(d / "model.onnx", "nan", input="logmel")
    info = ModelInfo(task="classify", input="logmel", frontend=FrontendConfig(), labels=("a", "b", "c"),
                     window_samples=SR)
    m = onnx.load(str(d / "model.onnx"))
    del m.metadata_props[:]
    for k, v in info.to_props().items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save_model(m, str(d / "model.onnx"))
    return d


def test_streaming_scorer_names_the_network_that_gave_nan(hostile, nan_network_export):
    from hearkit.classify import StreamingScorer

    s = StreamingScorer(nan_network_export, SR, 1600)
    hostile.api_refused(s.push, tone(0.2), names=("model.onnx", "NaN scores"))


def test_stream_command_on_a_folder_with_a_nan_network(hostile, nan_network_export, tmp_path):
    p = write(tmp_path / "clip.wav", tone(1.5, amp=0.3))
    with hostile.unchanged(tmp_path, nan_network_export):
        hostile.refused(hostile.cli("stream", nan_network_export, p), "model.onnx", "NaN")


@pytest.mark.parametrize("how", ["cli", "transcribe", "accept_waveform"])
def test_transcriber_refuses_nan_log_probs(hostile, models, tmp_path, how):
    import hearkit

    x = tone(1.0, amp=0.3)
    name = models["ctc-nan"].name
    if how == "cli":
        p = write(tmp_path / "speech.wav", x)
        with hostile.unchanged(tmp_path):
            hostile.refused(hostile.cli("transcribe", models["ctc-nan"], p), name, "log-probs")
    else:
        tr = hearkit.Transcriber(models["ctc-nan"])
        hostile.api_refused(getattr(tr, how), x, names=(name, "NaN log-probs"))


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "plus-inf"])
def test_decoders_refuse_nan_log_probs_but_take_minus_inf(hostile, decoder, bad):
    from hearkit.ctc import BeamSearchDecoder, GreedyDecoder

    make = {"greedy": lambda: GreedyDecoder(VOCAB, 0), "beam": lambda: BeamSearchDecoder(VOCAB, 0, beam=4)}[decoder]
    lp = np.log(np.full((5, 4), 0.25, np.float32))
    ok = lp.copy()
    ok[:, 3] = -np.inf  # probability 0: a valid log-prob
    make().advance(ok)
    lp[2, 1] = bad
    hostile.api_refused(make().advance, lp, names=("log_probs", "NaN or +inf"))


# -- checkpoints with NaN/Inf weights are refused at export and verify ----------------------------
def _poisoned(src: Path, dst: Path, how: str) -> Path:
    import torch

    from hearkit.training.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(src)
    sd = ck["state_dict"]
    weights = [k for k, v in sd.items() if v.is_floating_point() and k.endswith("weight")]
    if how == "nan-weight":
        sd[weights[0]].view(-1)[0] = float("nan")
    elif how == "inf-bias":
        k = next(k for k in sd if k.endswith("bias"))
        sd[k].view(-1)[-1] = float("inf")
    elif how == "nan-running-mean":
        k = next(k for k in sd if k.endswith("running_mean"))
        sd[k].fill_(float("nan"))
    elif how == "all-nan":
        for k, v in sd.items():
            if v.is_floating_point():
                v.fill_(float("nan"))
    elif how == "negative-running-var":  # finite weights whose network outputs NaN (sqrt of a negative)
        k = next(k for k in sd if k.endswith("running_var"))
        sd[k].fill_(-1.0)
    ck = {k: v for k, v in ck.items() if k not in ("format", "version")}
    assert isinstance(next(iter(sd.values())), torch.Tensor)
    return save_checkpoint(ck, dst)


@pytest.mark.parametrize("how", ["nan-weight", "inf-bias", "nan-running-mean", "all-nan"])
def test_export_refuses_non_finite_checkpoint(hostile, untrained_classifier, tmp_path, how):
    ck = _poisoned(untrained_classifier, tmp_path / f"{how}.pt", how)
    out_dir = tmp_path / "out"
    with hostile.unchanged(tmp_path):
        line = hostile.refused(hostile.cli("export", ck, "-o", out_dir, "--quantize", "none"), ck.name,
                               "NaN or infinite")
    assert "diverged" in line and not out_dir.exists()  # refused before anything is written


def test_export_refuses_a_network_that_outputs_nan_from_finite_weights(hostile, untrained_classifier, tmp_path):
    """A negative BatchNorm variance: torch and ONNX agree (both NaN); max() used to call that 0.00 error."""
    ck = _poisoned(untrained_classifier, tmp_path / "negvar.pt", "negative-running-var")
    line = hostile.refused(hostile.cli("-q", "export", ck, "-o", tmp_path / "out", "--quantize", "none"), "NaN")
    assert ".onnx" in line and "torch" in line


def test_verify_refuses_a_checkpoint_that_became_nan(hostile, export_dir, tmp_path):
    """The export is fine; its checkpoint (sha256 recorded to match) holds NaN: verify ends in one line."""
    import shutil

    from hearkit.export.onnx_io import sha256_file

    out_dir = tmp_path / "export"
    shutil.copytree(export_dir, out_dir)
    bad = _poisoned(export_dir.parent / "model.pt", tmp_path / "bad.pt", "nan-weight")
    summary = json.loads((out_dir / "export.json").read_text())
    summary.update(checkpoint=str(bad), checkpoint_sha256=sha256_file(bad))
    (out_dir / "export.json").write_text(json.dumps(summary))
    hostile.refused(hostile.cli("verify", out_dir, "--latency-runs", "0"), "bad.pt", "NaN")


def test_check_finite_weights_passes_a_good_checkpoint(untrained_classifier):
    from hearkit.training.checkpoint import check_finite_weights, load_checkpoint

    check_finite_weights(load_checkpoint(untrained_classifier), untrained_classifier)  # no error


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "minus-inf"])
@pytest.mark.parametrize("points", [False, True], ids=["error", "points"])
def test_limit_check_fails_non_finite_values_and_stays_json(value, points):
    from hearkit.export.report import limit_check

    row = limit_check("logits max err", value, 1e-3, points=points)
    assert row["passed"] is False
    json.dumps(row, allow_nan=False)  # raises on NaN: the report stays JSON


# -- UrbanSound8K metadata.csv and Speech Commands lists: refused naming file and column ------------
GOOD_ROWS = [("a1.wav", 1, 0, "dog"), ("a2.wav", 2, 0, "dog"), ("b1.wav", 1, 1, "siren"), ("b2.wav", 2, 1, "siren")]
HEADER = "slice_file_name,fsID,start,end,salience,fold,classID,class"


def _urbansound(root: Path, text: str | bytes | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, fold, _, _ in GOOD_ROWS:
        (root / f"fold{fold}").mkdir(exist_ok=True)
        write(root / f"fold{fold}" / name, tone(0.1), "PCM_16")
    if text is None:
        text = HEADER + "\n" + "".join(f"{n},1,0,1,1,{f},{c},{k}\n" for n, f, c, k in GOOD_ROWS)
    p = root / "metadata.csv"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return root


def _rows(header: str = "slice_file_name,fold,classID,class", rows=None, **change) -> str:
    rows = [list(map(str, r)) for r in (rows or GOOD_ROWS)]
    for (i, j), v in change.get("cells", {}).items():
        rows[i][j] = v
    return header + "\n" + "".join(",".join(r) + "\n" for r in rows)


BAD_METADATA = {
    # name: (metadata.csv contents, words the error names)
    "no-fold-column": (_rows("slice_file_name,fsid,classID,class"), ("'fold'",)),
    "no-slice-file-name": (_rows("file,fold,classID,class"), ("'slice_file_name'",)),
    "no-classID": (_rows("slice_file_name,fold,class_id,class"), ("'classID'",)),
    "no-class": (_rows("slice_file_name,fold,classID,label"), ("'class'",)),
    "only-two-columns": ("name,label\na1.wav,dog\n", ("'slice_file_name'", "'fold'")),
    "empty-file": ("", ("'slice_file_name'",)),
    "header-only": ("slice_file_name,fold,classID,class\n", ("no rows",)),
    "latin-1": (_rows(cells={(0, 3): "d\xe9g"}).encode("latin-1"), ("not UTF-8",)),
    "utf-16": (_rows().encode("utf-16"), ("not UTF-8",)),
    "fold-float": (_rows(cells={(1, 1): "1.5"}), ("line 3", "'fold'", "'1.5'")),
    "fold-word": (_rows(cells={(0, 1): "one"}), ("line 2", "'fold'")),
    "fold-zero": (_rows(cells={(0, 1): "0"}), ("'fold'", ">= 1")),
    "fold-negative": (_rows(cells={(2, 1): "-3"}), ("line 4", "'fold'")),
    "classID-word": (_rows(cells={(0, 2): "dog"}), ("'classID'",)),
    "classID-negative": (_rows(cells={(0, 2): "-1"}), ("'classID'", ">= 0")),
    "empty-fold-cell": (_rows(cells={(3, 1): ""}), ("line 5", "'fold'")),
    "short-row": ("slice_file_name,fold,classID,class\na1.wav,1\n", ("line 2", "'classID'")),
    "classID-two-names": (_rows(cells={(1, 3): "cat"}), ("classID 0", "'cat'", "'dog'")),
    "class-two-ids": (_rows(cells={(2, 3): "dog"}), ("class 'dog'",)),
    "path-traversal": (_rows(cells={(0, 0): "../../a1.wav"}), ("slice_file_name", "../../a1.wav")),
    "absolute-path": (_rows(cells={(0, 0): "/etc/passwd"}), ("slice_file_name", "/etc/passwd")),
    "no-audio-for-any-row": (_rows(rows=[("x.wav", 1, 0, "dog"), ("y.wav", 2, 1, "siren")]), ("none of its 2 rows",)),
    "nul-byte": (_rows().replace("a2.wav", "a2\x00.wav"), ("NUL bytes",)),
}


@pytest.mark.parametrize("name", sorted(BAD_METADATA))
def test_index_refuses_hostile_metadata_csv(hostile, tmp_path, name):
    from hearkit.datasets import index_dataset

    text, words = BAD_METADATA[name]
    root = _urbansound(tmp_path / "us8k", text)
    with hostile.unchanged(root):
        hostile.api_refused(index_dataset, root, names=(str(root / "metadata.csv"), *words))


@pytest.mark.parametrize("name", ["no-fold-column", "latin-1"])
def test_train_refuses_hostile_metadata_before_any_run_folder(hostile, tmp_path, name):
    root = _urbansound(tmp_path / "us8k", BAD_METADATA[name][0])
    run = tmp_path / "run"
    with hostile.unchanged(root):
        hostile.refused(hostile.cli("train", "classify", "--data", root, "-o", run, "--epochs", "1"), "metadata.csv")
    assert not run.exists()


def test_metadata_csv_is_a_directory(hostile, tmp_path):
    from hearkit.datasets import index_dataset

    root = _urbansound(tmp_path / "us8k")
    (root / "metadata.csv").unlink()
    (root / "metadata.csv").mkdir()
    hostile.api_refused(index_dataset, root, names=("metadata.csv", "directory"))


@pytest.mark.parametrize("variant", ["plain", "bom", "crlf", "extra-columns-reordered", "blank-lines"])
def test_good_metadata_in_every_dress_indexes_the_same(tmp_path, variant):
    from hearkit.datasets import index_dataset

    text = {
        "plain": None,
        "bom": "\ufeff" + _rows(),
        "crlf": _rows().replace("\n", "\r\n"),
        "extra-columns-reordered": "class,salience,classID,fold,slice_file_name\n"
                                    + "".join(f"{k},1,{c},{f},{n}\n" for n, f, c, k in GOOD_ROWS),
        "blank-lines": "\n" + _rows().replace("\n", "\n\n"),
    }[variant]
    idx = index_dataset(_urbansound(tmp_path / "us8k", text), val_fold=2)
    assert idx.format == "urbansound8k" and idx.labels == ("dog", "siren")
    assert [(Path(e.path).name, e.split, e.fold) for e in idx.examples] == [
        ("a1.wav", "train", 1), ("b1.wav", "train", 1), ("a2.wav", "val", 2), ("b2.wav", "val", 2)]  # sorted by path


def _speech_commands(root: Path) -> Path:
    for label in ("yes", "no"):
        (root / label).mkdir(parents=True)
        for spk in ("0a0a0a0a", "1b1b1b1b"):
            write(root / label / f"{spk}_nohash_0.wav", tone(0.1), "PCM_16")
    return root


@pytest.mark.parametrize("which", ["validation_list.txt", "testing_list.txt"])
@pytest.mark.parametrize("bad", ["latin-1", "no-entry-matches", "directory"])
def test_speech_commands_lists_refused_naming_the_file(hostile, tmp_path, which, bad):
    from hearkit.datasets import index_dataset

    root = _speech_commands(tmp_path / "sc")
    p = root / which
    if bad == "latin-1":
        p.write_bytes("yes/0a0a0a0a_nohash_0.wav\nn\xf6/x.wav\n".encode("latin-1"))
        words = ("not UTF-8",)
    elif bad == "no-entry-matches":
        p.write_text("speech_commands_v0.02/yes/0a0a0a0a_nohash_0.wav\n")
        words = ("none of its 1 entries",)
    else:
        p.mkdir()
        words = ("directory",)
    with hostile.unchanged(root):
        hostile.api_refused(index_dataset, root, names=(str(p), *words))


@pytest.mark.parametrize("which", ["numpy", "onnx"])
def test_streaming_frontends_downmix_stereo_chunks(hostile, tmp_path, which):
    from hearkit.frontend import StreamingFrontend

    x = tone(0.3, amp=0.4)
    if which == "numpy":
        make = lambda: StreamingFrontend(FrontendConfig())  # noqa: E731
    else:
        pytest.importorskip("torch", reason="building the streaming front-end graph needs hearkit[export]")
        from hearkit.export.frontend import build_streaming_frontend_graph
        from hearkit.frontend_onnx import OnnxStreamingFrontend

        path = tmp_path / "frontend.stream.onnx"
        onnx.save_model(build_streaming_frontend_graph(FrontendConfig()), str(path))
        make = lambda: OnnxStreamingFrontend(path)  # noqa: E731
    a, b = make(), make()
    want = np.concatenate([a.accept_waveform(c) for c in _chunks(x)])
    got = np.concatenate([b.accept_waveform(c) for c in _chunks(np.stack([x, x], axis=1))])
    np.testing.assert_allclose(got, want, atol=1e-5)  # the same samples; float rounding of the mean
    hostile.api_refused(b.accept_waveform, np.zeros((2, 400), np.float32), names=("(channels, samples)",))
