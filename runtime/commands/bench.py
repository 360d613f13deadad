"""``hearkit bench``: speed figures measured side by side in one run.

A lazy click group: each benchmark is a subcommand named in ``BENCH_COMMANDS``
(``"name": "module:attr"``, one line each), imported only when it runs. The
benchmarks themselves are library functions: device benchmarks in
``hearkit.evaluate.bench`` (torch-free; their commands here, in ``hearkit.commands``),
torch-vs-ONNX ones in ``hearkit.export.bench`` (their commands in ``hearkit.workbench``);
these commands parse, call one of them and print a table (or JSON with ``--json``).
Speed targets live in the benchmarks' output, never in timed tests.
"""

from __future__ import annotations

import os

import click

from hearkit.cli import LazyGroup

# name -> "module:attribute". Keep alphabetical; one line per benchmark.
BENCH_COMMANDS: dict[str, str] = {
    "classify": "hearkit.workbench.bench_classify:bench_classify",
    "frontend": "hearkit.workbench.bench_frontend:bench_frontend",
    "model": "hearkit.commands.bench_model:bench_model",
    "soak": "hearkit.commands.bench_soak:bench_soak",
    "transcribe": "hearkit.workbench.bench_transcribe:bench_transcribe",
    "wakeword": "hearkit.commands.bench_wakeword:bench_wakeword",
}


class BenchGroup(LazyGroup):
    """``hearkit bench PATH ...`` means ``hearkit bench model PATH ...`` when PATH is not a benchmark name."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.lazy_commands and not args[0].startswith("-") and os.path.exists(args[0]):
            return "model", self.get_command(ctx, "model"), list(args)
        return super().resolve_command(ctx, args)


@click.group(cls=BenchGroup, lazy_commands=BENCH_COMMANDS)
def bench():
    """Measure speed: every backend and its references, in the same run.

    \b
    hearkit bench MODEL_OR_BUNDLE [--device NAME]   (same as `hearkit bench model ...`)
    """


def log(msg: str) -> None:
    """A benchmark's progress message, on stderr."""
    click.echo(msg, err=True)
