"""Device profiles, ``hearkit devices``, bundles from ``hearkit package`` and their verification."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hearkit import devices as hd
from hearkit import sessions as hs
from hearkit.artifacts import BundleError, load_manifest, resolve, verify_bundle
from hearkit.cli import main
from hearkit.errors import ConfigError, ModelError

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["jetson-orin", "raspberry-pi-4", "raspberry-pi-5", "x86-avx2", "x86-vnni"]
SAMPLE_RATE = 16000


# -- profiles -----------------------------------------------------------------


def test_shipped_profiles_load_and_match_their_folders():
    assert hd.list_profiles() == NAMES
    for p in hd.load_all_profiles():
        assert (ROOT / "devices" / p.name / "profile.toml").is_file()
        assert p.providers[-1] == "CPUExecutionProvider", p.name
        assert p.frontend_precision == "fp32" and p.frontend_backend == "conv-dft", p.name
        assert all(v.strip() for v in p.why.values())
    pi4, pi5 = hd.load_profile("raspberry-pi-4"), hd.load_profile("raspberry-pi-5")
    assert (pi4.cpu, pi5.cpu) == ("cortex-a72", "cortex-a76")
    assert pi4.ort_target_platform == pi5.ort_target_platform == "arm"
    avx2 = hd.load_profile("x86-avx2")
    assert avx2.quantization.reduce_range and avx2.quantization.activation_type == "uint8"
    jet = hd.load_profile("jetson-orin")
    assert jet.providers[:2] == ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    assert jet.quantization.symmetric_activations and jet.quantization.symmetric_weights
    assert jet.tensorrt is not None and jet.tensorrt.engine_cache and jet.tensorrt.timing_cache


def _raw(name="raspberry-pi-5") -> dict:
    import tomllib

    return tomllib.loads((ROOT / "devices" / name / "profile.toml").read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["why"].pop("session.threads"), "missing: ['session.threads']"),
        (lambda d: d["session"].update(providers=["NpuExecutionProvider"]), "unknown provider 'NpuExecutionProvider'"),
        (lambda d: d["session"].update(threads=0), "session.threads must be an integer from 1 to 256"),
        (lambda d: d["session"].update(prefer="int4"), "session.prefer must be one of"),
        (lambda d: d["quantization"].update(activation_type="int4"), "quantization.activation_type must be one of"),
        (lambda d: d["session"].update(spinning="no"), "session.spinning must be a bool"),
        (lambda d: d["session"].update(turbo=True), "unknown key(s) ['turbo'] in [session]"),
        (lambda d: d["frontend"].update(precision="fp16"), "frontend.precision must be one of ['fp32']"),
        (lambda d: d["why"].update({"session.turbo": "x"}), "explains keys that do not exist"),
        (lambda d: d.pop("package"), "missing table [package]"),
    ],
)
def test_invalid_profiles_are_refused_with_the_key(mutate, message):
    d = copy.deepcopy(_raw())
    mutate(d)
    with pytest.raises(ConfigError) as e:
        hd.profile_from_dict(d, source="test.toml")
    assert message in str(e.value) and "test.toml" in str(e.value)


def test_tensorrt_profile_needs_symmetric_int8_and_options():
    d = copy.deepcopy(_raw("jetson-orin"))
    d["quantization"]["symmetric_activations"] = False
    with pytest.raises(ConfigError, match="symmetric"):
        hd.profile_from_dict(d)
    d = copy.deepcopy(_raw("jetson-orin"))
    d["tensorrt"]["min_seconds"] = 40.0
    with pytest.raises(ConfigError, match="min_seconds <= opt_seconds"):
        hd.profile_from_dict(d)


def test_profile_from_a_path_and_unknown_names(tmp_path):
    (tmp_path / "profile.toml").write_text((ROOT / "devices" / "x86-vnni" / "profile.toml").read_text())
    assert hd.load_profile(tmp_path).name == "x86-vnni"
    assert hd.load_profile(tmp_path / "profile.toml").threads == 1
    with pytest.raises(ConfigError, match="known devices: jetson-orin, raspberry-pi-4"):
        hd.load_profile("raspberry-pi-3")


def test_missing_provider_warns_once(monkeypatch):
    monkeypatch.setattr(hs, "_WARNED", set())
    jet = hd.load_profile("jetson-orin")
    with pytest.warns(hs.DeviceWarning, match="asks for TensorrtExecutionProvider.*onnxruntime-gpu"):
        got = hs.provider_list(jet, available=["CPUExecutionProvider"])
    assert got == ["CPUExecutionProvider"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise
        assert hs.provider_list(jet, available=["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_cpu_profiles_do_not_warn(monkeypatch):
    monkeypatch.setattr(hs, "_WARNED", set())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("raspberry-pi-4", "x86-avx2"):
            assert hs.provider_list(hd.load_profile(name)) == ["CPUExecutionProvider"]


def test_cli_devices_lists_and_shows():
    r = CliRunner().invoke(main, ["devices"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == NAMES
    r = CliRunner().invoke(main, ["devices", "jetson-orin"])
    assert r.exit_code == 0 and "tensorrt.engine_cache" in r.output and "docs/design.md §5" in r.output
    r = CliRunner().invoke(main, ["devices", "--json"])
    assert set(json.loads(r.output)) == set(NAMES)
    r = CliRunner().invoke(main, ["devices", "nope"])
    assert r.exit_code == 2 and "unknown device 'nope'" in r.output


# -- bundles ------------------------------------------------------------------


@pytest.fixture(scope="module")
def kws_export(untrained_classifier, tmp_path_factory) -> tuple[Path, Path]:
    """An fp32 export of an untrained DS-CNN-S and a folder of calibration audio."""
    pytest.importorskip("onnx", reason="export needs hearkit[train] (onnx)")
    import soundfile as sf

    from hearkit.export.exporter import export_classifier

    tmp = tmp_path_factory.mktemp("kws")
    export_classifier(untrained_classifier, tmp / "export", quantize=(), log=lambda m: None)
    calib = tmp / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for i in range(8):
        sf.write(calib / f"{i}.wav", (0.3 * np.sin(2 * np.pi * 200 * (i + 1) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32), SAMPLE_RATE)
    (calib / "validation_list.txt").write_text("7.wav\n")
    return tmp / "export", calib


@pytest.fixture(scope="module")
def bundles(kws_export, tmp_path_factory) -> dict[str, Path]:
    """The keyword export packaged for every shipped profile."""
    from hearkit.export.package import package

    export, calib = kws_export
    out = tmp_path_factory.mktemp("bundles")
    return {n: Path(package(export, out / n, n, data=calib, log=lambda m: None) and out / n) for n in NAMES}


def test_every_profile_packages_with_its_recipe(bundles):
    from hearkit.metadata import read_model_info

    for name, b in bundles.items():
        prof = hd.load_profile(name)
        m = verify_bundle(b)
        assert m["device"] == name and m["preferred"] in m["files"]
        q = read_model_info(b / "pipeline.int8.onnx").quantization
        for k, v in prof.quantization.to_dict().items():
            assert q[k] == v, (name, k, q[k], v)
        # calibration skipped the clip in validation_list.txt
        assert q["calibration_clips"] == 7, name
        expected = {"frontend.onnx", "model.onnx", "pipeline.onnx", "model.int8.onnx", "pipeline.int8.onnx",
                    "pipeline.ort", "pipeline.int8.ort", "required_operators_and_types.config",
                    "hearkit_model.h", "hearkit_model.c", "README.md"}
        assert expected <= set(m["files"]), (name, expected - set(m["files"]))
        assert m["metadata"]["hearkit.task"] == "classify" and json.loads(m["metadata"]["hearkit.labels"]) == ["a", "b", "c"]
        assert "--include_ops_by_config" in (b / "README.md").read_text()
        # the Python line of the README names the one resolver, with this profile's variant
        assert f'hearkit.artifacts.resolve("{name}", prefer="{prof.prefer}")' in (b / "README.md").read_text()
    # the fp32 pipeline is the export's, byte for byte
    a = load_manifest(bundles["x86-vnni"])["files"]["pipeline.onnx"]["sha256"]
    assert a == load_manifest(bundles["raspberry-pi-4"])["files"]["pipeline.onnx"]["sha256"]


def test_ort_models_give_the_onnx_outputs(bundles):
    """Fixed-style ORT models run the same math: fp32 within 1e-5 (fusions may reorder float sums),
    int8 within one output quantization step (the fused kernels requantize once)."""
    import onnxruntime as ort

    x = (0.1 * np.random.default_rng(3).standard_normal((3, SAMPLE_RATE))).astype(np.float32)
    for name in ("x86-vnni", "raspberry-pi-4"):
        b = bundles[name]
        for stem, atol in (("pipeline", 1e-5), ("pipeline.int8", 1e-3)):
            outs = [ort.InferenceSession(str(b / f"{stem}.{k}"), providers=["CPUExecutionProvider"]).run(None, {"waveform": x})[0]
                    for k in ("onnx", "ort")]
            np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=atol, err_msg=f"{name} {stem}")
            assert np.array_equal(outs[1].argmax(-1), outs[0].argmax(-1))
    ops = (bundles["x86-vnni"] / "required_operators_and_types.config").read_text()
    # typed config made from the optimised graphs: quantized and fused kernels are listed
    assert "QLinearConv" in ops or "QLinear" in ops or "FusedConv" in ops, ops
    assert "/tmp" not in ops.split("\n", 3)[1]


def test_resolve_prefers_and_verifies(bundles, tmp_path):
    b = bundles["raspberry-pi-5"]
    assert resolve(b).name == "pipeline.int8.onnx"
    assert resolve(b, prefer="fp32").name == "pipeline.onnx"
    assert resolve(b, kind="ort").name == "pipeline.int8.ort"
    assert hs.model_file(bundles["jetson-orin"], "jetson-orin").name == "pipeline.onnx"
    # a bundle whose model was changed is refused, naming the file
    bad = tmp_path / "bad"
    shutil.copytree(b, bad)
    data = bytearray((bad / "pipeline.int8.onnx").read_bytes())
    data[-10] ^= 0xFF
    (bad / "pipeline.int8.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"pipeline\.int8\.onnx: sha256 .* does not match manifest\.json"):
        resolve(bad)
    with pytest.raises(BundleError, match=r"pipeline\.int8\.onnx"):
        resolve(bad / "pipeline.int8.onnx")
    assert resolve(bad, prefer="fp32").name == "pipeline.onnx"  # untouched files still run
    with pytest.raises(BundleError, match="pipeline.int8.onnx"):
        verify_bundle(bad)
    # an extra file not in the manifest is not run
    shutil.copy(b / "pipeline.onnx", bad / "other.onnx")
    with pytest.raises(BundleError, match="not listed"):
        resolve(bad / "other.onnx")
    (bad / "pipeline.ort").unlink()
    with pytest.raises(BundleError, match="missing from the bundle"):
        resolve(bad, prefer="fp32", kind="ort")


def test_cli_package_and_verify(kws_export, bundles, tmp_path):
    export, calib = kws_export
    out = tmp_path / "b"
    r = CliRunner().invoke(main, ["package", str(export), "--device", "x86-vnni", "-o", str(out), "--data", str(calib), "--no-ort"])
    assert r.exit_code == 0, r.output
    assert "pipeline.int8.onnx" in r.output and not (out / "pipeline.ort").exists()
    r = CliRunner().invoke(main, ["package", "--verify", str(out)])
    assert r.exit_code == 0 and "match manifest.json" in r.output
    (out / "README.md").write_text("edited\n")
    r = CliRunner().invoke(main, ["package", "--verify", str(out)])
    assert r.exit_code == 2 and "README.md" in r.output
    r = CliRunner().invoke(main, ["package", str(export), "--device", "x86-vnni"])
    assert r.exit_code == 2 and "-o BUNDLE_DIR" in r.output
    # refuses to overwrite a folder that is not a bundle
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("x")
    r = CliRunner().invoke(main, ["package", str(export), "--device", "x86-vnni", "-o", str(tmp_path / "notes")])
    assert r.exit_code == 2 and "not a hearkit bundle" in r.output


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_package_never_removes_what_it_did_not_write(kws_export, tmp_path):
    """-o refuses a folder with someone else's manifest.json, a folder holding the export, and an
    existing bundle without --force; with --force only the old bundle's listed files are replaced."""
    export, calib = kws_export
    args = ["package", str(export), "--device", "x86-vnni", "--data", str(calib), "--no-ort", "-o"]
    web = tmp_path / "site"
    (web / "js").mkdir(parents=True)
    (web / "manifest.json").write_text('{"name": "my web app", "icons": []}')
    (web / "index.html").write_text("<html></html>")
    (web / "js" / "app.js").write_text("x = 1")
    before = _tree(web)
    r = CliRunner().invoke(main, args + [str(web)])
    assert r.exit_code == 2 and "not a hearkit bundle" in r.output and str(web) in r.output
    assert _tree(web) == before
    # a folder that contains the export (the export's parent) is refused, and the export is kept
    parent = tmp_path / "proj"
    shutil.copytree(export, parent / "exp")
    before = _tree(parent)
    for out in (parent, parent / "exp"):
        r = CliRunner().invoke(main, ["package", str(parent / "exp"), "--device", "x86-vnni", "--data", str(calib), "--no-ort", "-o", str(out)])
        assert r.exit_code == 2 and "contain the export" in r.output, r.output
    assert _tree(parent) == before
    # an existing bundle is replaced only with --force; a file the user put there survives
    b = tmp_path / "bundle"
    assert CliRunner().invoke(main, args + [str(b)]).exit_code == 0
    (b / "NOTES.txt").write_text("my notes")
    before = _tree(b)
    r = CliRunner().invoke(main, args + [str(b)])
    assert r.exit_code == 2 and "--force" in r.output
    assert _tree(b) == before
    r = CliRunner().invoke(main, args + [str(b), "--force"])
    assert r.exit_code == 0, r.output
    assert (b / "NOTES.txt").read_text() == "my notes" and "NOTES.txt" in r.output
    assert verify_bundle(b, extra_ok=True)["device"] == "x86-vnni"
    with pytest.raises(BundleError, match="NOTES.txt"):  # a full check reports the file the manifest does not list
        verify_bundle(b)
    assert not [p for p in tmp_path.iterdir() if "hearkit-tmp" in p.name]  # no temporary folder left


