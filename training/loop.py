"""The training skeleton both trainers share (``train_classify``, ``train_ctc``).

``Trainer`` is one run: a subclass builds its data and network and says what a batch, a
loss, a validation and its checkpoint fields are (the hooks); the skeleton owns the rest,
so the two behave alike: processes, threads, the run folder, seeds, optimizer, schedule,
resume, ``config.json``, ``best.pt``/``last.pt``, history and progress. The parts:

- ``Dist``: one process, or one rank of several under ``torchrun`` (DDP with gloo on
  CPU). Every rank trains on its share of each epoch; only rank 0 evaluates, logs
  and writes.
- ``make_scheduler`` / ``restore_scheduler``: one-cycle (or cosine with a linear
  warm-up) over the planned steps; a resumed run that plans more or fewer epochs
  gets a schedule over the new total, continued at the step it stopped at.
- ``RunLog``: lines for people, ``hearkit: ...`` on stderr (or any callable);
  ``quiet`` keeps warnings only.
- ``TrainProgress``: a tqdm bar per epoch on a terminal; in a redirected log one plain
  line per ~10 % of the run instead (no ``\\r``), beside the trainer's line per epoch.
- ``open_run`` / ``LoopState`` / ``loop_checkpoint`` / ``resume_loop``: the run folder's
  ``last.pt`` (atomic, every ``checkpoint_every`` steps and at each epoch end, with
  optimizer, schedule, RNG states and history) and what ``resume`` continues from.
- ``fit``: the epoch and step loop that ties them together.
- ``set_threads``: torch's thread pools; training defaults to one thread.

A checkpoint is the skeleton's part (task, model, front-end, weights, metrics,
train_config), the task's fields (labels and window, or vocabulary and blank) and
``loop_checkpoint``'s part; every checkpoint loads with
``hearkit.training.checkpoint.load_checkpoint``. ``config.json`` is the same without the
weights and the loop's state, readable with no torch.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hearkit.errors import ConfigError
from hearkit.files import write_text
from hearkit.frontend import FrontendConfig
from hearkit.progress import Progress, StatusLine, is_terminal
from hearkit.training.checkpoint import load_checkpoint, save_checkpoint
from hearkit.training.models import count_parameters

LAST = "last.pt"  # the latest state, what resume continues from
BEST = "best.pt"  # the epoch with the best validation metric
SCHEDULES = ("onecycle", "cosine")
PROGRESS_EVERY_PCT = 10.0  # a redirected log gets a progress line per this share of the run


# -- processes ------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    """This process's place among the training processes.

    Attributes:
        rank: 0-based index (``RANK``; Default: 0).
        world: number of processes (``WORLD_SIZE``; Default: 1).
    """

    rank: int = 0
    world: int = 1

    @classmethod
    def setup(cls) -> "Dist":
        """Read torchrun's environment; with several processes join a gloo process group."""
        d = cls(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))
        if d.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("gloo")
        return d

    @property
    def main(self) -> bool:
        """Rank 0: the process that evaluates, logs and writes."""
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train: DDP over ``model`` with several processes, else ``model``."""
        return torch.nn.parallel.DistributedDataParallel(model) if self.world > 1 else model

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Wait for every rank, then leave the process group."""
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


# -- threads ---------------------------------------------------------------------------
DEFAULT_TRAIN_THREADS = 1  # see set_threads


def set_threads(n: int | None) -> None:
    """torch's intra-op and inter-op thread pools to ``n`` threads each (None: leave torch's choice).

    Training the small models here defaults to 1 thread (``DEFAULT_TRAIN_THREADS``): torch's
    default (all cores) collapsed on a loaded 2-core machine, 104 s wall against 15 s with one
    thread for the same two epochs (docs/results.md, "Training threads"). Call it before any
    torch work: the inter-op pool can be sized only once and before it starts, so a later call
    (a second training in the same process) sets the intra-op pool and leaves the inter-op one.
    """
    if n is None:
        return
    torch.set_num_threads(int(n))
    if torch.get_num_interop_threads() != int(n):
        try:
            torch.set_num_interop_threads(int(n))
        except RuntimeError:  # parallel work has started, or it was set before: only once per process
            pass


# -- lines for people ---------------------------------------------------------------------
def _stderr(msg: str) -> None:
    print(f"hearkit: {msg}", file=sys.stderr, flush=True)


