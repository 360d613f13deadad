"""The ``hearkit`` command line: one click group, subcommands loaded lazily.

Each subcommand lives in its own module and is imported only when it runs (or
when ``--help`` lists it), so ``hearkit --help`` and ``hearkit run`` start on a
device that has no torch. The commands a device runs are in ``hearkit.commands``
(torch-free, even inside functions); those that make a model are in
``hearkit.workbench`` (they import the training side inside their bodies, never
at module level). Every ``HearkitError``, and any ``OSError`` (missing or unreadable
files, a full disk), ``UnicodeDecodeError`` or ``ValueError`` from what the user gave,
becomes one line on stderr and exit code 2 (``--verbose`` shows the traceback instead).

What reaches stderr is chosen here, at the edge (``output_level``): by default
third-party chatter that means nothing to a user (torch exporter registrations,
onnxruntime's initializer clean-ups, the quantizer's calibrator, deprecation
warnings from inside the libraries) is hidden and hearkit's own messages stay;
``--verbose`` shows it all, ``--quiet`` keeps only results (stdout) and errors.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import warnings

import click

from hearkit.errors import HearkitError, HearkitWarning

# name -> "module:attribute". Keep alphabetical; one line per command.
COMMANDS: dict[str, str] = {
    "bench": "hearkit.commands.bench:bench",
    "calibrate": "hearkit.workbench.calibrate:calibrate",
    "data": "hearkit.workbench.data:data",
    "demo": "hearkit.workbench.demo:demo",
    "devices": "hearkit.commands.devices:devices",
    "eval": "hearkit.commands.evaluate:eval_",
    "export": "hearkit.workbench.export:export",
    "export-frontend": "hearkit.workbench.frontend:export_frontend",
    "features": "hearkit.workbench.frontend:features",
    "lm": "hearkit.commands.lm:lm",
    "package": "hearkit.workbench.package:package",
    "run": "hearkit.commands.run:run",
    "show": "hearkit.workbench.show:show",
    "stream": "hearkit.commands.stream:stream",
    "train": "hearkit.workbench.train:train",
    "transcribe": "hearkit.commands.transcribe:transcribe",
    "verify": "hearkit.workbench.export:verify",
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

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's main, with a usage error (bad option, missing argument) as one line naming the command."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            # click's own form is four lines (usage, hint, blank, error); a log or a firmware
            # build wants one that says where and what
            cmd = e.ctx.command_path if e.ctx is not None else "hearkit"
            click.echo(f"Error: {cmd}: {e.format_message()} (see {cmd} --help)", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HearkitError as e:
            # One clear line, no traceback, for bad user input (STYLE: errors).
            raise UserError(str(e)) from e
        except OSError as e:
            # files the user named: missing, unreadable, a full disk. With --verbose the traceback shows.
            if _verbose(ctx):
                raise
            where = f"{e.filename}: " if getattr(e, "filename", None) else ""
            raise UserError(f"{where}{e.strerror or e}") from e
        except UnicodeDecodeError as e:
            if _verbose(ctx):
                raise
            raise UserError(f"a text input is not UTF-8 ({e.reason} at byte {e.start}); save it as UTF-8") from e
        except ValueError as e:
            # a library's refusal of what the user gave (numpy, soundfile, onnxruntime, json) that no
            # hearkit check caught first: one line with the command, the traceback with --verbose
            if _verbose(ctx):
                raise
            cmd = ctx.command_path
            sub = ctx.invoked_subcommand
            raise UserError(f"{cmd}{' ' + sub if sub else ''}: {type(e).__name__}: {' '.join(str(e).split())} (--verbose shows where)") from e


def _verbose(ctx) -> bool:
    return bool(ctx.params.get("verbose"))


class UserError(click.ClickException):
    """Bad user input: printed as one line ("Error: ..."), exit code 2 like click's usage errors."""

    exit_code = 2


QUIET, NORMAL, VERBOSE = "quiet", "normal", "verbose"
ORT_WARNING, ORT_ERROR = 2, 3  # onnxruntime log severities (2, warnings, is its default)
# Loggers that carry hearkit's own details (the calibrator's progress, see hearkit.export.quantize):
# shown with --verbose only.
HEARKIT_LOGGER = "hearkit"


@contextlib.contextmanager
def output_level(level: str = NORMAL):
    """What a command prints besides its results, restored on exit.

    Args:
        level: ``normal`` (Default): third-party Python warnings, third-party log
            records up to WARNING and onnxruntime's warnings are hidden; hearkit's
            own warnings (``HearkitWarning``) and messages stay.
            ``verbose``: everything, hearkit's debug logs (the calibrator's output) included.
            ``quiet``: stderr is dropped as well, so only results (stdout) and errors remain.
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        # Warnings meant for people (a missing execution provider, nodes on CPU) read as
        # one line on the command line, not as "file:line: UserWarning" plus a source line.
        old_format = warnings.formatwarning
        warnings.formatwarning = _one_line_warning
        stack.callback(setattr, warnings, "formatwarning", old_format)
        old_disable = logging.root.manager.disable
        stack.callback(logging.disable, old_disable)
        if level == VERBOSE:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            log = logging.getLogger(HEARKIT_LOGGER)
            old_log_level = log.level
            log.addHandler(handler)
            log.setLevel(logging.DEBUG)
            stack.callback(log.setLevel, old_log_level)
            stack.callback(log.removeHandler, handler)
        else:
            # torch's exporter logs its registrations at WARNING (torchvision::nms ...) and the
            # quantizer logs through the root logger; records at ERROR and above still show
            warnings.simplefilter("ignore")
            warnings.simplefilter("default", HearkitWarning)
            logging.disable(logging.WARNING)
            _set_ort_severity(ORT_ERROR)  # "Removing initializer ...": clean-ups of graphs hearkit wrote
            stack.callback(_set_ort_severity, ORT_WARNING)
        if level == QUIET:
            devnull = stack.enter_context(open(os.devnull, "w"))
            stack.enter_context(contextlib.redirect_stderr(devnull))
        yield


def _set_ort_severity(severity: int) -> None:
    try:
        import onnxruntime as ort
    except ImportError:  # commands that need it say so themselves
        return
    ort.set_default_logger_severity(severity)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hearkit")
@click.option("-v", "--verbose", is_flag=True, help="Also show third-party warnings and logs (torch exporter, "
              "onnxruntime, the quantizer's calibrator).")
@click.option("-q", "--quiet", is_flag=True, help="Print only results and errors (no progress, notes or warnings).")
@click.pass_context
def main(ctx, verbose: bool, quiet: bool):
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
    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other")
    ctx.with_resource(output_level(VERBOSE if verbose else QUIET if quiet else NORMAL))


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
