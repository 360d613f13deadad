"""Shared fixtures: the real recordings beside the checkout and seeded test signals.

With ``--import-mode=importlib`` test modules cannot import this file, so the
signal helpers come as a fixture (``signals.noise(...)``, ...).
"""

from __future__ import annotations

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
        from hearkit.export.classify import export_classifier

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
