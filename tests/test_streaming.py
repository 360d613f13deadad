"""Streaming front-ends (numpy and ONNX) fed in chunks of any size equal the offline features (docs/design.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from hearkit.errors import ConfigError
from hearkit.frontend import FrontendConfig, StreamingFrontend, logmel

CHUNKS = [1, 160, 161, 1600, 16000]
CONFIGS = {
    "16k-512": FrontendConfig(n_fft=512, win_length=480, hop_length=160, n_mels=40),
    "8k-256": FrontendConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=32),
    "16k-512-hop161": FrontendConfig(n_fft=512, hop_length=161, n_mels=40),  # onnx-conv's framed plan
}
# Streaming computes each frame from the same samples with the same ops as offline;
# only float32 summation order may differ (ORT picks kernels by shape): 1e-5.
TOL_STREAM = 1e-5


def feed(fe, x: np.ndarray, chunk: int) -> np.ndarray:
    parts = [fe.accept_waveform(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    for p in parts:
        assert p.dtype == np.float32 and p.ndim == 2
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def clip(signals):
    # 1.3 s: speech-like mix of noise and a chirp, not a multiple of the hop
    n = 20800
    return signals.noise(n, seed=21) + signals.chirp(n, 16000, amp=0.3)


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_numpy_streaming_equals_offline(name, chunk, clip):
    cfg = CONFIGS[name]
    fe = StreamingFrontend(cfg)
    y = feed(fe, clip, chunk)
    ref = logmel(clip, cfg)
    assert y.shape == ref.shape and fe.frames_emitted == len(ref)
    np.testing.assert_allclose(y, ref, rtol=0, atol=TOL_STREAM)


@pytest.fixture(scope="module")
def onnx_paths(tmp_path_factory):
    pytest.importorskip("onnx", reason="building the graphs needs hearkit[train]")
    from hearkit.export.frontend import build_frontend_graph, build_streaming_frontend_graph
    from hearkit.export.onnx_io import save_model

    d = tmp_path_factory.mktemp("fe")
    out = {}
    for name, cfg in CONFIGS.items():
        for backend in ("onnx-conv", "onnx-stft"):
            out[name, backend] = (
                save_model(build_frontend_graph(cfg, backend), d / f"{name}.{backend}.onnx"),
                save_model(build_streaming_frontend_graph(cfg, backend), d / f"{name}.{backend}.stream.onnx"),
            )
    return out


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_onnx_streaming_equals_offline(name, chunk, clip, onnx_paths):
    from hearkit.frontend_onnx import OnnxFrontend, OnnxStreamingFrontend

    offline, streaming = onnx_paths[name, "onnx-conv"]
    fe = OnnxStreamingFrontend(streaming)
    assert fe.cfg == CONFIGS[name]
    y = feed(fe, clip, chunk)
    ref = OnnxFrontend(offline)(clip)
    assert y.shape == ref.shape and fe.frames_emitted == len(ref)
    np.testing.assert_allclose(y, ref, rtol=0, atol=TOL_STREAM)
    # and against the float64 numpy reference, at the parity tolerance (chirp in the mix: 5e-3, see test_frontend_parity)
    np.testing.assert_allclose(y, logmel(clip, CONFIGS[name]), rtol=0, atol=5e-3)


@pytest.mark.parametrize("chunk", [1, 161])
def test_onnx_stft_streaming_equals_offline(chunk, clip, onnx_paths):
    from hearkit.frontend_onnx import OnnxFrontend, OnnxStreamingFrontend

    offline, streaming = onnx_paths["16k-512", "onnx-stft"]
    y = feed(OnnxStreamingFrontend(streaming), clip, chunk)
    np.testing.assert_allclose(y, OnnxFrontend(offline)(clip), rtol=0, atol=TOL_STREAM)


def test_random_chunks_and_reset(clip, onnx_paths):
    from hearkit.frontend_onnx import OnnxStreamingFrontend

    cfg = CONFIGS["16k-512"]
    rng = np.random.default_rng(4)
    sizes = rng.integers(0, 700, size=200)  # includes empty chunks
    bounds = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(clip))
    ref = logmel(clip, cfg)
    for fe in (StreamingFrontend(cfg), OnnxStreamingFrontend(onnx_paths["16k-512", "onnx-conv"][1])):
        fe.accept_waveform(clip[:5000])  # state that reset() must clear
        fe.reset()
        assert fe.frames_emitted == 0
        parts = [fe.accept_waveform(clip[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        parts.append(fe.accept_waveform(clip[bounds[-1]:]))
        np.testing.assert_allclose(np.concatenate(parts), ref, rtol=0, atol=5e-3)  # 5e-3: chirp in the mix, as above


def test_streaming_graph_cache_contract(onnx_paths):
    """cache_out holds exactly the samples after the last consumed hop; frames come from cache ++ waveform."""
    import onnxruntime as ort

    cfg = CONFIGS["16k-512"]
    sess = ort.InferenceSession(str(onnx_paths["16k-512", "onnx-conv"][1]), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(9).standard_normal((2, 1000)).astype(np.float32) * 0.1
    for c in (0, 100, 511):
        cache, wave = x[:, :c], x[:, c:]
        y, cache_out = sess.run(None, {"waveform": wave, "cache": cache})
        k = cfg.num_frames(1000)
        assert y.shape == (2, k, cfg.n_mels)
        np.testing.assert_array_equal(cache_out, x[:, k * cfg.hop_length :])
        np.testing.assert_allclose(y, logmel(x, cfg), rtol=0, atol=1e-3)
    # fewer samples than one frame: no frames, everything stays cached
    y, cache_out = sess.run(None, {"waveform": x[:, :300], "cache": x[:, :0]})
    assert y.shape == (2, 0, cfg.n_mels)
    np.testing.assert_array_equal(cache_out, x[:, :300])


def test_streaming_needs_no_center(onnx_paths):
    with pytest.raises(ConfigError, match="center=False"):
        StreamingFrontend(FrontendConfig(center=True))


def test_offline_graph_is_not_a_streaming_graph(onnx_paths):
    from hearkit.errors import ModelError
    from hearkit.frontend_onnx import OnnxFrontend, OnnxStreamingFrontend

    offline, streaming = onnx_paths["16k-512", "onnx-conv"]
    with pytest.raises(ModelError, match="inputs"):
        OnnxStreamingFrontend(offline)
    with pytest.raises(ModelError, match="inputs"):
        OnnxFrontend(streaming)