def test_package_failure_leaves_the_old_bundle(kws_export, tmp_path, monkeypatch):
    """A failure while writing (here: the ORT conversion) leaves the previous bundle as it was."""
    import hearkit.export.package as pk

    export, calib = kws_export
    b = tmp_path / "bundle"
    pk.package(export, b, "x86-vnni", data=calib, ort=False, log=lambda m: None)
    before = _tree(b)

    def broken(*a, **k):
        raise ModelError("ORT-format conversion failed: simulated")

    monkeypatch.setattr(pk, "convert_to_ort", broken)
    with pytest.raises(ModelError, match="simulated"):
        pk.package(export, b, "x86-vnni", data=calib, force=True, log=lambda m: None)
    assert _tree(b) == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_c_sources_compile(bundles, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to check hearkit_model.c with")
    b = bundles["raspberry-pi-5"]
    r = subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-c", str(b / "hearkit_model.c"), "-I", str(b), "-o", str(tmp_path / "m.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    size = (b / "pipeline.int8.ort").stat().st_size
    assert f"#define HEARKIT_MODEL_SIZE {size}u" in (b / "hearkit_model.h").read_text()


def test_tensorrt_options_from_profile_and_model(bundles, tmp_path, monkeypatch):
    """No GPU here: the TensorRT provider options are built as they would be on a Jetson."""
    monkeypatch.setattr(hs, "_WARNED", set())
    jet = hd.load_profile("jetson-orin")
    jet = hd.DeviceProfile(**{**jet.__dict__, "tensorrt": hd.TensorRTOptions(**{**jet.tensorrt.__dict__, "cache_dir": str(tmp_path / "trt")})})
    got = hs.provider_list(jet, bundles["jetson-orin"] / "pipeline.onnx",
                           available=["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    (name, opts), cuda, cpu = got
    assert name == "TensorrtExecutionProvider" and cuda[0] == "CUDAExecutionProvider" and cpu == "CPUExecutionProvider"
    assert opts["trt_fp16_enable"] and not opts["trt_int8_enable"]
    assert opts["trt_engine_cache_path"] == str(tmp_path / "trt") and (tmp_path / "trt").is_dir()
    assert (opts["trt_profile_min_shapes"], opts["trt_profile_opt_shapes"], opts["trt_profile_max_shapes"]) == (
        "waveform:1x8000", "waveform:1x16000", "waveform:1x480000")
    fixed = hd.TensorRTOptions(shapes="fixed")
    assert hs.trt_shape_profile(bundles["jetson-orin"] / "pipeline.onnx", fixed)["trt_profile_max_shapes"] == "waveform:1x16000"


def test_profile_session_runs_a_bundle(bundles):
    sess = hs.profile_session(hd.load_profile("raspberry-pi-5"), resolve(bundles["raspberry-pi-5"]))
    y = sess.run(None, {"waveform": np.zeros((2, SAMPLE_RATE), np.float32)})[0]
    assert y.shape == (2, 3) and np.isfinite(y).all()


def test_hearkit_run_takes_a_bundle_and_refuses_a_modified_one(bundles, kws_export, tmp_path):
    _, calib = kws_export
    b = tmp_path / "b"
    shutil.copytree(bundles["raspberry-pi-5"], b)
    r = CliRunner().invoke(main, ["run", str(b), str(calib / "0.wav")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["label"] in ("a", "b", "c")
    data = bytearray((b / "pipeline.int8.onnx").read_bytes())
    data[100] ^= 0x01
    (b / "pipeline.int8.onnx").write_bytes(bytes(data))
    r = CliRunner().invoke(main, ["run", str(b), str(calib / "0.wav")])
    assert r.exit_code == 2 and "pipeline.int8.onnx" in r.output and "does not match manifest.json" in r.output


def test_bench_takes_a_bundle_path(bundles):
    """`hearkit bench PATH` (no subcommand name) measures every variant; figures are reported, not asserted."""
    r = CliRunner().invoke(main, ["bench", str(bundles["x86-vnni"]), "--device", "x86-vnni", "--repeat", "3", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["device"] == "x86-vnni"
    assert [m["model"] for m in rep["models"]] == ["pipeline.int8.onnx", "pipeline.onnx", "pipeline.int8.ort", "pipeline.ort"]
    for m in rep["models"]:
        assert m["p50_ms"] > 0 and m["p95_ms"] >= m["p50_ms"] and m["bytes"] > 0 and m["rtf"] > 0
    fp = rep["footprint"]["hearkit"]
    assert "error" not in fp, fp
    assert fp["rss_mb"] > 10 and fp["label"] in ("a", "b", "c") and fp["model"].endswith("pipeline.int8.onnx")
    # the spotter's CPU share, every way it runs: frame by frame and whole window, then each pipeline file
    sp = rep["spotter"]
    assert [r["case"] for r in sp[:2]] == ["preferred variant, streaming", "preferred variant, full window"]
    assert [r["model"] for r in sp[2:]] == ["pipeline.int8.onnx", "pipeline.onnx"]
    assert sp[0]["streaming"] is True and not any(r["streaming"] for r in sp[1:])
    assert all(r["cpu_share_percent"] > 0 for r in sp) and rep["spotter_target_percent"] == 0.2
    # beside it, openWakeWord's official model on the same noise (or one line saying the extra is missing)
    (peer,) = rep["spotter_peers"]
    assert peer["case"] == "openWakeWord alexa (peer, TFLite)"
    assert ("hearkit[oww]" in peer["error"]) if "error" in peer else (peer["cpu_share_percent"] > 0 and peer["threads"] == 1)
    r = CliRunner().invoke(main, ["bench", "model", str(bundles["x86-vnni"] / "pipeline.onnx"), "--repeat", "2",
                                  "--no-footprint", "--no-spotter"])
    assert r.exit_code == 0 and "pipeline.onnx" in r.output and "footprint" not in r.output and "spotter" not in r.output
