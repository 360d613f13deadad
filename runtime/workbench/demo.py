"""``hearkit demo``: the main job end to end on a built-in default."""

from __future__ import annotations

import click

from hearkit.commands.options import Limited, out_option
from hearkit.workbench.options import start_torch, train_threads_option

# what `hearkit demo` writes in its folder (hearkit.recipes.demo and .wakeword_demo), repeated to keep --help cheap
DEMO_ENTRIES = ("keywords", "run", "export", "sentence.flac", "timeline.png", "demo.json")
WAKEWORD_ENTRIES = ("data", "train-sentences", "run", "export", "test", "sentences.flac", "timeline.png", "det.png",
                    "demo.json", ".data.hearkit-tmp")


@click.command()
@out_option(default=None, type=click.Path(file_okay=False),
              help="Working folder (Default: runs/demo, or runs/wakeword-demo with --wakeword): new, empty or an "
                   "earlier demo's (it continues there); another occupied folder only with --force.")
@click.option("--force", is_flag=True, help="Work in a folder that holds other files.")
@click.option("--wakeword", default=None, metavar="PHRASE",
              help='Build a wake-word detector for PHRASE (one to three English words, e.g. "hey hearkit") from text '
                   "alone instead: synthesize, train, calibrate, draw its DET curve and spot it in sentences.")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Train on these recordings (Speech Commands layout or folder-per-label) instead of a synthesized set.")
@click.option("--model", default="cnn4-s", show_default=True,
              help="Architecture (see `hearkit train classify --help`). For a wake word: cnn4-s for the smallest devices "
                   "(0.22 % of a core, 52 KB); emb-dnn hears real voices best (the speech embedding, hearkit[embedding]; "
                   "1.9 % of a core, 2.6 MB); student-dnn (with --student; 0.27 %, 199 KB) sits between them "
                   "(docs/recipes/wakeword.md#which-backbone).")
@click.option("--student", type=click.Path(exists=True, dir_okay=False), default=None,
              help="For --model student-dnn: the best.pt of a `hearkit train distill` run.")
@click.option("--epochs", type=Limited("epochs"), default=None,
              help="Training epochs (Default: 30).")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@train_threads_option
def demo(out, force, wakeword, data, model, student, epochs, seed, threads):
    """Synthesize keywords, train, export, quantize, verify and spot keywords — all offline.

    \b
    With no --data, espeak-ng speaks six keywords (yes no up down stop go),
    twenty other words and generated noise in 135 voices; a small CNN trains on
    them in a few minutes on 2 cores, is exported as one waveform-in ONNX
    graph, quantized to int8, verified against torch, and then listens to a
    sentence spoken by voices it never heard. Everything lands in --out.

    With --wakeword PHRASE the same path builds a wake word from text: a keyword
    set spoken by 300 synthetic speakers with near-misses and other speech,
    training, int8 export, a threshold calibrated at 1 false alarm per hour on
    sentences without the phrase, a DET curve (det.png) on speakers training
    never heard, and the phrase spotted in sentences (timeline.png).
    """
    start_torch(threads)
    from hearkit.files import output_folder

    if student is not None and (wakeword is None or model != "student-dnn"):
        raise click.UsageError("--student goes with --wakeword PHRASE --model student-dnn")
    if wakeword is not None:
        if data is not None:
            raise click.UsageError("--wakeword builds its data from text; it takes no --data")
        out = out or "runs/wakeword-demo"
        with output_folder(out, force, allow=WAKEWORD_ENTRIES):
            return _wakeword(wakeword, out, model, student, epochs or 30, seed, threads)
    out = out or "runs/demo"
    epochs = epochs or 30
    from hearkit.recipes.demo import DemoConfig, run_demo

    # an earlier demo's folder is its own to continue (it resumes training there)
    with output_folder(out, force, allow=DEMO_ENTRIES):
        s = run_demo(DemoConfig(out=out, data=data, model=model, epochs=epochs, seed=seed, threads=threads))
    acc = s.get("accuracy") or {}
    click.echo("")
    click.echo("hearkit demo")
    click.echo(f"  data              {s['data']}")
    click.echo(f"  model             {s['model']}, {s['parameters']} parameters, trained in {s['train_seconds']} s")
    if acc:
        click.echo("  accuracy (val)    " + ", ".join(f"{k} {v:.1%}" for k, v in acc.items() if isinstance(v, float)))
    click.echo(f"  verify            {'passed' if s['verify_passed'] else 'FAILED'} (see {s['files']['report']})")
    click.echo(f"  sentence          {s['keywords_found']}/{s['keywords_in_sentence']} keywords found, {s['false_alarms']} false alarms")
    click.echo(f"    said: {s['sentence']['text']!r} (demo.json has each word's time)")
    for d in s["detections"]:
        what = f"hit ({d['matched']['word']} said {d['matched']['start']:.2f}-{d['matched']['end']:.2f} s)" \
            if d["outcome"] == "hit" else "false alarm"
        click.echo(f"    {d['time']:6.2f} s  {d['label']:<8} {d['score']:.2f}  {what}")
    missed = [t["word"] for t in s["truth"] if not t["found"]]
    if missed:
        click.echo(f"    missed: {', '.join(missed)}")
    click.echo(f"  files             {', '.join(s['files'].values())}")
    click.echo(f"  total             {s['total_seconds']} s")


def _wakeword(phrase, out, model, student, epochs, seed, threads):
    from hearkit.recipes.wakeword_demo import WakewordDemoConfig, run_wakeword_demo

    s = run_wakeword_demo(WakewordDemoConfig(phrase=phrase, out=out, model=model, student=student, epochs=epochs, seed=seed,
                                             threads=threads))
    p = s["det"]["point"] or {}
    click.echo("")
    click.echo(f"hearkit demo --wakeword {phrase!r}")
    click.echo(f"  model             {s['model']}, {s['parameters']} parameters, val accuracy {s['val_accuracy']:.1%}")
    click.echo(f"  threshold         {s['threshold']:.3f}, what the detector uses (calibrated at 1 false alarm per "
               f"hour on sentences; demo.json says why the DET point's differs)")
    if p:
        lo, hi = p["frr_ci95"]
        click.echo(f"  DET               misses {p['misses']}/{p['utterances']} ({100 * p['frr']:.1f} % [{100 * lo:.1f}-"
                   f"{100 * hi:.1f}]) at {p['fa_per_hour']:.2f} false alarms per hour over "
                   f"{s['det']['streamed']}; synthetic speakers, 10 dB SNR")
    click.echo(f"  sentences         {s['phrases_found']}/{s['phrases_in_sentences']} found, {s['false_alarms']} false "
               f"alarms in {s['sentence_seconds']:.0f} s")
    for d in s["detections"]:
        what = f"hit (said {d['matched']['start']:.2f}-{d['matched']['end']:.2f} s)" if d["outcome"] == "hit" \
            else "false alarm"
        click.echo(f"    {d['time']:6.2f} s  {d['score']:.2f}  {what}")
    click.echo(f"  files             {', '.join(s['files'].values())}")
    click.echo("  seconds           " + ", ".join(f"{k} {v:g}" for k, v in s["seconds"].items()))
