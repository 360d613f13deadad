"""``hearkit train ctc``: train a CTC speech recogniser (needs hearkit[train]; torch imported inside)."""

from __future__ import annotations

import click

MODELS = ("ctc-conv-s", "ctc-conv-m", "ctc-conv-l", "ctc-crnn")


@click.command("ctc")
@click.option("--manifest", "train_manifest", required=True, type=click.Path(exists=True),
              help="Training set: NeMo JSONL manifest, folder with manifest.jsonl, or LibriSpeech folder.")
@click.option("--val-manifest", required=True, type=click.Path(exists=True), help="Validation set (same forms).")
@click.option("--model", type=click.Choice(MODELS), default="ctc-conv-s", show_default=True)
@click.option("--rnn", type=click.Choice(["gru", "lstm"]), default=None, help="RNN kind of ctc-crnn (default: gru).")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True, help="Peak one-cycle learning rate.")
@click.option("--batch-seconds", type=click.FloatRange(min=1), default=32.0, show_default=True, help="Audio per batch (length-bucketed); small data wants many steps.")
@click.option("--max-batch", type=click.IntRange(min=1), default=16, show_default=True, help="Utterances per batch at most.")
@click.option("--clip", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Gradient-norm clip.")
@click.option("--noise-prob", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Share of utterances with added noise.")
@click.option("--speed", default=None,
              help="Speed perturbation LOW,HIGH per utterance (e.g. 0.9,1.1; the utterance changes length; default: off).")
@click.option("--vtlp", default=None,
              help="Vocal tract length perturbation LOW,HIGH per utterance (e.g. 0.9,1.1): formants move, "
                   "timing is kept (default: off).")
@click.option("--lowpass-prob", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of utterances low-passed at --lowpass-hz, as if recorded at 8 kHz.")
@click.option("--lowpass-hz", type=click.FloatRange(min=0, min_open=True), default=4000.0, show_default=True,
              help="Cut-off of that low-pass.")
@click.option("--gain-db", default=None,
              help="Random gain LOW,HIGH in dB per utterance (e.g. -18,6), clipped as a 16-bit recording; "
                   "the front-end does not normalise level, so this is what makes a model robust to quiet or "
                   "loud microphones (default: off).")
@click.option("--n-mels", type=click.IntRange(min=8), default=64, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--average-last", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also write averaged.pt: the mean weights of the last N epochs (1: the last epoch's), "
                   "BatchNorm statistics recomputed on the training set (0: off).")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from the weights of another CTC checkpoint (fine-tuning); its model and front-end are used.")
@click.option("--resume", is_flag=True, help="Continue from RUN_DIR/last.pt (model, optimizer, schedule, epoch).")
@click.option("-o", "--out", "run_dir", required=True, type=click.Path(file_okay=False), help="Run folder.")
def ctc(train_manifest, val_manifest, model, rnn, epochs, lr, batch_seconds, max_batch, clip, noise_prob, speed,
        vtlp, lowpass_prob, lowpass_hz, gain_db, n_mels, threads, seed, average_last, init, resume, run_dir):
    """Train a CTC model (character vocabulary + blank) with greedy WER/CER on validation every epoch.

    \b
    Example:
      hearkit data concat --words ../shared/data/speech_commands ../shared/data/fsdd --hours 2 -o words-train
      hearkit data concat --words ../shared/data/speech_commands ../shared/data/fsdd --hours 0.25 --split val -o words-val
      hearkit train ctc --manifest words-train --val-manifest words-val --speed 0.9,1.1 --epochs 60 -o runs/words
    """
    from hearkit.commands.options import parse_range
    from hearkit.errors import require

    speed_range = parse_range(speed, "--speed") if speed else None
    if speed_range and speed_range[0] <= 0:
        raise click.BadParameter(f"--speed factors must be positive, got {speed!r}")
    vtlp_range = parse_range(vtlp, "--vtlp") if vtlp else None
    if vtlp_range and vtlp_range[0] <= 0:
        raise click.BadParameter(f"--vtlp factors must be positive, got {vtlp!r}")
    gain_range = parse_range(gain_db, "--gain-db") if gain_db else None

    require("torch", "train")
    require("tqdm", "train")
    from hearkit.training.train_ctc import CTCTrainConfig, train_ctc

    cfg = CTCTrainConfig(model=model, rnn=rnn, epochs=epochs, lr=lr, batch_seconds=batch_seconds, max_batch=max_batch,
                         clip=clip, noise_prob=noise_prob, speed_range=speed_range, n_mels=n_mels, threads=threads, seed=seed,
                         average_last=average_last, vtlp=vtlp_range, lowpass_prob=lowpass_prob, lowpass_hz=lowpass_hz,
                         gain_db=gain_range)
    best = train_ctc(train_manifest, val_manifest, run_dir, cfg, resume=resume, log=click.echo, init=init)
    if best:
        click.echo(f"best: epoch {best['epoch']}, val WER {100 * best['val_wer']:.2f} %, CER {100 * best['val_cer']:.2f} % "
                   f"-> {run_dir}/best.pt")
    if best and "averaged" in best:
        a = best["averaged"]
        click.echo(f"averaged: epochs {a['averaged_epochs'][0]}-{a['averaged_epochs'][-1]}, val WER "
                   f"{100 * a['val_wer']:.2f} %, CER {100 * a['val_cer']:.2f} % -> {run_dir}/averaged.pt")
