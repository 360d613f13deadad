"""Classifier training: a tiny run writes every RUN_DIR file, a killed run resumes, 2-process DDP."""

from __future__ import annotations

import json
import os
import shutil
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
from hearkit.training.augment import AugmentConfig  # noqa: E402
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
# The defaults these tests were written against, before the defaults became the README's
# Speech Commands recipe (cnn4-s, batches of 32, SNR 5-20 dB, gain -12..6 dB).
OLD_DEFAULTS = ["--model", "dscnn-s", "--batch-size", "64", "--snr", "0,20", "--gain-db=-6,6"]
OLD_AUGMENT = AugmentConfig(snr_db=(0.0, 20.0), gain_db=(-6.0, 6.0))


@pytest.fixture(scope="module")
def tones(tmp_path_factory, tonegen) -> Path:
    """A Speech-Commands-layout set of tones (conftest's ``make_tones``): 3 labels x 10 speakers, 2 in validation."""
    assert set(tonegen.LABELS) == set(LABELS) and tonegen.SR == SR
    return tonegen.make_tones(tmp_path_factory.mktemp("tones"), clip_seconds=CLIP_S, speakers=len(SPEAKERS),
                              val_speakers=len(VAL_SPEAKERS))


def _args(data, out, *extra):
    # later options win in click, so `extra` may override OLD_DEFAULTS
    return ["classify", "--data", str(data), *OLD_DEFAULTS, "--window-seconds", str(CLIP_S), "--threads", "1",
            "--no-progress", "--no-noise", "-o", str(out), *extra]


def test_tiny_run_writes_run_dir(tones, tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(data=str(tones), out=str(out), model="dscnn-s", epochs=2, batch_size=8, window_seconds=CLIP_S,
                      num_threads=1, progress=False, lr=1e-2, augment=OLD_AUGMENT)
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
    c = json.loads((out / "config.json").read_text())
    assert c["labels"] == sorted(LABELS) and c["task"] == "classify" and c["window_samples"] == int(CLIP_S * SR)
    assert c["model"]["name"] == "dscnn-s" and c["train"]["epochs"] == 2 and c["label_smoothing"] == 0.1
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


# The README's Speech Commands recipe, option for option (its 91.1 % row).
README_SPEECH_COMMANDS = ["--model", "cnn4-s", "--epochs", "30", "--batch-size", "32", "--lr", "3e-3", "--snr", "5,20",
                          "--gain-db=-12,6"]


def test_defaults_are_the_readme_speech_commands_recipe(tones, tmp_path, monkeypatch):
    """`hearkit train classify --data D -o R` builds the same config as the README's command, and as TrainConfig()."""
    import hearkit.training.train_classify as tc

    seen = []

    def fake_train(cfg, log=None):
        seen.append(cfg)
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({"model": cfg.model, "parameters": 1, "best_val_acc": 0.5,
                                                      "best_epoch": 1}))
        return out

    monkeypatch.setattr(tc, "train_classifier", fake_train)
    run = str(tmp_path / "run")
    for extra in ([], README_SPEECH_COMMANDS):
        shutil.rmtree(run, ignore_errors=True)  # each run gets a new folder (-o refuses an occupied one)
        r = CliRunner().invoke(cli, ["train", "classify", "--data", str(tones), *extra, "-o", run])
        assert r.exit_code == 0, r.output
    assert seen[0] == seen[1] == TrainConfig(data=str(tones), out=run)
    assert (seen[0].model, seen[0].batch_size, seen[0].augment.snr_db, seen[0].augment.gain_db) == \
        ("cnn4-s", 32, (5.0, 20.0), (-12.0, 6.0))


