"""Distil the frozen speech embedding into a compact log-mel student: ``distill(config) -> run_dir``.

The teacher is the speech embedding (docs/design.md §17): 76 mel frames of its own 32-band
graph -> one 96-d vector every 80 ms. The student sees hearkit's log-mel (``STUDENT_FRONTEND``:
the same 512-sample frames every 10 ms, no padding, and the teacher's band: 32 bands from 60 Hz to
3.8 kHz) and gives one 96-d vector per
8 frames from the last ``window_frames`` of them (71 for every preset), so vector ``j`` of both
ends on the same mel frame and a device streams the student as it streams the teacher: one
small network on the newest window every 80 ms. Its convolutions are valid in time: trained on
a whole window of audio it computes every vector at once, and each vector is exactly what the
window-by-window stream gives.

No labels: every window of the audio given (recordings, synthetic speech, whole wake-word
sets) is augmented ``copies`` times (noise, gain, band limit: the same ``AugmentConfig`` as
the classifier), the teacher embeds each copy once, and the student learns to give the same
vectors from the same augmented audio. Loss: mean squared error in units of each dimension's
spread plus one minus the cosine. The epoch with the best cosine on the held-out audio
(``val``) is ``best.pt``; the run stops early when it has not improved for ``patience`` epochs.

Run folder: ``best.pt``, ``last.pt``, ``config.json`` (``loop.Trainer``'s), ``metrics.json``
(the history and the best epoch's held-out cosine, centred cosine and R²) and ``curves.png``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hearkit.datasets import noise_files
from hearkit.embedding import EMBEDDING_FRAMES, EMBEDDING_STRIDE, MEL_HOP, MEL_N_FFT, SAMPLE_RATE as MEL_RATE
from hearkit.errors import ConfigError
from hearkit.files import write_text
from hearkit.frontend import FrontendConfig, frontend_from_dict
from hearkit.limits import check
from hearkit.plots.curves import plot_curves
from hearkit.training.augment import AugmentConfig, NoiseBank, augment_waveform
from hearkit.training.loop import DEFAULT_TRAIN_THREADS, Trainer
from hearkit.training.models import STUDENTS, Student, build_student, count_parameters, student_from_config

# the teacher's mel framing (512-sample frames, 10-ms hop, no padding) and its band: its own mel spans
# 62.5 Hz - 3.78 kHz in 32 bands: a student on the same band has no 4-8 kHz bands
# to learn to ignore (an 8-kHz recording's, FSDD's, are empty), and its heads missed fewer real "seven"s than
# those of 40 bands to 8 kHz (docs/recipes/wakeword.md)
STUDENT_FRONTEND = FrontendConfig(n_fft=MEL_N_FFT, hop_length=MEL_HOP, center=False, n_mels=32, f_min=60.0, f_max=3800.0)


def student_frontend(n_mels: int = STUDENT_FRONTEND.n_mels, f_min: float = STUDENT_FRONTEND.f_min,
                     f_max: float | None = STUDENT_FRONTEND.f_max) -> FrontendConfig:
    """The teacher's framing (512-sample frames every 10 ms, no padding, 16 kHz) with these mel bands."""
    return FrontendConfig(n_fft=MEL_N_FFT, hop_length=MEL_HOP, center=False, n_mels=n_mels, f_min=f_min, f_max=f_max)


WINDOW_VECTORS = 16  # vectors of one training window: 1.98 s, the emb-* heads' window
WINDOW_SAMPLES = MEL_N_FFT + (EMBEDDING_FRAMES - 1 + (WINDOW_VECTORS - 1) * EMBEDDING_STRIDE) * MEL_HOP  # 31,712
# noise, gain and a band limit (an 8-kHz recording's): what a device's microphone adds; no shift
DEFAULT_AUGMENT = AugmentConfig(time_shift=False, noise=True, noise_prob=0.8, snr_db=(5.0, 30.0), gain=True,
                                gain_db=(-12.0, 6.0), gain_clip=True, band_limit_prob=0.1, spec_augment=False)
