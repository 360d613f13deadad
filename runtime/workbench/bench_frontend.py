"""``hearkit bench frontend``: every front-end backend timed side by side (torch-vs-ONNX: ``hearkit.export.bench``)."""

from __future__ import annotations

import json

import click

from hearkit.commands.bench import log
from hearkit.commands.options import Limited, config_from_options, frontend_options
from hearkit.evaluate.bench import REFERENCE_SECONDS


@click.command("frontend")
@click.option("--seconds", type=Limited("seconds", lo=0.1), default=REFERENCE_SECONDS, show_default=True, help="Length of the test signal (seeded white noise).")
@click.option("--threads", type=Limited("threads"), default=1, show_default=True, help="Threads for onnxruntime and torch.")
@click.option("--repeat", type=Limited("repeat"), default=20, show_default=True, help="Timed runs per backend; the median is reported.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Also time an exported front-end graph (repeatable); works without torch/onnx, e.g. on a device.")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Also draw the figures as a bar chart (needs hearkit[plot]).")
@frontend_options
def bench_frontend(seconds: float, threads: int, repeat: int, as_json: bool, models: tuple[str, ...], png: str | None, **kw):
    """Time per 10 s of audio for every front-end backend, with librosa and torch.stft beside them."""
    from hearkit.export.bench import bench_frontend as run, plot_frontend_bench

    cfg = config_from_options(kw)
    rep = run(cfg, seconds=seconds, threads=threads, repeat=repeat, models=models, log=log)
    if png:
        plot_frontend_bench(rep, png)
        log(f"wrote {png}")
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    click.echo(f"front-end, {rep['seconds']:g} s of audio, {threads} thread(s), median of {repeat}; "
               f"n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels; numpy BLAS: {rep['blas_threads']}")
    click.echo(f"{'backend':<24} {'ms / 10 s':>10} {'cpu ms':>8} {'x realtime':>11}  note")
    for r in rep["results"]:
        if r["ms_per_10s"] is None:
            click.echo(f"{r['backend']:<24} {'-':>10} {'-':>8} {'-':>11}  skipped: {r['note']}")
        else:
            rt = REFERENCE_SECONDS * 1e3 / r["ms_per_10s"]
            click.echo(f"{r['backend']:<24} {r['ms_per_10s']:>10.2f} {r['cpu_ms_per_10s']:>8.2f} {rt:>11.0f}  {r['note']}")
