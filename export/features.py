"""One entry point for log-mel features from any backend (docs/design.md §4).

``compute_features(x, cfg, backend)`` gives the same (frames, n_mels) float32
features from the numpy reference, the torch module, or a freshly built ONNX
graph, so the parity tests and ``hearkit features`` compare like with like. It
sits in the export layer because two of its backends build graphs (export) and
one runs the training module (training); ``numpy`` still works on a bare device,
as torch and onnx are imported inside the call (``hearkit[train]``), never at
module level.
"""

from __future__ import annotations

import functools

import numpy as np

from hearkit.errors import ConfigError, require
from hearkit.frontend import FrontendConfig, logmel

BACKENDS = ("numpy", "torch", "onnx-conv", "onnx-stft")


@functools.lru_cache(maxsize=16)
def _onnx_session(cfg: FrontendConfig, backend: str, threads: int):
    """An onnxruntime session of a built (not saved) front-end graph; cached per config."""
    require("onnx", "train")
    import onnxruntime as ort

    from hearkit.export.frontend import build_frontend_graph

    model = build_frontend_graph(cfg, backend=backend)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=16)
def _torch_module(cfg: FrontendConfig):
    require("torch", "train")
    from hearkit.training.frontend import LogMel

    return LogMel(cfg).eval()


def compute_features(x: np.ndarray, cfg: FrontendConfig, backend: str = "numpy", threads: int = 1) -> np.ndarray:
    """Log-mel features of audio with the chosen backend.

    Args:
        x: float audio at ``cfg.sample_rate``, (samples,) or (batch, samples).
        cfg: the front-end config.
        backend: ``numpy`` | ``torch`` | ``onnx-conv`` | ``onnx-stft`` (Default: numpy).
        threads: intra-op threads for onnxruntime (Default: 1).

    Returns:
        float32 (frames, n_mels), or (batch, frames, n_mels) for batched input.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"front-end backend must be one of {list(BACKENDS)}, got {backend!r}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ConfigError(f"audio must be (samples,) or (batch, samples), got shape {x.shape}")
    if cfg.center and cfg.pad_mode == "reflect" and x.shape[-1] <= cfg.n_fft // 2:
        raise ConfigError(f"reflect padding needs more than n_fft//2 = {cfg.n_fft // 2} samples, got {x.shape[-1]}")
    if backend == "numpy":
        return logmel(x, cfg)
    if backend == "torch":
        torch = require("torch", "train")
        with torch.inference_mode():
            return _torch_module(cfg)(torch.from_numpy(np.ascontiguousarray(x))).numpy().astype(np.float32)
    xb = np.ascontiguousarray(x[None] if x.ndim == 1 else x)
    y = _onnx_session(cfg, backend, threads).run(["logmel"], {"waveform": xb})[0]
    return y[0] if x.ndim == 1 else y
