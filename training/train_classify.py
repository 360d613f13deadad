"""Train a mel-CNN classifier on a labelled dataset: ``train_classifier(config) -> run_dir``.

One process, or several under ``torchrun`` (DDP with gloo on CPU; every rank
trains on its own shard of each epoch, only rank 0 evaluates and writes). The
loop, schedule, checkpoints, resume and progress are ``hearkit.training.loop``'s,
shared with ``train_ctc``.

RUN_DIR after a run:

- ``best.pt``      checkpoint of the epoch with the best validation accuracy
- ``last.pt``      the latest state (end of each epoch, and every
                   ``checkpoint_every`` steps inside one) with optimizer,
                   scheduler, RNG states and history, for ``resume``
- ``config.json``  the checkpoint's fields without the weights (model, front-end, labels, window,
                   parameter count), the options under ``train``
- ``metrics.json`` per-epoch history, best validation accuracy, per-class
                   precision/recall and the confusion matrix of ``best.pt``
- ``confusion.png`` that confusion matrix

Checkpoints follow ``hearkit.training.checkpoint`` (atomic, weights_only).
The defaults are the README's Speech Commands recipe (cnn4-s, 30 epochs, batches
of 32, peak lr 3e-3, SNR 5-20 dB, gain -12..6 dB: 91.1 % validation accuracy).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hearkit.classify import is_background_label, softmax
from hearkit.datasets import SILENCE_LABEL, DatasetIndex, default_window_seconds, index_dataset, noise_files
from hearkit.errors import ConfigError
from hearkit.evaluate.detector import OVER_FLOOR_DB
from hearkit.evaluate.metrics import classification_report
from hearkit.files import write_text
from hearkit.frontend import FrontendConfig, frontend_from_dict
from hearkit.limits import check
from hearkit.plots.detection import plot_confusion
from hearkit.training.augment import AugmentConfig, NoiseBank, augment_waveform, mel_centres_hz, mixup, spec_augment, vtlp
from hearkit.training.checkpoint import load_checkpoint
from hearkit.training.data import BAD_FILE_POLICIES, ClipDataset
from hearkit.training.frontend import frontend_module
from hearkit.training.loop import BEST, DEFAULT_TRAIN_THREADS, LAST, SCHEDULES, Trainer
from hearkit.training.models import MODELS, build_model, count_parameters, model_from_config, uses_embedding, uses_student

WARMUP_FRACTION = 0.1  # share of steps spent warming up (one-cycle pct_start; linear warm-up for cosine)
EVAL_BATCH = 256  # clips per evaluation batch
DEFAULT_LABEL_SMOOTHING = 0.1  # log-mel models (the Speech Commands recipe); emb-* models train without
EMBEDDING_FRAMES = 16  # speech-embedding models: vectors the head sees by default (a 2-s window)
# speech-embedding models: each training clip's utterance (frames within 35 dB of its loudest) is moved
# to end this long before the window's end (uniform; validation: the middle), so the head fires as the
# phrase ends. Centred or anywhere in a 2-s window, the posterior peaked 0.3-0.7 s after the phrase,
# past the evaluation's 0.5-s hit window: a miss and a false alarm each time (docs/results.md).
ALIGN_TAIL_S = (0.05, 0.3)
ALIGN_FLOOR_DB = OVER_FLOOR_DB  # the aligned utterance: frames this far above the clip's noise floor (and within 35 dB of its peak)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a classification run depends on (saved as config.json and in checkpoints).

    Attributes:
        data: dataset folder.
        out: run directory.
        format: dataset layout, ``hearkit.datasets.FORMATS`` (Default: None = detect).
        model: a name of ``hearkit.training.models.MODELS`` (Default: cnn4-s, the fastest per
            CPU step: about 4x dscnn-s).
        epochs: passes over the training split (Default: 30).
        batch_size: clips per step and process (Default: 32).
        lr: peak learning rate of AdamW (Default: 3e-3).
        weight_decay: AdamW weight decay (Default: 1e-2).
        schedule: ``onecycle`` | ``cosine`` (with linear warm-up) (Default: onecycle).
        label_smoothing: target smoothing ε (Default: None = 0.1, or 0 for ``emb-*`` models: smoothed
            targets cap every confident posterior at one value, and a detector's threshold then cannot
            rank real phrases above the few false alarms that reach the same cap; docs/results.md).
        seed: seed of everything random (Default: 0).
        noise_dir: background-noise folder (Default: None = the dataset's own
            ``_background_noise_`` files, else its training ``_silence_`` clips, else no noise).
        val_fold / test_fold: UrbanSound8K folds (Default: None).
        keywords: speech-commands keyword folders; others become ``_unknown_`` (Default: None = all).
        window_seconds: clip window (Default: None = 1 s keywords, 4 s UrbanSound8K).
        frontend: the log-mel front-end (Default: ``FrontendConfig()``).
        augment: augmentation settings (Default: ``AugmentConfig()``, the Speech Commands recipe's).
        dropout: model dropout, None keeps the architecture's default.
        on_bad_file: ``fail`` | ``skip`` unreadable clips (Default: fail).
        resume: continue from ``out/last.pt`` (Default: False).
        init: start from the weights of another classifier checkpoint over the same labels: its
            architecture, front-end and window are kept (fine-tuning, e.g. a hard-negative stage
            on a set with more negatives) (Default: None).
        checkpoint_every: also save ``last.pt`` every this many steps inside an epoch (Default: 50; 0 = epoch ends only).
        max_clips: use at most this many clips per split, evenly spread (tests, quick looks) (Default: None).
        num_threads: torch intra-op and inter-op threads (Default: 1, ``loop.DEFAULT_TRAIN_THREADS``: torch's
            choice of all cores was 7x slower on a loaded 2-core machine; None = torch's choice).
        feature_copies: for models on the frozen speech embedding (``emb-*``): augmented copies of
            each training clip embedded once before training; epoch e trains on copy e mod K, so an
            epoch costs the head, not the embedding (Default: 2, the measured wake-word recipe: about
            13 CPU minutes for 8,400 2-s clips).
        input_scale: the speech embedding's input scale, 32768 (int16-scaled, openWakeWord's) or 1
            ([-1, 1], livekit-wakeword's) (Default: None = ``EmbeddingConfig``'s, 32768).
        align_end: for ``emb-*`` models, move each clip's utterance to end ``ALIGN_TAIL_S`` before the
            window's end, so a detector fires as the phrase ends (Default: True). Turn it off for clip
            classification, where ``hearkit run`` and ``verify`` centre a clip in the window.
        student: for ``student-dnn``: the ``best.pt`` of a ``hearkit train distill`` run, whose student
            (frozen) gives the head its vectors; its log-mel front-end becomes the model's (Default: None).
        teacher_vectors: for ``student-*`` models: train the head on the speech embedding's own vectors of the
            same augmented copies as well as on the student's (2K copies: the student's K, then the teacher's K;
            epoch e trains on copy e mod 2K; validation stays on the student's). The embedding (hearkit[embedding])
            embeds the copies once, as for ``emb-*`` and into the same cache: a head that has seen both is less
            tied to the student's errors (docs/recipes/wakeword.md) (Default: False).
        heads: for ``emb-*`` and ``student-*`` models: an ensemble of this many heads, each trained with its
            own loss from its own initial weights; the model's posterior is their mean (Default: 1).
        negative_weight: loss weight of the background clips (``_unknown_``, ``_silence_``) against the
            keyword clips, as openWakeWord and microWakeWord weight negatives to buy fewer false
            alarms per hour (Default: 1, plain cross-entropy).
        select_fa_per_hour: how ``best.pt`` is chosen. None: the epoch with the best validation accuracy. A
            rate: the epoch with the fewest validation misses at that many false alarms per hour, the wake-word
            measure (``validation_misses``: each keyword's threshold is set on the validation clips of every
            other label, each counting as one window of audio); ties go to the better accuracy (Default: None).
        feature_cache: folder where the embedded copies are kept, one file per set of inputs (the clips,
            window, copies, augmentation, seed and embedding files): a run with other head settings
            reuses them instead of embedding again (Default: None = not kept).
        progress: show progress: a bar on a terminal, a line per ~10 % of the run in a log (Default: True).
        quiet: warnings and the result only: no progress, no line per epoch (Default: False).
    """

    data: str
    out: str
    format: str | None = None
    model: str = "cnn4-s"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    label_smoothing: float | None = None
    seed: int = 0
    noise_dir: str | None = None
    val_fold: int | None = None
    test_fold: int | None = None
    keywords: tuple[str, ...] | None = None
    window_seconds: float | None = None
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    dropout: float | None = None
    on_bad_file: str = "fail"
    resume: bool = False
    init: str | None = None
    checkpoint_every: int = 50
    max_clips: int | None = None
    num_threads: int | None = DEFAULT_TRAIN_THREADS
    feature_copies: int = 2
    input_scale: float | None = None
    feature_cache: str | None = None
    align_end: bool = True
    negative_weight: float = 1.0
    student: str | None = None
    heads: int = 1
    teacher_vectors: bool = False
    select_fa_per_hour: float | None = None
    progress: bool = True
    quiet: bool = False

    def __post_init__(self):
        def fail(msg):
            raise ConfigError(f"invalid training config: {msg}")

        if self.model not in MODELS:
            fail(f"unknown model {self.model!r}; available models = {sorted(MODELS)}")
        # the Python API gets the CLI's limits (docs/design.md §13): torch segfaulted at 100000 threads
        for name, limit in (("num_threads", "threads"), ("epochs", "epochs"), ("batch_size", "batch_size"),
                            ("seed", "seed"), ("lr", "lr"), ("negative_weight", "negative_weight")):
            if name == "num_threads" and self.num_threads is None:
                continue
            try:
                object.__setattr__(self, name, check(limit, getattr(self, name), name))
            except ConfigError as e:
                fail(str(e))
        if self.epochs < 1 or self.batch_size < 2:
            fail(f"need epochs >= 1 and batch_size >= 2, got {self.epochs} and {self.batch_size}")
        if not self.lr > 0:
            fail(f"lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            fail(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.label_smoothing is not None and not 0 <= self.label_smoothing < 1:
            fail(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not isinstance(self.feature_copies, int) or not 1 <= self.feature_copies <= 64:
            fail(f"feature_copies must be an integer in 1..64, got {self.feature_copies!r}")
        if self.checkpoint_every < 0:
            fail(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.on_bad_file not in BAD_FILE_POLICIES:
            fail(f"on_bad_file must be one of {list(BAD_FILE_POLICIES)}, got {self.on_bad_file!r}")
        if self.window_seconds is not None and self.window_seconds <= 0:
            fail(f"window_seconds must be > 0, got {self.window_seconds}")
        if self.keywords is not None:
            object.__setattr__(self, "keywords", tuple(self.keywords))
        if uses_student(self.model) and self.student is None and self.init is None:
            fail(f"{self.model} needs a distilled student: give student (--student RUN/best.pt of `hearkit train distill`)")
        if not isinstance(self.heads, int) or not 1 <= self.heads <= 16:
            fail(f"heads must be an integer in 1..16, got {self.heads!r}")
        if self.heads > 1 and not (uses_embedding(self.model) or uses_student(self.model)):
            fail(f"heads (--heads) is for the emb-* and student-* models, not {self.model}")
        if self.select_fa_per_hour is not None:
            try:
                object.__setattr__(self, "select_fa_per_hour", check("fa_per_hour", self.select_fa_per_hour, "select_fa_per_hour"))
            except ConfigError as e:
                fail(str(e))
        if self.teacher_vectors and not uses_student(self.model):
            fail(f"teacher_vectors (--teacher-vectors) is for the student-* models, not {self.model}")
        if self.student is not None and not uses_student(self.model):
            fail(f"student (--student) is for the student-* models, not {self.model}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["frontend"] = self.frontend.to_dict()
        d["augment"] = self.augment.to_dict()
        d["keywords"] = list(self.keywords) if self.keywords is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["frontend"] = frontend_from_dict(d.get("frontend") or {})
        d["augment"] = AugmentConfig(**(d.get("augment") or {}))
        return cls(**d)


# -- data ----------------------------------------------------------------------------
def _spread(examples: list, n: int | None) -> list:
    """At most n examples, evenly spread over the (sorted) list so every label keeps a share."""
    if n is None or len(examples) <= n:
        return examples
    idx = np.linspace(0, len(examples) - 1, n).round().astype(int)
    return [examples[i] for i in idx]


def _noise_paths(cfg: TrainConfig, index: DatasetIndex) -> list[str]:
    if cfg.noise_dir:
        return noise_files(cfg.noise_dir)
    if index.noise_files:
        return list(index.noise_files)
    # Training-split silence clips only: validation ones would leak into training.
    return [e.path for e in index.split("train") if e.label == SILENCE_LABEL]


# -- evaluation --------------------------------------------------------------------------
@torch.no_grad()
def predict(model, logmel, ds: ClipDataset, batch_size: int = EVAL_BATCH, features: torch.Tensor | None = None,
            **kw) -> np.ndarray:
    """Logits (clips, n_labels) of a dataset, in order (of ``features`` when they were computed already; ``kw``
    goes to the model with them, e.g. ``vectors=True`` for a student's cached vectors)."""
    model.eval()
    out = []
    if features is not None:
        return torch.cat([model(features[s : s + batch_size], **kw) for s in range(0, len(features), batch_size)]).numpy()
    for s in range(0, len(ds), batch_size):
        wav = torch.stack([ds[i][0] for i in range(s, min(s + batch_size, len(ds)))])
        out.append(model(logmel(wav)))
    return torch.cat(out).numpy() if out else np.zeros((0, len(ds.labels)), np.float32)


# -- the run ---------------------------------------------------------------------------------
def train_classifier(config: TrainConfig, log: Callable[[str], object] | None = None) -> Path:
    """Train, evaluate and write RUN_DIR (``config.out``); returns its path.

    Args:
        config: the run.
        log: callable for the run's lines (Default: None = ``hearkit: ...`` on stderr).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins a gloo process group; only
    rank 0 writes files.
    """
    return ClassifyTrainer(config, log).run()


class ClassifyTrainer(Trainer):
    """``loop.Trainer``'s hooks for a clip classifier: clips in a window, cross-entropy, validation accuracy."""

    task = "classify"
    warmup_fraction = WARMUP_FRACTION

    def build(self) -> None:
        cfg, ck, say, show, main = self.cfg, self.resume_from, self.say, self.show, self.dist.main
        self.schedule = cfg.schedule
        index = index_dataset(cfg.data, cfg.format, val_fold=cfg.val_fold, test_fold=cfg.test_fold, keywords=cfg.keywords)
        labels = self.labels = list(index.labels)
        self.dataset_format = index.format
        fe = cfg.frontend
        window = int(round((cfg.window_seconds or default_window_seconds(index)) * fe.sample_rate))
        emb_frames = student = None
        if uses_student(cfg.model) and cfg.init is None:
            # a distilled student keeps the embedding's clock: a vector every 80 ms from the last 12,512 samples
            from hearkit.embedding import EmbeddingConfig

            student = ck["model"]["student"] if ck is not None else load_student(cfg.student)
            if ck is None:
                fe = frontend_from_dict(student["frontend"])
            clock = EmbeddingConfig()
            emb_frames = clock.num_frames(int(round(cfg.window_seconds * fe.sample_rate))) if cfg.window_seconds else EMBEDDING_FRAMES
            if emb_frames < 1:
                raise ConfigError(f"--window-seconds {cfg.window_seconds}: the student needs at least "
                                  f"{clock.n_fft / clock.sample_rate:.3f} s for one vector")
            window = clock.window_for(emb_frames)
        elif uses_embedding(cfg.model) and cfg.init is None:
            # the frozen speech embedding is the front-end (docs/design.md §17): a window of whole 80-ms hops
            from hearkit.training.embedding import embedding_config

            fe = embedding_config(cfg.input_scale)
            emb_frames = fe.num_frames(int(round(cfg.window_seconds * fe.sample_rate))) if cfg.window_seconds else EMBEDDING_FRAMES
            if emb_frames < 1:
                raise ConfigError(f"--window-seconds {cfg.window_seconds}: the speech embedding needs at least "
                                  f"{fe.n_fft / fe.sample_rate:.3f} s for one vector")
            window = fe.window_for(emb_frames)
        init_ckpt = None
        if ck is not None and (cfg.init is not None or emb_frames is not None):  # a resumed run: the front-end and window it started with
            fe = frontend_from_dict(ck["frontend"])
            window = int(ck["window_samples"])
        if cfg.init is not None and ck is None:
            init_ckpt = load_checkpoint(cfg.init)
            if init_ckpt.get("task") != "classify" or list(init_ckpt.get("labels", [])) != labels:
                raise ConfigError(f"--init {cfg.init}: not a classifier over this dataset's labels {labels} "
                                  f"(it has {init_ckpt.get('labels')})")
            fe = frontend_from_dict(init_ckpt["frontend"])
            window = int(init_ckpt["window_samples"])
        if fe.num_frames(window) < 1:
            raise ConfigError(f"a window of {window} samples gives no front-end frame (n_fft {fe.n_fft}); use a longer --window-seconds")
        self.frontend, self.window = fe, window
        train_ex = _spread(index.split("train"), cfg.max_clips)
        val_ex = _spread(index.split("val"), cfg.max_clips)
        test_ex = _spread(index.split("test"), cfg.max_clips)
        if not train_ex:
            raise ConfigError(f"{cfg.data}: the training split is empty")
        if not val_ex:
            raise ConfigError(
                f"{cfg.data}: the validation split is empty; give a validation list, --val-fold, or more speakers for the hash split"
            )
        say(f"{index.format} at {index.root}: {len(labels)} labels, {len(train_ex)} train / {len(val_ex)} val / {len(test_ex)} test clips")
        self.train_ds = ClipDataset(train_ex, labels, fe.sample_rate, window, cfg.on_bad_file, random_crop=True, seed=cfg.seed,
                                    progress=show)
        self.val_ds = ClipDataset(val_ex, labels, fe.sample_rate, window, cfg.on_bad_file, progress=show) if main else None
        self.test_ds = ClipDataset(test_ex, labels, fe.sample_rate, window, cfg.on_bad_file) if main and test_ex else None
        noise = self.noise = None
        if cfg.augment.noise:
            paths = _noise_paths(cfg, index)
            if paths:
                noise = self.noise = NoiseBank.from_files(paths, fe.sample_rate)
                say(f"background noise: {len(noise)} clips")
            else:
                say.warn("no background noise found (give --noise-dir); noise augmentation is off")

        kw = {} if cfg.dropout is None else {"dropout": cfg.dropout}
        if cfg.heads > 1:
            kw["heads"] = cfg.heads
        model_name = (init_ckpt or ck or {}).get("model", {}).get("name", cfg.model) if cfg.init else cfg.model
        if init_ckpt is not None:
            model = model_from_config(init_ckpt["model"])
            model.load_state_dict(init_ckpt["state_dict"])
            say(f"initialised from {cfg.init} ({init_ckpt['model'].get('name')}, val acc "
                f"{init_ckpt.get('metrics', {}).get('val_acc', float('nan')):.4f})")
        elif ck is not None and cfg.init is not None:
            model = model_from_config(ck["model"])
        else:
            if student is not None and ck is not None:
                model = model_from_config(ck["model"])  # the resumed state loads into it
            elif student is not None:
                model = build_model(cfg.model, len(labels), fe.n_mels, student=student["model"], vectors=emb_frames, **kw)
                model.student.load_state_dict(student["state_dict"])
                say(f"student {student['model']['name']} from {cfg.student}: {sum(p.numel() for p in model.student.parameters()):,} "
                    f"parameters, frozen (held-out cosine to the embedding {student['val_cosine']:.4f})")
            else:
                if emb_frames is not None:
                    kw["frames"] = emb_frames
                model = build_model(cfg.model, len(labels), fe.n_mels, **kw)
        if ck is not None and (ck["model"]["name"] != model_name or ck.get("labels") != labels):
            raise ConfigError(f"{self.out / LAST} is a {ck['model']['name']} run over labels {ck.get('labels')}; "
                              f"it cannot resume as {model_name} over {labels}")
        self.model, self.model_config = model, model.config()
        self.logmel = frontend_module(fe)
        on_student = uses_student(self.model_config["name"])
        self.cached = uses_embedding(self.model_config["name"]) or on_student
        self.feature_kw = {"vectors": True} if on_student else {}  # the cached features are the student's vectors
        self.label_smoothing = (cfg.label_smoothing if cfg.label_smoothing is not None
                                else (0.0 if self.cached else DEFAULT_LABEL_SMOOTHING))
        self.train_feats = self.val_feats = self.test_feats = None
        if self.cached:
            short = float(np.median([len(c) for c in self.train_ds.clips])) if len(self.train_ds) else window
            if short < 0.9 * window:
                # measured: a 1-s set in the 2-s window missed 99.8 % at 1 FA/h (docs/results.md): centred
                # positives fire ~1 s late and no negative shows 2 s of continuous audio
                say.warn(f"the clips are {short / fe.sample_rate:.2f} s and the speech embedding sees {window / fe.sample_rate:.2f} s: "
                         "they are padded with silence, so in a stream positives fire late and negatives never fill the "
                         f"window; for a wake word make the set with `hearkit data wakeword ... --window-seconds "
                         f"{window / fe.sample_rate:g}`")
            vectors = StudentVectors(self.logmel, model) if on_student else self.logmel
            self.train_feats, self.val_feats, self.test_feats = _embed_sets(cfg, fe, vectors, self.train_ds, self.val_ds,
                                                                            self.test_ds, noise, say, show)
            if on_student and cfg.teacher_vectors:
                # the teacher's vectors of the same copies (the student gives them in the teacher's units), keyed
                # as an emb-dnn run on this set keys them: one embedding serves both
                from hearkit.training.embedding import embedding_config

                tfe = embedding_config(cfg.input_scale)
                teacher, _, _ = _embed_sets(cfg, tfe, frontend_module(tfe), self.train_ds, self.val_ds, self.test_ds,
                                            noise, say, show)
                self.train_feats = torch.cat([self.train_feats, teacher])
        say(f"model {model_name}: {count_parameters(model):,} parameters")
        self.per_rank = len(self.train_ds) // self.dist.world
        self.steps_per_epoch = max(1, math.ceil(self.per_rank / cfg.batch_size))
        self.train_config = cfg.to_dict()
        # per-class loss weight: background labels get negative_weight (1 everywhere: plain cross-entropy)
        self.class_weight = torch.tensor([cfg.negative_weight if is_background_label(lab) else 1.0 for lab in labels])
        self.mel_hz = mel_centres_hz(fe) if cfg.augment.vtlp is not None and not self.cached else None
        self.stats = {}

    def checkpoint_fields(self) -> dict:
        return {"labels": list(self.labels), "window_samples": int(self.window)}

    def config_extras(self) -> dict:
        return {"label_smoothing": self.label_smoothing, "dataset_format": self.dataset_format}

    def batches(self, epoch: int):
        cfg, dist = self.cfg, self.dist
        perm = torch.randperm(len(self.train_ds), generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
        mine = perm[: self.per_rank * dist.world][dist.rank :: dist.world] if dist.world > 1 else perm
        self.net.train()
        self.stats.update(loss_sum=0.0, correct=0, seen=0, epoch=epoch)
        return [mine[s : s + cfg.batch_size] for s in range(0, len(mine), cfg.batch_size)]

    def loss(self, batch) -> torch.Tensor:
        cfg, aug, gen, stats = self.cfg, self.cfg.augment, self.gen, self.stats
        idx = batch.tolist()
        y = self.train_ds.targets[idx]
        if self.cached:  # augmented before the embedding, embedded once: this epoch's copy
            feats = self.train_feats[stats["epoch"] % len(self.train_feats)][idx]
        else:
            wav = augment_waveform(torch.stack([self.train_ds[i][0] for i in idx]), aug, self.frontend.sample_rate,
                                   gen, self.noise)
            with torch.no_grad():
                feats = self.logmel(wav)
                if self.mel_hz is not None:
                    feats = vtlp(feats, aug.vtlp, self.mel_hz, gen)
        if aug.spec_augment and not self.cached:
            feats = spec_augment(feats, aug, gen)
        k, ls = len(self.labels), self.label_smoothing
        target = F.one_hot(y, k).float() * (1 - ls) + ls / k
        if aug.mixup:
            feats, target = mixup(feats, target, aug.mixup_alpha, gen)
        logits = self.net(feats, **self.feature_kw)
        weight = None if cfg.negative_weight == 1.0 else self.class_weight
        if logits.dim() == 3:  # an ensemble's members (heads, batch, labels): each its own loss
            loss = torch.stack([soft_cross_entropy(z, target, weight) for z in logits]).mean()
            logits = torch.log(torch.softmax(logits, -1).mean(0))
        else:
            loss = soft_cross_entropy(logits, target, weight)
        stats["loss_sum"] += loss.item() * len(idx)
        stats["correct"] += int((logits.argmax(1) == y).sum())
        stats["seen"] += len(idx)
        return loss

    def shown(self) -> dict:
        return {"loss": self.stats["loss_sum"] / self.stats["seen"], "acc": self.stats["correct"] / self.stats["seen"]}

    def validate(self, epoch: int) -> tuple[dict, dict]:
        logits = predict(self.model, self.logmel, self.val_ds, features=self.val_feats, **self.feature_kw)
        val_loss = float(F.cross_entropy(torch.from_numpy(logits), self.val_ds.targets))
        val_acc = float((logits.argmax(1) == self.val_ds.targets.numpy()).mean())
        seen = max(self.stats["seen"], 1)
        row = {"train_loss": self.stats["loss_sum"] / seen,
               "train_acc": self.stats["correct"] / seen,  # on augmented clips, resumed epochs count their part only
               "val_loss": val_loss, "val_acc": val_acc}
        metrics = {"val_acc": val_acc, "val_loss": val_loss}
        if self.cfg.select_fa_per_hour is not None:
            misses = validation_misses(logits, self.val_ds.targets.numpy(), self.labels, self.window / self.frontend.sample_rate,
                                       self.cfg.select_fa_per_hour)
            row["val_misses"] = metrics["val_misses"] = misses["mean"]
        return row, metrics

    def better(self, metrics: dict, best: dict | None) -> bool:
        if best is None:
            return True
        if "val_misses" in metrics and "val_misses" in best and metrics["val_misses"] != best["val_misses"]:
            return metrics["val_misses"] < best["val_misses"]
        return metrics["val_acc"] > best["val_acc"]

    def epoch_line(self, row: dict, improved: bool) -> str:
        misses = (f" misses {100 * row['val_misses']:.1f} % at {self.cfg.select_fa_per_hour:g} FA/h"
                  if "val_misses" in row else "")
        return (f"epoch {row['epoch']}/{self.cfg.epochs}: train loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} | "
                f"val loss {row['val_loss']:.3f} acc {row['val_acc']:.4f}{misses} | {row['seconds']:.0f} s")

    def finish(self) -> None:
        skipped = self.train_ds.bad_files + self.val_ds.bad_files + (self.test_ds.bad_files if self.test_ds is not None else [])
        _finish(self.out, self.model, self.logmel, self.val_ds, self.test_ds, self.labels, self.state.history,
                self.state.best, self.parameters, self.cfg, skipped, self.say, self.val_feats, self.test_feats,
                self.feature_kw)


def validation_misses(logits: np.ndarray, targets: np.ndarray, labels: list[str], window_seconds: float,
                      fa_per_hour: float) -> dict:
    """Clip-level misses at a rate of false alarms, the wake-word measure on a validation split.

    For each keyword label (not ``_unknown_``/``_silence_``) the clips of every other label are its negatives,
    each one window of ``window_seconds`` of audio; its threshold lets through ``floor(fa_per_hour x their hours)``
    of them (the highest scores), and its misses are the share of its own clips scoring at or under it. Returns
    {"mean": mean over the keywords, "by_label": {label: misses}, "thresholds": {label: threshold}}; a set with
    no keyword or no negatives gives mean 0 (nothing to miss, or nothing to set a threshold on).
    """
    post = softmax(logits, axis=1)
    by, thresholds = {}, {}
    for j, lab in enumerate(labels):
        pos, neg = post[targets == j, j], post[targets != j, j]
        if is_background_label(lab) or not len(pos) or not len(neg):
            continue
        allowed = int(math.floor(fa_per_hour * len(neg) * window_seconds / 3600.0 + 1e-9))
        ranked = np.sort(neg)[::-1]
        thr = float(ranked[allowed]) if allowed < len(ranked) else -math.inf
        by[lab], thresholds[lab] = float((pos <= thr).mean()), thr
    return {"mean": float(np.mean(list(by.values()))) if by else 0.0, "by_label": by, "thresholds": thresholds}


def _embed_sets(cfg, fe, frontend, train_ds, val_ds, test_ds, noise, say, show):
    """Features of the frozen speech embedding (or of a frozen student, ``StudentVectors``), computed once: ``feature_copies`` augmented copies of
    the training clips (waveform augmentations before the embedding, as they would be live), and the
    validation and test clips as they are. Returns (train (K, clips, frames, dim), val, test) tensors."""
    from hearkit.progress import Progress

    k = cfg.feature_copies
    what = getattr(frontend, "what", "speech embedding")
    gen = torch.Generator().manual_seed(cfg.seed * 7907 + 17)
    sets = [("val", val_ds), ("test", test_ds)]
    total = k * len(train_ds) + sum(len(d) for _, d in sets if d is not None)
    say(f"{what}: {k} augmented copies of {len(train_ds)} training clips and {total - k * len(train_ds)} "
        f"validation/test clips, embedded once ({getattr(frontend, 'per_window', None) or fe.num_frames(train_ds.window)} vectors each)")
    bar = Progress(total, "embedding clips", unit="clip") if show else None
    batch = 64

    align_rng = np.random.default_rng(cfg.seed * 7907 + 18)

    def embed(ds, augment: bool) -> torch.Tensor:
        out = []
        for s in range(0, len(ds), batch):
            wav = torch.stack([ds[i][0] for i in range(s, min(s + batch, len(ds)))])
            if cfg.align_end:
                tails = align_rng.uniform(*ALIGN_TAIL_S, len(wav)) if augment else np.full(len(wav), np.mean(ALIGN_TAIL_S))
                wav = torch.from_numpy(np.stack([end_aligned(w.numpy(), fe.sample_rate, t) for w, t in zip(wav, tails)]))
            if augment:
                wav = augment_waveform(wav, cfg.augment, fe.sample_rate, gen, noise)
            out.append(torch.from_numpy(frontend.features(wav.numpy())))
            if bar is not None:
                bar.update(len(wav))
        return torch.cat(out)

    key = _cache_key(cfg, fe, train_ds, val_ds, test_ds, noise, getattr(frontend, "cache_id", None))
    cached_file = Path(cfg.feature_cache) / f"embedding-{key}.pt" if cfg.feature_cache else None
    if cached_file is not None and cached_file.is_file():
        d = torch.load(cached_file, weights_only=True)
        say(f"{what}: reusing {cached_file}")
        return d["train"], d.get("val"), d.get("test")
    started = time.process_time()
    train = torch.stack([embed(train_ds, True) for _ in range(k)])
    val = embed(val_ds, False) if val_ds is not None else None
    test = embed(test_ds, False) if test_ds is not None and len(test_ds) else None
    if bar is not None:
        bar.close()
    say(f"{what}: {total} clips in {time.process_time() - started:.0f} CPU s")
    if cached_file is not None:
        from hearkit.files import atomic_path

        cached_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached_file) as tmp:
            torch.save({"train": train, "val": val, "test": test}, tmp)
        say(f"{what}: kept in {cached_file}")
    return train, val, test


class StudentVectors:
    """A frozen student's vectors for ``_embed_sets``: numpy waveforms (batch, samples) -> (batch, vectors, 96)."""

    what = "student vectors"  # for the log

    def __init__(self, logmel, model):
        import hashlib

        self.logmel, self.model = logmel, model
        self.per_window = model.hparams["vectors"]
        h = hashlib.sha256(json.dumps(model.student.config(), sort_keys=True).encode())
        for k, v in sorted(model.student.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
        self.cache_id = f"student {h.hexdigest()}"

    @torch.no_grad()
    def features(self, waveform: np.ndarray) -> np.ndarray:
        self.model.student.eval()
        return self.model.vectors(self.logmel(torch.from_numpy(np.ascontiguousarray(waveform, np.float32)))).numpy()


def load_student(path) -> dict:
    """A ``hearkit train distill`` checkpoint's student: {"model", "state_dict", "frontend", "val_cosine"}; one-line errors."""
    if not Path(path).is_file():
        raise ConfigError(f"--student {path}: no such file (give the best.pt of a `hearkit train distill` run)")
    ck = load_checkpoint(path)
    if ck.get("task") != "distill":
        raise ConfigError(f"--student {path}: a {ck.get('task')!r} checkpoint, not a distilled student (`hearkit train distill`)")
    best = ck.get("best") or {}
    return {"model": dict(ck["model"]), "state_dict": ck["state_dict"], "frontend": dict(ck["frontend"]),
            "val_cosine": float(best.get("val_cosine", float("nan")))}


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy against soft targets (smoothed, mixed); with ``class_weight``, each clip weighs
    as its target's mix of the class weights, and the mean is over those weights."""
    ce = -(target * F.log_softmax(logits, dim=1)).sum(dim=1)
    if class_weight is None:
        return ce.mean()
    w = target @ class_weight
    return (w * ce).sum() / w.sum()


def end_aligned(x: np.ndarray, sample_rate: int, tail_s: float) -> np.ndarray:
    """``x`` shifted so its utterance ends ``tail_s`` before the end; zeros fill in, and no sample of the
    utterance is cut. The utterance is the evaluation's extent (frames within 35 dB of the loudest),
    also ``ALIGN_FLOOR_DB`` above the clip's floor: a quiet synthetic voice over the set's -60 dBFS
    floor would otherwise span the whole clip and stay where it was (30 % of one set's clips)."""
    from hearkit.evaluate.detector import utterance_extent

    a, b = utterance_extent(x, sample_rate, above_floor_db=ALIGN_FLOOR_DB)
    d = int(np.clip(len(x) - int(round(tail_s * sample_rate)) - b, -a, len(x) - b))
    if d == 0:
        return x
    y = np.zeros_like(x)
    if d > 0:
        y[d:] = x[: len(x) - d]
    else:
        y[: len(x) + d] = x[-d:]
    return y


def _cache_key(cfg, fe, train_ds, val_ds, test_ds, noise, backbone: str | None = None) -> str:
    """sha256 (16 hex) of everything the embedded copies depend on (``backbone``: what else computes them,
    e.g. a student's weights)."""
    import hashlib

    h = hashlib.sha256()
    parts = [fe.to_json(), cfg.augment.to_dict(), cfg.feature_copies, cfg.seed, train_ds.window,
             (ALIGN_TAIL_S, ALIGN_FLOOR_DB) if cfg.align_end else None,
             len(noise) if noise is not None else 0]
    if backbone is not None:  # appended, so the speech embedding's keys (and caches) stay as they were
        parts.append(backbone)
    for ds in (train_ds, val_ds, test_ds):
        parts.append([] if ds is None else [(e.path, e.label) for e in ds.examples])
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    for ds in (train_ds, val_ds, test_ds):  # the audio itself, not only its names
        for c in ([] if ds is None else ds.clips):
            h.update(c.tobytes())
    return h.hexdigest()[:16]


def _finish(out, model, logmel, val_ds, test_ds, labels, history, best, n_params, cfg, skipped, say,
            val_feats=None, test_feats=None, feature_kw=None):
    """Evaluate best.pt on validation (and test) and write metrics.json and confusion.png."""
    ck = load_checkpoint(out / BEST)
    best_model = model_from_config(ck["model"])
    best_model.load_state_dict(ck["state_dict"])
    vt = val_ds.targets.numpy()
    rep = classification_report(vt, predict(best_model, logmel, val_ds, features=val_feats, **(feature_kw or {})).argmax(1), labels)
    metrics = {
        "model": best_model.config()["name"],
        "parameters": n_params,
        "labels": labels,
        "best_epoch": best["epoch"],
        "best_val_acc": best["val_acc"],
        **({"select_fa_per_hour": cfg.select_fa_per_hour, "best_val_misses": best["val_misses"]} if "val_misses" in best else {}),
        "val": rep,
        "val_clips": len(val_ds),
        "skipped_files": [{"path": p, "reason": r} for p, r in skipped],
        "history": history,
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
    }
    if test_ds is not None and len(test_ds):
        metrics["test"] = classification_report(test_ds.targets.numpy(),
                                                predict(best_model, logmel, test_ds, features=test_feats, **(feature_kw or {})).argmax(1), labels)
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    plot_confusion(rep["confusion"], labels, out / "confusion.png",
                   f"{best_model.config()['name']} — validation accuracy {rep['accuracy']:.1%} (epoch {best['epoch']})")
    chosen = (f" (chosen by misses at {cfg.select_fa_per_hour:g} FA/h: {100 * best['val_misses']:.1f} %)"
              if "val_misses" in best else "")
    say(f"best validation accuracy {best['val_acc']:.4f} at epoch {best['epoch']}{chosen}; wrote {out}")
