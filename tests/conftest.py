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


@pytest.fixture(scope="session")
def untrained_classifier(tmp_path_factory) -> Path:
    """A checkpoint of an untrained DS-CNN-S for labels a, b, c (1-s window, default front-end); needs torch.

    Export, packaging and CLI tests need real-shaped weights, not trained ones.
    """
    torch = pytest.importorskip("torch", reason="building the test model needs hearkit[train]")
    from hearkit.frontend import FrontendConfig
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.models import build_model

    path = tmp_path_factory.mktemp("untrained") / "kws.pt"
    torch.manual_seed(0)
    cfg = FrontendConfig()
    net = build_model("dscnn-s", 3, cfg.n_mels)
    save_checkpoint({"task": "classify", "model": net.config(), "frontend": cfg.to_dict(), "labels": ["a", "b", "c"],
                     "window_samples": cfg.sample_rate, "state_dict": net.state_dict(), "metrics": {},
                     "train_config": {}}, path)
    return path
