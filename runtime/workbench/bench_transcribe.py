"""``hearkit bench transcribe MODEL_DIR``: real-time factor and peak memory of torch eager, ONNX fp32, ONNX int8.

The benchmark is ``hearkit.export.bench.bench_transcribe``; this command parses,
runs it and prints the table. Audio comes from the files given (joined in order),
else it is generated (seeded white noise): the command looks for no data of its own.
"""

from __future__ import annotations

import json

import click

from hearkit.commands.options import Limited

# torch-free at import (torch and onnx load inside its functions), so --help works on a device
from hearkit.evaluate.bench import DEFAULT_SIGNAL_SECONDS
from hearkit.export.bench import TRANSCRIBE_REPEAT


@click.command("transcribe")
@click.argument("model_dir", type=click.Path(exists=True))
@click.argument("audio_files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--audio", "audio", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Audio file to transcribe (repeatable; the same as listing files after MODEL_DIR).")
@click.option("--seconds", type=Limited("seconds", lo=0.1), default=None,
              help=f"Length of the signal: the audio files joined in order (round again if they hold less) and "
                   f"cut to it (Default: all of them, or {DEFAULT_SIGNAL_SECONDS:g} s of seeded white noise "
                   "when no file is given).")
@click.option("--repeat", type=Limited("repeat"), default=TRANSCRIBE_REPEAT, show_default=True,
              help="Timed rounds; each transcribes once with every variant; the median is reported.")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="Measure peak RSS in a fresh process per variant.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_transcribe(model_dir, audio_files, audio, seconds, repeat, memory, as_json):
    """Real-time factor on 1 thread and peak memory: torch eager, ONNX fp32, ONNX int8, side by side.

    MODEL_DIR is a folder written by `hearkit export` for a CTC model (or a model
    file in one); AUDIO_FILES (and --audio) are joined in order into the signal,
    else it is seeded white noise. All variants transcribe the same audio
    (greedy, same chunking), timed in interleaved rounds. RTF = processing time /
    audio time (lower is faster).

    \b
    hearkit bench transcribe runs/asr-export meeting.flac
    hearkit bench transcribe runs/asr-export recordings/*.flac --seconds 30 --repeat 3 --json
    """
    from hearkit.commands.bench import log
    from hearkit.export.bench import bench_transcribe as run

    result = run(model_dir, audio=list(audio) + list(audio_files), seconds=seconds, repeat=repeat, memory=memory, log=log)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return

    def f(v, fmt="{:.4f}"):
        return "-" if v is None else fmt.format(v)

    a = result["audio"]
    click.echo(f"{result['model_dir']} ({result['model']}): {a['seconds']:.1f} s of {a['source']}; greedy, "
               f"{result['chunk_seconds']:g} s chunks, 1 thread, median of {repeat} interleaved rounds")
    click.echo(f"{'variant':<12} {'MB':>6} {'RTF':>8} {'CPU RTF':>8} {'x realtime':>10} {'peak RSS MB':>11} "
               f"{'+MB':>7} {'words':>5} {'= fp32':>6}  note")
    for r in result["rows"]:
        same = {None: "-", True: "yes", False: "no"}[r["same_text_as_fp32"]]
        note = r["note"] if r["rtf"] is not None else f"skipped: {r['note']}"
        if r.get("memory_error"):
            note += f"; memory run failed: {r['memory_error']}"
        click.echo(f"{r['variant']:<12} {f(r['bytes'] and r['bytes'] / 2**20, '{:.2f}'):>6} {f(r['rtf']):>8} "
                   f"{f(r['cpu_rtf']):>8} {f(r['x_realtime'], '{:.0f}'):>10} {f(r['peak_rss_mb'], '{:.1f}'):>11} "
                   f"{f(r['rss_delta_mb'], '{:+.1f}'):>7} {f(r['words'], '{}'):>5} {same:>6}  {note}")
    click.echo("RTF: wall time / audio time; CPU RTF: process CPU time / audio time (the one to trust on a loaded "
               "machine); x realtime = 1 / CPU RTF; = fp32: same transcript as onnx fp32")
    if memory:
        click.echo(f"peak RSS: fresh process that loads the model and transcribes the audio once; "
                   f"+MB over `import hearkit` alone ({f(result['baseline_rss_mb'], '{:.1f}')} MB); "
                   f"the torch row includes torch (`import hearkit, torch` alone: "
                   f"{f(result['baseline_torch_rss_mb'], '{:.1f}')} MB) and onnxruntime with the fp32 session "
                   "that configures its transcriber")
