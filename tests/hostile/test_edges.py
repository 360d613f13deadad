"""Limits at every edge (docs/design.md §13) and text inputs that are not text.

Every numeric option of every command, the matching Python API arguments, a model's
metadata, device profiles, manifests and the other text files a user hands hearkit:
given a value or a file chosen to break it, each ends in one line naming the option or
the file and what is allowed (exit 2 on the CLI), and leaves the user's files as they were.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearkit.errors import ConfigError, HearkitError, ModelError
from hearkit.frontend import FrontendConfig
from hearkit.limits import LIMITS, check

SR = 16000


# -- shared inputs (module scope: generated once) -------------------------------------------------
@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A user's folder: a clip, a dummy model file, a folder and text files; tests assert it stays as it is."""
    root = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(0)
    sf.write(root / "clip.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    (root / "model.onnx").write_bytes(b"not parsed: the option is refused first")
    (root / "data").mkdir()
    (root / "data" / "note.txt").write_text("keep me\n")
    (root / "m.jsonl").write_text(json.dumps({"audio_filepath": "clip.wav", "duration": 1.0, "text": "hi"}) + "\n")
    (root / "words.txt").write_text("hello world\n")
    return root


# -- 1. every numeric option of every command --------------------------------------------------------
# (command and the arguments that reach option parsing, option, limit, narrower lo/hi or None)
def _cmds(ws: Path) -> dict[str, list[str]]:
    f, d, wav = ws / "model.onnx", ws / "data", ws / "clip.wav"
    out = ws.parent / f"{ws.name}-out"  # never created: every case is refused first
    return {
        "run": ["run", f, wav],
        "stream": ["stream", f, wav],
        "eval": ["eval", f],
        "transcribe": ["transcribe", f, wav],
        "calibrate": ["calibrate", d, "--negatives", d],
        "bench frontend": ["bench", "frontend"],
        "bench classify": ["bench", "classify", d],
        "bench model": ["bench", "model", f],
        "bench transcribe": ["bench", "transcribe", d],
        "bench wakeword": ["bench", "wakeword", f, "--positives", d, "--negatives", d],
        "features": ["features", wav, "-o", out / "f.npy"],
        "export-frontend": ["export-frontend", "-o", out / "fe.onnx"],
        "show": ["show", wav, "-o", out / "s.png"],
        "data mine": ["data", "mine", f, d, "--negatives", d],
        "data wakeword": ["data", "wakeword", "hey there", "-o", out],
        "data concat": ["data", "concat", "--words", d, "-o", out],
        "data synth": ["data", "synth", "--text", ws / "words.txt", "-o", out],
        "demo": ["demo"],
        "verify": ["verify", d],
        "export": ["export", f, "-o", out],
        "package": ["package", d],
        "train classify": ["train", "classify", "--data", d, "-o", out],
        "train ctc": ["train", "ctc", "--manifest", ws / "m.jsonl", "--val-manifest", ws / "m.jsonl", "-o", out],
    }


FRONTEND = [("--sample-rate", "sample_rate"), ("--n-fft", "n_fft"), ("--win-length", "win_length"),
            ("--hop-length", "hop_length"), ("--n-mels", "n_mels"), ("--f-min", "hz"), ("--f-max", "hz"),
            ("--eps", "eps")]

OPTIONS: list[tuple[str, str, str, dict]] = [
    ("run", "--top", "labels", {}),
    ("stream", "--hop", "hop_s", {}),
    ("stream", "--smoothing", "smoothing", {}),
    ("stream", "--refractory", "refractory_s", {}),
    ("stream", "--chunk", "seconds", {}),
    ("eval", "--val-fold", "count", {}),
    ("eval", "--beam", "beam", {}),
    ("eval", "--snr", "snr_db", {}),
    ("eval", "--seed", "seed", {}),
    ("transcribe", "--threads", "threads", {}),
    ("transcribe", "--beam", "beam", {}),
    ("transcribe", "--alpha", "lm_weight", {}),
    ("transcribe", "--beta", "lm_weight", {}),
    ("transcribe", "--chunk", "seconds", {"lo": 0.1}),
    ("transcribe", "--overlap", "duration_s", {"hi": 3600.0}),
    ("calibrate", "--fa-per-hour", "fa_per_hour", {}),
    ("calibrate", "--snr", "snr_db", {}),
    ("calibrate", "--hop", "hop_s", {"lo": 0.01, "hi": 1.0}),
    ("calibrate", "--smoothing", "smoothing", {}),
    ("calibrate", "--refractory", "refractory_s", {}),
    ("bench frontend", "--seconds", "seconds", {"lo": 0.1}),
    ("bench frontend", "--threads", "threads", {}),
    ("bench frontend", "--repeat", "repeat", {}),
    *[("bench frontend", o, n, {}) for o, n in FRONTEND],
    ("bench classify", "--repeat", "repeat", {}),
    ("bench classify", "--stream-seconds", "seconds", {"lo": 1}),
    ("bench model", "--repeat", "repeat", {}),
    ("bench model", "--seconds", "seconds", {"lo": 0.1}),
    ("bench transcribe", "--seconds", "seconds", {"lo": 0.1}),
    ("bench transcribe", "--repeat", "repeat", {}),
    ("bench wakeword", "--snr", "snr_db", {}),
    ("bench wakeword", "--seed", "seed", {}),
    ("bench wakeword", "--kws-threshold", "threshold", {}),
    *[("features", o, n, {}) for o, n in FRONTEND],
    ("export-frontend", "--n-fft", "n_fft", {}),
    ("export-frontend", "--sample-rate", "sample_rate", {}),
    ("show", "--seed", "seed", {}),
    ("show", "--n-mels", "n_mels", {}),
    ("data mine", "--windows", "count", {"lo": 1, "hi": 10**6}),
    ("data mine", "--min-score", "threshold", {}),
    ("data wakeword", "--voices", "count", {"lo": 4, "hi": 100000}),
    ("data wakeword", "--negative-windows", "count", {"hi": 10**6}),
    ("data wakeword", "--near-misses", "count", {"hi": 10**6}),
    ("data wakeword", "--other-words", "count", {"hi": 10**6}),
    ("data wakeword", "--reverb", "probability", {}),
    ("data wakeword", "--seed", "seed", {}),
    ("data concat", "--min-words", "count", {"lo": 1}),
    ("data concat", "--max-words", "count", {"lo": 1}),
    ("data concat", "--hours", "hours", {}),
    ("data concat", "--noise-prob", "probability", {}),
    ("data concat", "--seed", "seed", {}),
    ("data synth", "--per-sentence", "count", {"lo": 1}),
    ("data synth", "--seed", "seed", {}),
    ("demo", "--epochs", "epochs", {}),
    ("demo", "--seed", "seed", {}),
    ("verify", "--max-clips", "count", {"lo": 1}),
    ("verify", "--latency-runs", "count", {}),
    ("verify", "--fp32-atol", "tolerance", {}),
    ("verify", "--quant-max-drop", "tolerance", {}),
    ("export", "--calibration-clips", "count", {"lo": 1}),
    ("package", "--calibration-clips", "count", {"lo": 1}),
    ("train classify", "--epochs", "epochs", {}),
    ("train classify", "--batch-size", "batch_size", {"lo": 2}),
    ("train classify", "--lr", "lr", {}),
    ("train classify", "--weight-decay", "weight_decay", {}),
    ("train classify", "--label-smoothing", "label_smoothing", {}),
    ("train classify", "--dropout", "dropout", {}),
    ("train classify", "--seed", "seed", {}),
    ("train classify", "--window-seconds", "window_s", {}),
    ("train classify", "--max-shift", "duration_s", {"hi": 30.0}),
    ("train classify", "--noise-prob", "probability", {}),
    ("train classify", "--freq-masks", "count", {"hi": 100}),
    ("train classify", "--time-mask-width", "count", {"hi": 10000}),
    ("train classify", "--mixup", "mixup", {}),
    ("train classify", "--checkpoint-every", "count", {}),
    ("train classify", "--max-clips", "count", {"lo": 2}),
    ("train classify", "--threads", "threads", {}),
    ("train classify", "--n-fft", "n_fft", {}),
    ("train classify", "--sample-rate", "sample_rate", {}),
    ("train ctc", "--epochs", "epochs", {}),
    ("train ctc", "--lr", "lr", {}),
    ("train ctc", "--batch-seconds", "seconds", {"lo": 1}),
    ("train ctc", "--max-batch", "batch_size", {}),
    ("train ctc", "--clip", "grad_clip", {}),
    ("train ctc", "--noise-prob", "probability", {}),
    ("train ctc", "--lowpass-hz", "hz", {"lo": 1}),
    ("train ctc", "--n-mels", "n_mels", {"lo": 8}),
    ("train ctc", "--threads", "threads", {}),
    ("train ctc", "--seed", "seed", {}),
    ("train ctc", "--average-last", "count", {"hi": 1000}),
]


def _bad_values(limit_name: str, lo=None, hi=None) -> dict[str, str]:
    """One value of each hostile class for a limit: too big, too small, NaN, inf, not a number."""
    lim = LIMITS[limit_name]
    lo = lim.lo if lo is None else lo
    hi = lim.hi if hi is None else hi
    if lim.kind is int:
        big, small = str(int(hi) * 10 + 1), str(int(lo) - 1)
    else:
        big, small = repr(hi + max(abs(hi), 1.0)), repr(lo - max(abs(lo), 1.0) * 0.5)
    return {"too-big": big, "too-small": small, "nan": "nan", "inf": "inf", "word": "lots"}


CASES = [pytest.param(cmd, opt, name, kw, cls, id=f"{cmd}-{opt}-{cls}")
         for cmd, opt, name, kw in OPTIONS for cls in ("too-big", "too-small", "nan", "inf", "word")]


@pytest.mark.parametrize("cmd,opt,name,kw,cls", CASES)
def test_numeric_option_out_of_its_limit_is_one_line(hostile, ws, cmd, opt, name, kw, cls):
    value = _bad_values(name, **kw)[cls]
    prefix = _cmds(ws)[cmd]
    with hostile.unchanged(ws):
        out = hostile.cli(*prefix[:1 + cmd.count(" ")], f"{opt}={value}", *prefix[1 + cmd.count(" "):])
    lim = LIMITS[name]
    allowed = replace(lim, lo=kw.get("lo", lim.lo), hi=kw.get("hi", lim.hi)).describe()
    line = hostile.refused(out, opt, allowed, f" {cmd}: ")
    assert value in line
    assert not (ws.parent / f"{ws.name}-out").exists()


def test_every_numeric_option_is_limited():
    """No command declares a bare int/float/IntRange/FloatRange any more (lm --order and --opset: bounded both ways)."""
    import click

    from hearkit.cli import COMMANDS, main
    from hearkit.commands.options import Limited

    loose = []

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), f"{path} {name}")
            return
        for p in cmd.params:
            if isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)) and not isinstance(p.type, Limited):
                loose.append(f"{path} {p.opts[0]}")

    walk(main, "hearkit")
    assert len(COMMANDS) >= 17
    assert sorted(loose) == ["hearkit export-frontend --opset", "hearkit lm build --order"], loose


