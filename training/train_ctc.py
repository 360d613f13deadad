"""Train a CTC speech recogniser on manifests: ``train_ctc(config) -> run_dir`` (``hearkit train ctc``).

Waveforms are loaded once into memory (an hour of 16 kHz float32 is 230 MB)
and the log-mel features are computed per batch by ``LogMel`` (torch.stft is a
few ms per 10 s), so waveform noise augmentation stays cheap. Batches are
length-bucketed (utterances of similar length together, capped by total audio
seconds) to waste little compute on padding. Validation runs one utterance at a
time, as the exported pipeline does, so its WER is the deployed model's; it
decodes with the runtime's greedy decoder (``hearkit.ctc``), as ``hearkit eval`` does.

One process, or several under ``torchrun`` (DDP with gloo on CPU, as
``hearkit train classify``): every rank takes its share of each epoch's
length buckets, only rank 0 validates and writes. The loop, schedule,
checkpoints, resume and progress are ``hearkit.training.loop``'s, the
augmentations ``hearkit.training.augment``'s, the alphabet ``hearkit.text``'s.

Run folder (``config.out``):
    last.pt      every ``checkpoint_every`` steps and every epoch (atomic), what ``resume`` continues from
    best.pt      lowest validation WER (ties: CER)
    averaged.pt  with ``average_last`` N >= 1: the mean of the last N epochs' weights, BatchNorm
                 statistics recomputed over the training set (weights of those epochs kept in
                 average/ as they finish, so a resumed run still averages all of them)
    history.jsonl one line per epoch: loss, WER, CER, lr, seconds
    metrics.json the best epoch, its WER and CER, the averaged weights' (if any), the history
    curves.png   loss and WER/CER per epoch
    config.json  the checkpoint's fields without the weights, the options under ``train``
    val_hyps.txt best.pt's validation transcripts (reference TAB hypothesis)

The defaults are the README's first connected-words command (ctc-conv-s, 60 epochs,
speed perturbation 0.9-1.1: 13.1 % greedy WER on the 0.25-h validation set).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from hearkit.asr_metrics import wer_cer
from hearkit.audio import load_audio
from hearkit.ctc import greedy_decode
from hearkit.errors import ConfigError
from hearkit.plots.curves import plot_curves
from hearkit.files import write_text
from hearkit.frontend import FrontendConfig
from hearkit.limits import check
from hearkit.manifest import read_dataset
from hearkit.text import BLANK_ID, VOCAB, encode
from hearkit.training.augment import (AugmentConfig, add_noise, band_limit, mel_centres_hz, random_gain, spec_augment,
                                      speed_perturb, vtlp)
from hearkit.training.checkpoint import load_checkpoint, save_checkpoint
from hearkit.training.ctc_models import PRESETS, model_config, model_from_config
from hearkit.training.models import count_parameters
from hearkit.training.frontend import LogMel
from hearkit.training.loop import DEFAULT_TRAIN_THREADS, LAST, RunLog, Trainer

DEFAULT_FRONTEND = FrontendConfig(n_mels=64)  # 25 ms window would be 400; 512 keeps the shared default FFT size
# the connected-words recipe's augmentation (the README's first CTC command)
DEFAULT_AUGMENT = AugmentConfig(speed=True, speed_range=(0.9, 1.1), time_shift=False, noise=True, noise_prob=0.5,
                                snr_db=(10.0, 40.0), gain=False, gain_clip=True, freq_masks=2, freq_mask_width=10,
                                time_masks=2, time_mask_fraction=0.05, mask_value="batch-mean")
WARMUP_FRACTION = 0.15  # share of the one-cycle schedule spent warming up


@dataclass(frozen=True)
class CTCTrainConfig:
    """Everything a CTC run depends on (saved as ``train_config`` in checkpoints and in config.json).

    Attributes:
        train_manifest: training set: a NeMo JSONL manifest, a folder with manifest.jsonl, or a
            LibriSpeech folder (``hearkit.manifest.read_dataset``).
        val_manifest: validation set (same forms).
        out: run folder.
        model: preset name (``ctc-conv-s|m|l``, ``ctc-crnn``) (Default: ctc-conv-s).
        epochs: passes over the training set (Default: 60, the README's first command).
        lr: peak learning rate of the one-cycle schedule (Default: 3e-3).
        weight_decay: AdamW weight decay (Default: 1e-3).
        batch_seconds: audio per batch, in seconds (Default: 32). Small data needs many steps:
            on 2 h of connected words ctc-conv-s was at 99 % WER after 7 epochs of 160-s batches
            (45 steps per epoch) and at 78 % after 6 epochs of 32-s batches (247 steps).
        max_batch: utterances per batch at most (Default: 16).
        clip: gradient-norm clipping (Default: 1.0).
        augment: the augmentation (Default: ``DEFAULT_AUGMENT``: speed 0.9-1.1, white noise on half
            the utterances at 10-40 dB SNR, SpecAugment 2 frequency masks of up to 10 bands and 2
            time masks of up to 5 % of the utterance, filled with the batch mean). Speed changes an
            utterance's length (60 epochs with it reached 13.1 % WER against 14.9 % for 64 without):
            unlike the classifier's fixed window, no word is cut off. ``gain_db`` with ``gain_clip``:
            the front-end has no level normalisation (docs/design.md §4), so a model trained without
            it follows the recording level (on connected words one 6 dB quieter validation set cost
            3.6 WER points). ``band_limit_prob`` low-passes utterances as an 8 kHz recording;
            ``vtlp`` moves formants without changing timing (``augment.vtlp``).
        seed: RNG seed (Default: 0).
        num_threads: torch intra-op and inter-op threads (Default: 1, ``loop.DEFAULT_TRAIN_THREADS``).
        rnn: override the RNN kind of ``ctc-crnn`` (gru | lstm) (Default: None = preset).
        model_overrides: constructor kwargs that replace the preset's (Default: none).
        average_last: average the weights of the last N epochs into ``averaged.pt``, BatchNorm
            recomputed (1: the last epoch's weights with BatchNorm recomputed; 0: off) (Default: 0).
        frontend: the log-mel front-end (Default: ``DEFAULT_FRONTEND``, 64 bands; ``--n-mels``
            replaces its bands).
        init: start from the weights of another CTC checkpoint (fine-tuning, e.g. a team's own
            speech on top of a generic model): its architecture and front-end are used, optimizer
            and schedule start fresh (Default: None).
        resume: continue ``out/last.pt`` (model, optimizer, schedule, RNG, epoch and step); the
            saved options win except ``epochs``, ``average_last`` and ``RUN_PLACE`` (Default: False).
        checkpoint_every: also save ``last.pt`` every this many steps inside an epoch (Default: 50;
            0 = epoch ends only).
        progress: show progress: a bar on a terminal, a line per ~10 % of the run in a log (Default: True).
        quiet: warnings and the result only: no progress, no line per epoch (Default: False).
    """

    train_manifest: str
    val_manifest: str
    out: str
    model: str = "ctc-conv-s"
    epochs: int = 60
    lr: float = 3e-3
    weight_decay: float = 1e-3
    batch_seconds: float = 32.0
    max_batch: int = 16
    clip: float = 1.0
    augment: AugmentConfig = field(default_factory=lambda: DEFAULT_AUGMENT)
    seed: int = 0
    num_threads: int = DEFAULT_TRAIN_THREADS
    rnn: str | None = None
    model_overrides: dict = field(default_factory=dict)
    average_last: int = 0
    frontend: FrontendConfig = field(default_factory=lambda: DEFAULT_FRONTEND)
    init: str | None = None
    resume: bool = False
    checkpoint_every: int = 50
    progress: bool = True
    quiet: bool = False

    def __post_init__(self):
        def fail(msg):
            raise ConfigError(f"invalid CTC training config: {msg}")

        for name in ("train_manifest", "val_manifest", "out", "init"):  # paths may come as Path objects
            if getattr(self, name) is not None:
                object.__setattr__(self, name, os.fspath(getattr(self, name)))

        if not isinstance(self.augment, AugmentConfig) or not isinstance(self.frontend, FrontendConfig):
            fail(f"augment and frontend must be an AugmentConfig and a FrontendConfig, got {type(self.augment).__name__} "
                 f"and {type(self.frontend).__name__}")
        if self.model not in PRESETS:
            fail(f"unknown model {self.model!r}; available models = {sorted(PRESETS)}")
        # the Python API gets the CLI's limits (docs/design.md §13): torch segfaulted at 100000 threads
        for name, limit in (("num_threads", "threads"), ("epochs", "epochs"), ("max_batch", "batch_size"),
                            ("seed", "seed"), ("lr", "lr"), ("batch_seconds", "seconds"), ("clip", "grad_clip")):
            try:
                object.__setattr__(self, name, check(limit, getattr(self, name), name))
            except ConfigError as e:
                fail(str(e))
        if self.epochs < 1 or self.max_batch < 1 or not self.batch_seconds > 0:
            fail(f"need epochs >= 1, max_batch >= 1 and batch_seconds > 0, got {self.epochs}, {self.max_batch}, "
                 f"{self.batch_seconds}")
        if not self.lr > 0:
            fail(f"lr must be > 0, got {self.lr}")
        if self.checkpoint_every < 0 or self.average_last < 0:
            fail(f"checkpoint_every and average_last must be >= 0, got {self.checkpoint_every} and {self.average_last}")

    def to_dict(self) -> dict:
        """JSON-able: the augmentation and front-end as their dicts."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["augment"] = json.loads(json.dumps(self.augment.to_dict()))  # tuples as lists
        d["frontend"] = self.frontend.to_dict()
        d["model_overrides"] = dict(self.model_overrides)
        return d

    def resumed(self, saved: dict) -> "CTCTrainConfig":
        """This config with the options of the run it resumes (``saved``: its ``train_config``).

        A run saved before the one ``augment`` (flat ``noise_prob``, ``freq_width``, ... fields)
        resumes with the augmentation given now."""
        keep = {f.name for f in dataclasses.fields(self)} - RUN_PLACE
        old = {k: v for k, v in saved.items() if k in keep}
        if isinstance(old.get("augment"), dict):
            old["augment"] = AugmentConfig(**old["augment"])
        else:
            old.pop("augment", None)
        return dataclasses.replace(self, **old)


# What a resumed run takes from the new command rather than from the saved run: where the data
# and the run are, how long it goes on, and how it runs here (threads, progress).
RUN_PLACE = frozenset({"train_manifest", "val_manifest", "out", "init", "resume", "frontend", "epochs", "average_last",
                       "num_threads", "checkpoint_every", "progress", "quiet"})


class SpeechSet:
    """Utterances of a manifest held in memory: waveforms (float32, model rate) and label ids."""

    def __init__(self, path, sample_rate: int, log=print):
        m = read_dataset(path)
        log(m.report())
        self.waves, self.labels, self.texts = [], [], []
        empty = 0
        for u in m:
            if not u.text:
                empty += 1
                continue
            x, _ = load_audio(u.audio, sample_rate)
            self.waves.append(x)
            self.labels.append(encode(u.text))
            self.texts.append(u.text)
        if empty:
            log(f"{m.source}: {empty} utterances with empty text after normalisation left out")
        if not self.waves:
            raise ConfigError(f"{m.source}: no usable utterances")
        self.seconds = sum(len(w) for w in self.waves) / sample_rate

    def __len__(self):
        return len(self.waves)


def make_batches(lengths, batch_samples: int, max_batch: int, rng: random.Random | None) -> list[list[int]]:
    """Length buckets: indices sorted by length, cut where padded size exceeds ``batch_samples``; shuffled if rng."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if rng is not None:
        # Jitter the sort a little so batches differ between epochs.
        order = sorted(order, key=lambda i: lengths[i] * (1 + 0.1 * rng.random()))
    batches, cur, longest = [], [], 0
    for i in order:
        longest2 = max(longest, lengths[i])
        if cur and (longest2 * (len(cur) + 1) > batch_samples or len(cur) >= max_batch):
            batches.append(cur)
            cur, longest2 = [], lengths[i]
        cur.append(i)
        longest = longest2
    if cur:
        batches.append(cur)
    if rng is not None:
        rng.shuffle(batches)
    return batches



def collate(ds: SpeechSet, idx, fe: FrontendConfig, speed_range=None, gen: torch.Generator | None = None):
    """Pad a batch: (waves (B, S), feature lengths (B,), targets (sum L,), target lengths (B,)).

    With ``speed_range`` each utterance is first played at a random speed from it (``gen`` draws;
    ``augment.speed_perturb`` with ``keep_length=False``: the utterance changes length).
    """
    waves = [ds.waves[i] for i in idx]
    if speed_range is not None:
        waves = speed_perturb(waves, speed_range, gen, keep_length=False)
    n = max(len(x) for x in waves)
    n = max(n, fe.n_fft)
    w = torch.zeros(len(idx), n)
    for j, x in enumerate(waves):
        w[j, : len(x)] = torch.from_numpy(x)
    flen = torch.tensor([fe.num_frames(max(len(x), fe.n_fft)) for x in waves])
    tl = torch.tensor([len(ds.labels[i]) for i in idx])
    tg = torch.tensor([t for i in idx for t in ds.labels[i]], dtype=torch.long)
    return w, flen, tg, tl


@torch.no_grad()
def evaluate(model, frontend: LogMel, ds: SpeechSet, fe: FrontendConfig):
    """Greedy WER, CER and the hypotheses on a whole set (eval mode), one utterance at a time.

    One at a time because that is how the exported pipeline and ``hearkit verify`` run them: in a
    padded batch the last ~2 s (the receptive field) of a shorter utterance see the log-mel of the
    padding instead of the convolutions' zero padding, and the WER moves (batched 9.67 %, one at a
    time 9.95 % for the same connected-words checkpoint). It costs ~2 s per 0.25 h on one core.
    Decoded by ``hearkit.ctc.greedy_decode``, the runtime's decoder.
    """
    model.eval()
    hyps = [""] * len(ds)
    for i in range(len(ds)):
        w, flen, _, _ = collate(ds, [i], fe)
        frames = int(model.output_lengths(flen)[0])
        hyps[i] = greedy_decode(model(frontend(w))[0, :frames].numpy(), VOCAB, BLANK_ID).text
    wer, cer = wer_cer(ds.texts, hyps)
    return wer, cer, hyps


def recompute_bn_stats(model, frontend: LogMel, ds: SpeechSet, fe: FrontendConfig, batch_samples: int,
                       max_batch: int) -> None:
    """Set every BatchNorm's running mean/variance to the plain average over ``ds`` (no augmentation).

    During training they are an exponential average (momentum 0.1) of the last ~10 batches, with their
    noise, speed and SpecAugment draws. On connected words that alone moved greedy WER by up to 2 points
    between epochs at a learning rate near zero (10.9 -> 13.2 %); recomputed, the same weights gave
    11.2-11.6 %. Averaged weights need it anyway: their activations match no epoch's statistics.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.train()
    with torch.no_grad():
        for idx in make_batches([len(w) for w in ds.waves], batch_samples, max_batch, None):
            w, _, _, _ = collate(ds, idx, fe)
            model(frontend(w))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.eval()


def average_state_dicts(states: list[dict]) -> dict:
    """Element-wise mean of floating-point tensors; integer buffers (BatchNorm batch counts) from the last."""
    out = {}
    for k, v in states[-1].items():
        if v.is_floating_point():
            out[k] = sum(s[k].double() for s in states).div(len(states)).to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def train_ctc(config: CTCTrainConfig, log: Callable[[str], object] | None = None) -> Path:
    """Train, validating every epoch, and write the run folder (``config.out``); returns its path.

    Args:
        config: the run (see ``CTCTrainConfig``; the module docstring lists the run folder).
        log: callable for the run's lines (Default: None = ``hearkit: ...`` on stderr).
    """
    return CTCTrainer(config, log).run()


class CTCTrainer(Trainer):
    """``loop.Trainer``'s hooks for CTC: length-bucketed utterances, CTC loss, greedy WER and CER."""

    task = "ctc"
    warmup_fraction = WARMUP_FRACTION

    def __init__(self, cfg: CTCTrainConfig, log=None):
        super().__init__(cfg, log)
        if self.resume_from is not None:
            self.cfg = cfg.resumed(self.resume_from["train_config"])

    def build(self) -> None:
        cfg, ckpt, say = self.cfg, self.resume_from, self.say
        self.grad_clip = cfg.clip
        fe = FrontendConfig.from_dict(ckpt["frontend"]) if ckpt else cfg.frontend
        overrides = dict(cfg.model_overrides)
        if cfg.rnn:
            overrides["rnn"] = cfg.rnn
        init_ckpt = None
        if cfg.init is not None and not ckpt:
            init_ckpt = load_checkpoint(cfg.init)
            if init_ckpt.get("task") != "ctc" or list(init_ckpt.get("vocab", [])) != list(VOCAB):
                raise ConfigError(f"--init {cfg.init}: not a CTC checkpoint with this vocabulary")
            fe = FrontendConfig.from_dict(init_ckpt["frontend"])
        mcfg = ckpt["model"] if ckpt else (init_ckpt["model"] if init_ckpt else model_config(cfg.model, **overrides))
        model = model_from_config(mcfg, fe.n_mels, len(VOCAB))
        if init_ckpt:
            model.load_state_dict(init_ckpt["state_dict"])
            say(f"initialised from {cfg.init} (epoch {init_ckpt.get('epoch')}, val WER {init_ckpt.get('metrics', {}).get('val_wer')})")
        self.model, self.model_config, self.frontend = model, mcfg, fe
        say(f"model {mcfg['name']}: {count_parameters(model):,} parameters, subsampling {model.subsampling}")
        train = self.train = SpeechSet(cfg.train_manifest, fe.sample_rate, say)
        val = self.val = SpeechSet(cfg.val_manifest, fe.sample_rate, say)
        say(f"train: {len(train)} utterances, {train.seconds / 3600:.2f} h; val: {len(val)} utterances, {val.seconds / 3600:.2f} h")
        # CTC needs at least one output frame per label (plus one blank between repeated labels).
        out_frames = model.output_lengths(torch.tensor([fe.num_frames(max(len(w), fe.n_fft)) for w in train.waves]))
        need = torch.tensor([len(l) + sum(a == b for a, b in zip(l, l[1:])) for l in train.labels])
        bad = int((out_frames < need).sum())
        if bad:
            say.warn(f"{bad} training utterances are too short for their transcripts at subsampling "
                     f"{model.subsampling}; CTC ignores them (zero_infinity)")
        self.logmel = LogMel(fe)
        self.batch_samples = int(cfg.batch_seconds * fe.sample_rate)
        self.lengths = [len(w) for w in train.waves]
        # every rank steps the same number of times per epoch (DDP all-reduces each step)
        self.steps_per_epoch = max(1, len(make_batches(self.lengths, self.batch_samples, cfg.max_batch, None)) // self.dist.world)
        self.train_config = {**cfg.to_dict(), "frontend": fe.to_dict(),
                             "train_manifest": str(Path(cfg.train_manifest).resolve()),
                             "val_manifest": str(Path(cfg.val_manifest).resolve()),
                             "init": str(Path(cfg.init).resolve()) if cfg.init else None}
        self.mel_hz = mel_centres_hz(fe)
        self.ctc = nn.CTCLoss(blank=BLANK_ID, zero_infinity=True)
        self.stats = {"tot": 0.0, "n": 0}

    def checkpoint_fields(self) -> dict:
        return {"vocab": list(VOCAB), "blank": BLANK_ID, "subsampling": self.model.subsampling}

    def batches(self, epoch: int):
        cfg, dist = self.cfg, self.dist
        self.model.train()
        self.stats.update(tot=0.0, n=0)
        batches = make_batches(self.lengths, self.batch_samples, cfg.max_batch, random.Random(cfg.seed * 7919 + epoch + 1))
        return batches[dist.rank :: dist.world][: self.steps_per_epoch]  # same order on every rank (same seed), one share each

    def loss(self, idx) -> torch.Tensor:
        aug, gen, fe = self.cfg.augment, self.gen, self.frontend
        w, flen, tg, tl = collate(self.train, idx, fe, aug.speed_range if aug.speed else None, gen)
        if aug.band_limit_prob > 0:
            w = band_limit(w, aug.band_limit_prob, aug.band_limit_hz, fe.sample_rate, gen)
        if aug.noise:
            w = add_noise(w, aug.noise_prob, aug.snr_db, gen)  # white noise (no bank)
        if aug.gain:
            w = random_gain(w, aug.gain_db, gen, clip=aug.gain_clip)
        with torch.no_grad():
            feats = self.logmel(w)
            if aug.vtlp is not None:
                feats = vtlp(feats, aug.vtlp, self.mel_hz, gen)
            if aug.spec_augment:
                feats = spec_augment(feats, aug, gen, lengths=flen)
        lp = self.net(feats)
        loss = self.ctc(lp.transpose(0, 1), tg, self.model.output_lengths(flen), tl)
        if math.isfinite(loss.item()):
            self.stats["tot"] += loss.item()
            self.stats["n"] += 1
        return loss

    def shown(self) -> dict:
        return {"loss": self.stats["tot"] / max(1, self.stats["n"])}

    def validate(self, epoch: int) -> tuple[dict, dict]:
        wer, cer, self.hyps = evaluate(self.model, self.logmel, self.val, self.frontend)
        return ({"train_loss": self.stats["tot"] / max(1, self.stats["n"]), "val_wer": wer, "val_cer": cer},
                {"val_wer": wer, "val_cer": cer})

    def better(self, metrics: dict, best: dict | None) -> bool:
        return best is None or (metrics["val_wer"], metrics["val_cer"]) < (best["val_wer"], best["val_cer"])

    def epoch_line(self, row: dict, improved: bool) -> str:
        return (f"epoch {row['epoch']}/{self.cfg.epochs}: loss {row['train_loss']:.3f}  val WER {100 * row['val_wer']:.2f} %  "
                f"CER {100 * row['val_cer']:.2f} %  ({row['seconds']:.0f} s){'  *best' if improved else ''}")

    def after_epoch(self, epoch: int, ckpt: dict, improved: bool) -> None:
        e, run_dir = epoch + 1, self.out
        # the whole history each time: a run resumed from a mid-epoch last.pt never repeats a line
        write_text(run_dir / "history.jsonl", "".join(json.dumps(h) + "\n" for h in self.state.history))
        if self.cfg.average_last >= 1 and e > self.cfg.epochs - self.cfg.average_last:
            save_checkpoint({k: ckpt[k] for k in _AVERAGE_KEYS}, run_dir / "average" / f"epoch{e:03d}.pt")
        if improved:
            write_text(run_dir / "val_hyps.txt", "".join(f"{r}\t{h}\n" for r, h in zip(self.val.texts, self.hyps)))
        plot_curves(self.state.history, run_dir / "curves.png", [
            {"title": "training loss", "ylabel": "CTC loss", "lines": [("training", "train_loss", 1.0)]},
            {"title": "validation (greedy)", "ylabel": "%", "lines": [("WER", "val_wer", 100.0), ("CER", "val_cer", 100.0)]},
        ], best_epoch=(self.state.best or {}).get("epoch"))

    def finish(self) -> None:
        cfg, best = self.cfg, self.state.best or {}
        metrics = {"model": self.model_config["name"], "parameters": self.parameters, "best_epoch": best.get("epoch"),
                   "best_val_wer": best.get("val_wer"), "best_val_cer": best.get("val_cer"),
                   "history": self.state.history, "train_seconds": round(sum(h["seconds"] for h in self.state.history), 1)}
        if cfg.average_last >= 1:
            averaged = _write_average(self.out, cfg, self.model, self.logmel, self.train, self.val, self.frontend,
                                      self.batch_samples, self.say)
            if averaged:
                metrics["averaged"] = averaged
        write_text(self.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        if best:
            self.say(f"best validation WER {100 * best['val_wer']:.2f} % (CER {100 * best['val_cer']:.2f} %) at epoch "
                     f"{best['epoch']}; wrote {self.out}")


# what average/epochNNN.pt keeps: enough to rebuild and export the network, no optimizer state
_AVERAGE_KEYS = ("task", "model", "frontend", "vocab", "blank", "subsampling", "state_dict", "epoch")
# what averaged.pt leaves out of last.pt: it is a model to export, not a run to resume
_NOT_AVERAGED = ("format", "version", "optimizer", "scheduler", "planned_steps", "rng", "step_in_epoch")


def _write_average(run_dir: Path, cfg: CTCTrainConfig, model, frontend_mod, train: SpeechSet, val: SpeechSet,
                   fe: FrontendConfig, batch_samples: int, say: RunLog) -> dict | None:
    """Average the last ``cfg.average_last`` epochs' weights, recompute BatchNorm, validate, write averaged.pt."""
    epochs = range(max(1, cfg.epochs - cfg.average_last + 1), cfg.epochs + 1)
    files = [run_dir / "average" / f"epoch{e:03d}.pt" for e in epochs]
    files = [f for f in files if f.is_file()]
    if not files:
        say.warn(f"--average-last {cfg.average_last}: no weights of epochs {epochs.start}-{epochs.stop - 1} in "
                 f"{run_dir / 'average'}; averaged.pt not written")
        return None
    ckpts = [load_checkpoint(f) for f in files]
    model.load_state_dict(average_state_dicts([c["state_dict"] for c in ckpts]))
    recompute_bn_stats(model, frontend_mod, train, fe, batch_samples, cfg.max_batch)
    wer, cer, hyps = evaluate(model, frontend_mod, val, fe)
    first, last = ckpts[0]["epoch"], ckpts[-1]["epoch"]
    metrics = {"val_wer": wer, "val_cer": cer, "epoch": last, "parameters": count_parameters(model),
               "averaged_epochs": [c["epoch"] for c in ckpts]}
    base = load_checkpoint(run_dir / LAST)
    state = {k: v for k, v in base.items() if k not in _NOT_AVERAGED}
    save_checkpoint({**state, "state_dict": model.state_dict(), "metrics": metrics}, run_dir / "averaged.pt")
    write_text(run_dir / "averaged_val_hyps.txt", "".join(f"{r}\t{h}\n" for r, h in zip(val.texts, hyps)))
    say(f"averaged epochs {first}-{last} ({len(ckpts)}), BatchNorm recomputed on the training set: "
        f"val WER {100 * wer:.2f} %  CER {100 * cer:.2f} %  -> {run_dir / 'averaged.pt'}")
    return metrics
