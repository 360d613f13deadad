"""Classification deployment end to end on real Speech Commands clips:
tiny checkpoint -> hearkit export (fp32 + int8) -> verify / run / stream / eval / bench,
through the CLI (CliRunner) and the Python API.

The checkpoint is a 2-epoch DS-CNN-S on 96 clips per split: untrained in accuracy
terms, but real weights, real BatchNorm statistics and real calibration data, which
is what export, quantization and the runtime need to be exercised.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export tests need hearkit[train] (torch)")
pytest.importorskip("onnx", reason="export tests need hearkit[train] (onnx)")

from click.testing import CliRunner  # noqa: E402

from hearkit.cli import main  # noqa: E402

FP32_ATOL = 1e-3  # the verify default: torch vs ONNX fp32 logits (measured ~3e-8 here)


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture(scope="session")
def sc(shared_data) -> Path:
    root = shared_data / "speech_commands"
    if not root.is_dir():
        pytest.skip(f"{root} missing")
    return root


@pytest.fixture(scope="session")
def tiny_ckpt(sc, tmp_path_factory) -> Path:
    from hearkit.training.train_classify import TrainConfig, train_classifier

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("kws_run")
    from hearkit.training.augment import AugmentConfig

    # the augmentation defaults before they became the Speech Commands recipe's, as this was measured with
    train_classifier(TrainConfig(data=str(sc), out=str(out), model="dscnn-s", epochs=2, max_clips=96,
                                 batch_size=16, num_threads=1, progress=False,
                                 augment=AugmentConfig(snr_db=(0.0, 20.0), gain_db=(-6.0, 6.0))))
    assert (out / "best.pt").is_file()
    return out / "best.pt"


@pytest.fixture(scope="session")
def export_dir(tiny_ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kws_export")
    r = invoke("export", tiny_ckpt, "-o", out, "--quantize", "int8", "--calibration-clips", 24)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="session")
def val_clips(sc) -> list[Path]:
    """A few validation clips of different labels, deterministic."""
    lines = (sc / "validation_list.txt").read_text().split()
    return [sc / lines[i] for i in np.linspace(0, len(lines) - 1, 6).round().astype(int)]


def test_export_writes_every_file_with_metadata(export_dir, tiny_ckpt):
    from hearkit.export.onnx_io import sha256_file
    from hearkit.metadata import read_model_info
    from hearkit.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_ckpt)
    for name in ("frontend.onnx", "model.onnx", "pipeline.onnx", "model.int8.onnx", "pipeline.int8.onnx", "export.json"):
        assert (export_dir / name).is_file(), name
    assert not list(export_dir.glob("*.data")), "weights must live inside the .onnx (no external data)"
    sha = sha256_file(tiny_ckpt)
    for name, inp, fmt in [("pipeline.onnx", "waveform", "fp32"), ("pipeline.int8.onnx", "waveform", "qdq"),
                           ("model.int8.onnx", "logmel", "qdq")]:
        info = read_model_info(export_dir / name)
        assert info.task == "classify" and info.input == inp
        assert list(info.labels) == list(ckpt["labels"])
        assert info.window_samples == ckpt["window_samples"] == 16000
        assert info.checkpoint_sha256 == sha
        assert info.frontend.to_dict() == ckpt["frontend"]
        assert info.quantization.get("format") == fmt
        assert info.model["name"] == "dscnn-s"
    q = read_model_info(export_dir / "pipeline.int8.onnx").quantization
    assert q["recipe"] == "qdq-s8s8-perchannel" and q["per_channel"] and q["calibration_clips"] == 24
    summary = json.loads((export_dir / "export.json").read_text())
    assert {c["graph"] for c in summary["checks"]} == {"frontend.onnx", "pipeline.onnx", "model.onnx"}
    assert all(c["max_abs_err"] <= FP32_ATOL for c in summary["checks"] if c["graph"] != "frontend.onnx")


def test_graphs_take_any_batch_and_length(export_dir, tiny_ckpt):
    """Batch and time are dynamic in every graph (docs/design.md §6: an example batch of 1 would bake it in)."""
    import onnxruntime as ort

    from hearkit.export.classify import load_classifier
    from hearkit.export.pipeline import WaveformModel
    from hearkit.training.checkpoint import load_checkpoint

    net, cfg = load_classifier(load_checkpoint(tiny_ckpt))
    ref = WaveformModel(net, cfg).eval()
    rng = np.random.default_rng(0)
    pipe = ort.InferenceSession(str(export_dir / "pipeline.onnx"), providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(str(export_dir / "pipeline.int8.onnx"), providers=["CPUExecutionProvider"])
    for batch, n in [(1, 16000), (3, 8000), (2, 27200), (4, 3300)]:
        x = (0.1 * rng.standard_normal((batch, n))).astype(np.float32)
        with torch.no_grad():
            want = ref(torch.from_numpy(x)).numpy()
        got = pipe.run(None, {"waveform": x})[0]
        assert got.shape == want.shape == (batch, want.shape[1])
        np.testing.assert_allclose(got, want, atol=FP32_ATOL, rtol=0)
        assert q.run(None, {"waveform": x})[0].shape == want.shape
    m = ort.InferenceSession(str(export_dir / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    assert m.run(None, {"logmel": rng.standard_normal((5, 61, cfg.n_mels)).astype(np.float32)})[0].shape == (5, want.shape[1])


def test_classifier_api_matches_torch(export_dir, tiny_ckpt, val_clips):
    import hearkit
    from hearkit.audio import load_audio
    from hearkit.audio import fit_window
    from hearkit.export.classify import load_classifier
    from hearkit.export.pipeline import WaveformModel
    from hearkit.training.checkpoint import load_checkpoint

    net, cfg = load_classifier(load_checkpoint(tiny_ckpt))
    ref = WaveformModel(net, cfg).eval()
    clf = hearkit.Classifier(export_dir / "pipeline.onnx")
    wav = np.stack([fit_window(load_audio(p, 16000)[0], 16000) for p in val_clips])
    with torch.no_grad():
        want = ref(torch.from_numpy(wav)).numpy()
    np.testing.assert_allclose(clf.logits(val_clips), want, atol=FP32_ATOL, rtol=0)
    pred = clf.classify(val_clips[0])
    assert pred.label == clf.labels[int(want[0].argmax())]
    assert sum(pred.scores.values()) == pytest.approx(1.0, abs=1e-9)
    # arrays at another rate are resampled: 8 kHz input gives (nearly) the same scores as 16 kHz
    x16 = load_audio(val_clips[0], 16000)[0]
    x8 = load_audio(val_clips[0], 8000)[0]
    p8 = clf.classify(x8, sample_rate=8000)
    assert set(p8.scores) == set(pred.scores)
    # the directory form picks the int8 pipeline
    assert hearkit.Classifier(export_dir).path.name == "pipeline.int8.onnx"
    assert clf.classify(x16).label == pred.label


def test_verify_writes_reports_and_exit_code(export_dir, sc):
    r = invoke("verify", export_dir, "--data", sc, "--max-clips", 48, "--latency-runs", 2)
    report = json.loads((export_dir / "report.json").read_text())
    assert (export_dir / "report.md").read_text().startswith("# hearkit verify")
    assert r.exit_code == (0 if report["passed"] else 1), r.output
    assert report["clips"] == 48 and report["split"] == "val"
    assert report["results"]["fp32"]["logits_max_abs_err"] <= FP32_ATOL
    assert report["results"]["fp32"]["top1_agreement_with_torch"] == 1.0
    assert report["frontend_max_abs_err"] < 1e-2  # log-mel, ln with eps 1e-6: float32 rounding in quiet bins
    for k in ("torch", "fp32", "int8"):
        assert report["results"][k]["latency_ms"] > 0
        assert 0.0 <= report["results"][k]["accuracy"] <= 1.0
    assert report["results"]["int8"]["bytes"] < report["results"]["fp32"]["bytes"]
    # an impossible threshold must fail with exit code 1
    r = invoke("verify", export_dir, "--data", sc, "--max-clips", 8, "--latency-runs", 0, "--quant-agreement", 1.01)
    assert r.exit_code == 1
    assert json.loads((export_dir / "report.json").read_text())["passed"] is False


def test_run_prints_one_json_line_per_file(export_dir, val_clips):
    r = invoke("run", export_dir / "pipeline.int8.onnx", *val_clips[:3])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.strip().splitlines()]
    assert [x["file"] for x in lines] == [str(p) for p in val_clips[:3]]
    labels = json.loads((export_dir / "export.json").read_text())["labels"]
    assert all(x["label"] in labels and 0 <= x["score"] <= 1 for x in lines)


def test_bad_audio_path_is_one_line_and_exit_2(export_dir, tmp_path):
    r = CliRunner().invoke(main, ["run", str(export_dir), str(tmp_path / "missing.wav")])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "missing.wav" in r.output and "Traceback" not in r.output
    bad = tmp_path / "notaudio.wav"
    bad.write_text("hello")
    r = CliRunner().invoke(main, ["run", str(export_dir), str(bad)])
    assert r.exit_code == 2 and "notaudio.wav" in r.output


def test_metadata_missing_or_invalid_key_is_named(export_dir, tmp_path):
    import onnx

    import hearkit
    from hearkit.errors import ModelError

    m = onnx.load(str(export_dir / "pipeline.onnx"))
    keep = [p for p in m.metadata_props if p.key != "hearkit.labels"]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    onnx.save(m, str(tmp_path / "nolabels.onnx"))
    with pytest.raises(ModelError, match="hearkit.labels"):
        hearkit.Classifier(tmp_path / "nolabels.onnx")
    r = CliRunner().invoke(main, ["run", str(tmp_path / "nolabels.onnx"), str(tmp_path / "x.wav")])
    assert r.exit_code == 2 and "hearkit.labels" in r.output
    for p in m.metadata_props:
        if p.key == "hearkit.window_samples":
            p.value = "one second"
    m.metadata_props.add(key="hearkit.labels", value="[not json")
    onnx.save(m, str(tmp_path / "badjson.onnx"))
    with pytest.raises(ModelError, match="hearkit.labels.*not valid JSON"):
        hearkit.Classifier(tmp_path / "badjson.onnx")


def firing_threshold(export_dir, x) -> float:
    """A threshold the (untrained) model reaches on ``x``: just under its best smoothed keyword score."""
    import hearkit
    from hearkit.classify import is_background_label

    kws = hearkit.KeywordSpotter(export_dir, thresholds=2.0, record=True)
    kws.accept_waveform(x)
    keep = [i for i, lab in enumerate(kws.labels) if not is_background_label(lab)]
    return 0.999 * float(np.stack([h[1] for h in kws.history])[:, keep].max())


def test_stream_file_and_stdin_agree_and_plot(export_dir, val_clips, tmp_path):
    import soundfile as sf

    from hearkit.audio import load_audio

    # 3 clips back to back, as 16-bit PCM (what stdin carries)
    x = np.concatenate([load_audio(p, 16000)[0] for p in val_clips[:3]])
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
    wav = tmp_path / "three.wav"
    sf.write(wav, pcm, 16000, subtype="PCM_16")
    # a threshold the untrained model reaches, so detections exist to compare
    args = ["--threshold", f"{firing_threshold(export_dir, pcm.astype(np.float32) / 32768):.6f}", "--refractory", "0.5"]
    r_file = invoke("stream", export_dir, wav, *args, "--plot", tmp_path / "timeline.png")
    assert r_file.exit_code == 0, r_file.output
    r_pipe = invoke("stream", export_dir, "-", *args, input=pcm.tobytes())
    assert r_pipe.exit_code == 0, r_pipe.output
    dets_file = [json.loads(x) for x in r_file.stdout.splitlines() if x.startswith("{")]
    dets_pipe = [json.loads(x) for x in r_pipe.stdout.splitlines() if x.startswith("{")]
    assert dets_file, "no detection: the comparison would prove nothing"
    assert dets_file == dets_pipe  # same samples (16-bit in both), same detections
    assert (tmp_path / "timeline.png").stat().st_size > 1000
    for d in dets_file:
        assert set(d) == {"label", "time", "score"} and 0 < d["time"] <= len(x) / 16000 + 1e-9  # flush reports no time past the end


@pytest.mark.parametrize("chunk", [1, 7, 1601, None])
def test_keyword_spotter_same_detections_for_any_chunking(export_dir, val_clips, chunk):
    import hearkit
    from hearkit.audio import load_audio

    x = np.concatenate([load_audio(p, 16000)[0] for p in val_clips[:2]])
    th = firing_threshold(export_dir, x)
    kws = hearkit.KeywordSpotter(export_dir, thresholds=th, refractory_seconds=0.3, record=True)
    step = chunk or len(x)
    got = []
    for i in range(0, len(x), step):
        got += kws.accept_waveform(x[i : i + step])
    ref_kws = hearkit.KeywordSpotter(export_dir, thresholds=th, refractory_seconds=0.3, record=True)
    want = ref_kws.accept_waveform(x)
    assert want, "no detection: the comparison would prove nothing"
    assert got == want
    assert len(kws.history) == len(x) // 1600
    np.testing.assert_array_equal(np.stack([h[1] for h in kws.history]), np.stack([h[1] for h in ref_kws.history]))


def test_eval_json_and_confusion(export_dir, sc, tmp_path):
    r = invoke("eval", export_dir / "pipeline.onnx", "--data", sc, "--json", "--confusion", tmp_path / "cm.png")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert rep["clips"] == 505 and rep["split"] == "val"  # Speech Commands validation list (data README)
    assert sum(c["support"] for c in rep["per_class"].values()) == 505
    cm = np.array(rep["confusion"])
    assert cm.sum() == 505 and rep["accuracy"] == pytest.approx(np.trace(cm) / 505, abs=1e-12)
    assert (tmp_path / "cm.png").stat().st_size > 1000


def test_bench_classify_table(export_dir):
    r = invoke("bench", "classify", export_dir, "--repeat", 3, "--stream-seconds", 2, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout[r.stdout.index("{"):])
    names = [row["variant"] for row in res["rows"]]
    assert names[:4] == ["torch eager", "onnx fp32", "onnx fp32 (no NCHWc)", "onnx int8"]
    for row in res["rows"]:
        assert row["pipeline_ms"] > 0
    rows = dict(zip(names, res["rows"]))
    assert rows["onnx fp32"]["cpu_share_percent"] > 0 and rows["onnx int8"]["cpu_share_percent"] > 0
    assert "cpu_share_percent" not in rows["onnx fp32 (no NCHWc)"]  # the spotter runs at the runtime's level
    # both speed-ups are ratios of the rows' own network times (tolerance: float rounding)
    int8 = rows["onnx int8"]
    assert int8["x_vs_onnx_fp32"] == pytest.approx(rows["onnx fp32"]["network_ms"] / int8["network_ms"], rel=1e-9)
    assert int8["x_vs_onnx_fp32_no_nchwc"] == pytest.approx(
        rows["onnx fp32 (no NCHWc)"]["network_ms"] / int8["network_ms"], rel=1e-9)


@pytest.mark.parametrize("cmd", [["export"], ["verify"], ["run"], ["stream"], ["eval"], ["bench", "classify"]])
def test_help(cmd):
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0 and "Usage:" in r.output


def test_recipes_are_data_and_unknown_names_are_listed():
    from hearkit.errors import ConfigError
    from hearkit.export.quantize import DEFAULT_RECIPE, RECIPES, get_recipe

    assert get_recipe("int8").name == DEFAULT_RECIPE == "qdq-s8s8-perchannel"
    assert get_recipe("qdq-symmetric").symmetric_activations
    assert get_recipe("qdq-u8u8").activation_type == "uint8"
    assert get_recipe("fp16").format == "fp16"
    assert all(r.why for r in RECIPES.values())
    with pytest.raises(ConfigError, match="qdq-s8s8-perchannel"):
        get_recipe("dynamic")


def test_runtime_classify_needs_no_torch(export_dir, val_clips, monkeypatch):
    """Classifying and spotting import neither torch nor onnx on the way (lazy imports included).

    The modules' own imports without torch are tests/test_packaging.py's one subprocess test.
    """
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now raises ImportError
    monkeypatch.setitem(sys.modules, "onnx", None)
    import hearkit

    c = hearkit.Classifier(export_dir)
    assert c.classify(val_clips[0]).label in c.labels
    k = hearkit.KeywordSpotter(export_dir)
    k.accept_waveform(np.zeros(16000, np.float32))


def test_symmetric_and_u8_recipes_do_what_they_say(export_dir, tmp_path):
    """qdq-symmetric: every zero point is 0 (TensorRT); qdq-u8u8: activations and weights are uint8."""
    import onnx
    from onnx import numpy_helper

    from hearkit.export.quantize import get_recipe, quantize_network

    feats = np.random.default_rng(0).standard_normal((8, 98, 40)).astype(np.float32) * 2 - 6
    for name, check in [
        ("qdq-symmetric", lambda zp: np.all(zp == 0)),
        ("qdq-u8u8", lambda zp: zp.dtype == np.uint8),
    ]:
        m = quantize_network(export_dir / "model.onnx", tmp_path / f"{name}.onnx", get_recipe(name), feats)
        inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        zps = [inits[n.input[2]] for n in m.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
        assert zps, f"{name}: no QuantizeLinear nodes"
        assert all(check(z) for z in zps), name
        assert onnx.load(str(tmp_path / f"{name}.onnx")).graph.input[0].name == "logmel"


def test_model_info_round_trip(export_dir):
    from hearkit.metadata import ModelInfo, read_model_info

    info = read_model_info(export_dir / "pipeline.int8.onnx")
    again = ModelInfo.from_props(info.to_props(), source=info.source)
    assert again == info