@pytest.mark.parametrize("value", ["nan", "inf", "1.5", "-0.1", "yes=nan", "yes=2", "yes=abc"])
def test_stream_threshold_outside_a_posterior(hostile, ws, value):
    with hostile.unchanged(ws):
        out = hostile.cli("stream", ws / "model.onnx", ws / "clip.wav", "--threshold", value)
    hostile.refused(out, "--threshold", value)


@pytest.mark.parametrize("text", ["nan,1", "1,inf", "-inf,0", "nan,nan"])
@pytest.mark.parametrize("opt", ["--snr", "--gain-db", "--speed"])
def test_range_options_refuse_non_finite(hostile, ws, opt, text):
    pytest.importorskip("torch", reason="train classify needs hearkit[train] before it reads its ranges")
    with hostile.unchanged(ws):
        out = hostile.cli("train", "classify", "--data", ws / "data", "-o", ws.parent / "never", f"{opt}={text}")
    hostile.refused(out, opt, "finite")
    assert not (ws.parent / "never").exists()


# -- 2. the Python API -----------------------------------------------------------------------------
THREADS_BAD = [0, -1, 257, 2000, 100000, math.nan, math.inf, 2.5, "four", True, None]


@pytest.mark.parametrize("threads", [t for t in THREADS_BAD if t is not None], ids=repr)
def test_make_session_threads(hostile, ws, threads):
    from hearkit.sessions import make_session

    hostile.api_refused(make_session, ws / "model.onnx", threads=threads, names=("threads", "from 1 to 256"))


