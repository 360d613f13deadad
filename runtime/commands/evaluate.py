"""``hearkit eval``: a model's accuracy on labelled data (the task's evaluator, ``hearkit.tasks``),
or, with ``--positives``/``--negatives``, a keyword detector's misses at rates of false alarms."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hearkit.commands.options import Limited, model_task
from hearkit.errors import ConfigError


@click.command("eval")
@click.argument("model", type=click.Path(exists=True))
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None, help="Labelled dataset folder.")
@click.option("--format", "fmt", default=None, help="speech-commands | urbansound8k | folders (default: detected).")
@click.option("--split", default="val", show_default=True, type=click.Choice(["val", "test", "train", "all"]))
@click.option("--val-fold", type=Limited("count"), default=None, help="UrbanSound8K validation fold.")
@click.option("--test-fold", type=Limited("count"), default=None, help="UrbanSound8K test fold.")
@click.option("--manifest", type=click.Path(exists=True), default=None,
              help="CTC models: JSONL manifest, a folder with manifest.jsonl, or a LibriSpeech folder.")
@click.option("--confusion", type=click.Path(dir_okay=False), default=None, help="Write the confusion matrix as PNG.")
@click.option("--beam", type=Limited("beam"), default=None,
              help="CTC: beam width [default: 1 (greedy), 16 with --lexicon or --lm].")
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CTC: word list (one per line); only these words are emitted.")
@click.option("--lm", "lm_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CTC: ARPA n-gram LM (see `hearkit lm build`).")
@click.option("--positives", multiple=True, type=click.Path(exists=True),
              help="Keyword detector: real recordings of the phrases (a folder per phrase, or a manifest). Repeatable.")
@click.option("--negatives", multiple=True, type=click.Path(exists=True),
              help="Keyword detector: audio streamed back to back as one long stream; clips whose transcript holds a "
                   "phrase are left out and counted. Repeatable.")
@click.option("--noise", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Keyword detector: noise mixed into the positive stream (needs --snr).")
@click.option("--snr", "snr_db", type=Limited("snr_db"), default=None, help="Keyword detector: speech-to-noise ratio in dB.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Keyword detector: write the DET curves as PNG.")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True, help="Keyword detector: order of positives, gaps, noise.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def eval_(model, data, fmt, split, val_fold, test_fold, manifest, confusion, beam, lexicon, lm_path,
          positives, negatives, noise, snr_db, plot, seed, as_json):
    """Evaluate MODEL (a .onnx file or export folder) on a dataset split, or as a streaming keyword detector.

    \b
    Classification: accuracy, per-class report, confusion PNG (--data DIR).
    Keyword detector (--positives DIR --negatives DIR): the spotter streams them as a device
      would; false-reject rate at 0.5, 1 and 2 false alarms per hour with 95 % intervals,
      DET curves (--plot det.png). A hit is a detection of the right label between the
      utterance's start and 0.5 s after its end; any other detection is a false alarm.
    CTC: WER and CER on a manifest (--manifest M), greedy or with the
    transcriber's beam search, lexicon and LM.
    """
    if positives or negatives:
        return _eval_detector(model, positives, negatives, noise, snr_db, plot, seed, as_json)
    from hearkit.tasks import TASKS, get_task

    task, path = model_task(model)
    t = get_task(task, path)
    given = {"beam": beam, "lexicon": lexicon, "lm": lm_path}
    if stray := [k for k, v in given.items() if v and k not in t.eval_options]:
        readers = sorted(name for name, other in TASKS.items() if stray[0] in other.eval_options)
        raise ConfigError(f"{', '.join('--' + k for k in stray)}: only for {' and '.join(readers)} models; "
                          f"{path} is a {task} model")
    kw = {k: v for k, v in given.items() if k in t.eval_options}
    rep = t.evaluator()(path, data=data, fmt=fmt, split=split, val_fold=val_fold, test_fold=test_fold,
                        manifest=manifest, confusion=confusion, **kw)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    for line in t.report_lines(rep):
        click.echo(line)
    if confusion and Path(confusion).is_file():  # a CTC evaluation draws no confusion matrix
        click.echo(f"wrote {confusion}", err=True)


def _eval_detector(model, positives, negatives, noise, snr_db, plot, seed, as_json):
    from hearkit.classify import KeywordSpotter
    from hearkit.evaluate.detector import Streams, evaluate_detector, plot_det, summary_lines

    if not positives or not negatives:
        raise click.UsageError("a detector evaluation needs both --positives and --negatives")
    if noise and snr_db is None:
        raise click.UsageError("--noise needs --snr")
    kws = KeywordSpotter(model)
    rep = evaluate_detector(kws, Streams(positives, negatives, noise=noise, snr_db=snr_db, seed=seed),
                            log=lambda m: click.echo(m, err=True))
    if plot:
        plot_det(rep, plot, title=f"{Path(str(model)).name}: DET")
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        click.echo(json.dumps(rep))
        return
    for line in summary_lines(rep):
        click.echo(line)
