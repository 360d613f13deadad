"""``hearkit bench soak MODEL``: RSS while an hour of audio streams through the spotter and the transcriber.

The benchmark is ``hearkit.evaluate.bench.soak`` (torch-free, so it runs on a device);
this command parses, prints a row per audio minute as it goes, and the growth
against the target (``SOAK_GROWTH_MB``) at the end.
"""

from __future__ import annotations

import json

import click

from hearkit.commands.options import Limited
from hearkit.evaluate.bench import SOAK_EVERY_SECONDS, SOAK_GROWTH_MB, SOAK_MINUTES, SOAK_PARTIAL_SECONDS, STREAM_CHUNK


@click.command("soak")
@click.argument("model", required=False, type=click.Path(exists=True))
@click.option("--transcriber", type=click.Path(exists=True), default=None,
              help="CTC model (export folder, bundle or .onnx) fed the same audio in the same process.")
@click.option("--minutes", type=Limited("minutes"), default=SOAK_MINUTES, show_default=True,
              help="Minutes of audio streamed.")
@click.option("--every", "every_seconds", type=Limited("seconds", lo=0.1), default=SOAK_EVERY_SECONDS, show_default=True,
              help="Seconds of audio between RSS reports.")
@click.option("--chunk", "chunk_seconds", type=Limited("seconds", hi=60), default=STREAM_CHUNK, show_default=True,
              help="Seconds of audio per accept_waveform call.")
@click.option("--partial", "partial_seconds", type=Limited("seconds", lo=0.01), default=SOAK_PARTIAL_SECONDS,
              show_default=True, help="Seconds of audio between the transcriber's partial results.")
@click.option("--segment", "segment_seconds", type=Limited("duration_s"), default=SOAK_EVERY_SECONDS,
              show_default=True, help="Seconds of audio between transcriber finalize() calls (0: once, at the end).")
@click.option("--audio", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Audio file to stream instead of generated speech-like bursts (repeatable; looped to --minutes).")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True, help="Seed of the generated audio.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (rows still go to stderr).")
def bench_soak(model, transcriber, minutes, every_seconds, chunk_seconds, partial_seconds, segment_seconds, audio,
               seed, as_json):
    """Stream --minutes of audio through MODEL's KeywordSpotter (and --transcriber's Transcriber); RSS every minute.

    \b
    The target: RSS grows by at most 2 MB over the hour (last report minus the first,
    taken after a minute of warm-up). Rows go to stderr as the audio streams.
    Example:
      hearkit bench soak out/kws --transcriber out/asr --minutes 60
    """
    from hearkit.evaluate.bench import soak

    if model is None and transcriber is None:
        raise click.UsageError("give a keyword MODEL, --transcriber MODEL, or both")
    first: list[float] = []

    def report(row: dict) -> None:
        if not first:  # growth is counted from the first report, as the benchmark counts it
            first.append(row["rss_mb"])
        click.echo(f"{row['audio_s'] / 60:7.2f} min  RSS {row['rss_mb']:8.2f} MB  {row['rss_mb'] - first[0]:+7.2f} MB  "
                   f"{row['detections']:6d} detections  {row['words']:6d} words", err=True)

    rep = soak(model, transcriber, minutes=minutes, every_seconds=every_seconds, chunk_seconds=chunk_seconds,
               partial_seconds=partial_seconds, segment_seconds=segment_seconds or None, audio=audio, seed=seed,
               on_report=report)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    verdict = "within" if rep["within_target"] else "OVER"
    click.echo(f"soak: {rep['audio_seconds'] / 60:.2f} min of audio in {rep['wall_s']:.1f} s ({rep['cpu_s']:.1f} s CPU); "
               f"RSS {rep['baseline_mb']:.2f} -> {rep['final_mb']:.2f} MB: growth {rep['growth_mb']:+.2f} MB "
               f"(max {rep['max_growth_mb']:+.2f}, trend {rep['slope_mb_per_hour']:+.2f} MB/h), "
               f"{verdict} the target of {SOAK_GROWTH_MB:g} MB")