@pytest.mark.parametrize("threads", [0, 100000, math.nan, "x"], ids=repr)
@pytest.mark.parametrize("api", ["open_model", "OnnxScorer", "Classifier", "Transcriber"])
def test_api_threads_refused_before_the_model_is_read(hostile, ws, api, threads):
    from hearkit.classify import Classifier, OnnxScorer
    from hearkit.sessions import open_model
    from hearkit.transcribe import Transcriber

    fn = {"open_model": open_model, "OnnxScorer": OnnxScorer, "Classifier": Classifier, "Transcriber": Transcriber}[api]
    hostile.api_refused(fn, ws / "model.onnx", threads=threads, names=("threads", "from 1 to 256"))


@pytest.mark.parametrize("kw,name", [
    (dict(beam=0), "beam"), (dict(beam=10**6), "beam"), (dict(alpha=math.nan), "alpha"), (dict(beta=math.inf), "beta"),
    (dict(chunk_seconds=math.nan), "chunk_seconds"), (dict(chunk_seconds=0), "chunk_seconds"),
    (dict(overlap_seconds=-1), "overlap_seconds"), (dict(overlap_seconds=math.inf), "overlap_seconds"),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_transcriber_arguments(hostile, ws, kw, name):
    from hearkit.transcribe import Transcriber

    hostile.api_refused(Transcriber, ws / "model.onnx", names=(name,), **kw)


def _spotter(**kw):
    from hearkit.classify import KeywordSpotter

    args = dict(scorer=lambda w: np.zeros((len(w), 2), np.float32), labels=["yes", "_silence_"], sample_rate=SR,
                window_samples=SR)
    args.update(kw)
    return KeywordSpotter(**args)


@pytest.mark.parametrize("kw,name", [
    (dict(hop_seconds=math.nan), "hop_seconds"), (dict(hop_seconds=-0.1), "hop_seconds"), (dict(hop_seconds=1e9), "hop_seconds"),
    (dict(smoothing=0), "smoothing"), (dict(smoothing=10**6), "smoothing"), (dict(smoothing=2.5), "smoothing"),
    (dict(refractory_seconds=math.inf), "refractory_seconds"), (dict(refractory_seconds=-1), "refractory_seconds"),
    (dict(thresholds=math.nan), "thresholds"), (dict(thresholds=-math.inf), "thresholds"), (dict(thresholds=-0.1), "thresholds"),
    (dict(thresholds={"yes": math.nan}), "thresholds['yes']"), (dict(thresholds={"yes": -0.5}), "thresholds['yes']"),
    (dict(default_threshold=math.nan), "default_threshold"), (dict(default_threshold="high"), "default_threshold"),
    (dict(sample_rate=10**12), "sample_rate"), (dict(window_samples=-5), "window_samples"),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_keyword_spotter_arguments(hostile, kw, name):
    hostile.api_refused(_spotter, names=(name,), **kw)


@pytest.mark.parametrize("kw,name", [
    (dict(smoothing=0), "smoothing"), (dict(smoothing=math.nan), "smoothing"),
    (dict(refractory_seconds=math.nan), "refractory_seconds"), (dict(default_threshold=-1.0), "default_threshold"),
    (dict(thresholds={"yes": -math.inf}), "thresholds['yes']"), (dict(thresholds={"yes": -1e-9}), "thresholds['yes']"),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_detection_logic_arguments(hostile, kw, name):
    from hearkit.classify import DetectionLogic

    hostile.api_refused(DetectionLogic, ["yes", "no"], names=(name,), **kw)


@pytest.mark.parametrize("window,hop,name", [(-1, 160, "window"), (10**9, 160, "window"), (16000, 0, "hop"),
                                             (16000, math.nan, "hop")])
def test_streaming_scorer_arguments(hostile, ws, window, hop, name):
    from hearkit.classify import StreamingScorer

    hostile.api_refused(StreamingScorer, ws / "data", window, hop, names=(name,))


@pytest.mark.parametrize("kw,name", [
    (dict(n_fft=10**8), "n_fft"), (dict(n_fft=8), "n_fft"), (dict(sample_rate=10**12), "sample_rate"),
    (dict(sample_rate=1e12), "sample_rate"), (dict(sample_rate=0), "sample_rate"), (dict(hop_length=-160), "hop_length"),
    (dict(hop_length=10**6), "hop_length"), (dict(win_length=0), "win_length"), (dict(win_length=1024), "win_length"),
    (dict(n_mels=0), "n_mels"), (dict(n_mels=513), "n_mels"), (dict(n_mels="40"), "n_mels"),
    (dict(eps=math.inf), "eps"), (dict(eps=math.nan), "eps"), (dict(f_min="low"), "f_min"), (dict(f_max=[1]), "f_max"),
    (dict(f_max=math.nan), "f_max"), (dict(power="2"), "power"),
], ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_frontend_config(hostile, kw, name):
    hostile.api_refused(FrontendConfig, names=(name, "front-end"), **kw)


def test_frontend_config_takes_its_bounds():
    cfg = FrontendConfig(sample_rate=192000, n_fft=16384, hop_length=16384, n_mels=512, f_min=0.0)
    assert (cfg.sample_rate, cfg.n_fft, cfg.win_length, cfg.n_mels) == (192000, 16384, 16384, 512)
    assert FrontendConfig.from_json('{"n_fft": 400.0}').n_fft == 400  # JSON numbers may carry a ".0"


@pytest.mark.parametrize("field,value", [("num_threads", 100000), ("num_threads", 0), ("epochs", 0), ("epochs", math.nan),
                                         ("batch_size", 10**7), ("seed", -1), ("lr", math.inf)])
def test_train_classify_config(hostile, field, value):
    pytest.importorskip("torch")
    from hearkit.training.train_classify import TrainConfig

    hostile.api_refused(TrainConfig, data="d", out="o", names=(field, "invalid training config"), **{field: value})


@pytest.mark.parametrize("field,value", [("num_threads", 100000), ("num_threads", -4), ("max_batch", 0), ("seed", 2**40),
                                         ("lr", math.nan), ("clip", math.inf), ("batch_seconds", 1e9)])
def test_train_ctc_config(hostile, field, value):
    pytest.importorskip("torch")
    from hearkit.training.train_ctc import CTCTrainConfig

    hostile.api_refused(CTCTrainConfig, "m", "m", "o", names=(field, "invalid CTC training config"), **{field: value})


# -- 3. device profiles -----------------------------------------------------------------------------
def _profile_text(threads="2") -> str:
    from hearkit.devices import _profiles_root

    text = (_profiles_root() / "x86-avx2" / "profile.toml").read_text(encoding="utf-8")
    return re.sub(r"(?m)^threads = .*$", f"threads = {threads}", text, count=1)


@pytest.mark.parametrize("threads", ["100000", "0", "-1", "257", "2.5", '"4"', "true", "nan", "inf"])
def test_profile_threads(hostile, ws, tmp_path, threads):
    prof = tmp_path / "profile.toml"
    prof.write_text(_profile_text(threads))
    with hostile.unchanged(ws, tmp_path):
        out = hostile.cli("run", ws / "model.onnx", ws / "clip.wav", "--device", prof)
    hostile.refused(out, str(prof), "session.threads")


@pytest.mark.parametrize("threads", [100000, 0, 257])
def test_profile_threads_api(hostile, threads):
    import tomllib

    from hearkit.devices import profile_from_dict

    d = tomllib.loads(_profile_text(str(threads)))
    hostile.api_refused(profile_from_dict, d, "mine.toml", names=("mine.toml", "session.threads", "from 1 to 256"))


@pytest.mark.parametrize("junk", [b"\xff\xfe", b"name = \"\xe9\"", b"\x80"], ids=["bom16", "latin1", "lone-continuation"])
def test_profile_not_utf8(hostile, ws, tmp_path, junk):
    prof = tmp_path / "profile.toml"
    prof.write_bytes(junk + b"\n" + _profile_text().encode())
    with hostile.unchanged(ws, tmp_path):
        out = hostile.cli("run", ws / "model.onnx", ws / "clip.wav", "--device", prof)
    hostile.refused(out, str(prof), "not UTF-8")


# -- 4. hostile model metadata -------------------------------------------------------------------------
def _model(path: Path, props: dict[str, str]) -> Path:
    """A tiny waveform-in ONNX graph (Identity) carrying ``props`` as metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["waveform"], ["logits"])], "g",
                          [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["b", "n"])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "n"])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for k, v in props.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, path)
    return path


def _props(task="classify", **changes) -> dict[str, str]:
    from hearkit.metadata import ModelInfo

    kw = dict(labels=("yes", "no", "_silence_"), window_samples=SR) if task == "classify" else \
        dict(vocab=("<blank>", " ", "a", "b"), blank=0, subsampling=2)
    p = ModelInfo(task=task, input="waveform", frontend=FrontendConfig(), **kw).to_props()
    fe = {k[3:]: v for k, v in changes.items() if k.startswith("fe_")}
    if fe:
        p["hearkit.frontend"] = json.dumps({**json.loads(p["hearkit.frontend"]), **fe})
    for k, v in changes.items():
        if not k.startswith("fe_"):
            p[f"hearkit.{k}"] = v
    return p


META = {
    "n_fft-huge": (dict(fe_n_fft=10**8), "n_fft"),
    "n_fft-negative": (dict(fe_n_fft=-512), "n_fft"),
    "sample_rate-1e12": (dict(fe_sample_rate=1e12), "sample_rate"),
    "sample_rate-zero": (dict(fe_sample_rate=0), "sample_rate"),
    "hop-negative": (dict(fe_hop_length=-160), "hop_length"),
    "hop-huge": (dict(fe_hop_length=10**9), "hop_length"),
    "win-huge": (dict(fe_win_length=10**7), "win_length"),
    "n_mels-zero": (dict(fe_n_mels=0), "n_mels"),
    "n_mels-huge": (dict(fe_n_mels=10**5), "n_mels"),
    "n_mels-string": (dict(fe_n_mels="40"), "n_mels"),
    "eps-inf": (dict(fe_eps=1e999), "eps"),
    "frontend-deep": (dict(frontend="[" * 100000), "frontend"),
    "frontend-not-object": (dict(frontend="[1, 2]"), "frontend"),
    "labels-duplicate": (dict(labels='["yes", "yes", "no"]'), "labels"),
    "labels-empty-list": (dict(labels="[]"), "labels"),
    "labels-empty-string": (dict(labels='["yes", ""]'), "labels"),
    "labels-numbers": (dict(labels="[1, 2]"), "labels"),
    "labels-too-many": (dict(labels=json.dumps([f"w{i}" for i in range(10001)])), "labels"),
    "labels-huge-value": (dict(labels=json.dumps(["x" * (2 << 20)])), "labels"),
    "labels-deep": (dict(labels="[" * 100000), "labels"),
    "window-negative": (dict(window_samples="-16000"), "window_samples"),
    "window-zero": (dict(window_samples="0"), "window_samples"),
    "window-huge": (dict(window_samples=str(10**12)), "window_samples"),
    "window-word": (dict(window_samples="long"), "window_samples"),
    "window-below-n_fft": (dict(window_samples="100"), "window_samples"),
    "window-digits": (dict(window_samples="9" * 5000), "window_samples"),
    "schema-zero": (dict(schema_version="0"), "schema_version"),
    "schema-future": (dict(schema_version="99"), "schema"),
    "task-unknown": (dict(task="translate"), "task"),
    "input-unknown": (dict(input="video"), "input"),
    "detector-nan-threshold": (dict(detector='{"thresholds": {"yes": NaN}}'), "threshold"),
    "detector-smoothing": (dict(detector='{"smoothing": 1000000}'), "smoothing"),
    "detector-hop": (dict(detector='{"hop_seconds": -1}'), "hop_seconds"),
    "quantization-list": (dict(quantization="[]"), "quantization"),
}


@pytest.mark.parametrize("case", sorted(META))
def test_hostile_classifier_metadata_blames_the_model(hostile, ws, tmp_path, case):
    changes, key = META[case]
    model = _model(tmp_path / "model.onnx", _props(**changes))
    with hostile.unchanged(ws, tmp_path):
        out = hostile.cli("run", model, ws / "clip.wav")
    line = hostile.refused(out, str(model), key)
    assert "clip.wav" not in line  # the model is at fault, not the audio


CTC_META = {
    "vocab-duplicate": (dict(vocab='["<blank>", "a", "a"]'), "vocab"),
    "vocab-one": (dict(vocab='["<blank>"]'), "vocab"),
    "vocab-empty-string": (dict(vocab='["<blank>", "", "a"]'), "vocab"),
    "blank-outside": (dict(blank="7"), "blank"),
    "subsampling-zero": (dict(subsampling="0"), "subsampling"),
    "subsampling-huge": (dict(subsampling=str(10**6)), "subsampling"),
    "n_fft-huge": (dict(fe_n_fft=10**8), "n_fft"),
    "sample_rate-1e12": (dict(fe_sample_rate=1e12), "sample_rate"),
}


@pytest.mark.parametrize("case", sorted(CTC_META))
def test_hostile_ctc_metadata_blames_the_model(hostile, ws, tmp_path, case):
    changes, key = CTC_META[case]
    model = _model(tmp_path / "model.onnx", _props("ctc", **changes))
    with hostile.unchanged(ws, tmp_path):
        out = hostile.cli("transcribe", model, ws / "clip.wav")
    line = hostile.refused(out, str(model), key)
    assert "clip.wav" not in line


@pytest.mark.parametrize("case", ["n_fft-huge", "labels-duplicate", "window-negative", "sample_rate-1e12"])
def test_hostile_metadata_api(hostile, tmp_path, case):
    from hearkit.metadata import read_model_info

    model = _model(tmp_path / "m.onnx", _props(**META[case][0]))
    msg = hostile.api_refused(read_model_info, model, names=(str(model), META[case][1]))
    with pytest.raises(ModelError):
        read_model_info(model)
    assert msg.startswith(f"{model}: metadata")


def test_metadata_frontend_message_form(tmp_path):
    from hearkit.metadata import read_model_info

    model = _model(tmp_path / "model.onnx", _props(fe_n_fft=10**8))
    with pytest.raises(ModelError) as e:
        read_model_info(model)
    assert str(e.value) == f"{model}: metadata frontend: n_fft must be an integer from 16 to 16384 samples, got 100000000"


def test_valid_metadata_still_reads(tmp_path):
    from hearkit.metadata import read_model_info

    info = read_model_info(_model(tmp_path / "ok.onnx", _props()))
    assert info.labels == ("yes", "no", "_silence_") and info.window_samples == SR
    info = read_model_info(_model(tmp_path / "ok-ctc.onnx", _props("ctc")))
    assert info.vocab[:2] == ("<blank>", " ") and info.subsampling == 2


def test_model_fifo_is_not_a_regular_file(hostile, tmp_path):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    from hearkit.metadata import read_props

    hostile.api_refused(read_props, fifo, names=(str(fifo), "not a regular file"))


# -- 5. manifests --------------------------------------------------------------------------------------
def _line(**kw) -> str:
    d = {"audio_filepath": "clip.wav", "duration": 1.0, "text": "hello"}
    d.update(kw)
    return json.dumps({k: v for k, v in d.items() if v is not ...})


MANIFESTS = {
    "duration-nan": (_line(duration=math.nan).encode(), "duration"),
    "duration-inf": (_line(duration=math.inf).encode(), "duration"),
    "duration-negative": (_line(duration=-1.0).encode(), "duration"),
    "duration-huge": (_line(duration=1e12).encode(), "duration"),
    "duration-word": (_line(duration="long").encode(), "duration"),
    "duration-bool": (_line(duration=True).encode(), "duration"),
    "duration-list": (_line(duration=[1]).encode(), "duration"),
    "transcript-5000": (_line(text="a" * 5000).encode(), "transcript"),
    "transcript-10MB": (_line(text="ab " * ((10 << 20) // 3)).encode(), "longer than"),
    "line-2MB-no-newline": (b"{" * (2 << 20), "longer than"),
    "text-list": (_line(text=["hello"]).encode(), "'text'"),
    "text-null": (_line(text=None).encode(), "'text'"),
    "audio-number": (_line(audio_filepath=3).encode(), "audio_filepath"),
    "audio-empty": (_line(audio_filepath="").encode(), "audio_filepath"),
    "audio-nul": (_line(audio_filepath="a\x00b").encode(), "audio_filepath"),
    "json-deep": (b"[" * 100000, "nested"),
    "not-utf8-latin1": (json.dumps({"audio_filepath": "clip.wav", "text": "caf\xe9"}, ensure_ascii=False).encode("latin-1"),
                        "not UTF-8"),
    "not-utf8-second-line": (_line().encode() + b"\n" + b'{"text": "\xff"}', "not UTF-8"),
    "utf16": (_line().encode("utf-16"), "not UTF-8"),
    "empty": (b"", "no entries"),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_hostile_manifest_cli(hostile, ws, tmp_path, case):
    data, what = MANIFESTS[case]
    m = tmp_path / "bad.jsonl"
    m.write_bytes(data)
    shutil.copy(ws / "clip.wav", tmp_path / "clip.wav")
    out_dir = tmp_path / "joined"
    with hostile.unchanged(tmp_path):
        out = hostile.cli("data", "join", m, "-o", out_dir)
    hostile.refused(out, str(m), what)
    assert not out_dir.exists()


@pytest.mark.parametrize("case", ["duration-nan", "transcript-5000", "transcript-10MB", "not-utf8-latin1", "json-deep"])
def test_hostile_manifest_api(hostile, tmp_path, case):
    from hearkit.manifest import ManifestError, read_manifest

    m = tmp_path / "bad.jsonl"
    m.write_bytes(MANIFESTS[case][0])
    msg = hostile.api_refused(read_manifest, m, names=(str(m), MANIFESTS[case][1]))
    with pytest.raises(ManifestError):
        read_manifest(m)
    assert len(msg) < 400  # the message names the line; it does not repeat it


def test_manifest_limits_take_their_bounds(tmp_path):
    from hearkit.manifest import read_manifest

    m = tmp_path / "ok.jsonl"
    m.write_bytes(b"\xef\xbb\xbf" + "\n".join([_line(duration=0.0), _line(duration=86400.0, text="a" * 4096),
                                                _line(duration=..., text=12)]).encode())
    got = read_manifest(m)
    assert [u.duration for u in got] == [0.0, 86400.0, None]
    assert len(got.utterances[1].raw_text) == 4096 and got.utterances[2].text == ""


@pytest.mark.parametrize("kind", ["fifo", "dev-null", "folder-file"])
def test_manifest_not_a_regular_file(hostile, tmp_path, kind):
    if kind == "fifo":
        m = tmp_path / "m.jsonl"
        os.mkfifo(m)
    elif kind == "dev-null":
        m = Path("/dev/null")
    else:
        m = tmp_path / "m.jsonl"
        m.mkdir()
        (m / "x").write_text("")
    out = hostile.subprocess("data", "join", m, "-o", tmp_path / "joined.jsonl", timeout=60)
    hostile.refused(out, str(m), "not a regular file" if kind != "folder-file" else "")
    assert not (tmp_path / "joined.jsonl").exists()


@pytest.mark.parametrize("data,what", [(b"utt1 caf\xe9\n", "not UTF-8"), (b"utt1 " + b"a" * 5000 + b"\n", "transcript")],
                         ids=["latin1", "long"])
def test_librispeech_transcripts(hostile, tmp_path, data, what):
    from hearkit.manifest import read_librispeech

    d = tmp_path / "ls" / "1" / "2"
    d.mkdir(parents=True)
    (d / "1-2.trans.txt").write_bytes(data)
    hostile.api_refused(read_librispeech, tmp_path / "ls", names=("1-2.trans.txt", what))


# -- 6. lexicons, LMs, validation lists ---------------------------------------------------------------
ARPA = "\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\n-0.5\thello\n-0.5\t</s>\n\n\\end\\\n"


@pytest.mark.parametrize("data,what", [
    (ARPA.replace("hello", "h\xe9llo").encode("latin-1"), "not UTF-8"),
    (ARPA.replace("-0.5\thello", "nan\thello").encode(), "1-gram"),
    (ARPA.replace("-0.5\thello", "inf\thello").encode(), "1-gram"),
    (ARPA.replace("\\1-grams:", "\\99-grams:").encode(), "99-grams"),
    (ARPA.replace("ngram 1=3", "ngram 1=" + "9" * 5000).encode(), "ngram"),
    (b"\\data\\\n" + b"x" * (2 << 20), "longer than"),
], ids=["latin1", "nan-prob", "inf-prob", "order-99", "count-digits", "endless-line"])
def test_hostile_lm_file(hostile, tmp_path, data, what):
    lm = tmp_path / "lm.arpa"
    lm.write_bytes(data)
    with hostile.unchanged(tmp_path):
        out = hostile.cli("lm", "score", lm, "hello")
    hostile.refused(out, str(lm), what)


def test_lm_minus_inf_is_arpa_zero(tmp_path):
    from hearkit.lm import LOG10_ZERO, NGramLM

    lm = tmp_path / "lm.arpa"
    lm.write_text(ARPA.replace("-1.0\t<s>", "-inf\t<s>"))
    assert NGramLM.load(lm).tables[1][("<s>",)][0] == pytest.approx(LOG10_ZERO, abs=0)


@pytest.mark.parametrize("data", [b"hello w\xf6rld\n", b"ok\n\xc3\x28\n"], ids=["latin1", "bad-pair"])
def test_lm_build_text_not_utf8(hostile, tmp_path, data):
    text = tmp_path / "corpus.txt"
    text.write_bytes(data)
    with hostile.unchanged(tmp_path):
        out = hostile.cli("lm", "build", text, "-o", tmp_path / "out.arpa")
    hostile.refused(out, str(text), "not UTF-8")
    assert not (tmp_path / "out.arpa").exists()


@pytest.mark.parametrize("data,what", [(b"hello\nw\xf6rld\n", "not UTF-8"), (b"a" * (2 << 20), "longer than")],
                         ids=["latin1", "endless-line"])
def test_lexicon_file(hostile, tmp_path, data, what):
    from hearkit.ctc import Lexicon

    lex = tmp_path / "words.txt"
    lex.write_bytes(data)
    hostile.api_refused(Lexicon.load, lex, names=(str(lex), what))


@pytest.mark.parametrize("loader", ["lexicon", "lm", "profile"])
def test_text_fifo_is_refused_not_read(hostile, tmp_path, loader):
    from hearkit.ctc import Lexicon
    from hearkit.devices import load_profile
    from hearkit.lm import NGramLM

    fifo = tmp_path / ("profile.toml" if loader == "profile" else "f.txt")
    os.mkfifo(fifo)
    fn = {"lexicon": Lexicon.load, "lm": NGramLM.load, "profile": load_profile}[loader]
    hostile.api_refused(fn, fifo, names=(str(fifo), "not a regular file", "FIFO"))


def test_validation_list_not_utf8(hostile, tmp_path):
    from hearkit.training.ctc_data import scan_words

    root = tmp_path / "sc"
    (root / "yes").mkdir(parents=True)
    sf.write(root / "yes" / "0a1b2c3d_nohash_0.wav", np.zeros(1600, np.float32), SR)
    (root / "validation_list.txt").write_bytes(b"yes/0a1b2c3d_nohash_0.wav\n\xff\n")
    hostile.api_refused(scan_words, [root], names=("validation_list.txt", "not UTF-8"))


@pytest.mark.parametrize("data,what", [(b"one sentence\nd\xe9j\xe0 vu\n", "not UTF-8"), (b"x" * (2 << 20), "longer than")],
                         ids=["latin1", "endless-line"])
def test_synth_sentences_file(hostile, tmp_path, data, what):
    from hearkit.recipes.sentences import read_sentences

    text = tmp_path / "sentences.txt"
    text.write_bytes(data)
    hostile.api_refused(read_sentences, text, names=(str(text), what))


def test_profile_fifo_cli_does_not_hang(hostile, ws, tmp_path):
    fifo = tmp_path / "profile.toml"
    os.mkfifo(fifo)
    out = hostile.subprocess("run", ws / "model.onnx", ws / "clip.wav", "--device", fifo, timeout=60)
    hostile.refused(out, str(fifo), "not a regular file")


# -- 7. the upper bound itself works ---------------------------------------------------------------------
def test_256_threads_run_a_real_export(hostile, make_classifier_export, tmp_path, ws):
    """The new upper bound neither hangs nor crashes onnxruntime: a profile with 256 threads classifies a clip."""
    export = make_classifier_export(["a", "b", "_silence_"])
    prof = tmp_path / "profile.toml"
    prof.write_text(_profile_text("256"))
    out = hostile.subprocess("run", export, ws / "clip.wav", "--device", prof, timeout=120)
    assert out.code == 0, str(out)
    assert json.loads(out.stdout.splitlines()[0])["label"] in ("a", "b", "_silence_")


@pytest.mark.slow
def test_256_threads_train(hostile, tonegen, tmp_path):
    """torch.set_num_threads(256) in a real (one-epoch) training: no segfault, a checkpoint."""
    data = tonegen.make_tones(tmp_path / "tones", clip_seconds=0.5, speakers=4, val_speakers=1)
    out = hostile.subprocess("train", "classify", "--data", data, "-o", tmp_path / "run", "--epochs", "1",
                             "--batch-size", "4", "--window-seconds", "0.5", "--threads", "256", "--no-progress",
                             timeout=300)
    assert out.code == 0, str(out)
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.slow
def test_transcribe_256_threads(hostile, tiny_ctc, tmp_path):
    """transcribe --threads 256 finishes (2000 hung before the limit)."""
    from hearkit.export.exporter import export_ctc

    out_dir = tmp_path / "asr"
    export_ctc(tiny_ctc.checkpoint, out_dir, quantize=(), log=lambda m: None)
    clip = tmp_path / "c.wav"
    sf.write(clip, np.zeros(SR, np.float32), SR)
    out = hostile.subprocess("transcribe", out_dir, clip, "--threads", "256", timeout=120)
    assert out.code == 0, str(out)


# -- 8. the ParamType and the table ------------------------------------------------------------------------
def test_limited_param_type_metavar_and_conversion():
    import click

    from hearkit.commands.options import Limited

    t = Limited("threads")
    assert t.convert("8", None, None) == 8 and type(t.convert("8", None, None)) is int
    assert t.get_metavar(None) == "INTEGER 1..256"
    assert Limited("seconds", lo=0.1).get_metavar(None) == "FLOAT 0.1..86400"
    with pytest.raises(click.BadParameter, match="from 1 to 256"):
        t.convert("100000", None, None)
    assert Limited("threshold").convert(0.5, None, None) == pytest.approx(0.5, abs=0)


def test_narrower_range_cannot_widen_the_table():
    assert check("batch_size", 2, lo=2) == 2
    with pytest.raises(ConfigError, match="from 2 to 65536"):
        check("batch_size", 1, "batch", lo=2)
    with pytest.raises(AssertionError):
        check("batch_size", 1, lo=0)


def test_design_notes_print_the_table():
    """docs/design.md §13 lists every limit with its range (limits.py points there)."""
    design = Path(__file__).resolve().parents[2] / "docs" / "design.md"
    text = design.read_text(encoding="utf-8")
    section = text[text.index("## 13."):]
    for name, lim in LIMITS.items():
        row = next((ln for ln in section.splitlines() if ln.startswith(f"| `{name}` ")), None)
        assert row is not None, f"docs/design.md §13 lacks {name}"
        assert lim.describe().split(" from ")[1].removesuffix(f" {lim.unit}" if lim.unit else "") in row


def test_harness_error_is_a_hearkit_error():
    assert issubclass(ModelError, HearkitError) and issubclass(ConfigError, ValueError)


def test_api_threshold_above_one_switches_a_label_off():
    """A threshold above 1 is the API's way to mute a label (tests/test_calibrate.py uses 2.0); it never fires."""
    from hearkit.classify import DetectionLogic

    for off in (2.0, math.inf):
        logic = DetectionLogic(["yes", "no"], thresholds={"yes": off}, default_threshold=0.5, smoothing=1,
                               refractory_seconds=0.0)
        _, det = logic.update(np.array([1.0, 0.0]), 0.0)
        assert det is None
    _, det = logic.update(np.array([0.0, 1.0]), 1.0)
    assert det is not None and det.label == "no"