class RunLog:
    """Where a trainer's lines go: rank 0 only; ``quiet`` keeps warnings.

    Args:
        main: this is rank 0 (the others say nothing) (Default: True).
        quiet: drop information lines, keep warnings (Default: False).
        sink: callable taking one line (Default: None = ``hearkit: LINE`` on stderr).
    """

    def __init__(self, main: bool = True, quiet: bool = False, sink: Callable[[str], Any] | None = None):
        self.main, self.quiet = main, quiet
        self.sink = sink or _stderr

    def __call__(self, msg: str) -> None:
        """An information line (dataset sizes, model, one per epoch)."""
        if self.main and not self.quiet:
            self.sink(msg)

    def warn(self, msg: str) -> None:
        """A line that stays with ``quiet``."""
        if self.main:
            self.sink(f"warning: {msg}")


class TrainProgress:
    """Progress of the steps of a run.

    On a terminal a tqdm bar per epoch (removed when the epoch ends, the trainer's epoch
    line stays). Otherwise, e.g. stderr redirected to a log, a ``StatusLine`` over the
    whole run: ``training: step 1200/15000 (8 %), epoch 5/60, loss 2.301``, one line per
    ``every_pct`` of the run, however many epochs it has.

    Args:
        enabled: False shows nothing (``--no-progress``, ``--quiet``, ranks other than 0).
        epochs: epochs of the run.
        total_steps: steps of the whole run.
        done_steps: steps done before (a resumed run).
        stream: Default: sys.stderr.
        every_pct: Default: ``PROGRESS_EVERY_PCT``.
    """

    def __init__(self, enabled: bool, epochs: int, total_steps: int, done_steps: int = 0, stream=None,
                 every_pct: float = PROGRESS_EVERY_PCT):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = is_terminal(self.stream)
        self.epochs, self.total, self.done = epochs, max(1, int(total_steps)), int(done_steps)
        self._bar: Progress | None = None
        self._line = StatusLine(self.stream, every_pct) if enabled and not self.tty else None
        self._epoch = 0

    def start_epoch(self, epoch: int, steps: int, first: int = 0) -> None:
        """Epoch ``epoch`` (0-based) of ``steps`` steps begins at step ``first``."""
        self._epoch = epoch
        if self.enabled and self.tty:
            self._bar = Progress(steps, f"epoch {epoch + 1}/{self.epochs}", initial=first, stream=self.stream,
                                 mininterval=1.0)

    def step(self, **stats) -> None:
        """One step done; ``stats`` are the running statistics to show (e.g. ``loss=2.3``)."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(1, **stats)
        elif self._line is not None:
            pct = 100.0 * self.done / self.total
            text = f"training: step {self.done}/{self.total} ({pct:.0f} %), epoch {self._epoch + 1}/{self.epochs}"
            text += "".join(f", {k} {v:.3f}" if isinstance(v, float) else f", {k} {v}" for k, v in stats.items())
            self._line.show(text, pct)

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self.end_epoch()
        if self._line is not None:
            self._line.close()


# -- schedule -----------------------------------------------------------------------------
def make_scheduler(opt: torch.optim.Optimizer, kind: str, lr: float, total_steps: int, warmup_fraction: float,
                   last_step: int = -1):
    """The learning-rate schedule of a run, stepped once per optimizer step.

    Args:
        opt: the optimizer.
        kind: ``onecycle`` (torch's OneCycleLR, cosine annealing) | ``cosine`` (linear
            warm-up, then a cosine to 0).
        lr: peak learning rate.
        total_steps: planned optimizer steps (at least 2 are planned).
        warmup_fraction: share of the steps spent warming up.
        last_step: the last step already taken, -1 for a fresh schedule; with another
            value the optimizer's param groups must carry the schedule's ``initial_lr``
            (a loaded optimizer state does).
    """
    total = max(int(total_steps), 2)
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=warmup_fraction,
                                                   anneal_strategy="cos", last_epoch=last_step)
    if kind != "cosine":
        raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, got {kind!r}")
    warm = max(1, int(warmup_fraction * total))

    def f(step):
        if step < warm:
            return (step + 1) / warm
        p = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1 + math.cos(math.pi * p))

    return torch.optim.lr_scheduler.LambdaLR(opt, f, last_epoch=last_step)


def restore_scheduler(sched, ckpt: dict, opt, kind: str, lr: float, total_steps: int, warmup_fraction: float):
    """The schedule of a resumed run: the saved one if it planned the same steps, else a new one continued.

    Call after loading the optimizer state. Returns the scheduler to use.
    """
    planned = max(int(total_steps), 2)
    saved = ckpt.get("planned_steps") or ckpt["scheduler"].get("total_steps")  # older checkpoints: OneCycleLR's own
    if saved is None or int(saved) == planned:
        sched.load_state_dict(ckpt["scheduler"])
        return sched
    # more (or fewer) epochs than planned: the schedule over the new total, continued at the step reached
    step = int(ckpt["step"])
    return make_scheduler(opt, kind, lr, max(planned, step + 1), warmup_fraction, last_step=step - 1)


# -- run folder and resume ----------------------------------------------------------------
def open_run(out: str | os.PathLike, resume: bool, log: RunLog) -> dict | None:
    """The checkpoint to resume from, or None for a new run.

    A folder that holds a run (``last.pt``) is not overwritten without ``resume``; with
    ``resume`` and no ``last.pt`` yet (killed before the first save) the run starts anew.
    """
    last = Path(out) / LAST
    if last.exists() and not resume:
        raise ConfigError(f"{out} already holds a run ({LAST}); pass --resume to continue it or choose another directory")
    if resume and last.exists():
        return load_checkpoint(last)
    if resume:
        log(f"--resume: {last} does not exist yet; starting a new run")
    return None


@dataclass
class LoopState:
    """Where a run stands; saved in every ``last.pt``.

    Attributes:
        epoch: epochs finished (during an epoch: its 0-based index).
        step_in_epoch: steps of the current epoch done (mid-epoch checkpoints; 0 at epoch ends).
        step: optimizer steps in all.
        history: one dict per finished epoch (the trainer's rows).
        best: the trainer's record of its best epoch (None before the first).
    """

    epoch: int = 0
    step_in_epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict | None = None


def loop_checkpoint(state: LoopState, opt, sched, gen: torch.Generator, planned_steps: int) -> dict:
    """The loop's part of a checkpoint: optimizer, schedule, position, RNG states, history."""
    return {
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "planned_steps": max(int(planned_steps), 2),
        "epoch": int(state.epoch),
        "step_in_epoch": int(state.step_in_epoch),
        "step": int(state.step),
        "rng": {"torch": torch.get_rng_state(), "augment": gen.get_state()},
        "history": list(state.history),
        "best": state.best,
    }


def resume_loop(ckpt: dict, model, opt, gen: torch.Generator, dist: Dist, reseed: Callable[[LoopState], int]) -> LoopState:
    """Load weights, optimizer and RNG states of ``ckpt``; the loop state to continue from.

    One process continues its random streams where they stopped (``rng`` of the
    checkpoint), so a resumed run draws what the uninterrupted one would have. With
    several ranks only rank 0's stream was saved, and a checkpoint without ``rng`` has
    none: ``gen`` is then seeded with ``reseed(state)``. The scheduler is restored apart
    (``restore_scheduler``), after this.
    """
    model.load_state_dict(ckpt["state_dict"])
    opt.load_state_dict(ckpt["optimizer"])
    history = ckpt.get("history")
    if history is None and "history_json" in ckpt:  # CTC checkpoints before the shared loop
        import json

        history = json.loads(ckpt["history_json"])
    state = LoopState(int(ckpt["epoch"]), int(ckpt.get("step_in_epoch", 0)), int(ckpt["step"]), list(history or []),
                      ckpt.get("best"))
    rng = ckpt.get("rng")
    if rng is not None and dist.world == 1:
        torch.set_rng_state(rng["torch"])
        gen.set_state(rng["augment"])
    else:
        if rng is not None:
            torch.set_rng_state(rng["torch"])
        gen.manual_seed(reseed(state))
    return state


# -- the loop -----------------------------------------------------------------------------
def fit(
    state: LoopState,
    epochs: int,
    begin_epoch: Callable[[int], Sequence],
    train_step: Callable[[Any], dict],
    end_epoch: Callable[[int, float], None],
    save_last: Callable[[], None],
    dist: Dist,
    progress: TrainProgress,
    checkpoint_every: int = 0,
    stop: Callable[[], bool] | None = None,
) -> LoopState:
    """Run epochs ``state.epoch`` .. ``epochs - 1``, from step ``state.step_in_epoch`` of the first.

    Args:
        state: where to start; updated in place (the callbacks read it).
        epochs: epochs of the run.
        begin_epoch: ``(epoch) -> batches``: this rank's batches of the 0-based epoch, in order
            (the same list on a resumed run, so the steps already done are skipped); the
            trainer resets its running statistics here.
        train_step: ``(batch) -> stats``: one optimizer step (forward, backward, optimizer
            and scheduler step); returns what the progress display shows (e.g. ``{"loss": 2.3}``).
        end_epoch: ``(epoch, started)``, rank 0, after ``state.epoch`` moved on: evaluate,
            append the history row, save ``best.pt`` and ``last.pt``, log the epoch line;
            ``started`` is the epoch's ``time.time()`` at its start.
        save_last: rank 0: write ``last.pt`` from the current state (mid-epoch checkpoints).
        dist: the processes; every rank waits for rank 0 after each epoch.
        progress: the step display.
        checkpoint_every: also call ``save_last`` every this many steps inside an epoch
            (0: at epoch ends only).
        stop: ``() -> bool``, rank 0, after ``end_epoch``: end the run here (early stopping);
            every rank follows rank 0's answer (Default: None = run every epoch).
    """
    for epoch in range(state.epoch, epochs):
        started = time.time()
        batches = begin_epoch(epoch)
        first = state.step_in_epoch
        progress.start_epoch(epoch, len(batches), first)
        for i in range(first, len(batches)):
            stats = train_step(batches[i])
            state.step += 1
            progress.step(**stats)
            if checkpoint_every and (i + 1) % checkpoint_every == 0 and i + 1 < len(batches):
                state.step_in_epoch = i + 1
                if dist.main:
                    save_last()
        progress.end_epoch()
        state.epoch, state.step_in_epoch = epoch + 1, 0
        if dist.main:
            end_epoch(epoch, started)
        dist.barrier()
        if stop is not None and _broadcast_flag(dist, dist.main and stop()):
            break
    progress.close()
    return state


def _broadcast_flag(dist: Dist, flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank."""
    if dist.world == 1:
        return bool(flag)
    t = torch.tensor([int(flag)])
    torch.distributed.broadcast(t, 0)
    return bool(t.item())


# -- the trainer skeleton ------------------------------------------------------------------
def stream_seed(seed: int, rank: int, step: int | None = None) -> int:
    """The augmentation stream's seed of a rank: ``seed * 1000 + rank``; a rank that resumes with no
    saved stream (several ranks, or a checkpoint without one) gets a fresh one per step reached."""
    return seed * 1000 + rank + (0 if step is None else 7919 * (step + 1))


class Trainer:
    """One training run; ``run()`` trains and returns the run folder.

    A subclass sets ``task`` and fills in the hooks:

    - ``build()``: the data and the network; sets ``model`` (what is saved), ``model_config``
      (what rebuilds it), ``frontend`` (``FrontendConfig``), ``steps_per_epoch`` and
      ``train_config`` (JSON-able: the options as they ran), and may set ``schedule``,
      ``warmup_fraction`` and ``grad_clip``. On a resumed run (``resume_from``, the
      checkpoint) it rebuilds the network the run started with.
    - ``checkpoint_fields()``: the task's fields of each checkpoint and of config.json.
    - ``batches(epoch)``: this rank's batches of the 0-based epoch, in order (the same on a
      resumed run); the running statistics start anew here.
    - ``loss(batch)``: the batch's loss (forward only; the skeleton steps), recording the
      running statistics that ``shown()`` returns for the progress display.
    - ``validate(epoch)``: ``(row, metrics)``: the history row's own fields and the metrics of
      the epoch's checkpoint; ``better(metrics, best)`` says whether they beat the best so far.
    - ``epoch_line(row, improved)``: the line a person reads after each epoch.
    - ``after_epoch(epoch, ckpt, improved)``, ``finish()``: more files (rank 0).
    - ``stop_early()``: rank 0, after each epoch: end the run now (Default: never).

    The skeleton seeds Python's and torch's generators with the config's ``seed`` before
    ``build``, and gives ``loss`` the augmentation generator ``gen`` (``stream_seed``), the
    network to train ``net`` (DDP over ``model`` with several ranks), ``opt`` and ``sched``.
    """

    task = ""
    schedule = "onecycle"
    warmup_fraction = 0.1
    grad_clip: float | None = None

    def __init__(self, cfg, log: Callable[[str], Any] | None = None):
        self.cfg = cfg
        self.dist = Dist.setup()
        self.say = RunLog(self.dist.main, cfg.quiet, log)
        self.show = cfg.progress and not cfg.quiet and self.dist.main
        set_threads(cfg.num_threads)
        self.out = Path(cfg.out)
        self.resume_from = open_run(self.out, cfg.resume, self.say)
        self.model: torch.nn.Module | None = None
        self.model_config: dict = {}
        self.frontend: FrontendConfig | None = None
        self.steps_per_epoch = 1
        self.train_config: dict = {}
        self.parameters = 0
        self.state = LoopState()
        self.last_metrics: dict = dict((self.resume_from or {}).get("metrics") or {})

    # -- hooks ---------------------------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def checkpoint_fields(self) -> dict:
        return {}

    def config_extras(self) -> dict:
        """More of config.json: settings resolved at run time that the options leave open."""
        return {}

    def batches(self, epoch: int) -> Sequence:
        raise NotImplementedError

    def loss(self, batch) -> torch.Tensor:
        raise NotImplementedError

    def shown(self) -> dict:
        return {}

    def validate(self, epoch: int) -> tuple[dict, dict]:
        raise NotImplementedError

    def better(self, metrics: dict, best: dict | None) -> bool:
        raise NotImplementedError

    def epoch_line(self, row: dict, improved: bool) -> str:
        return f"epoch {row['epoch']}/{self.cfg.epochs}"

    def after_epoch(self, epoch: int, ckpt: dict, improved: bool) -> None:
        pass

    def stop_early(self) -> bool:
        return False

    def finish(self) -> None:
        pass

    # -- the skeleton ------------------------------------------------------------------
    def checkpoint(self, metrics: dict) -> dict:
        """What best.pt and last.pt hold: the run's part, the task's fields, the loop's part."""
        return {
            "task": self.task,
            "model": self.model_config,
            "frontend": self.frontend.to_dict(),
            **self.checkpoint_fields(),
            "state_dict": self.model.state_dict(),
            **loop_checkpoint(self.state, self.opt, self.sched, self.gen, self.total_steps),
            "metrics": metrics,
            "train_config": self.train_config,
        }

    def run(self) -> Path:
        cfg, dist = self.cfg, self.dist
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.build()
        self.parameters = count_parameters(self.model)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = make_scheduler(self.opt, self.schedule, cfg.lr, self.total_steps, self.warmup_fraction)
        self.gen = torch.Generator().manual_seed(stream_seed(cfg.seed, dist.rank))
        if self.resume_from is not None:
            self.state = resume_loop(self.resume_from, self.model, self.opt, self.gen, dist,
                                     lambda st: stream_seed(cfg.seed, dist.rank, st.step))
            self.sched = restore_scheduler(self.sched, self.resume_from, self.opt, self.schedule, cfg.lr,
                                           self.total_steps, self.warmup_fraction)
            self.say(f"resuming {self.out / LAST} at epoch {self.state.epoch + 1}, step {self.state.step_in_epoch} "
                     f"of {self.steps_per_epoch}")
        self.net = dist.wrap(self.model)
        if dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            config = {"task": self.task, "model": self.model_config, "frontend": self.frontend.to_dict(),
                      **self.checkpoint_fields(), "parameters": self.parameters, "world_size": dist.world,
                      "train": self.train_config, **self.config_extras()}
            write_text(self.out / "config.json", json.dumps(config, indent=2) + "\n")
        progress = TrainProgress(self.show, cfg.epochs, self.total_steps, self.state.step)
        fit(self.state, cfg.epochs, self.batches, self._step, self._end_epoch,
            lambda: save_checkpoint(self.checkpoint(self.last_metrics), self.out / LAST), dist, progress,
            cfg.checkpoint_every, self.stop_early)
        dist.close()
        if dist.main:
            self.finish()
        return self.out

    def _step(self, batch) -> dict:
        loss = self.loss(batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.opt.step()
        self.sched.step()
        return self.shown()

    def _end_epoch(self, epoch: int, started: float) -> None:
        row, metrics = self.validate(epoch)
        e = epoch + 1
        row = {"epoch": e, **row, "lr": self.sched.get_last_lr()[0], "seconds": round(time.time() - started, 2)}
        self.state.history.append(row)
        metrics = {**metrics, "epoch": e, "parameters": self.parameters}
        improved = self.better(metrics, self.state.best)
        if improved:
            self.state.best = metrics
        self.last_metrics = metrics
        ckpt = self.checkpoint(metrics)
        if improved:  # best.pt first: last.pt, what resume reads, then names an epoch best.pt holds
            save_checkpoint(ckpt, self.out / BEST)
        save_checkpoint(ckpt, self.out / LAST)
        self.say(self.epoch_line(row, improved))
        self.after_epoch(epoch, ckpt, improved)
