"""``hearkit calibrate``: per-label thresholds at a rate of false alarms, written into a keyword export."""

from __future__ import annotations

import json

import click

from hearkit.commands.options import Limited


@click.command("calibrate")
@click.argument("export_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--negatives", multiple=True, required=True, type=click.Path(exists=True),
              help="Audio without the phrases (folder or manifest), streamed back to back; clips whose transcript "
                   "holds a phrase are left out. Repeatable.")
@click.option("--fa-per-hour", type=Limited("fa_per_hour"), default=0.5, show_default=True,
              help="False alarms per hour to allow.")
@click.option("--positives", multiple=True, type=click.Path(exists=True),
              help="Real recordings of the phrases (a folder per phrase, or a manifest): then the threshold with the "
                   "fewest misses at the target is taken, else the most sensitive one that keeps it. Repeatable.")
@click.option("--noise", multiple=True, type=click.Path(exists=True, file_okay=False), help="Noise mixed into the positives.")
@click.option("--snr", "snr_db", type=Limited("snr_db"), default=None, help="Speech-to-noise ratio (dB) of the positives.")
@click.option("--hop", "hop_seconds", type=Limited("hop_s", lo=0.01, hi=1.0), default=0.1, show_default=True, help="Seconds between decisions.")
@click.option("--smoothing", type=Limited("smoothing"), default=3, show_default=True, help="Decisions averaged.")
@click.option("--refractory", "refractory_seconds", type=Limited("refractory_s"), default=1.0, show_default=True,
              help="Seconds after a detection during which nothing fires.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def calibrate(export_dir, negatives, fa_per_hour, positives, noise, snr_db, hop_seconds, smoothing, refractory_seconds, as_json):
    """Measure keyword thresholds at --fa-per-hour and write them into EXPORT_DIR's models.

    `hearkit stream`, KeywordSpotter and bundles packaged afterwards use them with no flag.

    \b
    Example:
      hearkit calibrate out/kws --negatives ../shared/data/ljspeech_amateur --fa-per-hour 0.5
      hearkit package out/kws --device raspberry-pi-5 -o bundle/kws
    """
    from hearkit.errors import require

    require("onnx", "train")
    from hearkit.export.thresholds import calibrate as run
    from hearkit.files import writing

    with writing(export_dir):  # rewrites the export's graphs and export.json: one writer at a time
        res = run(export_dir, negatives, fa_per_hour=fa_per_hour, positives=positives, noise=noise, snr_db=snr_db,
                  hop_seconds=hop_seconds, smoothing=smoothing, refractory_seconds=refractory_seconds,
                  log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    for name, r in res.items():
        click.echo(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["thresholds"].items())
                   + f" at <= {fa_per_hour:g} FA/h over {r['negative_hours']:.2f} h of negatives")
