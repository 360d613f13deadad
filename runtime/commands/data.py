"""``hearkit data``: build speech datasets (connected words, espeak-ng sentences) as FLAC + manifest.jsonl."""

from __future__ import annotations

import click


def _progress(label):
    from hearkit.progress import StatusLine

    line, state = StatusLine(), {"last": -1}

    def cb(done, total):
        pct = int(100 * min(done, total) / total) if total else 100
        if pct != state["last"]:
            state["last"] = pct
            line.show(f"{label}: {pct:3d} %", pct)
            if pct >= 100:
                line.close()

    return cb


@click.group()
def data():
    """Build speech datasets for `hearkit train ctc`."""


@data.command()
@click.option("--words", "roots", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
              help="Isolated-word dataset folder (sub-folders are words, e.g. speech_commands, fsdd). Repeatable; "
                   "several may follow one --words.")
@click.argument("more_roots", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--min-words", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--max-words", type=click.IntRange(min=1), default=7, show_default=True)
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Audio to generate.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True,
              help="Which speakers to use (from the source's validation_list.txt / testing_list.txt).")
@click.option("--noise-dir", "noise_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Extra background-noise folder (the source's _silence_ clips of the same split are used too).")
@click.option("--noise-prob", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Share of utterances with noise.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
def concat(roots, more_roots, min_words, max_words, hours, split, noise_dirs, noise_prob, seed, out_dir):
    """Connected-word utterances joined from isolated words of ONE speaker each.

    \b
    Example:
      hearkit data concat --words ../shared/data/speech_commands ../shared/data/fsdd \\
          --hours 2 --split train -o data/words-train
    """
    from hearkit.training.ctc_data import build_concat

    s = build_concat(
        list(roots) + list(more_roots), out_dir, split=split, hours=hours, min_words=min_words, max_words=max_words,
        noise_dirs=noise_dirs, noise_prob=noise_prob, seed=seed, progress=_progress(f"concat {split}"),
    )
    click.echo(
        f"{out_dir}/manifest.jsonl: {s['utterances']} utterances, {s['hours']:.3f} h, {len(s['speakers'])} speakers, "
        f"{len(s['words'])} distinct words"
        + (f"; left out: {s['skipped']}" if s["skipped"] else "")
    )


@data.command()
@click.option("--text", "text_file", required=True, type=click.Path(exists=True, dir_okay=False), help="One sentence per line.")
@click.option("--voices", default=None, help="Comma-separated espeak-ng voices (default: 8 English accents).")
@click.option("--variants", default=None, help="Comma-separated voice variants, e.g. m3,f2,Alicia (default: 13 + none).")
@click.option("--per-sentence", type=click.IntRange(min=1), default=1, show_default=True, help="Renditions of each sentence.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
def synth(text_file, voices, variants, per_sentence, seed, out_dir):
    """Sentences spoken by espeak-ng in many voices, rates and pitches (FLAC + manifest.jsonl)."""
    from hearkit.recipes.sentences import DEFAULT_VARIANTS, DEFAULT_VOICES, build_synth

    v = tuple(x.strip() for x in voices.split(",") if x.strip()) if voices else DEFAULT_VOICES
    va = tuple(x.strip() for x in variants.split(",")) if variants is not None else DEFAULT_VARIANTS
    s = build_synth(text_file, out_dir, voices=v, variants=va, per_sentence=per_sentence, seed=seed,
                    progress=_progress("synth"))
    click.echo(f"{out_dir}/manifest.jsonl: {s['utterances']} utterances, {s['hours']:.3f} h")
    if s["dropped_characters"]:
        click.echo(f"characters outside the alphabet dropped from the text: {s['dropped_characters']}")
