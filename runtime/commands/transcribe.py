"""``hearkit transcribe``: speech to text with an exported CTC model (torch-free)."""

from __future__ import annotations

import click

from hearkit.commands.options import Limited


@click.command("transcribe")
@click.argument("model", type=click.Path(exists=True))
@click.argument("audio", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--beam", type=Limited("beam"), default=None, help="Beam width [default: 1 (greedy), 16 with --lexicon or --lm].")
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False), default=None, help="Word list (one per line): only these words are emitted.")
@click.option("--lm", "lm_path", type=click.Path(exists=True, dir_okay=False), default=None, help="ARPA n-gram LM (see `hearkit lm build`).")
@click.option("--alpha", type=Limited("lm_weight"), default=0.5, show_default=True, help="LM weight.")
@click.option("--beta", type=Limited("lm_weight"), default=None, help="Word insertion bonus [default: 1.0 with --lm, else 0].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: text, words with start/end/confidence, real-time factor.")
@click.option("--threads", type=Limited("threads"), default=None, help="onnxruntime threads [default: the device profile's, or 1].")
@click.option("--chunk", "chunk_seconds", type=Limited("seconds", lo=0.1), default=20.0, show_default=True, help="Seconds of audio per model run.")
@click.option("--overlap", "overlap_seconds", type=Limited("duration_s", hi=3600.0), default=2.0, show_default=True, help="Context seconds on each side of a chunk.")
@click.option("--progress/--no-progress", default=False, show_default=True, help="Progress line on stderr.")
@click.option("--device", "-d", default=None,
              help="Device profile (see `hearkit devices`) or path to a profile.toml: its execution providers, threads "
                   "and optimisation level, and its preferred variant from a folder or bundle.")
def transcribe(model, audio, beam, lexicon, lm_path, alpha, beta, as_json, threads, chunk_seconds, overlap_seconds, progress, device):
    """Transcribe AUDIO files of any length with MODEL (a CTC pipeline .onnx, an export folder or a bundle)."""
    import json
    import time

    from hearkit.audio import audio_info
    from hearkit.transcribe import Transcriber

    profile = None
    if device is not None:  # load first: an unknown name is one line listing the known ones (exit 2)
        from hearkit.devices import load_profile

        profile = load_profile(device)
    tr = Transcriber(
        model, threads=threads, beam=beam, lexicon=lexicon, lm=lm_path, alpha=alpha, beta=beta,
        chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds, device=profile,
    )
    for path in audio:
        duration = audio_info(path)["duration"]
        t0 = time.perf_counter()
        result = tr.transcribe(path, progress=progress)
        elapsed = time.perf_counter() - t0
        rtf = elapsed / duration if duration else float("nan")
        if as_json:
            out = {"audio": path, **result.to_dict(), "duration": round(duration, 3),
                   "seconds": round(elapsed, 4), "rtf": round(rtf, 5)}
            click.echo(json.dumps(out))
        elif len(audio) > 1:
            click.echo(f"{path}\t{result.text}")
        else:
            click.echo(result.text)
