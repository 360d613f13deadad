"""`hearkit features`, `hearkit export-frontend` and `hearkit bench frontend` through click's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hearkit.cli import main
from hearkit.frontend import FrontendConfig, logmel


@pytest.fixture
def wav(tmp_path, signals):
    path = tmp_path / "clip.wav"
    x = signals.noise(16000, seed=5) + signals.chirp(16000, 16000, amp=0.2)
    sf.write(path, x, 16000, subtype="FLOAT")  # float WAV: the file holds exactly x
    return path, x


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("argv", [["features"], ["export-frontend"], ["bench"], ["bench", "frontend"]])
def test_help(argv):
    r = run(*argv, "--help")
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


def test_bench_lists_frontend():
    r = run("bench", "--help")
    assert "frontend" in r.output


@pytest.mark.parametrize("backend", ["numpy", "onnx-conv"])
def test_features_writes_frames_by_mels(wav, tmp_path, backend):
    if backend != "numpy":
        pytest.importorskip("onnx", reason="onnx-conv needs hearkit[train]")
    path, x = wav
    out = tmp_path / f"{backend}.npy"
    r = run("features", path, "-o", out, "--backend", backend, "--n-mels", 32, "--hop-length", 80, "--center")
    assert r.exit_code == 0, r.output
    y = np.load(out)
    cfg = FrontendConfig(n_mels=32, hop_length=80, center=True)
    assert y.dtype == np.float32 and y.shape == (cfg.num_frames(16000), 32)
    # 5e-3: the clip holds a chirp, see TOL_LN_CHIRP in test_frontend_parity
    np.testing.assert_allclose(y, logmel(x, cfg), rtol=0, atol=5e-3 if backend != "numpy" else 1e-6)


def test_features_resamples_to_config_rate(wav, tmp_path):
    path, _ = wav
    out = tmp_path / "8k.npy"
    r = run("features", path, "-o", out, "--sample-rate", 8000, "--n-fft", 256, "--hop-length", 80)
    assert r.exit_code == 0, r.output
    assert np.load(out).shape == (FrontendConfig(sample_rate=8000, n_fft=256, hop_length=80).num_frames(8000), 40)


def test_features_bad_input_is_one_line(tmp_path, wav):
    path, _ = wav
    bad = tmp_path / "not_audio.wav"
    bad.write_text("hello")
    r = CliRunner().invoke(main, ["features", str(bad), "-o", str(tmp_path / "x.npy")])
    assert r.exit_code == 2 and "not an audio file" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["features", str(path), "-o", str(tmp_path / "x.npy"), "--win-length", "1024"])
    assert r.exit_code == 2 and "win_length" in r.output


def test_export_frontend_roundtrip(tmp_path, wav):
    pytest.importorskip("onnx", reason="export needs hearkit[train]")
    from hearkit.frontend_onnx import OnnxFrontend, OnnxStreamingFrontend

    path, x = wav
    fe_path = tmp_path / "fe.onnx"
    r = run("export-frontend", "-o", fe_path, "--n-fft", 400, "--mel-scale", "slaney", "--mel-norm", "slaney", "--n-mels", 64)
    assert r.exit_code == 0, r.output
    fe = OnnxFrontend(fe_path)
    assert fe.cfg == FrontendConfig(n_fft=400, mel_scale="slaney", mel_norm="slaney", n_mels=64)
    np.testing.assert_allclose(fe(x), logmel(x, fe.cfg), rtol=0, atol=5e-3)  # chirp in the clip, as above

    st_path = tmp_path / "fe.stream.onnx"
    r = run("export-frontend", "-o", st_path, "--streaming", "--backend", "onnx-stft")
    assert r.exit_code == 0, r.output
    assert OnnxStreamingFrontend(st_path).cfg == FrontendConfig()

    r = CliRunner().invoke(main, ["export-frontend", "-o", str(tmp_path / "c.onnx"), "--streaming", "--center"])
    assert r.exit_code == 2 and "center=False" in r.output


def test_bench_frontend_json():
    r = run("bench", "frontend", "--seconds", 0.2, "--repeat", 1, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    rows = {row["backend"]: row for row in data["results"]}
    assert {"numpy", "torch", "onnx-conv", "onnx-stft", "librosa (ref)", "torch.stft power (ref)"} <= set(rows)
    assert rows["numpy"]["ms_per_10s"] > 0
    for name in ("onnx-conv", "librosa (ref)"):
        if rows[name]["ms_per_10s"] is None:
            pytest.skip(f"{name} not measured here: {rows[name]['note']}")
        assert rows[name]["ms_per_10s"] > 0


def test_bench_frontend_table_and_png(tmp_path):
    pytest.importorskip("matplotlib", reason="--png needs hearkit[plot]")
    png = tmp_path / "bench.png"
    r = run("bench", "frontend", "--seconds", 0.2, "--repeat", 1, "--png", png)
    assert r.exit_code == 0, r.output
    assert "ms / 10 s" in r.stdout and "onnx-conv" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
