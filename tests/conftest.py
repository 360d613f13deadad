"""Shared fixtures: the real recordings beside the checkout and seeded test signals.

With ``--import-mode=importlib`` test modules cannot import this file, so the
signal helpers come as a fixture (``signals.noise(...)``, ...).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (the real recordings, never copied into the repo); skips if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see docs/design.md §8); skipping tests that need it")
    return SHARED_DATA


def noise(num_samples: int, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    """White Gaussian noise, float32; a local Generator leaves the global RNG alone."""
    return (amp * np.random.default_rng(seed).standard_normal(num_samples)).astype(np.float32)


def chirp(num_samples: int, sample_rate: int, f0: float = 100.0, f1: float | None = None, amp: float = 0.5) -> np.ndarray:
    """Linear sine sweep from f0 to f1 Hz (Default f1: 0.45 * sample_rate), float32."""
    f1 = 0.45 * sample_rate if f1 is None else f1
    t = np.arange(num_samples) / sample_rate
    dur = num_samples / sample_rate
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / dur * t**2)
    return (amp * np.sin(phase)).astype(np.float32)


def silence(num_samples: int) -> np.ndarray:
    """All zeros, float32."""
    return np.zeros(num_samples, np.float32)


@pytest.fixture(scope="session")
def signals() -> SimpleNamespace:
    """Seeded signal generators: ``noise(n, seed, amp)``, ``chirp(n, sr, f0, f1, amp)``, ``silence(n)``."""
    return SimpleNamespace(noise=noise, chirp=chirp, silence=silence)


def speech(shared_data: Path, seconds: float) -> np.ndarray:
    """The first ``seconds`` of ljspeech_amateur's LJ001-0001 (read speech, 16 kHz), float32."""
    import soundfile as sf

    x, sr = sf.read(shared_data / "ljspeech_amateur" / "LJ001-0001.flac", dtype="float32")
    assert sr == 16000
    return x[: int(seconds * sr)]


def chunked_and_whole(model, x: np.ndarray, seed: int = 0, **spotter_kw):
    """``x`` fed to a streaming ``KeywordSpotter`` of ``model`` in seeded random chunks of 1-3,999 samples, and
    whole to one that scores the full window every hop: (the streaming spotter, its posteriors, the other's)."""
    import hearkit

    stream = hearkit.KeywordSpotter(model, record=True, **spotter_kw)
    whole = hearkit.KeywordSpotter(model, record=True, streaming=False, **spotter_kw)
    rng = np.random.default_rng(seed)
    pos = 0
    while pos < len(x):
        n = int(rng.integers(1, 4000))
        stream.accept_waveform(x[pos : pos + n])
        pos += n
    whole.accept_waveform(x)
    return stream, np.array([h[1] for h in stream.history]), np.array([h[1] for h in whole.history])


@pytest.fixture(scope="session")
def spotting() -> SimpleNamespace:
    """Streaming checks: ``speech(shared_data, seconds)``, ``chunked_and_whole(model, x, seed, **spotter_kw)``."""
    return SimpleNamespace(speech=speech, chunked_and_whole=chunked_and_whole)


def _untrained_checkpoint(path: Path, labels, model: str = "dscnn-s", frontend=None, seed: int = 0) -> Path:
    import torch

    from hearkit.frontend import FrontendConfig
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.models import build_model

    torch.manual_seed(seed)
    cfg = frontend or FrontendConfig()
    net = build_model(model, len(labels), cfg.n_mels)
    save_checkpoint({"task": "classify", "model": net.config(), "frontend": cfg.to_dict(), "labels": list(labels),
                     "window_samples": cfg.sample_rate, "state_dict": net.state_dict(), "metrics": {},
                     "train_config": {}}, path)
    return path


@pytest.fixture(scope="session")
def untrained_classifier(tmp_path_factory) -> Path:
    """A checkpoint of an untrained DS-CNN-S for labels a, b, c (1-s window, default front-end); needs torch.

    Export, packaging and CLI tests need real-shaped weights, not trained ones.
    """
    pytest.importorskip("torch", reason="building the test model needs hearkit[train]")
    return _untrained_checkpoint(tmp_path_factory.mktemp("untrained") / "kws.pt", ["a", "b", "c"])


@pytest.fixture(scope="session")
def make_classifier_export(tmp_path_factory):
    """``make(labels, model="cnn4-s", frontend=None, seed=0)`` -> an fp32 export folder of an untrained classifier."""
    pytest.importorskip("torch", reason="building the test model needs hearkit[train]")

    def make(labels, model: str = "cnn4-s", frontend=None, seed: int = 0) -> Path:
        from hearkit.export.exporter import export_classifier

        tmp = tmp_path_factory.mktemp("export")
        ckpt = _untrained_checkpoint(tmp / "model.pt", labels, model, frontend, seed)
        export_classifier(ckpt, tmp / "export", quantize=(), log=lambda m: None)
        return tmp / "export"

    return make


