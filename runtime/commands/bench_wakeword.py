"""``hearkit bench wakeword MODEL``: hearkit's keyword spotter and PocketSphinx on the same streams.

Both engines hear the streams ``hearkit.evaluate.detector`` builds (positives between gaps,
optionally in noise at an SNR; negatives back to back) and are judged by the same rules;
the table gives each one's false-reject rate at 0.5, 1 and 2 false alarms per hour with
95 % intervals, and CPU seconds per hour of audio. PocketSphinx is the optional extra
``hearkit[peer]`` (docs/design.md §10).
"""

from __future__ import annotations

import json

import click

from hearkit.commands.options import Limited

from hearkit.evaluate.pocketsphinx import PERMISSIVE_THRESHOLD


@click.command("wakeword")
@click.argument("model", type=click.Path(exists=True))
@click.option("--positives", multiple=True, required=True, type=click.Path(exists=True),
              help="Real recordings of the model's phrases (a folder per phrase, or a manifest). Repeatable.")
@click.option("--negatives", multiple=True, required=True, type=click.Path(exists=True),
              help="Audio streamed back to back (folders or manifests); clips whose transcript holds a phrase "
                   "are left out. Repeatable.")
@click.option("--noise", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Noise mixed into the positive stream (needs --snr). Repeatable.")
@click.option("--snr", "snr_db", type=Limited("snr_db"), default=None, help="Speech-to-noise ratio (dB) of the positives.")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True, help="Order of the positives, gaps and noise.")
@click.option("--kws-threshold", type=Limited("threshold"), default=PERMISSIVE_THRESHOLD,
              show_default=True, help="PocketSphinx's one decode; every stricter threshold is swept from its scores.")
@click.option("--no-pocketsphinx", "no_pocketsphinx", is_flag=True, help="hearkit's model alone.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the DET curves of both engines as PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print both reports as JSON.")
def bench_wakeword(model, positives, negatives, noise, snr_db, seed, kws_threshold, no_pocketsphinx, plot, as_json):
    """Misses at 0.5/1/2 false alarms per hour: MODEL's KeywordSpotter beside PocketSphinx.

    MODEL is a keyword export folder, bundle or model file (a folder's int8 model is taken first);
    its phrases (non-background labels) are PocketSphinx's keyphrases.

    \b
    Example:
      hearkit bench wakeword out/kws --positives ../shared/data/speech_commands \\
          --negatives ../shared/data/ljspeech_amateur \\
          --noise ../shared/data/speech_commands/_silence_ --snr 10 --plot det.png
    """
    if noise and snr_db is None:
        raise click.BadParameter("--noise needs --snr", param_hint="--snr")
    from hearkit.classify import KeywordSpotter
    from hearkit.evaluate.pocketsphinx import compare_engines, comparison_lines, plot_det_engines

    if not no_pocketsphinx:
        from hearkit.errors import require

        require("pocketsphinx", "peer")  # before minutes of hearkit's streams, not after
    spotter = KeywordSpotter(model)
    reports = compare_engines(spotter, positives, negatives, noise=noise, snr_db=snr_db, seed=seed,
                              pocketsphinx=not no_pocketsphinx, kws_threshold=kws_threshold,
                              log=lambda m: click.echo(m, err=True))
    if plot:
        plot_det_engines(reports, plot, title=f"{click.format_filename(model)}: " + " vs ".join(reports))
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    for line in comparison_lines(reports):
        click.echo(line)
