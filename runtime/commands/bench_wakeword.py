"""``hearkit bench wakeword MODEL``: hearkit's keyword spotter and its peers on the same streams.

The peers are PocketSphinx (the extra ``hearkit[peer]``) and openWakeWord's official models
(``hearkit[oww]``; only for the phrases that have one: alexa, hey jarvis, hey mycroft, hey rhasspy,
okay nabu). Every engine hears the streams ``hearkit.evaluate.detector`` builds (positives between gaps,
optionally in noise at an SNR; negatives back to back) and are judged by the same rules;
the table gives each one's false-reject rate at 0.5, 1 and 2 false alarms per hour with
95 % intervals, and CPU seconds per hour of audio (docs/design.md §10).
"""

from __future__ import annotations

import json

import click

from hearkit.commands.options import Limited

from hearkit.evaluate.pocketsphinx import PERMISSIVE_THRESHOLD

PEERS = {"pocketsphinx": ("pocketsphinx", "peer"), "openwakeword": ("pyopen_wakeword", "oww")}  # name: (module, extra)


def _peer_names(values) -> list[str] | None:
    """``--peer`` values (repeatable, comma-separated) as peer names; None when not given; [] for ``none``."""
    if not values:
        return None
    names = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    bad = sorted(set(names) - set(PEERS) - {"none"})
    if bad:
        raise click.BadParameter(f"{', '.join(bad)}: the peers are {', '.join(PEERS)} (or none)", param_hint="--peer")
    return [n for n in dict.fromkeys(names) if n != "none"]


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


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
@click.option("--peer", "peer", multiple=True, metavar="NAMES",
              help="Peers to run beside MODEL, comma-separated: pocketsphinx, openwakeword, or none "
                   "(Default: every installed peer that applies; openwakeword only where a phrase has an official model).")
@click.option("--no-pocketsphinx", "no_pocketsphinx", is_flag=True, help="Leave PocketSphinx out.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the DET curves of every engine as PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print every report as JSON.")
def bench_wakeword(model, positives, negatives, noise, snr_db, seed, kws_threshold, peer, no_pocketsphinx, plot, as_json):
    """Misses at 0.5/1/2 false alarms per hour: MODEL's KeywordSpotter beside PocketSphinx and openWakeWord.

    MODEL is a keyword export folder, bundle or model file (a folder's int8 model is taken first);
    its phrases (non-background labels) are PocketSphinx's keyphrases, and openWakeWord's official
    model runs for each phrase that has one (alexa, hey jarvis, hey mycroft, hey rhasspy, okay nabu).

    \b
    Example:
      hearkit bench wakeword out/kws --positives ../shared/data/speech_commands \\
          --negatives ../shared/data/ljspeech_amateur \\
          --noise ../shared/data/speech_commands/_silence_ --snr 10 --plot det.png
    """
    if noise and snr_db is None:
        raise click.BadParameter("--noise needs --snr", param_hint="--snr")
    from hearkit.classify import KeywordSpotter
    from hearkit.errors import require
    from hearkit.evaluate.openwakeword import official_models, skipped_line
    from hearkit.evaluate.detector import Streams
    from hearkit.evaluate.pocketsphinx import compare_engines, comparison_lines, plot_det_engines

    asked = _peer_names(peer)
    peers = [n for n in PEERS if (n in asked if asked is not None else True)]
    if no_pocketsphinx and "pocketsphinx" in peers:
        peers.remove("pocketsphinx")
    for name in list(peers):  # before minutes of hearkit's streams, not after
        module, extra = PEERS[name]
        if asked is not None:
            require(module, extra)  # asked for by name: missing is an error
        elif not _installed(module):
            click.echo(f"{name}: not installed (pip install \"hearkit[{extra}]\"): skipped", err=True)
            peers.remove(name)
    spotter = KeywordSpotter(model)
    if "openwakeword" in peers and not official_models(list(spotter.labels))[0]:
        click.echo(skipped_line(official_models(list(spotter.labels))[1]), err=True)  # not an error
        peers.remove("openwakeword")
    streams = Streams(positives, negatives, noise=noise, snr_db=snr_db, seed=seed)
    reports = compare_engines(spotter, streams, pocketsphinx="pocketsphinx" in peers, kws_threshold=kws_threshold,
                              openwakeword="openwakeword" in peers, log=lambda m: click.echo(m, err=True))
    if plot:
        plot_det_engines(reports, plot, title=f"{click.format_filename(model)}: " + " vs ".join(reports))
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    for line in comparison_lines(reports):
        click.echo(line)
