"""``--device NAME`` on ``hearkit export``, ``run``, ``stream`` and ``transcribe``, and the runtime classes behind them.

Models are tiny: an untrained DS-CNN-S checkpoint (as in test_devices.py) exported
through the CLI, and the onnx.helper stand-in CTC pipeline of test_transcribe.py.
This machine has only the CPU provider, so ``jetson-orin`` shows the missing-provider path.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hearkit import devices as hd
from hearkit import sessions as hs
from hearkit.cli import main

torch = pytest.importorskip("torch", reason="building the test checkpoint needs hearkit[train]")
pytest.importorskip("onnx", reason="export needs hearkit[train] (onnx)")

SAMPLE_RATE = 16000
LABELS = ["a", "b", "c"]
KNOWN = "known devices: jetson-orin, raspberry-pi-4, raspberry-pi-5, x86-avx2, x86-vnni"
CALIBRATION_CLIPS = 6  # enough to exercise static calibration; accuracy is not the point here


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test sees the device warnings anew (they are emitted once per process)."""
    monkeypatch.setattr(hs, "_WARNED", set())


@pytest.fixture(scope="module")
def kws(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint of an untrained DS-CNN-S on 3 labels, a `folders` dataset of tones for calibration)."""
    import soundfile as sf

    from hearkit.frontend import FrontendConfig
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.models import build_model

    tmp = tmp_path_factory.mktemp("kws")
    torch.manual_seed(0)
    cfg = FrontendConfig()
    net = build_model("dscnn-s", len(LABELS), cfg.n_mels)
    save_checkpoint({"task": "classify", "model": net.config(), "frontend": cfg.to_dict(), "labels": LABELS,
                     "window_samples": SAMPLE_RATE, "state_dict": net.state_dict(), "metrics": {}, "train_config": {}},
                    tmp / "kws.pt")
    data = tmp / "data"
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for k, lab in enumerate(LABELS):
        (data / lab).mkdir(parents=True)
        for i in range(4):
            x = 0.3 * np.sin(2 * np.pi * 150 * (k + 1) * (i + 1) * t) + 0.05 * rng.standard_normal(t.size)
            sf.write(data / lab / f"s{i}_{lab}.wav", x.astype(np.float32), SAMPLE_RATE)
    return tmp / "kws.pt", data


def _export(kws, out, device):
    ckpt, data = kws
    r = invoke("export", ckpt, "-o", out, "--device", device, "--data", data, "--calibration-clips", CALIBRATION_CLIPS)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def vnni_export(kws, tmp_path_factory) -> Path:
    return _export(kws, tmp_path_factory.mktemp("export") / "vnni", "x86-vnni")


def _clip(kws) -> Path:
    return next((kws[1] / "b").glob("*.wav"))


# -- export -------------------------------------------------------------------


@pytest.mark.parametrize("device", ["x86-vnni", "x86-avx2", "raspberry-pi-4"])
def test_export_quantizes_with_the_device_recipe(device, kws, vnni_export, tmp_path):
    """Registered default (vnni), registered other (avx2: renamed to int8) and unregistered (Pi 4: as `package` does)."""
    from hearkit.export.package import device_recipe, find_variant
    from hearkit.metadata import read_model_info

    out = vnni_export if device == "x86-vnni" else _export(kws, tmp_path / device, device)
    prof = hd.load_profile(device)
    recipe = device_recipe(prof)
    q = read_model_info(out / "pipeline.int8.onnx").quantization
    assert q["recipe"] == recipe.name
    for k, v in prof.quantization.to_dict().items():
        assert q[k] == v, (device, k, q[k], v)
    assert read_model_info(out / "model.int8.onnx").quantization["recipe"] == recipe.name
    assert sorted(p.name for p in out.glob("*.onnx")) == [
        "frontend.onnx", "model.int8.onnx", "model.onnx", "pipeline.int8.onnx", "pipeline.onnx"]
    summary = json.loads((out / "export.json").read_text())
    assert summary["device"] == device
    assert summary["variants"] == {"int8": {"recipe": recipe.name, "model": "model.int8.onnx", "pipeline": "pipeline.int8.onnx"}}
    from hearkit.artifacts import sha256_file

    assert summary["files"]["pipeline.int8.onnx"]["sha256"] == sha256_file(out / "pipeline.int8.onnx")
    # `hearkit package --device` for the same device reuses it instead of quantizing again
    found = find_variant(out, recipe)
    assert found is not None and found[1].name == "pipeline.int8.onnx"


# -- runtime classes --------------------------------------------------------------


def _threads_spinning_level(sess):
    opts = sess.get_session_options()
    try:
        spin = opts.get_session_config_entry("session.intra_op.allow_spinning")
    except Exception:  # not set: onnxruntime's default (spinning on)
        spin = "1"
    return opts.intra_op_num_threads, spin, opts.graph_optimization_level


def test_runtime_classes_take_the_profile(vnni_export):
    import onnxruntime as ort

    from hearkit import Classifier, KeywordSpotter

    full, ext = ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    clf = Classifier(vnni_export, device="raspberry-pi-5")
    assert clf.path.name == "pipeline.int8.onnx"
    assert _threads_spinning_level(clf.scorer.session) == (2, "0", full)
    # x86 profiles spin for one-off clips, but the keyword spotter's periodic runs never do (docs/design.md §6)
    assert _threads_spinning_level(Classifier(vnni_export, device="x86-vnni").scorer.session) == (1, "1", full)
    kws = KeywordSpotter(vnni_export, device=hd.load_profile("x86-vnni"))
    assert _threads_spinning_level(kws.scorer.session) == (1, "0", full)
    assert Classifier(vnni_export, device="x86-vnni", threads=3).scorer.session.get_session_options().intra_op_num_threads == 3
    # jetson prefers fp32 (TensorRT builds its own reduced precision) and uses the extended level
    with pytest.warns(hs.DeviceWarning):
        jet = Classifier(vnni_export, device="jetson-orin")
    assert jet.path.name == "pipeline.onnx"
    assert _threads_spinning_level(jet.scorer.session) == (2, "0", ext)
    # without a device nothing changes: int8 first, 1 thread, spinning on
    plain = Classifier(vnni_export)
    assert plain.path.name == "pipeline.int8.onnx"
    assert _threads_spinning_level(plain.scorer.session) == (1, "1", full)


def test_open_model_refuses_device_with_providers(vnni_export):
    from hearkit.errors import ConfigError

    with pytest.raises(ConfigError, match="not both"):
        hs.open_model(vnni_export, "x86-vnni", providers=["CPUExecutionProvider"])


# -- CLI --------------------------------------------------------------------------


def test_run_and_stream_with_a_device(vnni_export, kws):
    clip = _clip(kws)
    r = invoke("run", vnni_export, clip, clip, "--device", "x86-vnni")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.strip().splitlines()]
    assert len(lines) == 2 and lines[0]["label"] in LABELS
    # same decision as the API with the same device (same model file, same session settings)
    from hearkit import Classifier

    want = Classifier(vnni_export, device="x86-vnni").classify(clip)
    assert lines[0]["label"] == want.label and lines[0]["score"] == pytest.approx(want.score, abs=1e-5)  # JSON rounds to 5 places
    # threshold 0: the top label is always above it, so the stream must report a detection
    r = invoke("stream", vnni_export, clip, "--device", "x86-vnni", "--threshold", "0", "--refractory", "0.3")
    assert r.exit_code == 0, r.output
    found = [json.loads(x) for x in r.output.strip().splitlines()]
    assert len(found) >= 1 and all(d["label"] in LABELS for d in found)


def _ctc_module():
    """build_ctc_model from test_transcribe.py (test modules cannot import each other under importlib mode)."""
    spec = importlib.util.spec_from_file_location("_hk_test_transcribe", Path(__file__).with_name("test_transcribe.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ctc")
    _ctc_module().build_ctc_model(d / "pipeline.onnx")
    return d


def test_transcribe_with_a_device(ctc_dir, kws):
    clip = _clip(kws)
    r = invoke("transcribe", ctc_dir, clip, "--device", "raspberry-pi-5", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    from hearkit import Transcriber

    tr = Transcriber(ctc_dir, device="raspberry-pi-5")
    assert Path(tr.path).name == "pipeline.onnx"  # the folder has no int8 variant: fp32 is next
    assert tr.session.get_session_options().intra_op_num_threads == 2
    assert got["text"] == tr.transcribe(clip).text  # same model, same session settings: identical tokens
    assert Transcriber(ctc_dir, device="raspberry-pi-5", spinning=False).session.get_session_options() \
        .get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize("command", ["export", "run", "stream", "transcribe"])
def test_unknown_device_is_one_line_and_exit_2(command, kws, vnni_export, ctc_dir):
    clip = _clip(kws)
    args = {
        "export": ["export", kws[0], "-o", vnni_export.parent / "never"],
        "run": ["run", vnni_export, clip],
        "stream": ["stream", vnni_export, clip],
        "transcribe": ["transcribe", ctc_dir, clip],
    }[command]
    r = invoke(*args, "--device", "raspberry-pi-3")
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0, r.output
    assert "unknown device 'raspberry-pi-3'" in r.output and KNOWN in r.output
    assert not (vnni_export.parent / "never").exists()


@pytest.mark.parametrize("command", ["run", "stream", "transcribe"])
def test_jetson_on_cpu_warns_once_and_runs(command, kws, vnni_export, ctc_dir):
    clip = _clip(kws)
    model = ctc_dir if command == "transcribe" else vnni_export
    extra = [clip] if command != "stream" else []  # two files: the warning still comes once
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        r = invoke(command, model, clip, *extra, "--device", "jetson-orin")
    assert r.exit_code == 0, r.output
    msgs = [str(w.message) for w in got if issubclass(w.category, hs.DeviceWarning)]
    assert len(msgs) == 2, msgs  # one for TensorRT, one for CUDA, none repeated
    assert "asks for TensorrtExecutionProvider" in msgs[0] and "asks for CUDAExecutionProvider" in msgs[1]
    assert all("running without it" in m and "onnxruntime-gpu" in m for m in msgs)


def test_jetson_warning_seen_once_by_a_user(vnni_export, kws):
    """In a real process (stderr as a user sees it), two clips still give one line per provider."""
    clip = _clip(kws)
    r = subprocess.run([sys.executable, "-m", "hearkit.cli", "run", str(vnni_export), str(clip), str(clip), "--device", "jetson-orin"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 2
    assert r.stderr.count("asks for TensorrtExecutionProvider") == 1, r.stderr
    assert r.stderr.count("asks for CUDAExecutionProvider") == 1, r.stderr