@dataclass(frozen=True)
class DistillConfig:
    """A distillation run.

    Attributes:
        audio: folders or manifests of training audio (recordings, synthetic sets, wake-word sets).
        val: folders or manifests of held-out real speech for the cosine that picks ``best.pt``.
        out: run folder.
        model: a name of ``STUDENTS`` (Default: student-s).
        n_mels, f_min, f_max: the student's log-mel bands, on the teacher's framing (``student_frontend``)
            (Default: ``STUDENT_FRONTEND``'s, the teacher's band: 32 bands from 60 Hz to 3.8 kHz).
        epochs: passes at most (Default: 40).
        patience: stop after this many epochs without a better held-out cosine (Default: 6).
        batch_size: windows per step (Default: 32).
        lr: peak one-cycle learning rate (Default: 3e-3).
        weight_decay: AdamW weight decay (Default: 1e-4).
        copies: augmented copies of each window, embedded once (Default: 2); epoch e trains on copy e mod K.
        max_windows: training windows at most, spread over the audio (Default: 20000: with 2 copies about
            0.6 GB of log-mel held in memory as float16).
        val_windows: held-out windows at most (Default: 1000).
        noise_dir: background-noise recordings for the augmentation (Default: None: no noise is added).
        augment: the waveform augmentation (Default: ``DEFAULT_AUGMENT``).
        feature_cache: folder that keeps the teacher's vectors and the student's log-mel per set of inputs
            (Default: None).
        seed, num_threads, resume, checkpoint_every, progress, quiet: as for the other trainers.
    """

    audio: tuple
    val: tuple
    out: str
    model: str = "student-s"
    n_mels: int = STUDENT_FRONTEND.n_mels
    f_min: float = STUDENT_FRONTEND.f_min
    f_max: float | None = STUDENT_FRONTEND.f_max
    epochs: int = 40
    patience: int = 6
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    copies: int = 2
    max_windows: int = 20000
    val_windows: int = 1000
    noise_dir: str | None = None
    augment: AugmentConfig = field(default_factory=lambda: DEFAULT_AUGMENT)
    feature_cache: str | None = None
    seed: int = 0
    num_threads: int | None = DEFAULT_TRAIN_THREADS
    resume: bool = False
    checkpoint_every: int = 50
    progress: bool = True
    quiet: bool = False

    def __post_init__(self):
        def fail(msg):
            raise ConfigError(f"invalid distillation config: {msg}")

        object.__setattr__(self, "audio", tuple(os.fspath(a) for a in self.audio))
        object.__setattr__(self, "val", tuple(os.fspath(a) for a in self.val))
        object.__setattr__(self, "out", os.fspath(self.out))
        if not self.audio or not self.val:
            fail("give training audio and held-out audio (--audio, --val)")
        if self.model not in STUDENTS:
            fail(f"unknown student {self.model!r}; available = {sorted(STUDENTS)}")
        for name, limit in (("epochs", "epochs"), ("batch_size", "batch_size"), ("seed", "seed"), ("lr", "lr")):
            try:
                object.__setattr__(self, name, check(limit, getattr(self, name), name))
            except ConfigError as e:
                fail(str(e))
        try:
            self.frontend()
        except ConfigError as e:
            fail(str(e))
        for name, lo in (("patience", 1), ("copies", 1), ("max_windows", 2), ("val_windows", 1)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < lo:
                fail(f"{name} must be an integer >= {lo}, got {getattr(self, name)!r}")

    def frontend(self) -> FrontendConfig:
        """The student's log-mel front-end."""
        return student_frontend(self.n_mels, self.f_min, self.f_max)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["augment"] = json.loads(json.dumps(self.augment.to_dict()))
        d["audio"], d["val"] = list(self.audio), list(self.val)
        return d


def distill(config: DistillConfig, log: Callable[[str], object] | None = None) -> Path:
    """Train a student on the teacher's vectors and write the run folder (``config.out``); returns its path."""
    return DistillTrainer(config, log).run()


def audio_windows(sources, count: int, seed: int, log=None) -> np.ndarray:
    """(n, ``WINDOW_SAMPLES``) int16: the sources' files in a seeded order, back to back, cut into windows
    (at most ``count``). 16-bit, as the recordings are: 20,000 windows hold 1.3 GB."""
    from hearkit.audio import load_audio
    from hearkit.evaluate.detector import transcribed_files

    files = [p for s in sources for p, _ in transcribed_files(s)]
    if not files:
        raise ConfigError(f"{', '.join(map(str, sources))}: no audio files")
    need, total, parts = count * WINDOW_SAMPLES, 0, []
    for k in np.random.default_rng(seed).permutation(len(files)):
        x = load_audio(files[k], MEL_RATE)[0]
        parts.append(np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16))
        total += len(x)
        if total >= need:
            break
    audio = np.concatenate(parts)
    if len(audio) < WINDOW_SAMPLES:
        audio = np.pad(audio, (0, WINDOW_SAMPLES - len(audio)))
    n = min(count, len(audio) // WINDOW_SAMPLES)
    if log:
        log(f"{len(parts)} of {len(files)} files, {len(audio) / MEL_RATE / 3600:.2f} h: {n} windows")
    return audio[: n * WINDOW_SAMPLES].reshape(n, WINDOW_SAMPLES)


class DistillTrainer(Trainer):
    """``loop.Trainer``'s hooks for distillation: windows of audio, the teacher's vectors as targets, held-out cosine."""

    task = "distill"

    def build(self) -> None:
        cfg, ck, say = self.cfg, self.resume_from, self.say
        from hearkit.training.embedding import EmbeddingFrontend, embedding_config
        from hearkit.training.frontend import LogMel

        fe = self.frontend = frontend_from_dict(ck["frontend"]) if ck else cfg.frontend()
        model = student_from_config(ck["model"]) if ck else build_student(cfg.model, fe.n_mels)
        self.model, self.model_config = model, model.config()
        say(f"student {model.name}: {count_parameters(model):,} parameters, one vector from "
            f"{model.window_frames} log-mel frames every {model.stride_frames}")
        train = audio_windows(cfg.audio, cfg.max_windows, cfg.seed, lambda m: say(f"training audio: {m}"))
        val = audio_windows(cfg.val, cfg.val_windows, cfg.seed + 1, lambda m: say(f"held-out audio: {m}"))
        noise = NoiseBank.from_files(noise_files(cfg.noise_dir), MEL_RATE) if cfg.noise_dir else None
        if cfg.augment.noise and noise is None:
            say.warn("no --noise-dir: the copies get no background noise")
        self.teacher_cfg = embedding_config(None)
        teacher = EmbeddingFrontend(self.teacher_cfg)
        logmel = LogMel(fe)
        self.x, self.y, self.val_x, self.val_y = _targets(cfg, teacher, logmel, train, val, noise, say, self.show)
        if not ck:  # the targets' spread: the student's output units (kept in its buffers)
            flat = self.y.reshape(-1, self.y.shape[-1])
            model.out_mean.copy_(flat.mean(0))
            model.out_std.copy_(flat.std(0).clamp_min(1e-3))
        self.steps_per_epoch = max(1, math.ceil(self.x.shape[1] // self.dist.world / cfg.batch_size))
        self.train_config = {**cfg.to_dict(), "teacher": {"input_scale": self.teacher_cfg.input_scale,
                                                          "source": self.teacher_cfg.source}}
        self.stats = {}

    def checkpoint_fields(self) -> dict:
        return {"window_frames": self.model.window_frames, "stride_frames": self.model.stride_frames,
                "offset_frames": self.model.offset_frames, "teacher": self.train_config["teacher"]}

    def batches(self, epoch: int):
        cfg, dist = self.cfg, self.dist
        n = self.x.shape[1]
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
        mine = perm[dist.rank :: dist.world]
        self.model.train()
        self.stats.update(loss=0.0, cos=0.0, seen=0, epoch=epoch)
        return [mine[s : s + cfg.batch_size] for s in range(0, len(mine), cfg.batch_size)][: self.steps_per_epoch]

    def loss(self, idx) -> torch.Tensor:
        k = self.stats["epoch"] % self.x.shape[0]
        x = self.x[k, idx].float()[:, self.model.offset_frames :]
        y = (self.y[k, idx] - self.model.out_mean) / self.model.out_std
        p = self.net(x, units=False)
        cos = F.cosine_similarity(p * self.model.out_std + self.model.out_mean, self.y[k, idx], dim=-1).mean()
        loss = F.mse_loss(p, y) + (1 - cos)
        self.stats["loss"] += loss.item() * len(idx)
        self.stats["cos"] += cos.item() * len(idx)
        self.stats["seen"] += len(idx)
        return loss

    def shown(self) -> dict:
        s = max(1, self.stats["seen"])
        return {"loss": self.stats["loss"] / s, "cos": self.stats["cos"] / s}

    @torch.no_grad()
    def validate(self, epoch: int) -> tuple[dict, dict]:
        m = held_out_metrics(self.model, self.val_x, self.val_y)
        s = max(1, self.stats["seen"])
        return {"train_loss": self.stats["loss"] / s, "train_cosine": self.stats["cos"] / s, **m}, m

    def better(self, metrics: dict, best: dict | None) -> bool:
        return best is None or metrics["val_cosine"] > best["val_cosine"]

    def epoch_line(self, row: dict, improved: bool) -> str:
        return (f"epoch {row['epoch']}/{self.cfg.epochs}: loss {row['train_loss']:.3f} cosine {row['train_cosine']:.3f} | "
                f"held-out cosine {row['val_cosine']:.4f} centred {row['val_centred_cosine']:.3f} R² {row['val_r2']:.3f} | "
                f"{row['seconds']:.0f} s{'  *best' if improved else ''}")

    def after_epoch(self, epoch: int, ckpt: dict, improved: bool) -> None:
        h = self.state.history
        plot_curves(h, self.out / "curves.png", [
            {"title": "training loss", "ylabel": "MSE in spreads + 1 - cosine", "lines": [("training", "train_loss", 1.0)]},
            {"title": "student vs teacher", "ylabel": "cosine to the teacher",
             "lines": [("training (augmented)", "train_cosine", 1.0), ("held-out", "val_cosine", 1.0)],
             "floor": (h[-1]["val_mean_vector_cosine"], "the mean vector (floor)")},
        ], best_epoch=(self.state.best or {}).get("epoch"))

    def stop_early(self) -> bool:
        done, best = self.state.epoch, (self.state.best or {}).get("epoch", self.state.epoch)
        if done - best >= self.cfg.patience:
            self.say(f"no better held-out cosine for {self.cfg.patience} epochs: stopping after epoch {done}")
            return True
        return False

    def finish(self) -> None:
        best = self.state.best or {}
        metrics = {"model": self.model_config["name"], "parameters": self.parameters, "best_epoch": best.get("epoch"),
                   **{k: best.get(k) for k in ("val_cosine", "val_centred_cosine", "val_r2", "val_mean_vector_cosine")},
                   "history": self.state.history, "train_seconds": round(sum(h["seconds"] for h in self.state.history), 1)}
        write_text(self.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if best:
            self.say(f"best held-out cosine {best['val_cosine']:.4f} (the mean vector's {best['val_mean_vector_cosine']:.4f}, "
                     f"centred {best['val_centred_cosine']:.3f}, R² {best['val_r2']:.3f}) at epoch {best['epoch']}; "
                     f"wrote {self.out}")


def held_out_metrics(model: Student, val_x: torch.Tensor, val_y: torch.Tensor) -> dict:
    """Cosine of the student's vectors to the teacher's on held-out windows; the cosine after both lose the training
    targets' mean (``model.out_mean``: what separates one sound from another); R² per dimension, averaged; the
    mean vector's cosine."""
    model.eval()
    pred = torch.cat([model(val_x[s : s + 256].float()[:, model.offset_frames :]) for s in range(0, len(val_x), 256)])
    mean = model.out_mean
    r2 = 1 - ((pred - val_y) ** 2).reshape(-1, val_y.shape[-1]).mean(0) / val_y.reshape(-1, val_y.shape[-1]).var(0).clamp_min(1e-9)
    return {"val_cosine": float(F.cosine_similarity(pred, val_y, dim=-1).mean()),
            "val_centred_cosine": float(F.cosine_similarity(pred - mean, val_y - mean, dim=-1).mean()),
            "val_r2": float(r2.mean()),
            "val_mean_vector_cosine": float(F.cosine_similarity(mean.expand_as(val_y), val_y, dim=-1).mean())}


def _targets(cfg: DistillConfig, teacher, logmel, train: np.ndarray, val: np.ndarray, noise, say, show):
    """(student log-mel (K, n, T, F) float16, teacher vectors (K, n, 16, 96), and the same of the held-out windows,
    not augmented), read from the feature cache when it holds them."""
    import hashlib

    from hearkit.progress import Progress

    h = hashlib.sha256(json.dumps([cfg.augment.to_dict(), cfg.copies, cfg.seed, logmel.cfg.to_json(),
                                   teacher.cfg.to_json(), len(noise) if noise is not None else 0],
                                  sort_keys=True, default=str).encode())
    h.update(train.tobytes())
    h.update(val.tobytes())
    cached = Path(cfg.feature_cache) / f"distill-{h.hexdigest()[:16]}.pt" if cfg.feature_cache else None
    if cached is not None and cached.is_file():
        d = torch.load(cached, weights_only=True)
        say(f"teacher vectors: reusing {cached}")
        return d["x"], d["y"], d["val_x"], d["val_y"]
    gen = torch.Generator().manual_seed(cfg.seed * 7907 + 19)
    total = cfg.copies * len(train) + len(val)
    say(f"teacher vectors: {cfg.copies} augmented copies of {len(train)} windows and {len(val)} held-out windows")
    bar = Progress(total, "teacher", unit="window") if show else None
    started = time.process_time()

    def embed(windows: np.ndarray, augment: bool):
        xs, ys = [], []
        for s in range(0, len(windows), 64):
            w = torch.from_numpy(windows[s : s + 64].astype(np.float32) / 32768.0)
            if augment:
                w = augment_waveform(w, cfg.augment, MEL_RATE, gen, noise)
            ys.append(torch.from_numpy(teacher.features(w.numpy())))
            with torch.no_grad():
                xs.append(logmel(w).to(torch.float16))
            if bar is not None:
                bar.update(len(w))
        return torch.cat(xs), torch.cat(ys)

    copies = [embed(train, True) for _ in range(cfg.copies)]
    x, y = torch.stack([c[0] for c in copies]), torch.stack([c[1] for c in copies])
    val_x, val_y = embed(val, False)
    if bar is not None:
        bar.close()
    say(f"teacher vectors: {total} windows in {time.process_time() - started:.0f} CPU s")
    if cached is not None:
        from hearkit.files import atomic_path

        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            torch.save({"x": x, "y": y, "val_x": val_x, "val_y": val_y}, tmp)
        say(f"teacher vectors: kept in {cached}")
    return x, y, val_x, val_y
