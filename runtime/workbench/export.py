"""``hearkit export`` and ``hearkit verify``: checkpoint -> ONNX files, and proof that they match.

Both dispatch on the task recorded in the checkpoint / export
(``hearkit.export.tasks.TASKS``), and each task's options (data, manifest,
thresholds) come from its ``Task``: an option several tasks read is one flag whose
help gives each task's meaning and default, and an option the task at hand does
not read is refused. The task registry is torch-free on import; torch and onnx
load inside the command bodies only.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from hearkit.commands.options import Limited, out_option
from hearkit.errors import require
from hearkit.export.task import EXPORT, VERIFY
from hearkit.export.tasks import merged_options

QUANTIZE_CHOICES = ("none", "int8", "fp16")


def task_options(command: str):
    """Decorator adding every task's options of ``command``; each arrives as None unless given."""
    def add(f):
        for opt, help_ in reversed(merged_options(command)):
            f = click.option(opt.flag, opt.param, type=_limited(opt.type), default=None, help=help_)(f)
        return f

    return add


def _limited(kind):
    """A task's numeric option type as a ``Limited`` one (hearkit.limits): click's float lets NaN and inf through,
    and a NaN tolerance would make every verify comparison false."""
    if isinstance(kind, click.types.FloatParamType) or kind is float:
        return Limited("tolerance")
    if isinstance(kind, click.types.IntParamType) or kind is int:
        lo = getattr(kind, "min", None)
        return Limited("count", lo=None if lo is None or lo <= 0 else lo)
    return kind


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@out_option("out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: new or empty (an occupied one only with --force).")
@click.option("--force", is_flag=True,
              help="Write into an occupied folder; graphs an earlier export there recorded and this one does not write are removed.")
@click.option("--quantize", "quantize", multiple=True, default=("int8",), show_default=True,
              type=click.Choice(QUANTIZE_CHOICES),
              help="Quantized variant to add (repeatable): none, int8 (static QDQ S8S8 per-channel) or fp16; "
                   "the front-end stays fp32.")
@click.option("--recipe", default=None, metavar="NAME",
              help="A named quantization recipe to add (e.g. qdq-u8u8, qdq-symmetric); see `hearkit export --list-recipes`.")
@click.option("--device", "-d", default=None,
              help="Device profile (see `hearkit devices`) or path to a profile.toml: the int8 variant "
                   "(model.int8.onnx, pipeline.int8.onnx) is made with its quantization recipe.")
@click.option("--list-recipes", is_flag=True, is_eager=True, expose_value=False, callback=lambda c, p, v: _list(c, v),
              help="List the quantization recipes and exit.")
@task_options(EXPORT)
def export(checkpoint, out_dir, force, quantize, recipe, device, **given):
    """Export CHECKPOINT (e.g. runs/kws/best.pt) to ONNX: frontend.onnx, model.onnx,
    pipeline.onnx and quantized variants, with all metadata inside. Needs hearkit[train].

    \b
    Example:
      hearkit export runs/kws/best.pt -o out/kws --device raspberry-pi-4
      hearkit run out/kws clip.wav --device raspberry-pi-4"""
    from hearkit.files import output_folder, refuse_containing

    # exporting into the checkpoint's own folder (or one above it) could replace the run
    refuse_containing(out_dir, Path(checkpoint).parent, "the folder of the checkpoint")
    profile = None
    if device is not None:  # before torch: an unknown name is one line listing the known ones (exit 2)
        from hearkit.devices import load_profile

        profile = load_profile(device)
    require("torch", "train")
    require("onnx", "train")
    from hearkit.export.exporter import export as run_export
    from hearkit.export.tasks import get_task
    from hearkit.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    task = get_task(ckpt.get("task"), checkpoint, "checkpoint")
    variants = tuple(q for q in quantize if q != "none")
    if recipe:
        from hearkit.export.quantize import get_recipe

        variants += (get_recipe(recipe).name,)
    options = task.parse_options(EXPORT, given)
    with output_folder(out_dir, force):
        before = _recorded_graphs(out_dir)
        summary = run_export(checkpoint, out_dir, quantize=variants, device=profile, ckpt=ckpt, **options)
        _remove_stale(out_dir, before - set(summary["files"]))
    click.echo(json.dumps({"output": out_dir, "files": sorted(summary["files"]), "checks": summary["checks"]}))


def _recorded_graphs(out_dir) -> set[str]:
    """The graph files an earlier export in ``out_dir`` recorded in its export.json (empty when none)."""
    from hearkit import artifacts

    try:
        files = artifacts.read_export(out_dir).get("files") or {}
    except Exception:  # no export there, or a damaged summary: nothing is known to be hearkit's
        return set()
    return {n for n in files if isinstance(n, str) and "/" not in n and artifacts.parse_name(n) is not None}


def _remove_stale(out_dir, names) -> None:
    """Remove graphs of an earlier export that this one replaced and did not write again (``--force``).

    Only names the earlier ``export.json`` listed and ``hearkit.artifacts`` spells: a user's
    own files in the folder are never touched.
    """
    for n in sorted(names):
        p = Path(out_dir) / n
        if p.is_file() and not p.is_symlink():
            p.unlink()


def _list(ctx, value):
    if not value or ctx.resilient_parsing:
        return
    from importlib.util import find_spec

    if find_spec("onnx") is None:
        raise click.ClickException('listing recipes needs onnx: pip install "hearkit[train]"')
    from hearkit.export.quantize import iter_recipe_lines

    for line in iter_recipe_lines():
        click.echo(line)
    ctx.exit(0)


@click.command("verify")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The checkpoint, if it moved since export (its sha256 must match).")
@click.option("--max-clips", type=Limited("count", lo=1), default=None,
              help="Evaluate an even subset of the data (clips, or utterances for ctc).")
@click.option("--latency-runs", type=Limited("count"), default=50, show_default=True,
              help="Timed runs per model (0: skip; ctc times its one pass over the data).")
@task_options(VERIFY)
def verify(out_dir, checkpoint, max_clips, latency_runs, **given):
    """Check an export against its checkpoint on real data; write report.json and report.md.

    Exit code 1 when a threshold fails. Needs hearkit[train] (it runs torch)."""
    require("torch", "train")
    from hearkit.artifacts import REPORT_MD, read_export
    from hearkit.export.tasks import get_task
    from hearkit.export.verify import verify as run_verify

    from hearkit.files import writing

    task = get_task(read_export(out_dir).get("task"), out_dir, "export")
    with writing(out_dir):  # report.json, report.md: one verify per export folder at a time
        report = run_verify(out_dir, checkpoint=checkpoint, max_clips=max_clips, latency_runs=latency_runs,
                            **task.parse_options(VERIFY, given))
    click.echo((Path(out_dir) / REPORT_MD).read_text())
    if not report["passed"]:
        failed = [c["check"] for c in report["checks"] if not c["passed"]]
        click.echo(f"verify FAILED: {'; '.join(failed)}", err=True)
        raise SystemExit(1)
