"""``hearkit data``: build speech datasets (connected words, espeak-ng sentences) as FLAC + manifest.jsonl."""

from __future__ import annotations

import click

from hearkit.commands.options import Limited, out_option


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
    """Build datasets: connected words and sentences for `hearkit train ctc`, wake-word sets for `train classify`."""


def _DATA_INDEX(changed):
    """What a data command's earlier output is indexed by: gone when a --force run replaced some of its audio and failed."""
    return ["manifest.jsonl", "summary.json"]


@data.command()
@click.argument("manifests", nargs=-1, required=True, type=click.Path(exists=True))
@out_option("out", required=True, type=click.Path(),
              help="Output: a .jsonl file, or a folder that gets manifest.jsonl.")
@click.option("--force", is_flag=True, help="Replace an existing output manifest.")
def join(manifests, out, force):
    """Join MANIFESTS (files, or folders holding manifest.jsonl) into one; audio paths stay valid.

    \b
    Example:
      hearkit data join data/words-train4 data/words-train4b -o data/words-train8
    """
    from hearkit.manifest import join_manifests

    path, m = join_manifests(manifests, out, force=force)
    click.echo(f"{path}: {len(m)} utterances, {m.hours:.3f} h from {len(manifests)} manifests")


@data.command()
@click.argument("model", type=click.Path(exists=True))
@click.argument("set_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--negatives", multiple=True, required=True, type=click.Path(exists=True),
              help="Audio without the phrases (folder or manifest), streamed back to back. Repeatable.")
@click.option("--windows", type=Limited("count", lo=1, hi=10**6), default=2000, show_default=True, help="Most windows to add.")
@click.option("--min-score", type=Limited("threshold"), default=0.2, show_default=True,
              help="Lowest keyword probability worth adding.")
def mine(model, set_dir, negatives, windows, min_score):
    """Add the negative windows MODEL scores highest to SET_DIR/_unknown_ (a `data wakeword` set), for a
    fine-tuning stage aimed at false alarms per hour.

    \b
    Example:
      hearkit data mine runs/ww/export data/ww --negatives ../shared/data/speech_commands
      hearkit train classify --data data/ww --init runs/ww/best.pt --lr 1e-3 --epochs 10 -o runs/ww-hard
    """
    from hearkit.files import writing
    from hearkit.recipes.wakeword import mine_hard_negatives

    with writing(set_dir):  # adds to the set: locked, not refused when occupied
        s = mine_hard_negatives(model, negatives, set_dir, windows=windows, min_score=min_score,
                                log=lambda m: click.echo(m, err=True))
    click.echo(f"{set_dir}/_unknown_: {s['added']} hard negatives added from {s['hours']:.2f} h of negatives")


@data.command()
@click.argument("phrases", nargs=-1, required=True)
@out_option("out_dir", required=True, type=click.Path(file_okay=False), help="Output folder (new or empty).")
@click.option("--voices", type=Limited("count", lo=4, hi=100000), default=800, show_default=True,
              help="Synthetic speakers per phrase (engines x voices x rate, pitch, warp).")
@click.option("--negatives", "negatives", multiple=True, type=click.Path(exists=True),
              help="Real audio (folder or manifest) to cut negative windows from; clips whose transcript holds a phrase "
                   "are left out, and so are clips a validation_list.txt names. Repeatable.")
@click.option("--negative-windows", type=Limited("count", hi=10**6), default=12000, show_default=True,
              help="Windows cut from --negatives (they may overlap when the audio is shorter). 12,000 rather than "
                   "4,000 took the speech-embedding backbone from 40.7 to 29.2 % missed at 1 false alarm/h "
                   "(three seeds; docs/recipes/wakeword.md).")
@click.option("--recordings", multiple=True, type=click.Path(exists=True),
              help="Real recordings of the phrases to add to training: a folder with a sub-folder per phrase "
                   "(hey_computer/...) or a manifest whose text is the phrase. Repeatable. Without it: text only.")
@click.option("--recording-repeats", type=Limited("count", lo=1, hi=100), default=8, show_default=True,
              help="Copies of each recording, each placed and levelled anew.")
