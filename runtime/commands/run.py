"""``hearkit run``: one JSON line per audio file, with whatever the model's task does with a file
(``hearkit.tasks``: a classifier labels it; a CTC model points to ``hearkit transcribe``)."""

from __future__ import annotations

import json

import click

from hearkit.commands.options import DEVICE_HELP, Limited, device_profile, model_task
from hearkit.errors import ModelError


@click.command("run")
@click.argument("model", type=click.Path(exists=True))
@click.argument("audio", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=Limited("labels"), default=3, show_default=True, help="Best labels listed per file.")
@click.option("--device", "-d", default=None, help=DEVICE_HELP)
def run(model, audio, top, device):
    """Run MODEL (a .onnx file, an export folder or a bundle) on AUDIO files: one JSON line per file.

    Any format libsndfile reads; audio is resampled to the model's rate."""
    from hearkit.tasks import get_task

    profile = device_profile(device)
    task, path = model_task(model, profile)
    t = get_task(task, path)
    if t.run_files is None:
        raise ModelError(f"{path}: `hearkit run` does nothing with a {task} model; use {t.run_instead}")
    for line in t.run_files()(path, list(audio), top=top, device=profile, note=lambda m: click.echo(m, err=True)):
        click.echo(json.dumps(line))