def test_redirected_log_has_plain_lines_only(tones, tmp_path):
    """stderr to a file: no \\r, one line per epoch, progress in about ten lines however many steps."""
    out, log = tmp_path / "run", tmp_path / "train.log"
    cmd = [sys.executable, "-m", "hearkit", "train", "classify", "--data", str(tones), "--window-seconds", str(CLIP_S),
           "--threads", "1", "--no-noise", "--epochs", "3", "--batch-size", "2", "-o", str(out)]  # 12 steps per epoch
    with open(log, "w") as f:
        r = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=f, text=True, timeout=180)
    text = log.read_text()
    assert r.returncode == 0, text[-2000:]
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= sum("training: step" in s for s in lines) <= 12  # 36 steps: the first, then every 10 %
    assert sum(s.startswith("hearkit: epoch ") for s in lines) == 3
    assert sum("loading clips" in s for s in lines) <= 2 * 12  # training and validation clips, every 10 %
    assert len(lines) <= 12 + 3 + 2 * 12 + 5  # + dataset, model and result lines
    r = subprocess.run([*cmd[:-2], "--no-progress", "-o", str(tmp_path / "run2")], env=ENV, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0 and "training: step" not in r.stderr and "loading clips" not in r.stderr
    assert sum(s.startswith("hearkit: epoch ") for s in r.stderr.splitlines()) == 3


def test_quiet_prints_the_result_only(tones, tmp_path):
    r = CliRunner().invoke(cli, ["train", *_args(tones, tmp_path / "run", "--epochs", "1", "--quiet")])
    assert r.exit_code == 0, r.output
    assert r.stderr == ""  # no dataset, model, progress or epoch lines, and nothing to warn about
    assert "best validation accuracy" in r.stdout and r.stdout.count("\n") == 1


def test_init_fine_tunes_from_a_checkpoint(tones, tmp_path):
    """--init starts from the checkpoint's weights with its model, front-end and window, whatever the options say."""
    first = tmp_path / "a"
    cfg = TrainConfig(data=str(tones), out=str(first), model="dscnn-s", epochs=1, batch_size=8, window_seconds=CLIP_S,
                      num_threads=1, progress=False, augment=OLD_AUGMENT)
    train_classifier(cfg)
    a = load_checkpoint(first / "best.pt")
    out = tmp_path / "b"
    r = CliRunner().invoke(cli, ["train", *_args(tones, out, "--epochs", "1", "--model", "cnn4-s", "--n-mels", "32",
                                                   "--lr", "1e-9", "--init", str(first / "best.pt"))])
    assert r.exit_code == 0, r.output
    b = load_checkpoint(out / "best.pt")
    assert b["model"] == a["model"] and b["frontend"] == a["frontend"] and b["window_samples"] == a["window_samples"]
    for k, v in a["state_dict"].items():  # lr 1e-9 for one epoch: the weights barely move (BatchNorm statistics do)
        if "running" not in k and v.dtype.is_floating_point:
            torch.testing.assert_close(b["state_dict"][k], v, atol=1e-5, rtol=0)
    other = tmp_path / "other"
    for lab in ("x", "y"):
        (other / lab).mkdir(parents=True)
        for i in range(4):
            sf.write(other / lab / f"s{i}_nohash_0.wav", np.zeros(int(CLIP_S * SR), np.float32), SR)
    r = CliRunner().invoke(cli, ["train", *_args(other, tmp_path / "c", "--epochs", "1", "--init", str(first / "best.pt"))])
    assert r.exit_code == 2 and "--init" in r.output and "labels" in r.output


def test_negative_weight_weighs_background_clips(tones, tmp_path):
    """--negative-weight W: a background clip counts W times a keyword clip in the loss (1e-6), 1 is the
    plain mean, and a weight outside 0.001..1000 is refused on the CLI and in the Python API."""
    from hearkit.training.train_classify import soft_cross_entropy

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    target = torch.eye(3)[[0, 1]]  # clip 0 is label 0, clip 1 is label 1
    ce = -torch.log_softmax(logits, 1)[[0, 1], [0, 1]]
    assert torch.allclose(soft_cross_entropy(logits, target), ce.mean(), atol=1e-6)
    w = torch.tensor([4.0, 1.0, 1.0])  # label 0 is a background label weighted 4
    assert torch.allclose(soft_cross_entropy(logits, target, w), (4 * ce[0] + ce[1]) / 5, atol=1e-6)
    with pytest.raises(ConfigError, match="negative_weight"):
        TrainConfig(data=str(tones), out=str(tmp_path / "x"), negative_weight=0.0)
    r = CliRunner().invoke(cli, ["train", *_args(tones, tmp_path / "y", "--negative-weight", "5000")])
    assert r.exit_code == 2 and "--negative-weight" in r.output
    data = tmp_path / "bg"
    shutil.copytree(tones, data)
    (data / "low").rename(data / "_unknown_")
    (data / "validation_list.txt").write_text((data / "validation_list.txt").read_text().replace("low/", "_unknown_/"))
    outs = []
    for wt in ("1", "20"):
        r = CliRunner().invoke(cli, ["train", *_args(data, tmp_path / f"w{wt}", "--epochs", "1", "--negative-weight", wt,
                                                     "--no-shift", "--no-gain", "--no-specaugment")])
        assert r.exit_code == 0, r.output
        assert json.loads((tmp_path / f"w{wt}" / "config.json").read_text())["train"]["negative_weight"] == float(wt)
        outs.append(load_checkpoint(tmp_path / f"w{wt}" / "last.pt")["state_dict"])
    assert any(not torch.equal(outs[0][k], outs[1][k]) for k in outs[0])



def test_validation_misses_sets_each_threshold_on_the_other_labels():
    """validation_misses: a keyword's threshold lets through floor(rate x hours) of the other labels' clips
    (each one window), and its misses are its clips at or under it; background labels are not scored."""
    from hearkit.training.train_classify import validation_misses

    labels = ["_unknown_", "go", "stop"]
    p = np.array([[0.9, 0.05, 0.05], [0.5, 0.45, 0.05], [0.6, 0.1, 0.3], [0.8, 0.1, 0.1],  # 4 background clips
                  [0.1, 0.8, 0.1], [0.6, 0.3, 0.1],  # 2 "go"
                  [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])  # 2 "stop"
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    # each keyword has 6 negatives of 600 s: 1 h. At 1 FA/h one may pass: the threshold is the second highest.
    r = validation_misses(np.log(p), y, labels, 600.0, 1.0)
    assert r["thresholds"] == pytest.approx({"go": 0.2, "stop": 0.1}, abs=1e-9)
    assert r["by_label"] == {"go": 0.0, "stop": 0.0} and r["mean"] == 0.0
    # at 0.5 FA/h none may pass: "go"'s threshold is the background's 0.45, and its 0.3 clip is a miss
    r = validation_misses(np.log(p), y, labels, 600.0, 0.5)
    assert r["thresholds"] == pytest.approx({"go": 0.45, "stop": 0.3}, abs=1e-9)
    assert r["by_label"] == {"go": 0.5, "stop": 0.0} and r["mean"] == pytest.approx(0.25, abs=1e-12)
    # a rate that lets every negative through misses nothing
    assert validation_misses(np.log(p), y, labels, 600.0, 10.0)["mean"] == 0.0


def test_select_fa_per_hour_keeps_the_epoch_with_the_fewest_validation_misses(tones, tmp_path):
    """--select-fa-per-hour: every epoch logs its validation misses, and best.pt is the epoch with the fewest (ties:
    the better accuracy, then the earlier); metrics.json says how it was chosen; a rate of 0 is refused."""
    data = tmp_path / "bg"
    shutil.copytree(tones, data)
    (data / "low").rename(data / "_unknown_")
    (data / "validation_list.txt").write_text((data / "validation_list.txt").read_text().replace("low/", "_unknown_/"))
    out = tmp_path / "sel"
    r = CliRunner().invoke(cli, ["train", *_args(data, out, "--epochs", "4", "--select-fa-per-hour", "20")])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["select_fa_per_hour"] == 20.0
    h = m["history"]
    assert all(0.0 <= row["val_misses"] <= 1.0 for row in h)
    want = min(h, key=lambda row: (row["val_misses"], -row["val_acc"], row["epoch"]))
    assert m["best_epoch"] == want["epoch"] and m["best_val_misses"] == want["val_misses"]
    assert load_checkpoint(out / "best.pt")["metrics"]["epoch"] == want["epoch"]
    r = CliRunner().invoke(cli, ["train", *_args(data, tmp_path / "x", "--select-fa-per-hour", "0")])
    assert r.exit_code == 2 and "--select-fa-per-hour" in r.output
    with pytest.raises(ConfigError, match="select_fa_per_hour"):
        TrainConfig(data=str(data), out=str(tmp_path / "y"), select_fa_per_hour=-1.0)
