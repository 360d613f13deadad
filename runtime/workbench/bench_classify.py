"""``hearkit bench classify MODEL_DIR``: torch eager, ONNX fp32 and ONNX int8 side by side.

The benchmark is ``hearkit.export.bench.bench_classify``; torch is measured only when
installed (this command never imports it), so the ONNX rows also run on a device.
"""

from __future__ import annotations

import json

import click

from hearkit.commands.options import Limited

# torch-free at import (torch and onnx load inside its functions), so --help works on a device
from hearkit.export.bench import CLASSIFY_REPEAT, STREAM_SECONDS


@click.command("classify")
@click.argument("model_dir", type=click.Path(exists=True))
@click.option("--repeat", type=Limited("repeat"), default=CLASSIFY_REPEAT, show_default=True, help="Timed runs per model (interleaved rounds); median reported.")
@click.option("--stream-seconds", type=Limited("seconds", lo=1), default=STREAM_SECONDS, show_default=True,
              help="Audio fed to the keyword spotter for the CPU share.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_classify(model_dir, repeat, stream_seconds, as_json):
    """Latency of one clip on 1 thread: torch eager, ONNX fp32, ONNX int8 (pipeline and network),
    and the CPU share of streaming with a 100 ms hop.

    MODEL_DIR is a folder written by `hearkit export` (or a model file in one)."""
    from hearkit.commands.bench import log
    from hearkit.export.bench import bench_classify as run

    result = run(model_dir, repeat=repeat, stream_seconds=stream_seconds, log=log)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return

    def f(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    click.echo(f"{result['model_dir']}: one {result['window_seconds']:g}-s clip, batch 1, 1 thread, median of {repeat}")
    click.echo(f"{'variant':<28} {'pipeline ms':>11} {'network ms':>10} {'net x fp32':>10} {'x no-NCHWc':>10} "
               f"{'net x torch':>11} {'stream CPU %':>12}")
    for r in result["rows"]:
        click.echo(f"{r['variant']:<28} {f(r['pipeline_ms']):>11} {f(r.get('network_ms')):>10} "
                   f"{f(r.get('x_vs_onnx_fp32'), '{:.2f}'):>10} {f(r.get('x_vs_onnx_fp32_no_nchwc'), '{:.2f}'):>10} "
                   f"{f(r.get('x_vs_torch_eager'), '{:.2f}'):>11} {f(r.get('cpu_share_percent'), '{:.2f}'):>12}")
    click.echo("net x fp32 / x no-NCHWc: network speed-up over ONNX fp32 at level 'all' (x86 NCHWc kernels) / "
               "at 'extended' (no NCHWc: ARM, saved graphs)")
    click.echo("stream CPU %: process CPU time / audio time, KeywordSpotter with a 100 ms hop, spinning off")
