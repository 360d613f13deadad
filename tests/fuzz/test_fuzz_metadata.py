"""Fuzz: mutated ONNX metadata (``hearkit.*`` metadata_props) through ModelInfo and through opening models.

Each example starts from the real props of a classifier export or of the stand-in
CTC pipeline and applies up to five mutations: a key deleted, a value replaced by
random text, a JSON value of the wrong type, an extreme number string ("-1",
"1e9", "nan", a 5000-digit integer, a non-ASCII digit), deeply nested JSON, a
front-end field or a label list or detector setting changed. ``ModelInfo.from_props``
and the classes that open a model (Classifier, KeywordSpotter, Transcriber) must
refuse with a one-line ``HearkitError`` or give a right answer: an accepted
``ModelInfo`` survives ``to_props`` -> ``from_props`` unchanged and keeps every
number inside ``hearkit.limits``; an accepted model classifies, spots and
transcribes without any other exception.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearkit import metadata as md
from hearkit.frontend import FrontendConfig
from hearkit.limits import LIMITS
from hearkit.metadata import ModelInfo

pytestmark = pytest.mark.fuzz
onnx = pytest.importorskip("onnx", reason="rewriting a model's metadata needs onnx (pip install 'hearkit[train]')")

KEYS = [md.K_SCHEMA, md.K_TASK, md.K_FRONTEND, md.K_INPUT, md.K_LABELS, md.K_VOCAB, md.K_BLANK, md.K_WINDOW,
        md.K_SUBSAMPLING, md.K_QUANT, md.K_CKPT_SHA, md.K_METRICS, md.K_MODEL, md.K_VERSION, md.K_DETECTOR]
FE_FIELDS = [f.name for f in dataclasses.fields(FrontendConfig)] + ["n_fft2"]
NUMBER_STRINGS = ["-1", "0", "1", "2", "-0", "1e9", "nan", "inf", "-inf", "1.5", " 7 ", "٣", "0x10", "1_000",
                  "9" * 5000, "True", "null", "", "16000", str(2**63), str(-2**63)]


def budget(weight: float):
    """The active profile's max_examples times ``weight`` (see conftest.py)."""
    return settings(max_examples=max(3, round(settings.default.max_examples * weight)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8)
    | st.sampled_from([0, 1, -1, 10**12, 2**31, 1e308, 0.5]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
labels = st.lists(st.sampled_from(["_silence_", "go", "stop", "", " ", "a", "go"]) | st.text(max_size=4), max_size=6)
detector = st.dictionaries(
    st.sampled_from([*md.DETECTOR_KEYS, "bogus"]),
    json_values | st.dictionaries(st.sampled_from(["go", "stop", "_silence_", "x"]), json_values, max_size=3),
    max_size=4,
)


def mutations(keys: list[str]):
    """One mutation of the props, aimed at ``keys``."""
    k = st.sampled_from(keys)
    return st.one_of(
        st.tuples(st.just("del"), k),
        st.tuples(st.just("text"), k, st.text(max_size=40)),
        st.tuples(st.just("json"), k, json_values),
        st.tuples(st.just("number"), k, st.sampled_from(NUMBER_STRINGS) | st.integers().map(str)
                  | st.integers(-10, 20000).map(str)),
        st.tuples(st.just("deep"), k, st.sampled_from([10, 500, 5000, 100000])),
        st.tuples(st.just("frontend"), st.sampled_from(FE_FIELDS), json_values | st.integers(-10, 20000)),
        st.tuples(st.just("labels"), labels),
        st.tuples(st.just("detector"), detector),
        st.tuples(st.just("unprefixed"), st.text(max_size=10), st.text(max_size=10)),
    )


mutation = mutations(KEYS)
# what decides how an opened model runs: the models target aims its mutations here
RUN_KEYS = [md.K_WINDOW, md.K_LABELS, md.K_VOCAB, md.K_BLANK, md.K_SUBSAMPLING, md.K_DETECTOR, md.K_FRONTEND,
            md.K_INPUT, md.K_TASK]
run_mutation = mutations(RUN_KEYS)


def mutate(props: dict[str, str], ops) -> dict[str, str]:
    p = dict(props)
    for op in ops:
        kind, key = op[0], md.PREFIX + str(op[1])
        if kind == "del":
            p.pop(key, None)
        elif kind in ("text", "number"):
            p[key] = op[2]
        elif kind == "json":
            p[key] = json.dumps(op[2])
        elif kind == "deep":
            p[key] = "[" * op[2] + "]" * op[2]
        elif kind == "frontend":
            try:
                fe = json.loads(p.get(md.PREFIX + md.K_FRONTEND, "{}"))
            except (ValueError, RecursionError):
                fe = {}
            if not isinstance(fe, dict):
                fe = {}
            fe[op[1]] = op[2]
            p[md.PREFIX + md.K_FRONTEND] = json.dumps(fe)
        elif kind == "labels":
            p[md.PREFIX + md.K_LABELS] = json.dumps(op[1])
        elif kind == "detector":
            p[md.PREFIX + md.K_DETECTOR] = json.dumps(op[1])
        elif kind == "unprefixed":
            p[op[1]] = op[2]
    return p


def within(name: str, v) -> bool:
    lim = LIMITS.get(name)
    return lim is None or (v is not None and lim.lo <= v <= lim.hi)


def check_info(fuzz, info: ModelInfo, target: str) -> None:
    """An accepted ModelInfo round-trips through its props and keeps its numbers inside hearkit.limits."""
    props, _ = fuzz.call(target, info.to_props)
    if props is None:
        return
    again, _ = fuzz.call(target, ModelInfo.from_props, props, info.source)
    fuzz.wrong("metadata_roundtrip", again is None or again.to_props() != props,
               f"to_props -> from_props changed {info!r}")
    fe = info.frontend
    for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
        fuzz.wrong("metadata_frontend_unbounded", not within(name, getattr(fe, name)),
                   f"front-end {name}={getattr(fe, name)!r} accepted; limits.{name} is {LIMITS.get(name)}")
    fuzz.wrong("metadata_frontend_unbounded", not (np.isfinite(fe.eps) and np.isfinite(fe.f_max)),
               f"front-end eps={fe.eps!r} f_max={fe.f_max!r} accepted")
    if info.task == "classify":
        fuzz.wrong("metadata_window_unbounded", info.window_samples is not None and not within("window_samples", info.window_samples),
                   f"window_samples={info.window_samples!r} accepted; limits.window_samples is {LIMITS.get('window_samples')}")
        fuzz.wrong("metadata_duplicate_labels", len(set(info.labels)) != len(info.labels), f"labels {info.labels!r} accepted")
        fuzz.wrong("metadata_labels_unbounded", not within("labels", len(info.labels)), f"{len(info.labels)} labels accepted")
    if info.task == "ctc":
        fuzz.wrong("metadata_subsampling_unbounded", not info.subsampling or info.subsampling < 1,
                   f"subsampling={info.subsampling!r} accepted")
        fuzz.wrong("metadata_vocab_unbounded", not within("vocab", len(info.vocab)), f"{len(info.vocab)} vocab entries accepted")


@pytest.fixture(scope="module")
def models(clf_export, ctc_model):
    """{task: (onnx ModelProto, its props)} of the classifier pipeline and the stand-in CTC pipeline."""
    out = {}
    for task, path in (("classify", clf_export / "pipeline.onnx"), ("ctc", ctc_model)):
        m = onnx.load(str(path))
        out[task] = (m, {p.key: p.value for p in m.metadata_props})
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_metadata")


@budget(3.0)
@given(task=st.sampled_from(["classify", "ctc"]), ops=st.lists(mutation, min_size=1, max_size=5))
def test_mutated_props_parse_right_or_refuse(fuzz, models, task, ops):
    target = "metadata props"
    fuzz.example(target)
    props = mutate(models[task][1], ops)
    info, _ = fuzz.call(target, ModelInfo.from_props, props, "fuzz.onnx")
    if info is not None:
        check_info(fuzz, info, target)


@budget(0.5)
@given(task=st.sampled_from(["classify", "ctc"]), ops=st.lists(run_mutation, min_size=1, max_size=3))
def test_models_with_mutated_props_run_right_or_refuse(fuzz, models, workdir, task, ops):
    """Classifier, KeywordSpotter and Transcriber on a real graph whose metadata was rewritten."""
    from hearkit.classify import Classifier, KeywordSpotter
    from hearkit.transcribe import Transcriber

    target = "metadata via models"
    fuzz.example(target)
    model, props = models[task]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.metadata_props[:]
    for k, v in sorted(mutate(props, ops).items()):
        e = m.metadata_props.add()
        e.key, e.value = k, v
    path = workdir / "pipeline.onnx"
    path.write_bytes(m.SerializeToString())
    x = (0.1 * np.random.default_rng(0).standard_normal(12000)).astype(np.float32)

    clf, _ = fuzz.call(target, Classifier, path)
    if clf is not None:
        check_info(fuzz, clf.info, target)
        if len(set(clf.labels)) != len(clf.labels):
            return  # scores keyed by label cannot be right; counted as metadata_duplicate_labels
        pred, _ = fuzz.call(target, clf.classify, x)
        if pred is not None:
            p = np.array(list(pred.scores.values()))
            fuzz.wrong("classify_nonfinite_scores", not (np.isfinite(p).all() and abs(p.sum() - 1) <= 1e-6),
                       f"scores {pred.scores}")  # softmax in float64: 1e-6 is generous
            assert list(pred.scores) == clf.labels and pred.label in clf.labels
    kws, _ = fuzz.call(target, KeywordSpotter, path)
    if kws is not None:
        dets, _ = fuzz.call(target, kws.accept_waveform, np.concatenate([x, x]))
        for d in dets or []:
            assert d.label in kws.labels and np.isfinite(d.score) and 0 <= d.time <= 2 * x.size / kws.sample_rate + 1e-9, d
    tr, _ = fuzz.call(target, Transcriber, path, chunk_seconds=0.5, overlap_seconds=0.2)
    if tr is not None:
        out, _ = fuzz.call(target, tr.transcribe, x)
        if out is not None:
            assert out.text == " ".join(w.text for w in out.words), out
