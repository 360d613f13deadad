"""The ``hearkit`` command line: one click group, subcommands loaded lazily.

Each subcommand lives in its own module and is imported only when it runs (or
when ``--help`` lists it), so ``hearkit --help`` and ``hearkit run`` start on a
device that has no torch. Modules named here must not import torch or onnx at
module level. Every ``HearkitError`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from hearkit.errors import HearkitError

# name -> "module:attribute". Keep alphabetical; one line per command.
COMMANDS: dict[str, str] = {
    "bench": "hearkit.commands.bench:bench",
    "data": "hearkit.commands.data:data",
    "demo": "hearkit.commands.demo:demo",
    "devices": "hearkit.commands.devices:devices",
    "eval": "hearkit.commands.classify:eval_",
    "export": "hearkit.commands.export:export",
    "export-frontend": "hearkit.commands.frontend:export_frontend",
    "features": "hearkit.commands.frontend:features",
    "lm": "hearkit.commands.lm:lm",
    "package": "hearkit.commands.package:package",
    "run": "hearkit.commands.classify:run",
    "show": "hearkit.commands.show:show",
    "stream": "hearkit.commands.classify:stream",
    "train": "hearkit.commands.train:train",
    "transcribe": "hearkit.commands.transcribe:transcribe",
    "verify": "hearkit.commands.export:verify",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click docs, "Lazily Loading Subcommands")."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        if name in self.lazy_commands:
            module, attr = self.lazy_commands[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HearkitError as e:
            # One clear line, no traceback, for bad user input (STYLE: errors).
            raise UserError(str(e)) from e


class UserError(click.ClickException):
    """Bad user input: printed as one line ("Error: ..."), exit code 2 like click's usage errors."""

    exit_code = 2


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hearkit")
def main():
    """hearkit: train compact audio models, export them with their front-end to
    quantized ONNX, and run them on a Raspberry Pi, a Jetson or any CPU.

    \b
    Typical path:
      hearkit train classify --data DIR -o runs/kws     (needs hearkit[train])
      hearkit export runs/kws/best.pt -o out/kws --quantize int8
      hearkit verify out/kws --data DIR
      hearkit run out/kws/pipeline.int8.onnx clip.wav   (torch-free)

    Run `hearkit COMMAND --help` for the options of each command.
    """
    # Warnings meant for people (a missing execution provider, nodes on CPU) read as
    # one line on the command line, not as "file:line: UserWarning" plus a source line.
    warnings.formatwarning = _one_line_warning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
