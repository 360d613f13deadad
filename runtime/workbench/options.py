"""Click options of the commands that make a model (``hearkit.workbench``): the network family, training
threads, and the check that torch is installed. The registry and the thread pools live in the training
package; each is imported inside a function, so ``--help`` needs no torch."""

from __future__ import annotations

from pathlib import Path

import click

from hearkit.commands.options import Limited, out_option


class ModelName(click.ParamType):
    """A network family registered in ``hearkit.training.models.MODELS``, the one list of them.

    The registry imports torch, so it is read when needed: ``--help`` lists the names where
    torch is installed (``NAME`` otherwise), and a value is checked when the command runs.
    """

    name = "model"

    @staticmethod
    def _names() -> list[str]:
        from hearkit.training.models import MODELS

        return list(MODELS)

    def get_metavar(self, param, ctx=None):
        try:
            return "[" + "|".join(self._names()) + "]"
        except ImportError:
            return "NAME"

    def convert(self, value, param, ctx):
        try:
            names = self._names()
        except ImportError:  # the command itself says what to install
            return value
        if value not in names:
            self.fail(f"{value!r} is not one of {', '.join(repr(n) for n in names)}.", param, ctx)
        return value


TRAIN_THREADS = 1  # hearkit.training.loop.DEFAULT_TRAIN_THREADS, repeated to keep --help cheap


def train_threads_option(f):
    """``--threads N`` of every command that trains (train classify / ctc, demo): torch threads, 1 by default.

    torch's default (all cores) made training 7x slower on a loaded 2-core machine (docs/results.md,
    "Training threads"); ``start_torch`` sets it before any torch work.
    """
    return click.option("--threads", type=Limited("threads"), default=TRAIN_THREADS, show_default=True,
                        help="torch threads for training (intra- and inter-op). torch's default, all cores, was "
                             "7x slower on a loaded 2-core machine (docs/results.md).")(f)


def start_torch(threads: int | None) -> None:
    """Check that torch is installed (the `train` extra) and size its thread pools before any torch work."""
    from hearkit.errors import require

    require("torch", "train")
    from hearkit.training.loop import set_threads

    set_threads(threads)


def train_in_folder(train, cfg, run_dir, force: bool, resume: bool) -> tuple[Path, dict | None]:
    """Run ``train(cfg)`` in the run folder (``hearkit.files.run_folder``: new, resumed or forced); returns
    (the folder, its metrics.json) on rank 0, and (the folder, None) on the other ranks of a torchrun."""
    import json
    import os

    from hearkit.files import run_folder

    with run_folder(run_dir, force, resume):
        out = Path(train(cfg))
    if int(os.environ.get("RANK", "0")) != 0:
        return out, None
    return out, json.loads((out / "metrics.json").read_text())


def run_folder_options(f):
    """The options every ``hearkit train`` command shares: where the run goes and how it runs there
    (``--checkpoint-every``, ``--no-progress``, ``-q``, ``--resume``, ``-o RUN_DIR``, ``--force``)."""
    opts = [
        click.option("--checkpoint-every", type=Limited("count"), default=50, show_default=True,
                     help="Also save last.pt every N steps inside an epoch (0 = at epoch ends only)."),
        click.option("--no-progress", is_flag=True,
                     help="No progress (a bar on a terminal, a line per ~10 % of the run in a log)."),
        click.option("-q", "--quiet", is_flag=True, help="Warnings and the result only: no progress, no line per epoch."),
        click.option("--resume", is_flag=True,
                     help="Continue the run in RUN_DIR from last.pt (model, optimizer, schedule, random streams)."),
        out_option("run_dir", required=True, type=click.Path(file_okay=False),
                   help="Run folder (RUN_DIR): new or empty, a run to --resume, or an occupied folder with --force."),
        click.option("--force", is_flag=True,
                     help="Write the run into a folder that holds other files (a run there needs --resume)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f
