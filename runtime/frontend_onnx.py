"""Run exported front-end graphs with onnxruntime (torch-free, onnx-free).

``OnnxFrontend`` wraps an offline graph from ``hearkit export-frontend``
(``waveform`` -> ``logmel``); ``OnnxStreamingFrontend`` wraps a streaming graph
(``waveform`` + ``cache`` -> ``logmel`` + ``cache_out``) and behaves like the
numpy ``hearkit.frontend.StreamingFrontend``. Both read their ``FrontendConfig``
from the model's own metadata (docs/design.md §3).
"""

from __future__ import annotations

import os

import numpy as np

from hearkit.audio import check_waveform, downmix
from hearkit.errors import ConfigError, ModelError, NonFiniteAudioError, NotAudioError, run_session
from hearkit.frontend import FrontendConfig
from hearkit.metadata import ModelInfo
from hearkit.sessions import make_session


def _open(path, threads: int, spinning: bool, providers, want_inputs: set[str], want_outputs: set[str]):
    """Session + metadata of a front-end graph, checking its input/output names."""
    sess = make_session(path, threads=threads, spinning=spinning, providers=providers)
    src = os.fspath(path)
    info = ModelInfo.from_props(dict(sess.get_modelmeta().custom_metadata_map), source=src)
    ins = {i.name for i in sess.get_inputs()}
    outs = {o.name for o in sess.get_outputs()}
    if ins != want_inputs or not want_outputs <= outs:
        raise ModelError(
            f"{src}: expected a front-end graph with inputs {sorted(want_inputs)} and outputs "
            f"{sorted(want_outputs)}, got inputs {sorted(ins)} and outputs {sorted(outs)}"
        )
    return sess, info


def _as_batch(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(samples,) or (batch, samples) float audio -> (batch, samples) float32, and whether it was 1-D."""
    x = np.asarray(x)
    if x.ndim == 1:
        return check_waveform(x)[None, :], True
    if x.ndim != 2:
        raise NotAudioError("<array>", f"expected (samples,) or (batch, samples), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise NotAudioError("<array>", f"batched samples must be float, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise NonFiniteAudioError("<array>", f"{int((~np.isfinite(x)).sum())} of {x.size} samples are NaN or infinite")
    return x, False


class OnnxFrontend:
    """An exported offline front-end graph: audio -> log-mel.

    Args:
        path: ``.onnx`` (or ``.ort``) file written by ``hearkit export-frontend``.
        threads: onnxruntime intra-op threads (Default: 1).
        providers: onnxruntime execution providers in order (Default: CPU).

    Attributes:
        cfg: the ``FrontendConfig`` stored in the model.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1, providers: list | None = None):
        self.session, self.info = _open(path, threads, True, providers, {"waveform"}, {"logmel"})
        self.source = os.fspath(path)
        self.cfg: FrontendConfig = self.info.frontend

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Log-mel of (samples,) -> (frames, n_mels), or (batch, samples) -> (batch, frames, n_mels); float32."""
        xb, single = _as_batch(x)
        cfg = self.cfg
        if cfg.center and cfg.pad_mode == "reflect" and xb.shape[1] <= cfg.n_fft // 2:
            raise ConfigError(f"reflect padding needs more than n_fft//2 = {cfg.n_fft // 2} samples, got {xb.shape[1]}")
        y = run_session(self.session, ["logmel"], {"waveform": xb}, self.source)[0]
        return y[0] if single else y


class OnnxStreamingFrontend:
    """An exported streaming front-end graph fed in chunks of any size (1 sample upwards).

    Emits exactly the frames the offline front-end (``center=False``) would,
    as the numpy ``StreamingFrontend`` does. The cache of unconsumed samples
    (fewer than n_fft) is kept here and passed through the graph.

    Args:
        path: a graph from ``build_streaming_frontend_graph`` /
            ``hearkit export-frontend --streaming``.
        threads: onnxruntime intra-op threads (Default: 1).
        providers: onnxruntime execution providers in order (Default: CPU).

    Example:
        >>> fe = OnnxStreamingFrontend("frontend.stream.onnx")
        >>> frames = [fe.accept_waveform(chunk) for chunk in chunks]   # each (k, n_mels)
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1, providers: list | None = None):
        # No spinning: a periodic streaming session otherwise burns a core between chunks (docs/design.md §6).
        self.session, self.info = _open(path, threads, False, providers, {"waveform", "cache"}, {"logmel", "cache_out"})
        self.source = os.fspath(path)
        self.cfg: FrontendConfig = self.info.frontend
        self.reset()

    def reset(self) -> None:
        """Forget all buffered audio."""
        self._cache = np.zeros((1, 0), np.float32)
        self.frames_emitted = 0

    def accept_waveform(self, chunk: np.ndarray) -> np.ndarray:
        """Add samples; return the newly complete frames, shape (k, n_mels) float32 (k may be 0)."""
        chunk = downmix(chunk).astype(np.float32, copy=False).reshape(1, -1)  # channels averaged, not interleaved
        if chunk.size and not np.isfinite(chunk).all():
            raise NonFiniteAudioError("<stream>", "chunk holds NaN or infinite samples")
        if self._cache.shape[1] + chunk.shape[1] < self.cfg.n_fft:
            # not a whole frame yet: skip the session call (the graph would return 0 frames)
            self._cache = np.concatenate([self._cache, chunk], axis=1)
            return np.zeros((0, self.cfg.n_mels), np.float32)
        y, self._cache = run_session(self.session, ["logmel", "cache_out"], {"waveform": chunk, "cache": self._cache}, self.source)
        self.frames_emitted += y.shape[1]
        return y[0]
