"""Train a CTC speech recogniser on manifests: ``hearkit train ctc``.

Waveforms are loaded once into memory (an hour of 16 kHz float32 is 230 MB)
and the log-mel features are computed per batch by ``LogMel`` (torch.stft is a
few ms per 10 s), so waveform noise augmentation stays cheap. Batches are
length-bucketed (utterances of similar length together, capped by total audio
seconds) to waste little compute on padding. Validation runs one utterance at a
time, as the exported pipeline does, so its WER is the deployed model's.

One process, or several under ``torchrun`` (DDP with gloo on CPU, as
``hearkit train classify``): every rank takes its share of each epoch's
length buckets, only rank 0 validates and writes.

Run folder:
    last.pt      every epoch (atomic), what ``--resume`` continues from
    best.pt      lowest validation WER (ties: CER)
    averaged.pt  with ``average_last`` N >= 1: the mean of the last N epochs' weights, BatchNorm
                 statistics recomputed over the training set (weights of those epochs kept in
                 average/ as they finish, so a resumed run still averages all of them)
    history.jsonl one line per epoch: loss, WER, CER, lr, seconds
    curves.png   loss and WER/CER per epoch
    config.json  the options of the run
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hearkit.asr_metrics import wer_cer
from hearkit.audio import load_audio
from hearkit.errors import ConfigError
from hearkit.frontend import FrontendConfig
from hearkit.manifest import BLANK_ID, VOCAB, encode, read_dataset
from hearkit.training.augment import band_limit, mel_centres_hz, random_gain, vtlp
from hearkit.training.checkpoint import load_checkpoint, save_checkpoint
from hearkit.training.ctc_models import build_model, count_params, model_config
from hearkit.training.frontend import LogMel

DEFAULT_FRONTEND = FrontendConfig(n_mels=64)  # 25 ms window would be 400; 512 keeps the shared default FFT size


@dataclass(frozen=True)
class CTCTrainConfig:
    """Options of ``hearkit train ctc`` (stored in the checkpoint as ``train_config``).

    Attributes:
        model: preset name (``ctc-conv-s|m|l``, ``ctc-crnn``) (Default: ctc-conv-s).
        epochs: passes over the training set (Default: 30).
        lr: peak learning rate of the one-cycle schedule (Default: 3e-3).
        weight_decay: AdamW weight decay (Default: 1e-3).
        batch_seconds: audio per batch, in seconds (Default: 32). Small data needs many steps:
            on 2 h of connected words ctc-conv-s was at 99 % WER after 7 epochs of 160-s batches
            (45 steps per epoch) and at 78 % after 6 epochs of 32-s batches (247 steps).
        max_batch: utterances per batch at most (Default: 16).
        clip: gradient-norm clipping (Default: 1.0).
        noise_prob: share of utterances given white noise (Default: 0.5).
        snr_db: SNR range of that noise in dB (Default: (10, 40)).
        freq_masks, freq_width: SpecAugment frequency masks and their max width in bands (Default: 2, 10).
        time_masks, time_width: time masks and their max width as a fraction of the utterance (Default: 2, 0.05).
        seed: RNG seed (Default: 0).
        threads: torch intra-op threads (Default: 1).
        rnn: override the RNN kind of ``ctc-crnn`` (gru | lstm) (Default: None = preset).
        n_mels: log-mel bands (Default: 64).
        speed_range: (low, high) speed factors drawn per utterance, or None for off (Default: None).
            Unlike the classifier's fixed-window speed augmentation, the utterance changes
            length (a 1.1x utterance is 1/1.1 as long), so no word is cut off.
        vtlp: (low, high) vocal tract length perturbation factors drawn per utterance, or None for
            off (Default: None). Moves formants without changing timing (see ``augment.vtlp``).
        lowpass_prob: share of utterances low-passed at ``lowpass_hz`` (Default: 0.0).
        lowpass_hz: cut-off of that low-pass (Default: 4000, an 8 kHz recording's band).
        gain_db: (low, high) gain in dB drawn per utterance after the noise, the result clipped to
            [-1, 1] as a 16-bit recording would be, or None for off (Default: None). The front-end
            has no level normalisation (docs/design.md §4), so a model trained without it follows the
            recording level: on connected words one 6 dB quieter validation set cost 3.6 WER points.
        average_last: average the weights of the last N epochs into ``averaged.pt``, BatchNorm
            recomputed (1: the last epoch's weights with BatchNorm recomputed; 0: off) (Default: 0).
    """

    model: str = "ctc-conv-s"
    epochs: int = 30
    lr: float = 3e-3
    weight_decay: float = 1e-3
    batch_seconds: float = 32.0
    max_batch: int = 16
    clip: float = 1.0
    noise_prob: float = 0.5
    snr_db: tuple = (10.0, 40.0)
    freq_masks: int = 2
    freq_width: int = 10
    time_masks: int = 2
    time_width: float = 0.05
    seed: int = 0
    threads: int = 1
    rnn: str | None = None
    n_mels: int = 64
    model_overrides: dict = field(default_factory=dict)
    speed_range: tuple | None = None
    average_last: int = 0
    vtlp: tuple | None = None
    lowpass_prob: float = 0.0
    lowpass_hz: float = 4000.0
    gain_db: tuple | None = None


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


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (pitch and tempo together, as sox ``speed``); length / factor.

    Linear interpolation (np.interp) instead of a polyphase resampler: for factors near 1
    its imaging stays far below speech content, and it costs ~2 ms per 10 s utterance
    (2.06 ms, timeit on this 2-core x86 machine, factor 1.1).
    """
    n_out = max(1, int(round(len(x) / factor)))
    return np.interp(np.arange(n_out) * factor, np.arange(len(x)), x).astype(np.float32)


def collate(ds: SpeechSet, idx, fe: FrontendConfig, speed_range=None, gen: torch.Generator | None = None):
    """Pad a batch: (waves (B, S), feature lengths (B,), targets (sum L,), target lengths (B,)).

    With ``speed_range`` each utterance is first played at a random speed from it (``gen`` draws).
    """
    waves = [ds.waves[i] for i in idx]
    if speed_range is not None:
        lo, hi = speed_range
        factors = lo + (hi - lo) * torch.rand(len(idx), generator=gen)
        waves = [change_speed(x, float(f)) for x, f in zip(waves, factors)]
    n = max(len(x) for x in waves)
    n = max(n, fe.n_fft)
    w = torch.zeros(len(idx), n)
    for j, x in enumerate(waves):
        w[j, : len(x)] = torch.from_numpy(x)
    flen = torch.tensor([fe.num_frames(max(len(x), fe.n_fft)) for x in waves])
    tl = torch.tensor([len(ds.labels[i]) for i in idx])
    tg = torch.tensor([t for i in idx for t in ds.labels[i]], dtype=torch.long)
    return w, flen, tg, tl


def add_noise(w: torch.Tensor, prob: float, snr_db, gen: torch.Generator) -> torch.Tensor:
    """White noise at a random SNR (dB, uniform in ``snr_db``) on a random share ``prob`` of the batch."""
    b = w.shape[0]
    pick = torch.rand(b, generator=gen) < prob
    if not pick.any():
        return w
    power = w.square().mean(dim=1).clamp_min(1e-10)
    snr = snr_db[0] + (snr_db[1] - snr_db[0]) * torch.rand(b, generator=gen)
    scale = torch.sqrt(power / 10 ** (snr / 10)) * pick
    return w + torch.randn(w.shape, generator=gen) * scale[:, None]


def spec_augment(f: torch.Tensor, lengths: torch.Tensor, cfg: CTCTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """SpecAugment (frequency and time masks) on (B, T, M) features; masked cells get the batch mean."""
    f = f.clone()
    fill = f.mean()
    b, t, m = f.shape
    for j in range(b):
        for _ in range(cfg.freq_masks):
            wdt = int(torch.randint(0, cfg.freq_width + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, m - wdt), (1,), generator=gen))
            f[j, :, s : s + wdt] = fill
        tmax = max(1, int(cfg.time_width * int(lengths[j])))
        for _ in range(cfg.time_masks):
            wdt = int(torch.randint(0, tmax + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, int(lengths[j]) - wdt), (1,), generator=gen))
            f[j, s : s + wdt, :] = fill
    return f


def greedy_texts(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Best-path decoding: argmax per frame, merge repeats, drop blanks."""
    best = log_probs.argmax(-1)
    out = []
    for j in range(best.shape[0]):
        seq = best[j, : int(lengths[j])].tolist()
        chars, prev = [], None
        for s in seq:
            if s != prev and s != BLANK_ID:
                chars.append(VOCAB[s])
            prev = s
        out.append(" ".join("".join(chars).split()))
    return out


@torch.no_grad()
def evaluate(model, frontend: LogMel, ds: SpeechSet, fe: FrontendConfig):
    """Greedy WER, CER and the hypotheses on a whole set (eval mode), one utterance at a time.

    One at a time because that is how the exported pipeline and ``hearkit verify`` run them: in a
    padded batch the last ~2 s (the receptive field) of a shorter utterance see the log-mel of the
    padding instead of the convolutions' zero padding, and the WER moves (batched 9.67 %, one at a
    time 9.95 % for the same connected-words checkpoint). It costs ~2 s per 0.25 h on one core.
    """
    model.eval()
    hyps = [""] * len(ds)
    for i in range(len(ds)):
        w, flen, _, _ = collate(ds, [i], fe)
        hyps[i] = greedy_texts(model(frontend(w)), model.output_lengths(flen))[0]
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


def _plot(history, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(ep, [h["train_loss"] for h in history])
    ax[0].set(xlabel="epoch", ylabel="CTC loss", title="training loss")
    ax[1].plot(ep, [100 * h["val_wer"] for h in history], label="WER")
    ax[1].plot(ep, [100 * h["val_cer"] for h in history], label="CER")
    ax[1].set(xlabel="epoch", ylabel="%", title="validation (greedy)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train_ctc(train_manifest, val_manifest, run_dir, cfg: CTCTrainConfig = CTCTrainConfig(), resume: bool = False,
              frontend: FrontendConfig | None = None, log=print, init: str | os.PathLike | None = None) -> dict:
    """Train, validating every epoch; returns the best metrics. See module docstring for the run folder.

    Args:
        train_manifest, val_manifest: manifests (see ``hearkit.manifest.read_dataset``).
        run_dir: output folder.
        cfg: training options.
        resume: continue ``run_dir/last.pt`` (model, optimizer, schedule, epoch).
        frontend: front-end config (Default: ``DEFAULT_FRONTEND`` with ``cfg.n_mels``).
        log: callable for progress lines.
        init: start from the weights of another CTC checkpoint (fine-tuning, e.g. a
            team's own speech on top of a generic model): its architecture and
            front-end are used, optimizer and schedule start fresh.
    """
    from tqdm import tqdm

    from hearkit.training.train_classify import _dist_env

    rank, world = _dist_env()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    main = rank == 0
    if not main:
        log = lambda *_: None  # noqa: E731 - only rank 0 reports
    torch.set_num_threads(cfg.threads)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fe = frontend or DEFAULT_FRONTEND.replace(n_mels=cfg.n_mels)
    ckpt = None
    if resume:
        last = run_dir / "last.pt"
        if not last.is_file():
            raise ConfigError(f"--resume: {last} does not exist")
        ckpt = load_checkpoint(last)
        fe = FrontendConfig.from_dict(ckpt["frontend"])
        known = set(asdict(cfg))
        saved = {k: (tuple(v) if isinstance(v, list) else v) for k, v in ckpt["train_config"].items() if k in known}
        cfg = CTCTrainConfig(**{**asdict(cfg), **saved, "epochs": cfg.epochs, "average_last": cfg.average_last})
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    overrides = dict(cfg.model_overrides)
    if cfg.rnn:
        overrides["rnn"] = cfg.rnn
    init_ckpt = None
    if init is not None and not ckpt:
        init_ckpt = load_checkpoint(init)
        if init_ckpt.get("task") != "ctc" or list(init_ckpt.get("vocab", [])) != list(VOCAB):
            raise ConfigError(f"--init {init}: not a CTC checkpoint with this vocabulary")
        fe = FrontendConfig.from_dict(init_ckpt["frontend"])
    mcfg = ckpt["model"] if ckpt else (init_ckpt["model"] if init_ckpt else model_config(cfg.model, **overrides))
    model = build_model(mcfg, fe.n_mels, len(VOCAB))
    if init_ckpt:
        model.load_state_dict(init_ckpt["state_dict"])
        log(f"initialised from {init} (epoch {init_ckpt.get('epoch')}, val WER {init_ckpt.get('metrics', {}).get('val_wer')})")
    log(f"model {mcfg['name']}: {count_params(model):,} parameters, subsampling {model.subsampling}")
    train = SpeechSet(train_manifest, fe.sample_rate, log)
    val = SpeechSet(val_manifest, fe.sample_rate, log)
    log(f"train: {len(train)} utterances, {train.seconds / 3600:.2f} h; val: {len(val)} utterances, {val.seconds / 3600:.2f} h")
    # CTC needs at least one output frame per label (plus one blank between repeated labels).
    out_frames = model.output_lengths(torch.tensor([fe.num_frames(max(len(w), fe.n_fft)) for w in train.waves]))
    need = torch.tensor([len(l) + sum(a == b for a, b in zip(l, l[1:])) for l in train.labels])
    bad = int((out_frames < need).sum())
    if bad:
        log(f"warning: {bad} training utterances are too short for their transcripts at subsampling "
            f"{model.subsampling}; CTC ignores them (zero_infinity)")
    frontend_mod = LogMel(fe)
    batch_samples = int(cfg.batch_seconds * fe.sample_rate)
    lengths = [len(w) for w in train.waves]
    # every rank steps the same number of times per epoch (DDP all-reduces each step)
    steps_per_epoch = max(1, len(make_batches(lengths, batch_samples, cfg.max_batch, None)) // world)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, cfg.epochs * steps_per_epoch),
                                                pct_start=0.15, anneal_strategy="cos")
    ctc = nn.CTCLoss(blank=BLANK_ID, zero_infinity=True)
    start_epoch, step, history, best = 0, 0, [], None
    if ckpt:
        model.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, step = ckpt["epoch"], ckpt["step"]
        if ckpt["train_config"].get("epochs") == cfg.epochs:
            sched.load_state_dict(ckpt["scheduler"])
        else:  # more (or fewer) epochs than planned: a one-cycle schedule over the new total, continued at `step`
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=cfg.lr, total_steps=max(step + 1, cfg.epochs * steps_per_epoch), pct_start=0.15,
                anneal_strategy="cos", last_epoch=step - 1)
        history = json.loads(ckpt.get("history_json", "[]"))
        best = ckpt.get("best")
        log(f"resumed from {run_dir / 'last.pt'} after epoch {start_epoch}")
    (run_dir / "config.json").write_text(json.dumps({"train": asdict(cfg), "model": mcfg, "frontend": fe.to_dict(),
                                                     "init": str(init) if init else None,
                                                     "train_manifest": str(train_manifest),
                                                     "val_manifest": str(val_manifest)}, indent=1) + "\n")
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * start_epoch + 7 * rank)
    mel_hz = mel_centres_hz(fe)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        t0 = time.time()
        model.train()
        batches = make_batches(lengths, batch_samples, cfg.max_batch, random.Random(cfg.seed * 7919 + epoch))
        batches = batches[rank::world][:steps_per_epoch]  # same order on every rank (same seed), one share each
        tot, n = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, mininterval=2.0, disable=not main)
        for idx in bar:
            w, flen, tg, tl = collate(train, idx, fe, cfg.speed_range, gen)
            if cfg.lowpass_prob > 0:
                w = band_limit(w, cfg.lowpass_prob, cfg.lowpass_hz, fe.sample_rate, gen)
            w = add_noise(w, cfg.noise_prob, cfg.snr_db, gen)
            if cfg.gain_db is not None:
                w = random_gain(w, cfg.gain_db, gen).clamp_(-1.0, 1.0)
            with torch.no_grad():
                feats = frontend_mod(w)
                if cfg.vtlp is not None:
                    feats = vtlp(feats, cfg.vtlp, mel_hz, gen)
                feats = spec_augment(feats, flen, cfg, gen)
            lp = net(feats)
            olen = model.output_lengths(flen)
            loss = ctc(lp.transpose(0, 1), tg, olen, tl)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            sched.step()
            step += 1
            if math.isfinite(loss.item()):
                tot += loss.item()
                n += 1
            bar.set_postfix(loss=f"{tot / max(1, n):.3f}")
        if not main:
            torch.distributed.barrier()  # rank 0 validates and writes
            continue
        wer, cer, hyps = evaluate(model, frontend_mod, val, fe)
        rec = {"epoch": epoch, "train_loss": tot / max(1, n), "val_wer": wer, "val_cer": cer,
               "lr": sched.get_last_lr()[0], "seconds": round(time.time() - t0, 1)}
        history.append(rec)
        with open(run_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        improved = best is None or (wer, cer) < (best["val_wer"], best["val_cer"])
        if improved:
            best = {"val_wer": wer, "val_cer": cer, "epoch": epoch}
        state = {
            "task": "ctc",
            "model": mcfg,
            "frontend": fe.to_dict(),
            "vocab": list(VOCAB),
            "blank": BLANK_ID,
            "subsampling": model.subsampling,
            "state_dict": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "epoch": epoch,
            "step": step,
            "metrics": {"val_wer": wer, "val_cer": cer, "epoch": epoch, "params": count_params(model)},
            "best": best,
            "history_json": json.dumps(history),
            "train_config": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                             "train_manifest": str(Path(train_manifest).resolve()),
                             "val_manifest": str(Path(val_manifest).resolve()),
                             "init": str(Path(init).resolve()) if init else None},
        }
        save_checkpoint(state, run_dir / "last.pt")
        if cfg.average_last >= 1 and epoch > cfg.epochs - cfg.average_last:
            save_checkpoint({k: state[k] for k in _AVERAGE_KEYS}, run_dir / "average" / f"epoch{epoch:03d}.pt")
        if improved:
            save_checkpoint(state, run_dir / "best.pt")
            (run_dir / "val_hyps.txt").write_text("".join(f"{r}\t{h}\n" for r, h in zip(val.texts, hyps)))
        log(f"epoch {epoch}: loss {rec['train_loss']:.3f}  val WER {100 * wer:.2f} %  CER {100 * cer:.2f} %  "
            f"({rec['seconds']:.0f} s){'  *best' if improved else ''}")
        _plot(history, run_dir / "curves.png")
        if world > 1:
            torch.distributed.barrier()
    if world > 1:
        torch.distributed.destroy_process_group()
    result = dict(best or {})
    if main and cfg.average_last >= 1:
        averaged = _write_average(run_dir, cfg, model, frontend_mod, train, val, fe, batch_samples, log)
        if averaged:
            result["averaged"] = averaged
    return result


# what average/epochNNN.pt keeps: enough to rebuild and export the network, no optimizer state
_AVERAGE_KEYS = ("task", "model", "frontend", "vocab", "blank", "subsampling", "state_dict", "epoch")


def _write_average(run_dir: Path, cfg: CTCTrainConfig, model, frontend_mod, train: SpeechSet, val: SpeechSet,
                   fe: FrontendConfig, batch_samples: int, log) -> dict | None:
    """Average the last ``cfg.average_last`` epochs' weights, recompute BatchNorm, validate, write averaged.pt."""
    epochs = range(max(1, cfg.epochs - cfg.average_last + 1), cfg.epochs + 1)
    files = [run_dir / "average" / f"epoch{e:03d}.pt" for e in epochs]
    files = [f for f in files if f.is_file()]
    if not files:
        log(f"warning: --average-last {cfg.average_last}: no weights of epochs {epochs.start}-{epochs.stop - 1} in "
            f"{run_dir / 'average'}; averaged.pt not written")
        return None
    ckpts = [load_checkpoint(f) for f in files]
    model.load_state_dict(average_state_dicts([c["state_dict"] for c in ckpts]))
    recompute_bn_stats(model, frontend_mod, train, fe, batch_samples, cfg.max_batch)
    wer, cer, hyps = evaluate(model, frontend_mod, val, fe)
    first, last = ckpts[0]["epoch"], ckpts[-1]["epoch"]
    metrics = {"val_wer": wer, "val_cer": cer, "epoch": last, "params": count_params(model),
               "averaged_epochs": [c["epoch"] for c in ckpts]}
    base = load_checkpoint(run_dir / "last.pt")
    state = {k: v for k, v in base.items() if k not in ("format", "version", "optimizer", "scheduler")}
    save_checkpoint({**state, "state_dict": model.state_dict(), "metrics": metrics}, run_dir / "averaged.pt")
    (run_dir / "averaged_val_hyps.txt").write_text("".join(f"{r}\t{h}\n" for r, h in zip(val.texts, hyps)))
    log(f"averaged epochs {first}-{last} ({len(ckpts)}), BatchNorm recomputed on the training set: "
        f"val WER {100 * wer:.2f} %  CER {100 * cer:.2f} %  -> {run_dir / 'averaged.pt'}")
    return metrics
