"""``hearkit train ctc``: train a CTC speech recogniser (needs hearkit[train]; torch imported inside).

With no options beyond the manifests and ``-o`` it runs the README's first connected-words
command (ctc-conv-s, 60 epochs, ``--speed 0.9,1.1``); the defaults here repeat those of
``CTCTrainConfig`` so that ``--help`` needs no torch (tests/test_ctc_train.py checks they agree).
"""

from __future__ import annotations

import click

from hearkit.commands.options import Limited
from hearkit.workbench.options import run_folder_options, start_torch, train_in_folder, train_threads_option

MODELS = ("ctc-conv-s", "ctc-conv-m", "ctc-conv-l", "ctc-crnn")  # hearkit.training.ctc_models.MODELS
OFF = ("off", "none")  # values that switch a LOW,HIGH augmentation off


def _range_or_off(text: str | None, what: str, positive: bool = False):
    from hearkit.commands.options import parse_range

    if text is None or text.strip().lower() in OFF:
        return None
    lo_hi = parse_range(text, what)
    if positive and lo_hi[0] <= 0:
        raise click.BadParameter(f"{what} factors must be positive, got {text!r}")
    return lo_hi


@click.command("ctc")
@click.option("--manifest", "train_manifest", required=True, type=click.Path(exists=True),
              help="Training set: NeMo JSONL manifest, folder with manifest.jsonl, or LibriSpeech folder.")
@click.option("--val-manifest", required=True, type=click.Path(exists=True), help="Validation set (same forms).")
@click.option("--model", type=click.Choice(MODELS), default="ctc-conv-s", show_default=True)
@click.option("--rnn", type=click.Choice(["gru", "lstm"]), default=None, help="RNN kind of ctc-crnn (default: gru).")
@click.option("--epochs", type=Limited("epochs"), default=60, show_default=True)
@click.option("--lr", type=Limited("lr"), default=3e-3, show_default=True, help="Peak one-cycle learning rate.")
@click.option("--batch-seconds", type=Limited("seconds", lo=1), default=32.0, show_default=True, help="Audio per batch (length-bucketed); small data wants many steps.")
@click.option("--max-batch", type=Limited("batch_size"), default=16, show_default=True, help="Utterances per batch at most.")
@click.option("--clip", type=Limited("grad_clip"), default=1.0, show_default=True, help="Gradient-norm clip.")
@click.option("--noise-prob", type=Limited("probability"), default=0.5, show_default=True, help="Share of utterances with added noise.")
@click.option("--speed", default="0.9,1.1", show_default=True,
              help="Speed perturbation LOW,HIGH per utterance (the utterance changes length), or 'off'.")
@click.option("--vtlp", default=None,
              help="Vocal tract length perturbation LOW,HIGH per utterance (e.g. 0.9,1.1): formants move, "
                   "timing is kept (default: off).")
@click.option("--lowpass-prob", type=Limited("probability"), default=0.0, show_default=True,
              help="Share of utterances low-passed at --lowpass-hz, as if recorded at 8 kHz.")
@click.option("--lowpass-hz", type=Limited("hz", lo=1), default=4000.0, show_default=True,
              help="Cut-off of that low-pass.")
@click.option("--gain-db", default=None,
              help="Random gain LOW,HIGH in dB per utterance (e.g. -18,6), clipped as a 16-bit recording; "
                   "the front-end does not normalise level, so this is what makes a model robust to quiet or "
                   "loud microphones (default: off).")
@click.option("--n-mels", type=Limited("n_mels", lo=8), default=64, show_default=True)
@train_threads_option
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@click.option("--average-last", type=Limited("count", hi=1000), default=0, show_default=True,
              help="Also write averaged.pt: the mean weights of the last N epochs (1: the last epoch's), "
                   "BatchNorm statistics recomputed on the training set (0: off).")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from the weights of another CTC checkpoint (fine-tuning); its model and front-end are used.")
@run_folder_options
def ctc(train_manifest, val_manifest, model, rnn, epochs, lr, batch_seconds, max_batch, clip, noise_prob, speed,
        vtlp, lowpass_prob, lowpass_hz, gain_db, n_mels, threads, seed, average_last, init, checkpoint_every,
        no_progress, quiet, resume, run_dir, force):
    """Train a CTC model (character vocabulary + blank) with greedy WER/CER on validation every epoch.

    \b
    RUN_DIR gets best.pt, last.pt, history.jsonl, metrics.json, curves.png, config.json.
    Several processes: torchrun --nproc-per-node 2 -m hearkit.training ctc ...

    \b
    Example (the README's connected words; the defaults are its first training command):
      hearkit data concat --words ../shared/data/speech_commands ../shared/data/fsdd --hours 2 -o words-train
      hearkit data concat --words ../shared/data/speech_commands ../shared/data/fsdd --hours 0.25 --split val -o words-val
      hearkit train ctc --manifest words-train --val-manifest words-val -o runs/words
    """

    speed_range = _range_or_off(speed, "--speed", positive=True)
    vtlp_range = _range_or_off(vtlp, "--vtlp", positive=True)
    gain_range = _range_or_off(gain_db, "--gain-db")

    start_torch(threads)
    import dataclasses

    from hearkit.training.train_ctc import DEFAULT_AUGMENT, DEFAULT_FRONTEND, CTCTrainConfig, train_ctc

    augment = dataclasses.replace(DEFAULT_AUGMENT, noise_prob=noise_prob, speed=speed_range is not None,
                                  speed_range=speed_range or DEFAULT_AUGMENT.speed_range, vtlp=vtlp_range,
                                  band_limit_prob=lowpass_prob, band_limit_hz=lowpass_hz, gain=gain_range is not None,
                                  gain_db=gain_range or DEFAULT_AUGMENT.gain_db)
    cfg = CTCTrainConfig(train_manifest=train_manifest, val_manifest=val_manifest, out=run_dir, model=model, rnn=rnn,
                         epochs=epochs, lr=lr, batch_seconds=batch_seconds, max_batch=max_batch, clip=clip,
                         augment=augment, frontend=DEFAULT_FRONTEND.replace(n_mels=n_mels), num_threads=threads,
                         seed=seed, average_last=average_last, init=init, resume=resume,
                         checkpoint_every=checkpoint_every, progress=not no_progress, quiet=quiet)
    out, m = train_in_folder(train_ctc, cfg, run_dir, force, resume)
    if m is None:
        return
    if m.get("best_epoch") is not None:
        click.echo(f"best: epoch {m['best_epoch']}, val WER {100 * m['best_val_wer']:.2f} %, "
                   f"CER {100 * m['best_val_cer']:.2f} % -> {out}/best.pt")
    a = m.get("averaged")
    if a:
        click.echo(f"averaged: epochs {a['averaged_epochs'][0]}-{a['averaged_epochs'][-1]}, val WER "
                   f"{100 * a['val_wer']:.2f} %, CER {100 * a['val_cer']:.2f} % -> {out}/averaged.pt")
