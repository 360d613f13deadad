"""The shared training loop (hearkit.training.loop): progress for people and logs, schedule, cadence, resume."""

from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch")

from hearkit.errors import ConfigError  # noqa: E402
from hearkit.progress import Progress  # noqa: E402
from hearkit.training.loop import (  # noqa: E402
    LAST,
    Dist,
    LoopState,
    RunLog,
    TrainProgress,
    fit,
    make_scheduler,
    open_run,
    restore_scheduler,
)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_redirected_progress_is_a_few_plain_lines_per_run():
    """60 epochs of 250 steps into a file: no \\r, about one line per 10 % of the run, not per step or epoch."""
    log = io.StringIO()
    p = TrainProgress(True, epochs=60, total_steps=60 * 250, stream=log)
    for e in range(60):
        p.start_epoch(e, 250)
        for _ in range(250):
            p.step(loss=2.5)
        p.end_epoch()
    p.close()
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert 10 <= len(lines) <= 12  # the first step, then each further 10 %
    assert lines[-1] == "training: step 15000/15000 (100 %), epoch 60/60, loss 2.500"


def test_resumed_progress_counts_from_where_it_stopped():
    log = io.StringIO()
    p = TrainProgress(True, epochs=4, total_steps=400, done_steps=200, stream=log)
    p.start_epoch(2, 100)
    p.step()
    assert log.getvalue().startswith("training: step 201/400 (50 %), epoch 3/4")


def test_progress_off_writes_nothing_and_a_terminal_gets_a_bar():
    quiet = io.StringIO()
    p = TrainProgress(False, epochs=2, total_steps=20, stream=quiet)
    p.start_epoch(0, 10)
    for _ in range(10):
        p.step(loss=1.0)
    p.close()
    assert quiet.getvalue() == ""
    tty = _Tty()
    p = TrainProgress(True, epochs=2, total_steps=20, stream=tty)
    p.start_epoch(0, 10)
    p.step(loss=1.0)
    p.close()
    assert "\r" in tty.getvalue() and "epoch 1/2" in tty.getvalue()  # tqdm redraws its bar in place


def test_plain_progress_lines_for_loading():
    log = io.StringIO()
    bar = Progress(1000, "loading clips", unit="clip", stream=log)
    for _ in range(1000):
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 10 <= len(lines) <= 12
    assert lines[-1] == "loading clips: 1000/1000 clips (100 %)"


def test_run_log_quiet_keeps_warnings_and_other_ranks_say_nothing():
    got = []
    RunLog(True, False, got.append)("epoch 1")
    q = RunLog(True, True, got.append)
    q("epoch 2")
    q.warn("no noise")
    RunLog(False, False, got.append)("rank 1")
    assert got == ["epoch 1", "warning: no noise"]


def _opt():
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=1e-3)


@pytest.mark.parametrize("kind", ["onecycle", "cosine"])
def test_resumed_schedule_with_the_same_plan_is_the_saved_one(kind):
    opt = _opt()
    sched = make_scheduler(opt, kind, 1e-2, 100, 0.1)
    lrs = []
    for _ in range(100):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        if len(lrs) == 40:
            saved = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "planned_steps": 100, "step": 40}
    opt2 = _opt()
    s2 = make_scheduler(opt2, kind, 1e-2, 100, 0.1)
    opt2.load_state_dict(saved["optimizer"])
    s2 = restore_scheduler(s2, saved, opt2, kind, 1e-2, 100, 0.1)
    for i in range(40, 100):
        opt2.step()
        s2.step()
        assert opt2.param_groups[0]["lr"] == pytest.approx(lrs[i], rel=1e-12, abs=0)  # the same float arithmetic


@pytest.mark.parametrize("kind", ["onecycle", "cosine"])
def test_resumed_schedule_with_more_epochs_continues_over_the_new_total(kind):
    """A run planned for 100 steps resumed at step 40 to run 200: it follows a fresh 200-step schedule from step 40."""
    opt = _opt()
    sched = make_scheduler(opt, kind, 1e-2, 100, 0.1)
    for _ in range(40):
        opt.step()
        sched.step()
    saved = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "planned_steps": 100, "step": 40}
    ref_opt = _opt()
    ref = make_scheduler(ref_opt, kind, 1e-2, 200, 0.1)
    ref_lrs = []
    for _ in range(200):
        ref_lrs.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    opt2 = _opt()
    s2 = make_scheduler(opt2, kind, 1e-2, 200, 0.1)
    opt2.load_state_dict(saved["optimizer"])
    s2 = restore_scheduler(s2, saved, opt2, kind, 1e-2, 200, 0.1)
    for i in range(40, 200):  # no step past the end (torch's OneCycleLR raises there)
        assert opt2.param_groups[0]["lr"] == pytest.approx(ref_lrs[i], rel=1e-9, abs=1e-15), i
        opt2.step()
        s2.step()


def test_open_run_refuses_to_overwrite_and_resume_of_nothing_starts_anew(tmp_path):
    said = []
    log = RunLog(sink=said.append)
    assert open_run(tmp_path, resume=False, log=log) is None
    assert open_run(tmp_path, resume=True, log=log) is None
    assert said == [f"--resume: {tmp_path / LAST} does not exist yet; starting a new run"]
    (tmp_path / LAST).write_bytes(b"")
    with pytest.raises(ConfigError, match="--resume"):
        open_run(tmp_path, resume=False, log=log)


def test_fit_checkpoint_cadence_and_mid_epoch_resume():
    """last.pt every 3 steps inside an epoch (not at its end: the epoch end writes it), and a resumed
    epoch skips the steps already done."""
    events = []

    def run(state, epochs):
        fit(state, epochs, begin_epoch=lambda e: [f"e{e}b{i}" for i in range(7)],
            train_step=lambda b: events.append(("step", b)) or {},
            end_epoch=lambda e, t: events.append(("end", e, state.epoch, state.step)),
            save_last=lambda: events.append(("last", state.epoch, state.step_in_epoch, state.step)),
            dist=Dist(), progress=TrainProgress(False, epochs, 7 * epochs), checkpoint_every=3)

    run(LoopState(), 2)
    assert [e for e in events if e[0] == "last"] == [("last", 0, 3, 3), ("last", 0, 6, 6), ("last", 1, 3, 10),
                                                     ("last", 1, 6, 13)]
    assert [e for e in events if e[0] == "end"] == [("end", 0, 1, 7), ("end", 1, 2, 14)]
    events.clear()
    state = LoopState(epoch=1, step_in_epoch=3, step=10)  # what the third last.pt above holds
    run(state, 2)
    assert [b for k, b, *_ in events if k == "step"] == [f"e1b{i}" for i in range(3, 7)]
    assert state.epoch == 2 and state.step_in_epoch == 0 and state.step == 14
