"""``hearkit bench MODEL_OR_BUNDLE [--device NAME]``: load time, latency, RTF, peak RSS, size.

The benchmark is ``hearkit.evaluate.bench.bench_model`` (torch-free); this command
parses, runs it and prints the table.
"""

from __future__ import annotations

import json

import click

from hearkit.commands.options import Limited
from hearkit.errors import HearkitError

from hearkit.evaluate.bench import CTC_SECONDS, FOOTPRINT_RSS_MB, FOOTPRINT_SECONDS, STREAM_SECONDS


@click.command("model")
@click.argument("model", type=click.Path(exists=True))
@click.option("--device", "-d", default=None, help="Device profile (see `hearkit devices`): threads, providers, preferred variant.")
@click.option("--repeat", type=Limited("repeat"), default=50, show_default=True, help="Timed runs per model.")
@click.option("--seconds", type=Limited("seconds", lo=0.1), default=None,
              help=f"Audio per call (Default: the model's window, or {CTC_SECONDS:g} s for CTC models).")
@click.option("--clip", type=click.Path(exists=True, dir_okay=False), default=None, help="Audio clip for the footprint run (Default: silence).")
@click.option("--footprint/--no-footprint", default=True, show_default=True,
              help="Also measure a fresh process classifying one clip against `import torch` (classification models).")
@click.option("--spotter/--no-spotter", default=True, show_default=True,
              help="Also measure the keyword spotter's CPU share at its hop (100 ms; 80 ms on the speech embedding), "
                   "streaming and full window (classification models).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_model(model, device, repeat, seconds, clip, footprint, spotter, as_json):
    """Benchmark a model file, export folder or bundle: load, p50/p95 latency, RTF, size, peak RSS."""
    from hearkit.devices import load_profile
    from hearkit.evaluate.bench import bench_model as run

    profile = load_profile(device) if device else None
    report = run(model, profile=profile, repeat=repeat, seconds=seconds, clip=clip, footprint=footprint, spotter=spotter)
    failed = [f"footprint: {v['error']}" for k, v in report.get("footprint", {}).items() if "error" in v and k == "hearkit"]
    failed += [f"{r['case']}: {r['error']}" for r in report.get("spotter", []) if "error" in r]
    if failed:  # a benchmark that could not measure what it was asked to is no result (exit 2, one line)
        raise HearkitError(f"{model}: the benchmark could not measure {len(failed)} of its cases: " + "; ".join(failed))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"hearkit {report['hearkit']}, onnxruntime {report['onnxruntime']}, {report['machine']}, "
               f"device {report['device'] or '(none: 1 thread, CPU)'}, {repeat} runs")
    click.echo(f"{'model':<22} {'variant':<24} {'MB':>6} {'load ms':>8} {'audio s':>7} {'p50 ms':>8} {'p95 ms':>8} {'RTF':>8}")
    for r in report["models"]:
        click.echo(f"{r['model']:<22} {str(r['quantization']):<24} {r['bytes'] / 1e6:>6.2f} {r['load_ms']:>8.1f} "
                   f"{r['audio_s']:>7.2f} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['rtf']:>8.4f}")
    if "footprint" in report:
        click.echo(f"footprint (fresh process, start to exit; targets < {FOOTPRINT_RSS_MB:g} MB, < {FOOTPRINT_SECONDS:g} s):")
        for k, v in report["footprint"].items():
            if "error" in v:
                click.echo(f"  {k:<34} {v['error']}")
            else:
                what = "load bundle + classify one clip" if k == "hearkit" else "import torch only"
                click.echo(f"  {k + ' (' + what + ')':<48} peak RSS {v['rss_mb']:>7.1f} MB   wall {v['wall_s']:>6.3f} s")
    if "spotter" in report:
        click.echo(f"keyword spotter at its hop, {STREAM_SECONDS:g} s of noise (process CPU / audio time; "
                   f"target <= {report['spotter_target_percent']:g} % of a core for int8):")
        for r in report["spotter"] + report.get("spotter_peers", []):
            if "error" in r:
                click.echo(f"  {r['case']:<40} {r['error']}")
            else:
                click.echo(f"  {r['case']:<40} {r['cpu_share_percent']:>6.3f} % of a core   {r['wall_ms_per_hop']:>6.3f} ms "
                           f"per {1000 * r['hop_seconds']:g}-ms hop")
