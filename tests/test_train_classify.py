"""Classifier training: a tiny run writes every RUN_DIR file, a killed run resumes, 2-process DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

from click.testing import CliRunner  # noqa: E402

from hearkit.cli import main as cli  # noqa: E402
from hearkit.errors import ConfigError  # noqa: E402
from hearkit.training.checkpoint import load_checkpoint  # noqa: E402
from hearkit.training.models import model_from_config  # noqa: E402
from hearkit.training.train_classify import TrainConfig, train_classifier  # noqa: E402

SR = 16000
CLIP_S = 0.5  # short clips keep every run here to a few seconds
LABELS = {"low": 300.0, "mid": 1200.0, "high": 4000.0}
SPEAKERS = [f"{i:08x}" for i in range(10)]
VAL_SPEAKERS = SPEAKERS[:2]
RUN_FILES = {"best.pt", "last.pt", "config.json", "metrics.json", "confusion.png"}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    """A Speech-Commands-layout set of tones: 3 labels x 10 speakers, 2 speakers in validation."""
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    t = np.arange(int(CLIP_S * SR)) / SR
    val = []
    for label, f in LABELS.items():
        (root / label).mkdir()
        for spk in SPEAKERS:
            x = 0.3 * np.sin(2 * np.pi * f * (1 + 0.05 * rng.standard_normal()) * t) + 0.01 * rng.standard_normal(t.size)
            sf.write(root / label / f"{spk}_nohash_0.wav", x.astype(np.float32), SR)
            if spk in VAL_SPEAKERS:
                val.append(f"{label}/{spk}_nohash_0.wav")
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    return root


def _args(data, out, *extra):
    return ["classify", "--data", str(data), "--window-seconds", str(CLIP_S), "--threads", "1", "--no-progress",
            "--no-noise", "-o", str(out), *extra]


def test_tiny_run_writes_run_dir(tones, tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(data=str(tones), out=str(out), epochs=2, batch_size=8, window_seconds=CLIP_S, num_threads=1,
                      progress=False, lr=1e-2)
    assert train_classifier(cfg) == out
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    m = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert set(m["val"]["per_class"]) == set(LABELS) and m["val_clips"] == 6
    assert {"precision", "recall", "support"} <= set(m["val"]["per_class"]["low"])
    assert 0 <= m["best_val_acc"] <= 1 and m["parameters"] > 1000
    ck = load_checkpoint(out / "best.pt")
    assert ck["task"] == "classify" and ck["labels"] == sorted(LABELS) and ck["window_samples"] == int(CLIP_S * SR)
    model = model_from_config(ck["model"])
    model.load_state_dict(ck["state_dict"])
    assert model(torch.randn(2, 30, ck["frontend"]["n_mels"])).shape == (2, 3)
    assert json.loads((out / "config.json").read_text())["labels"] == sorted(LABELS)
    with pytest.raises(ConfigError, match="--resume"):
        train_classifier(cfg)  # a finished run is not overwritten by accident


def test_resume_after_kill_mid_epoch(tones, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hearkit", "train", *_args(tones, out, "--epochs", "2", "--batch-size", "2",
                                                             "--checkpoint-every", "1")]
    p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed_at = None
    deadline = time.time() + 120
    try:
        while time.time() < deadline and p.poll() is None:
            if (out / "last.pt").exists():
                ck = torch.load(out / "last.pt", weights_only=True)
                if ck["step_in_epoch"] > 0:
                    p.send_signal(signal.SIGKILL)
                    killed_at = (ck["epoch"], ck["step_in_epoch"])
                    break
            time.sleep(0.02)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    if killed_at is None:
        pytest.fail(f"never saw a mid-epoch last.pt; output:\n{p.stdout.read().decode()[-2000:]}")
    assert not (out / "metrics.json").exists()
    r = subprocess.run(cmd + ["--resume"], env=ENV, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming {out / 'last.pt'} at epoch {killed_at[0] + 1}, step" in r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in m["history"]] == [1, 2]  # the history saved before the kill is kept
    assert load_checkpoint(out / "last.pt")["epoch"] == 2


def test_ddp_two_processes_only_rank0_writes(tones, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "hearkit", "train", *_args(tones, out, "--epochs", "1", "--batch-size", "4")]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert {p.name for p in out.iterdir()} == RUN_FILES  # no per-rank or temporary files
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    log = r.stdout + r.stderr
    assert log.count("best validation accuracy") == 2  # the trainer's line and the CLI summary, rank 0 only
    assert log.count("model dscnn-s:") == 1


def test_cli_help_and_bad_file(tones, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["train", "--help"])
    assert r.exit_code == 0 and "classify" in r.output and "ctc" in r.output
    r = runner.invoke(cli, ["train", "classify", "--help"])
    assert r.exit_code == 0 and "--on-bad-file" in r.output and "--val-fold" in r.output
    bad = tmp_path / "data"
    import shutil

    shutil.copytree(tones, bad)
    (bad / "low" / "ffffffff_nohash_9.wav").write_bytes(b"RIFF....WAVEnot audio")
    r = runner.invoke(cli, ["train", *_args(bad, tmp_path / "run", "--epochs", "1")])
    assert r.exit_code == 2 and "ffffffff_nohash_9.wav" in r.output and "--on-bad-file skip" in r.output
    r = runner.invoke(cli, ["train", *_args(bad, tmp_path / "run2", "--epochs", "1", "--on-bad-file", "skip")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert [Path(s["path"]).name for s in m["skipped_files"]] == ["ffffffff_nohash_9.wav"]
