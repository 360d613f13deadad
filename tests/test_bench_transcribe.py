"""``hearkit bench transcribe``: torch eager, ONNX fp32 and ONNX int8 rows from one run on a tiny CTC export.

The export is an untrained, narrow ctc-conv (timing does not need trained
weights); int8 is calibrated on four seeded-noise utterances. No figure is
checked against a speed target here (targets live in the benchmark's output).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the tiny export needs torch (hearkit[train])")
pytest.importorskip("onnx", reason="the tiny export needs onnx (hearkit[train])")

from click.testing import CliRunner  # noqa: E402

from hearkit.cli import main  # noqa: E402

TINY = dict(channels=(16, 16), kernels=(5, 7), repeats=1, front_channels=16, front_kernel=5, end_channels=24, end_kernel=5)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    import soundfile as sf

    from hearkit.export.exporter import export_ctc
    from hearkit.text import VOCAB
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.ctc_models import build_model, model_config
    from hearkit.training.train_ctc import DEFAULT_FRONTEND

    tmp = tmp_path_factory.mktemp("bench_ctc")
    sr = DEFAULT_FRONTEND.sample_rate
    rng = np.random.default_rng(0)
    with open(tmp / "manifest.jsonl", "w") as f:
        for i in range(4):
            sf.write(tmp / f"u{i}.flac", (0.1 * rng.standard_normal(sr)).astype(np.float32), sr)
            f.write(json.dumps({"audio_filepath": f"u{i}.flac", "duration": 1.0, "text": "yes no"}) + "\n")
    torch.manual_seed(0)
    mc = {**model_config("ctc-conv-s", **TINY), "name": "tiny-conv"}  # not the preset: the target must not apply
    net = build_model(mc, DEFAULT_FRONTEND.n_mels, len(VOCAB))
    save_checkpoint({"task": "ctc", "model": mc, "frontend": DEFAULT_FRONTEND.to_dict(), "vocab": list(VOCAB),
                     "blank": 0, "state_dict": net.state_dict()}, tmp / "best.pt")
    out = tmp / "exp"
    export_ctc(tmp / "best.pt", out, quantize=("int8",), manifest=tmp / "manifest.jsonl", calibration_utterances=4,
               check_seconds=(0.5,), log=lambda *_: None)
    return out


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def test_help():
    r = CliRunner().invoke(main, ["bench", "transcribe", "--help"])
    assert r.exit_code == 0 and "Usage:" in r.output and "--seconds" in r.output


def test_three_rows_with_rtf_and_memory(tiny_export):
    res = _json(CliRunner().invoke(main, ["bench", "transcribe", str(tiny_export), "--seconds", "2", "--repeat", "1", "--json"]))
    rows = {r["variant"]: r for r in res["rows"]}
    assert list(rows)[:3] == ["torch eager", "onnx fp32", "onnx int8"]
    assert res["audio"]["seconds"] == pytest.approx(2.0, abs=1e-9)  # exact: 2 s at 16 kHz is a whole number of samples
    assert res["threads"] == 1 and res["model"] == "tiny-conv"
    for name in ("torch eager", "onnx fp32", "onnx int8"):
        r = rows[name]
        assert r["rtf"] > 0 and r["cpu_rtf"] > 0, r
        assert r["peak_rss_mb"] > res["baseline_rss_mb"] > 0, r  # loading a model and onnxruntime costs memory
        assert "memory_error" not in r, r
    # torch and fp32 compute the same log-probs (checked to 2e-3 at export), so greedy text agrees
    assert rows["torch eager"]["same_text_as_fp32"] is True
    assert rows["torch eager"]["peak_rss_mb"] > rows["onnx int8"]["peak_rss_mb"]  # torch itself is hundreds of MB
    assert res["baseline_rss_mb"] < res["baseline_torch_rss_mb"] < rows["torch eager"]["peak_rss_mb"]
    assert rows["onnx int8"]["bytes"] < rows["onnx fp32"]["bytes"]


def test_torch_row_skipped_without_export_json(tiny_export, tmp_path):
    d = tmp_path / "no_summary"
    shutil.copytree(tiny_export, d)
    (d / "export.json").unlink()
    r = CliRunner().invoke(main, ["bench", "transcribe", str(d / "pipeline.onnx"), "--seconds", "1", "--repeat", "1",
                                  "--no-memory", "--json"])
    res = _json(r)
    rows = {row["variant"]: row for row in res["rows"]}
    assert rows["torch eager"]["rtf"] is None and "export.json" in rows["torch eager"]["note"]
    assert rows["onnx fp32"]["rtf"] > 0 and rows["onnx int8"]["rtf"] > 0
    assert rows["onnx fp32"]["peak_rss_mb"] is None  # --no-memory


def test_folder_without_pipeline_is_refused(tmp_path):
    r = CliRunner().invoke(main, ["bench", "transcribe", str(tmp_path)])
    assert r.exit_code == 2 and "no pipeline" in r.output, r.output  # HearkitError -> one line, exit 2


def test_classifier_export_is_refused(tmp_path):
    from hearkit.export.frontend import build_frontend_graph
    from hearkit.export.pipeline import save_with_info
    from hearkit.frontend import FrontendConfig
    from hearkit.metadata import ModelInfo

    cfg = FrontendConfig()
    save_with_info(build_frontend_graph(cfg), ModelInfo(task="frontend", input="waveform", frontend=cfg), tmp_path / "pipeline.onnx")
    r = CliRunner().invoke(main, ["bench", "transcribe", str(tmp_path)])
    assert r.exit_code == 2 and "needs a CTC export" in r.output, r.output


def test_torch_row_skipped_without_torch(tiny_export, monkeypatch):
    """Without torch installed the ONNX rows still run and the torch row says why it is empty."""
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # find_spec("torch") is None, as on a device
    res = _json(CliRunner().invoke(main, ["bench", "transcribe", str(tiny_export), "--seconds", "1", "--repeat", "1",
                                          "--no-memory", "--json"]))
    rows = {row["variant"]: row for row in res["rows"]}
    assert rows["torch eager"]["rtf"] is None and "torch not installed" in rows["torch eager"]["note"]
    assert rows["onnx int8"]["rtf"] > 0