@click.option("--noise", "noise", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Noise recordings for _silence_ and _background_noise_ (Default: generated noise). Repeatable.")
@click.option("--near-misses", type=Limited("count", hi=10**6), default=800, show_default=True,
              help="Partial-phrase and phonetic near-miss clips per phrase.")
@click.option("--other-words", type=Limited("count", hi=10**6), default=1500, show_default=True,
              help="Clips of other words and word sequences.")
@click.option("--reverb", type=Limited("probability"), default=0.5, show_default=True, help="Share of clips in a simulated room.")
@click.option("--window-seconds", type=Limited("window_s", hi=3.0), default=None,
              help="Clip length, 0.5-3 s (default: 1-2 s from the phrases' length). A model on the speech embedding "
                   "sees 2 s: give 2 so its negatives are 2 s of real audio, not 1 s padded with silence.")
@click.option("--piper-voice", "piper_voices", multiple=True, type=click.Path(dir_okay=False),
              help="A Piper voice (its .onnx, with the .onnx.json beside it; needs hearkit[piper]); every speaker of a "
                   "multi-speaker voice is a voice of its own. Repeatable. Nothing is downloaded.")
@click.option("--engines", default=None, metavar="LIST",
              help="Comma-separated engines that speak, of espeak-ng,flite,festival,piper "
                   "[default: every installed one of the first three, plus piper with --piper-voice].")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace a set this command wrote before.")
def wakeword(phrases, out_dir, voices, negatives, negative_windows, recordings, recording_repeats, noise, near_misses,
             other_words, reverb, window_seconds, piper_voices, engines, seed, force):
    """A keyword set for PHRASES from their text alone, in the layout `hearkit train classify` reads.

    Positives: every installed synthesiser (espeak-ng, flite, festival, and the Piper voices given)
    as many speakers; negatives: partial phrases, phonetic near-misses, other words, and windows of
    your real recordings.

    \b
    Example:
      hearkit data wakeword "hey computer" --negatives ../shared/data/speech_commands -o data/hey-computer
      hearkit data wakeword "hey computer" --piper-voice voices/en_US-libritts_r-medium.onnx -o data/hey-computer-p
      hearkit train classify --data data/hey-computer -o runs/hey-computer
    """
    from hearkit.recipes.voices import parse_engines
    from hearkit.recipes.wakeword import WakewordConfig, build_wakeword_set

    cfg = WakewordConfig(phrases=tuple(phrases), voices=voices, negatives=tuple(negatives), negative_windows=negative_windows,
                         recordings=tuple(recordings), recording_repeats=recording_repeats, noise=tuple(noise),
                         near_misses=near_misses, other_words=other_words, reverb=reverb, seed=seed,
                         window_seconds=window_seconds or 0.0,
                         engines=parse_engines(engines), piper_voices=tuple(piper_voices))
    s = build_wakeword_set(cfg, out_dir, force=force, log=lambda m: click.echo(m, err=True))
    c = s["clips"]
    click.echo(f"{out_dir}: " + ", ".join(f"{lab} {c[lab]}" for lab in s["labels"])
               + f", _unknown_ {c['_unknown_']}, _silence_ {c['_silence_']} clips of {s['window_seconds']:g} s; "
               f"{s['validation_clips']} for validation ({s['voices']['validation']} of {s['voices']['total']} voices)")


@data.command()
@click.option("--words", "roots", multiple=True, required=True, type=click.Path(exists=True, file_okay=False),
              help="Isolated-word dataset folder (sub-folders are words, e.g. speech_commands, fsdd). Repeatable; "
                   "several may follow one --words.")
@click.argument("more_roots", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--min-words", type=Limited("count", lo=1), default=2, show_default=True)
@click.option("--max-words", type=Limited("count", lo=1), default=7, show_default=True)
@click.option("--hours", type=Limited("hours"), default=1.0, show_default=True, help="Audio to generate.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="train", show_default=True,
              help="Which speakers to use (from the source's validation_list.txt / testing_list.txt).")
@click.option("--noise-dir", "noise_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Extra background-noise folder (the source's _silence_ clips of the same split are used too).")
@click.option("--noise-prob", type=Limited("probability"), default=0.5, show_default=True, help="Share of utterances with noise.")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@out_option("out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: new or empty (an occupied one, e.g. an earlier manifest.jsonl, only with --force).")
@click.option("--force", is_flag=True, help="Write into an occupied folder, replacing its manifest.jsonl.")
def concat(roots, more_roots, min_words, max_words, hours, split, noise_dirs, noise_prob, seed, out_dir, force):
    """Connected-word utterances joined from isolated words of ONE speaker each.

    \b
    Example:
      hearkit data concat --words ../shared/data/speech_commands ../shared/data/fsdd \\
          --hours 2 --split train -o data/words-train
    """
    from hearkit.files import output_folder, refuse_containing
    from hearkit.training.ctc_data import build_concat

    for src in (*roots, *more_roots, *noise_dirs):
        refuse_containing(out_dir, src, "the input folder")
    from hearkit.files import removed_on_failure

    with output_folder(out_dir, force), removed_on_failure(out_dir, also=_DATA_INDEX):
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
@click.option("--per-sentence", type=Limited("count", lo=1), default=1, show_default=True, help="Renditions of each sentence.")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@out_option("out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: new or empty (an occupied one only with --force).")
@click.option("--force", is_flag=True, help="Write into an occupied folder, replacing its manifest.jsonl.")
def synth(text_file, voices, variants, per_sentence, seed, out_dir, force):
    """Sentences spoken by espeak-ng in many voices, rates and pitches (FLAC + manifest.jsonl)."""
    from hearkit.recipes.sentences import DEFAULT_VARIANTS, DEFAULT_VOICES, build_synth

    v = tuple(x.strip() for x in voices.split(",") if x.strip()) if voices else DEFAULT_VOICES
    va = tuple(x.strip() for x in variants.split(",")) if variants is not None else DEFAULT_VARIANTS
    from hearkit.files import output_folder

    from hearkit.files import removed_on_failure

    with output_folder(out_dir, force), removed_on_failure(out_dir, also=_DATA_INDEX):
        s = build_synth(text_file, out_dir, voices=v, variants=va, per_sentence=per_sentence, seed=seed,
                        progress=_progress("synth"))
    click.echo(f"{out_dir}/manifest.jsonl: {s['utterances']} utterances, {s['hours']:.3f} h")
    if s["dropped_characters"]:
        click.echo(f"characters outside the alphabet dropped from the text: {s['dropped_characters']}")