def energy_scorer(windows: np.ndarray) -> np.ndarray:
    """Logits for labels (_silence_, _unknown_, yes, no): 'yes' when a window's middle half is louder than its edges."""
    n = windows.shape[1]
    mid = windows[:, n // 4 : 3 * n // 4]
    edges = np.concatenate([windows[:, : n // 4], windows[:, 3 * n // 4 :]], axis=1)
    yes = 2 * (np.log(np.mean(mid**2, axis=1) + 1e-8) - np.log(np.mean(edges**2, axis=1) + 1e-8))
    low = np.full_like(yes, -5.0)
    return np.stack([np.zeros_like(yes), low, yes, low], axis=1)


@pytest.fixture(scope="session")
def scorers() -> SimpleNamespace:
    """Toy scorers for the spotter logic: ``energy`` (labels _silence_, _unknown_, yes, no)."""
    return SimpleNamespace(energy=energy_scorer)


# --- tiny trained models on generated tones: the export -> verify -> run contract without ../shared/data ---

TONE_SR = 16000
TONE_LABELS = {"low": 300.0, "mid": 1200.0, "high": 4000.0}  # Hz; far apart on the mel scale


def tone(freq: float, seconds: float, sample_rate: int = TONE_SR, amp: float = 0.3, seed: int = 0,
         jitter: float = 0.0, noise_amp: float = 0.01) -> np.ndarray:
    """A sine of ``freq`` Hz (times 1 + jitter * N(0, 1)) over white noise, float32; seeded, global RNG untouched."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f = freq * (1 + jitter * rng.standard_normal())
    return (amp * np.sin(2 * np.pi * f * t) + noise_amp * rng.standard_normal(t.size)).astype(np.float32)


def make_tones(root: Path, clip_seconds: float = 0.5, speakers: int = 10, val_speakers: int = 2,
               silence: bool = False, seed: int = 0) -> Path:
    """Write a Speech-Commands-layout set of tones under ``root`` and return it.

    One folder per ``TONE_LABELS`` label (and ``_silence_``, noise only, with ``silence``),
    one clip per fake speaker ``{i:08x}_nohash_0.wav``; the first ``val_speakers``
    speakers are listed in validation_list.txt.
    """
    import soundfile as sf

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    freqs = dict(TONE_LABELS, **({"_silence_": None} if silence else {}))
    ids = [f"{i:08x}" for i in range(speakers)]
    val = []
    for label, f in freqs.items():
        (root / label).mkdir()
        for spk in ids:
            s = int(rng.integers(2**31))
            x = tone(f, clip_seconds, seed=s, jitter=0.05) if f else noise(int(clip_seconds * TONE_SR), s, amp=0.01)
            sf.write(root / label / f"{spk}_nohash_0.wav", x, TONE_SR)
            if spk in ids[:val_speakers]:
                val.append(f"{label}/{spk}_nohash_0.wav")
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    return root


def tone_corpus(root: Path, n: int = 8, seed: int = 0) -> Path:
    """Utterances of 'a' (a 400 Hz burst) and 'b' (1200 Hz) sequences, learnable in a few steps; their manifest.jsonl."""
    import json

    import soundfile as sf

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        labels = rng.choice(["a", "b"], size=rng.integers(2, 4))
        parts = [np.zeros(int(0.1 * TONE_SR))]
        for lab in labels:
            f = 400.0 if lab == "a" else 1200.0
            parts += [0.4 * np.sin(2 * np.pi * f * np.arange(int(0.25 * TONE_SR)) / TONE_SR), np.zeros(int(0.15 * TONE_SR))]
        x = (np.concatenate(parts) + 0.003 * rng.standard_normal(sum(map(len, parts)))).astype(np.float32)
        sf.write(root / f"u{i}.flac", x, TONE_SR)
        lines.append(json.dumps({"audio_filepath": f"u{i}.flac", "duration": len(x) / TONE_SR, "text": " ".join(labels)}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


@pytest.fixture(scope="session")
def tonegen() -> SimpleNamespace:
    """Tone generators: ``tone(freq, seconds, ...)``, ``make_tones(root, ...)``, ``corpus(root, n, seed)``, ``LABELS``, ``SR``."""
    return SimpleNamespace(tone=tone, make_tones=make_tones, corpus=tone_corpus, LABELS=dict(TONE_LABELS), SR=TONE_SR)


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(n)  # the machine is shared; the trainings are tiny
    try:
        yield
    finally:
        torch.set_num_threads(prev)


TINY_CLIP_S = 0.5  # the tiny classifier's window: short clips keep its training under a second


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> SimpleNamespace:
    """A cnn4-s trained on generated tones (about 3 s on one core): ``checkpoint``, ``data``, ``run``, ``metrics``.

    ``data`` is a Speech-Commands-layout folder: labels low / mid / high (``TONE_LABELS``)
    and ``_silence_``, 16 fake speakers of which 4 (16 clips) are the validation split.
    Twenty epochs (six already reached validation accuracy 1.0 for seeds 0-4; twenty lift a clean
    tone's posterior from about 0.4 to 0.6-0.7, which ``hearkit stream`` needs) reached 1.0 for seeds
    0-2; the fixture asserts >= 0.9, one clip of margin, so a failure means the trainer broke, not
    that the seed was unlucky.
    """
    pytest.importorskip("torch", reason="training the test model needs hearkit[train]")
    import json

    from hearkit.training.train_classify import TrainConfig, train_classifier

    tmp = tmp_path_factory.mktemp("tiny_classifier")
    data = make_tones(tmp / "tones", clip_seconds=TINY_CLIP_S, speakers=16, val_speakers=4, silence=True)
    cfg = TrainConfig(data=str(data), out=str(tmp / "run"), model="cnn4-s", epochs=20, batch_size=8,
                      window_seconds=TINY_CLIP_S, num_threads=1, checkpoint_every=0, progress=False, quiet=True)
    with _torch_threads(1):
        run = Path(train_classifier(cfg, log=lambda *_: None))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_clips"] == 16 and metrics["best_val_acc"] >= 0.9, metrics  # tolerance: see the docstring
    return SimpleNamespace(checkpoint=run / "best.pt", data=data, run=run, metrics=metrics,
                           labels=sorted([*TONE_LABELS, "_silence_"]), window_seconds=TINY_CLIP_S)


@pytest.fixture(scope="session")
def untrained_ctc_export(tmp_path_factory) -> Path:
    """An fp32 export of an untrained, tiny ctc-conv model (a few seconds to build; needs torch)."""
    torch = pytest.importorskip("torch", reason="building the test model needs hearkit[train]")
    from hearkit.export.exporter import export_ctc
    from hearkit.text import VOCAB
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.ctc_models import build_model, model_config
    from hearkit.training.train_ctc import DEFAULT_FRONTEND

    tmp = tmp_path_factory.mktemp("untrained_ctc")
    torch.manual_seed(0)
    mc = {**model_config("ctc-conv-s", channels=(16, 16), kernels=(5, 7), repeats=1, front_channels=16,
                         front_kernel=5, end_channels=24, end_kernel=5), "name": "tiny-conv"}
    net = build_model(mc, DEFAULT_FRONTEND.n_mels, len(VOCAB))
    save_checkpoint({"task": "ctc", "model": mc, "frontend": DEFAULT_FRONTEND.to_dict(), "vocab": list(VOCAB),
                     "blank": 0, "state_dict": net.state_dict()}, tmp / "best.pt")
    export_ctc(tmp / "best.pt", tmp / "exp", quantize=(), check_seconds=(0.5,), log=lambda *_: None)
    return tmp / "exp"


@pytest.fixture(scope="session")
def tiny_ctc(tmp_path_factory) -> SimpleNamespace:
    """Two epochs of ctc-conv-s on 8 generated 'a'/'b' tone utterances (about 10 s on one core).

    Returns ``root`` (holding ``data/`` and ``run/``), ``run``, ``checkpoint`` (best.pt),
    ``manifest`` (the one manifest it trained and validated on) and ``metrics``
    (metrics.json). A valid trained checkpoint, not a good model: its WER is not asserted.
    The run's augmentation has no speed change and has vtlp, band-limit and gain settings
    that tests/test_ctc_train.py checks in the checkpoint.
    """
    pytest.importorskip("torch", reason="training the test model needs hearkit[train]")
    import json

    import dataclasses

    from hearkit.training.train_ctc import DEFAULT_AUGMENT, CTCTrainConfig, train_ctc

    tmp = tmp_path_factory.mktemp("tiny_ctc")
    m = tone_corpus(tmp / "data")
    # no speed change: the default before it became the README recipe's (0.9, 1.1)
    augment = dataclasses.replace(DEFAULT_AUGMENT, speed=False, vtlp=(0.9, 1.1), band_limit_prob=0.5, gain=True,
                                  gain_db=(-18.0, 6.0))
    cfg = CTCTrainConfig(m, m, str(tmp / "run"), model="ctc-conv-s", epochs=2, batch_seconds=8, max_batch=4, lr=3e-3,
                         seed=0, average_last=2, augment=augment)
    with _torch_threads(1):
        assert train_ctc(cfg, log=lambda *_: None) == tmp / "run"
    return SimpleNamespace(root=tmp, run=tmp / "run", checkpoint=tmp / "run" / "best.pt", manifest=m,
                           metrics=json.loads((tmp / "run" / "metrics.json").read_text()))
