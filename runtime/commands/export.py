"""``hearkit export`` and ``hearkit verify``: checkpoint -> ONNX files, and proof that they match.

Both dispatch on the task recorded in the checkpoint / export (``EXPORTERS`` /
``VERIFIERS``: ``"task": "module:function"``), so other tasks plug in with one line.
torch and onnx are imported inside the command bodies only.
"""

from __future__ import annotations

import importlib
import json

import click

from hearkit.errors import ModelError, require

# task -> "module:function(checkpoint, out_dir, quantize=..., calibration_clips=..., data=..., fmt=..., ckpt=...) -> summary"
EXPORTERS: dict[str, str] = {
    "classify": "hearkit.export.classify:export_classifier",
    "ctc": "hearkit.export.ctc:export_ctc",
}
# task -> "module:function(out_dir, data=..., fmt=..., split=..., checkpoint=..., max_clips=...) -> report"
VERIFIERS: dict[str, str] = {
    "classify": "hearkit.export.verify:verify_classifier",
    "ctc": "hearkit.export.verify_ctc:verify_ctc",
}
QUANTIZE_CHOICES = ("none", "int8", "fp16")


def _load(spec: str):
    module, attr = spec.split(":")
    return getattr(importlib.import_module(module), attr)


def _recipe_help() -> str:
    return "Quantized variant to add (repeatable): none, int8 (static QDQ S8S8 per-channel) or fp16; the front-end stays fp32."


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--quantize", "quantize", multiple=True, default=("int8",), show_default=True,
              type=click.Choice(QUANTIZE_CHOICES), help=_recipe_help())
@click.option("--recipe", default=None, metavar="NAME",
              help="A named quantization recipe to add (e.g. qdq-u8u8, qdq-symmetric); see `hearkit export --list-recipes`.")
@click.option("--calibration-clips", type=click.IntRange(min=1), default=300, show_default=True,
              help="Training clips used to calibrate static int8.")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Calibration data folder (default: the one recorded in the checkpoint).")
@click.option("--format", "fmt", default=None, help="Dataset format of --data (default: detected).")
@click.option("--device", "-d", default=None,
              help="Device profile (see `hearkit devices`) or path to a profile.toml: the int8 variant "
                   "(model.int8.onnx, pipeline.int8.onnx) is made with its quantization recipe.")
@click.option("--list-recipes", is_flag=True, is_eager=True, expose_value=False, callback=lambda c, p, v: _list(c, v),
              help="List the quantization recipes and exit.")
def export(checkpoint, out_dir, quantize, recipe, calibration_clips, data, fmt, device):
    """Export CHECKPOINT (e.g. runs/kws/best.pt) to ONNX: frontend.onnx, model.onnx,
    pipeline.onnx and quantized variants, with all metadata inside. Needs hearkit[train].

    \b
    Example:
      hearkit export runs/kws/best.pt -o out/kws --device raspberry-pi-4
      hearkit run out/kws clip.wav --device raspberry-pi-4"""
    profile = None
    if device is not None:  # before torch: an unknown name is one line listing the known ones (exit 2)
        from hearkit.devices import load_profile

        profile = load_profile(device)
    require("torch", "train")
    require("onnx", "train")
    from hearkit.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    task = ckpt.get("task")
    if task not in EXPORTERS:
        raise ModelError(f"{checkpoint}: no exporter for task {task!r}; supported: {sorted(EXPORTERS)}")
    variants = tuple(q for q in quantize if q != "none")
    if recipe:
        from hearkit.export.quantize import get_recipe

        variants += (get_recipe(recipe).name,)
    if profile is not None:  # the device's recipe makes the int8 variant
        from hearkit.export.package import plan_device_variants

        variants, dev_recipe = plan_device_variants(variants, profile)
    summary = _load(EXPORTERS[task])(
        checkpoint, out_dir, quantize=variants, calibration_clips=calibration_clips, data=data, fmt=fmt, ckpt=ckpt
    )
    if profile is not None:
        from hearkit.export.package import make_device_variant

        summary = make_device_variant(out_dir, summary, profile, dev_recipe, data, calibration_clips)
    click.echo(json.dumps({"output": out_dir, "files": sorted(summary["files"]), "checks": summary["checks"]}))


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
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Evaluation data folder (default: the checkpoint's training data).")
@click.option("--format", "fmt", default=None, help="Dataset format (default: detected).")
@click.option("--split", default="val", show_default=True, type=click.Choice(["val", "test", "train", "all"]))
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The checkpoint, if it moved since export (its sha256 must match).")
@click.option("--max-clips", type=click.IntRange(min=1), default=None, help="Evaluate an even subset of the split.")
@click.option("--manifest", type=click.Path(exists=True), default=None,
              help="CTC exports: JSONL manifest (or LibriSpeech folder) to verify on (default: the validation manifest of training).")
@click.option("--latency-runs", type=click.IntRange(min=0), default=50, show_default=True, help="Timed runs per model (0: skip).")
@click.option("--fp32-atol", type=float, default=1e-3, show_default=True, help="Max |fp32 logits - torch logits|.")
@click.option("--fp32-agreement", type=float, default=1.0, show_default=True, help="Min fp32 top-1 agreement with torch.")
@click.option("--quant-agreement", type=float, default=0.99, show_default=True, help="Min quantized top-1 agreement with torch.")
@click.option("--quant-max-drop", type=float, default=1.0, show_default=True, help="Max quantized accuracy drop vs fp32, in points.")
def verify(out_dir, data, fmt, split, checkpoint, max_clips, manifest, latency_runs, fp32_atol, fp32_agreement, quant_agreement,
           quant_max_drop):
    """Check an export against its checkpoint on real data; write report.json and report.md.

    Exit code 1 when a threshold fails. Needs hearkit[train] (it runs torch)."""
    require("torch", "train")
    from hearkit.artifacts import REPORT_MD, read_export
    from hearkit.export.verify import Thresholds

    summary = read_export(out_dir)
    task = summary.get("task")
    if task not in VERIFIERS:
        raise ModelError(f"{out_dir}: no verifier for task {task!r}; supported: {sorted(VERIFIERS)}")
    th = Thresholds(fp32_atol, fp32_agreement, quant_agreement, quant_max_drop / 100.0)
    extra = {}
    if manifest is not None:
        if task != "ctc":
            raise click.BadParameter(f"--manifest is for CTC exports; this export's task is {task!r} (use --data)")
        extra["manifest"] = manifest
    report = _load(VERIFIERS[task])(out_dir, data=data, fmt=fmt, split=split, thresholds=th,
                                    checkpoint=checkpoint, max_clips=max_clips, latency_runs=latency_runs, **extra)
    from pathlib import Path

    click.echo((Path(out_dir) / REPORT_MD).read_text())
    if not report["passed"]:
        failed = [c["check"] for c in report["checks"] if not c["passed"]]
        click.echo(f"verify FAILED: {'; '.join(failed)}", err=True)
        raise SystemExit(1)
