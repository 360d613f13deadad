"""The log-mel front-end as ONNX graphs, built directly with ``onnx.helper`` (docs/design.md §4).

Two backends compute ``hearkit.frontend.logmel`` of a ``FrontendConfig``:

``onnx-conv`` (default for deployment)
    A Cooley–Tukey split of the DFT in plain ONNX ops. With ``n_fft = N1·N2``
    and ``N2`` dividing both ``n_fft`` and ``hop_length``, the audio is cut into
    ``N2``-sample blocks and transposed to ``(batch, N2, blocks)``. A grouped
    ``Conv`` (one group per offset ``n2``, kernel ``N1``, stride ``hop/N2``)
    does the framing, the window, the first DFT (size ``N1``, only the
    ``N1//2+1`` bins a real signal needs) and the twiddle factors in one op;
    a single ``MatMul`` then does the second DFT (size ``N2``) for every
    first-stage bin at once; after re² + im², the mel ``MatMul`` picks each of
    the ``n_fft//2+1`` power bins once (bin ``k1 + N1·k2``, or its mirror
    ``n_fft - k``). No Gather, no big Transpose.
    When the hop shares no useful factor with ``n_fft`` (44.1 kHz, hop 441)
    the same split runs on frames cut by slicing hop-sized blocks (Slice +
    Concat, no Gather) with batched MatMuls ("framed" plan); when ``n_fft``
    itself has no useful factor (prime-ish sizes) ``N2 = 1``: a plain DFT
    convolution. ``choose_plan`` picks by a calibrated multiply-add count.

``onnx-stft``
    The opset-17 ``STFT`` op. Slow on ORT CPU, no CUDA kernel, no TensorRT
    before 10.5; kept as an option.

Both take ``waveform`` float32 (batch, samples) with dynamic batch and length
and give ``logmel`` float32 (batch, frames, n_mels); ``build_streaming_frontend_graph``
adds an explicit sample cache for chunked input. Every graph carries the
config in its ``hearkit.*`` metadata.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hearkit.errors import ConfigError
from hearkit.export.onnx_io import set_metadata
from hearkit.frontend import DB_FLOOR, FrontendConfig, mel_filterbank, window
from hearkit.metadata import ModelInfo

BACKENDS = ("onnx-conv", "onnx-stft")
DEFAULT_OPSET = 17  # STFT needs 17; everything else here is older
IR_VERSION = 8  # readable by onnxruntime >= 1.10, which every device we target has


# -- the Cooley–Tukey plan ------------------------------------------------------
def _cost(n_fft: int, n2: int, n_mels: int) -> int:
    """Multiply-adds per frame of the conv-DFT graph with split ``n_fft = N1 * n2``."""
    n1 = n_fft // n2
    k1 = n1 // 2 + 1
    stage1 = n2 * 2 * k1 * n1
    stage2 = (2 * n2) ** 2 * k1 if n2 > 1 else 0
    mel = n2 * k1 * n_mels  # after re² + im²
    # A second op costs about as much as a few thousand MACs per frame in ORT
    # (kernel launch, an extra pass over memory); keeps tiny splits from winning on paper.
    overhead = 4000 if n2 > 1 else 0
    return stage1 + stage2 + mel + overhead


# Framing by slicing and concatenating, plus two transposes, measured at about 60 MACs'
# worth of time per sample of each frame (512/160: conv split 1.67 ms, framed 2.63 ms per 10 s).
FRAMED_OVERHEAD_PER_SAMPLE = 60


def choose_split(cfg: FrontendConfig) -> int:
    """The conv graph's second-stage DFT size ``N2`` (a divisor of gcd(n_fft, hop)) with the least work; 1 = plain DFT."""
    g = math.gcd(cfg.n_fft, cfg.hop_length)
    divisors = [d for d in range(1, g + 1) if g % d == 0]
    return min(divisors, key=lambda d: (_cost(cfg.n_fft, d, cfg.n_mels), d))


def choose_plan(cfg: FrontendConfig) -> tuple[str, int]:
    """How the onnx-conv backend computes the DFT: ``("conv", N2)`` or ``("framed", N2)``.

    ``conv`` (grouped Conv + MatMul) needs N2 to divide the hop as well as n_fft
    and is the fastest when such a split exists (N2 = 1: a plain DFT
    convolution). ``framed`` (slice/concat framing + batched MatMuls) only
    needs N2 to divide n_fft; it wins when the hop shares no useful factor with
    n_fft (44.1 kHz with hop 441: 6.4 ms per 10 s vs 19.8 ms for the plain DFT).
    Chosen by a multiply-add count calibrated on onnxruntime 1.32, 1 thread.
    """
    n2 = choose_split(cfg)
    best = ("conv", n2), _cost(cfg.n_fft, n2, cfg.n_mels)
    for d in range(2, cfg.n_fft // 2 + 1):
        if cfg.n_fft % d == 0:
            c = _cost(cfg.n_fft, d, cfg.n_mels) + FRAMED_OVERHEAD_PER_SAMPLE * cfg.n_fft
            if c < best[1]:
                best = ("framed", d), c
    return best[0]


def describe_frontend(cfg) -> str:
    """One line on a front-end for logs: its sizes, or the speech embedding's source."""
    from hearkit.embedding import is_embedding

    if is_embedding(cfg):
        src = cfg.source
        return (f"speech embedding from {src.get('package', '?')} {src.get('version', '')}, a 96-d vector every "
                f"{cfg.hop_length / cfg.sample_rate * 1000:g} ms, input x{cfg.input_scale:g}")
    return f"n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels"


def describe_plan(cfg: FrontendConfig) -> str:
    """One line for logs and the bench table, e.g. ``conv-DFT split 512 = 32 x 16``."""
    kind, n2 = choose_plan(cfg)
    if n2 == 1:
        return f"plain DFT convolution ({cfg.n_fft} points)"
    name = "conv-DFT" if kind == "conv" else "framed MatMul DFT"
    return f"{name} split {cfg.n_fft} = {cfg.n_fft // n2} x {n2}"


def conv_dft_weights(
    cfg: FrontendConfig, n2: int | None = None, check_hop: bool = True
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, int]:
    """Constant matrices of the conv-DFT graph, float64.

    Args:
        cfg: the front-end config.
        n2: second-stage DFT size; must divide gcd(n_fft, hop) (Default: ``choose_split``).
        check_hop: require n2 to divide hop_length, as the conv graph does (Default: True);
            the framed graph only needs n2 to divide n_fft.

    Returns:
        ``(w1, m2, mel_t, n2)``:
        ``w1`` (N2·2·K1, 1, N1): grouped-conv kernel; output channel
        ``n2·2K1 + reim·K1 + k1`` of group ``n2`` is re/im of
        Σ_n1 window[n]·x[n]·exp(-2πi·k1·n/n_fft) with n = N2·n1 + n2
        (first DFT and twiddle factor in one).
        ``m2`` (2·N2, 2·N2): second DFT, rows (reim_out, k2), columns (n2, reim_in);
        ``None`` when N2 = 1.
        ``mel_t`` (n_mels, 2·N2·K1): mel weights over rows (reim, k2, k1) of the
        squared spectrum; each of the n_fft//2+1 bins is taken from exactly one
        (k1, k2) pair, both re² and im².
    """
    n = cfg.n_fft
    n2 = choose_split(cfg) if n2 is None else n2
    if n % n2 or (check_hop and cfg.hop_length % n2):
        raise ConfigError(f"split N2={n2} must divide n_fft ({n}) and hop_length ({cfg.hop_length})")
    n1 = n // n2
    k1n = n1 // 2 + 1
    win = window(cfg)
    i1 = np.arange(n1)[None, :]  # n1
    w1 = np.zeros((n2, 2, k1n, n1))
    for j in range(n2):
        idx = n2 * i1 + j  # sample index n within the frame
        ang = 2 * np.pi * np.arange(k1n)[:, None] * idx / n
        w1[j, 0] = win[idx] * np.cos(ang)
        w1[j, 1] = -win[idx] * np.sin(ang)
    w1 = w1.reshape(n2 * 2 * k1n, 1, n1)

    m2 = None
    if n2 > 1:
        th = 2 * np.pi * np.outer(np.arange(n2), np.arange(n2)) / n2  # [k2, n2]
        c, s = np.cos(th), np.sin(th)
        m2 = np.zeros((2, n2, n2, 2))  # (reim_o, k2, n2, reim_i)
        # (Yre + i Yim)(cos - i sin) = (cos Yre + sin Yim) + i (cos Yim - sin Yre)
        m2[0, :, :, 0], m2[0, :, :, 1] = c, s
        m2[1, :, :, 0], m2[1, :, :, 1] = -s, c
        m2 = m2.reshape(2 * n2, 2 * n2)

    fb = mel_filterbank(cfg)  # (n_mels, n_bins)
    mel_t = np.zeros((cfg.n_mels, 2, n2, k1n))
    for k2 in range(n2):
        for k1 in range(k1n):
            k = k1 + n1 * k2
            b = k if k <= n // 2 else n - k
            # the pair that represents bin b: b itself when its k1 is computed, else its mirror n - b
            rep = b if b % n1 < k1n else n - b
            if rep == k:
                mel_t[:, 0, k2, k1] = fb[:, b]
                mel_t[:, 1, k2, k1] = fb[:, b]
    return w1, m2, mel_t.reshape(cfg.n_mels, 2 * n2 * k1n), n2


# -- graph pieces -------------------------------------------------------------
class _G:
    """Small helper that collects nodes and initializers with unique names."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, value, base: str, dtype=None) -> str:
        arr = np.asarray(value, dtype=dtype)
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(arr, nm))
        return nm

    def i64(self, values, base="c") -> str:
        return self.const(np.asarray(values, dtype=np.int64), base)

    def f32(self, values, base="w") -> str:
        return self.const(np.asarray(values, dtype=np.float32), base)

    def op(self, op_type: str, inputs: list[str], base: str | None = None, outputs: list[str] | None = None, **attrs) -> str:
        outs = outputs or [self.name(base or op_type.lower())]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type), **attrs))
        return outs[0]


def _center(g: _G, x: str, cfg: FrontendConfig) -> str:
    """Pad n_fft//2 on both sides (reflect or zeros), as librosa/torch ``center=True``."""
    if not cfg.center:
        return x
    p = cfg.n_fft // 2
    return g.op("Pad", [x, g.i64([0, p, 0, p])], "centred", mode=cfg.pad_mode)


def _num_frames(g: _G, x: str, cfg: FrontendConfig) -> str:
    """int64 [1]: frames of ``x`` (batch, samples) = max(0, T - n_fft + hop) // hop."""
    t = g.op("Shape", [x], "len", start=1, end=2)
    t = g.op("Add", [t, g.i64([cfg.hop_length - cfg.n_fft])])
    t = g.op("Max", [t, g.i64([0])])
    return g.op("Div", [t, g.i64([cfg.hop_length])], "frames")


def _log(g: _G, mel: str, cfg: FrontendConfig, out: str) -> str:
    if cfg.log == "ln":
        return g.op("Log", [g.op("Add", [mel, g.f32(cfg.eps, "eps")])], outputs=[out])
    floored = g.op("Max", [mel, g.f32(DB_FLOOR, "floor")])
    return g.op("Mul", [g.op("Log", [floored]), g.f32(10.0 / math.log(10.0), "db")], outputs=[out])


def _conv_core(g: _G, x: str, cfg: FrontendConfig, out: str, n2: int | None = None) -> tuple[str, str]:
    """Conv-DFT log-mel of ``x`` (batch, T) float32 -> ``out`` (batch, F, n_mels); returns (out, frames)."""
    w1, m2, mel_t, n2 = conv_dft_weights(cfg, n2)
    n_fft, hop = cfg.n_fft, cfg.hop_length
    frames = _num_frames(g, x, cfg)
    # Compute one frame more than needed, on zero-padded audio: the graph then never
    # sees a conv input shorter than its kernel (short inputs give 0 frames, not an error).
    xp = g.op("Pad", [x, g.i64([0, 0, 0, hop + n_fft])], "zpad", mode="constant")
    length = g.op("Add", [g.op("Mul", [frames, g.i64([hop])]), g.i64([n_fft])])
    xs = g.op("Slice", [xp, g.i64([0]), length, g.i64([1])], "used")
    if n2 == 1:
        bt = g.op("Unsqueeze", [xs, g.i64([1])], "blocks")  # (B, 1, T)
    else:
        blocks = g.op("Reshape", [xs, g.i64([0, -1, n2])], "blocks")  # (B, T/N2, N2)
        bt = g.op("Transpose", [blocks], "blocks_t", perm=[0, 2, 1])  # (B, N2, T/N2)
    y = g.op("Conv", [bt, g.f32(w1, "dft1")], "stage1", group=n2, strides=[hop // n2], kernel_shape=[w1.shape[-1]])
    # re² + im² before the mel MatMul halves its work (measured ~5-10 % faster overall than
    # squaring all rows and letting the mel matrix add re and im).
    half = mel_t.shape[1] // 2
    if m2 is not None:  # (B, N2*2*K1, F+1) -> (B, 2*N2, K1*(F+1)): rows (n2, reim), columns (k1, f)
        y = g.op("Reshape", [y, g.i64([0, 2 * n2, -1])], "stage1_r")
        # two half MatMuls (rows re, rows im of the second DFT) instead of one and a Split:
        # same flops, one copy less
        re = g.op("MatMul", [g.f32(m2[:n2], "dft2_re"), y], "stage2_re")  # rows k2
        im = g.op("MatMul", [g.f32(m2[n2:], "dft2_im"), y], "stage2_im")
    else:  # rows (reim, k1)
        re = g.op("Slice", [y, g.i64([0]), g.i64([half]), g.i64([1])], "re")
        im = g.op("Slice", [y, g.i64([half]), g.i64([2 * half]), g.i64([1])], "im")
    power = g.op("Add", [g.op("Mul", [re, re]), g.op("Mul", [im, im])], "power")
    power = g.op("Reshape", [power, g.i64([0, half, -1])], "power_r")  # rows (k2, k1), columns f
    # mel_t's re and im halves hold the same weights; one half serves the summed power
    mel = g.op("MatMul", [g.f32(mel_t[:, :half], "mel"), power], "mel")  # (B, n_mels, F+1)
    mel = g.op("Slice", [mel, g.i64([0]), frames, g.i64([2])], "mel_f")
    mel = g.op("Transpose", [mel], "mel_t", perm=[0, 2, 1])
    return _log(g, mel, cfg, out), frames


def _framed_core(g: _G, x: str, cfg: FrontendConfig, out: str, n2: int) -> tuple[str, str]:
    """Cooley–Tukey log-mel for hops that share no useful factor with n_fft (e.g. 44.1 kHz, hop 441).

    Frames are cut by slicing hop-sized blocks and concatenating them (no Gather),
    then the same split as ``_conv_core`` runs as batched MatMuls: frames
    (B, F, N1, N2) -> (B, N2, F, N1) -> first DFT (window and twiddles folded in,
    one matrix per n2) -> second DFT over n2 -> re² + im² -> (B, F, N2·K1) -> mel.
    Costs two transposes and a framing copy more than the conv path, still far
    less than a plain DFT for large n_fft.
    """
    w1, m2, mel_t, _ = conv_dft_weights(cfg, n2, check_hop=False)
    n_fft, hop = cfg.n_fft, cfg.hop_length
    n1 = n_fft // n2
    k1n = n1 // 2 + 1
    r = -(-n_fft // hop)  # hop blocks per frame
    frames = _num_frames(g, x, cfg)
    # one frame more than needed on zero-padded audio, as in _conv_core: never an empty tensor
    frames1 = g.op("Add", [frames, g.i64([1])], "frames1")
    xp = g.op("Pad", [x, g.i64([0, 0, 0, (r + 1) * hop])], "zpad", mode="constant")
    length = g.op("Mul", [g.op("Add", [frames, g.i64([r])]), g.i64([hop])])
    xs = g.op("Slice", [xp, g.i64([0]), length, g.i64([1])], "used")
    blocks = g.op("Reshape", [xs, g.i64([0, -1, hop])], "hop_blocks")  # (B, F+r, hop)
    parts = []
    for j in range(r):
        end = g.op("Add", [frames1, g.i64([j])])
        parts.append(g.op("Slice", [blocks, g.i64([j]), end, g.i64([1])], f"shift{j}"))
    fr = g.op("Concat", parts, "frames_r", axis=2) if r > 1 else parts[0]  # (B, F+1, r*hop)
    if r * hop != n_fft:
        fr = g.op("Slice", [fr, g.i64([0]), g.i64([n_fft]), g.i64([2])], "frames")
    fr = g.op("Reshape", [fr, g.i64([0, 0, n1, n2])], "frames_4d")  # [.., n1, n2]: n = N2·n1 + n2
    fr = g.op("Transpose", [fr], "frames_t", perm=[0, 3, 1, 2])  # (B, N2, F+1, N1)
    fr = g.op("Unsqueeze", [fr, g.i64([1])], "frames_u")  # (B, 1, N2, F+1, N1)
    # (N2·2·K1, 1, N1) -> (2, N2, N1, K1): one (N1, K1) matrix per (reim, n2)
    w = w1.reshape(n2, 2, k1n, n1).transpose(1, 0, 3, 2)
    y = g.op("MatMul", [fr, g.f32(w, "dft1")], "stage1")  # (B, 2, N2, F+1, K1)
    y = g.op("Reshape", [y, g.i64([0, 2 * n2, -1])], "stage1_r")  # rows (reim, n2)
    # m2 columns are (n2, reim); reorder to (reim, n2) to match the rows of y
    m2c = m2.reshape(2 * n2, n2, 2).transpose(0, 2, 1).reshape(2 * n2, 2 * n2)
    re = g.op("MatMul", [g.f32(m2c[:n2], "dft2_re"), y], "stage2_re")  # (B, N2 k2, (F+1)·K1)
    im = g.op("MatMul", [g.f32(m2c[n2:], "dft2_im"), y], "stage2_im")
    power = g.op("Add", [g.op("Mul", [re, re]), g.op("Mul", [im, im])], "power")
    power = g.op("Reshape", [power, g.i64([0, n2, -1, k1n])], "power_4d")  # (B, k2, F+1, k1)
    power = g.op("Transpose", [power], "power_t", perm=[0, 2, 1, 3])  # (B, F+1, k2, k1)
    power = g.op("Reshape", [power, g.i64([0, 0, n2 * k1n])], "power_r")
    half = mel_t.shape[1] // 2
    mel = g.op("MatMul", [power, g.f32(mel_t[:, :half].T, "mel")], "mel")  # (B, F+1, n_mels)
    mel = g.op("Slice", [mel, g.i64([0]), frames, g.i64([1])], "mel_f")
    return _log(g, mel, cfg, out), frames


def _dft_core(g: _G, x: str, cfg: FrontendConfig, out: str) -> tuple[str, str]:
    """The onnx-conv backend: the conv or framed graph, whichever ``choose_plan`` picks."""
    kind, n2 = choose_plan(cfg)
    if kind == "conv":
        return _conv_core(g, x, cfg, out, n2)
    return _framed_core(g, x, cfg, out, n2)


def _stft_core(g: _G, x: str, cfg: FrontendConfig, out: str) -> tuple[str, str]:
    """STFT-op log-mel of ``x`` (batch, T) float32 -> ``out`` (batch, F, n_mels); returns (out, frames)."""
    frames = _num_frames(g, x, cfg)
    # zero tail so the op never sees fewer samples than one frame; extra frames are sliced off
    xp = g.op("Pad", [x, g.i64([0, 0, 0, cfg.n_fft])], "zpad", mode="constant")
    sig = g.op("Unsqueeze", [xp, g.i64([2])], "signal")  # (B, T, 1) real
    spec = g.op(
        "STFT",
        [sig, g.i64(cfg.hop_length), g.f32(window(cfg), "window"), g.i64(cfg.n_fft)],
        "stft",
        onesided=1,
    )  # (B, F', n_bins, 2)
    spec = g.op("Slice", [spec, g.i64([0]), frames, g.i64([1])], "stft_f")
    power = g.op("ReduceSum", [g.op("Mul", [spec, spec]), g.i64([3])], "power", keepdims=0)
    mel = g.op("MatMul", [power, g.f32(mel_filterbank(cfg).T, "mel")], "mel")
    return _log(g, mel, cfg, out), frames


def _model(g: _G, cfg: FrontendConfig, inputs, outputs, opset: int, backend: str, doc: str) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, f"hearkit_frontend_{backend.replace('-', '_')}", inputs, outputs, g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="hearkit",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    props = ModelInfo(task="frontend", input="waveform", frontend=cfg).to_props()
    set_metadata(model, props)
    onnx.checker.check_model(model)
    return model


def _check(cfg: FrontendConfig, backend: str, opset: int) -> None:
    if not isinstance(cfg, FrontendConfig):
        raise ConfigError(f"expected a FrontendConfig, got {type(cfg).__name__}")
    if backend not in BACKENDS:
        raise ConfigError(f"front-end backend must be one of {list(BACKENDS)}, got {backend!r}")
    if opset < DEFAULT_OPSET:
        raise ConfigError(f"opset must be >= {DEFAULT_OPSET} (STFT, Pad with tensor pads), got {opset}")


def build_frontend_graph(cfg: FrontendConfig, backend: str = "onnx-conv", opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The offline front-end graph: ``waveform`` (batch, samples) -> ``logmel`` (batch, frames, n_mels).

    Args:
        cfg: the front-end config (any ``center``/``pad_mode``; reflect padding
            needs more than n_fft//2 samples, as numpy and torch).
        backend: ``onnx-conv`` (Cooley–Tukey conv-DFT, fast) | ``onnx-stft`` (STFT op)
            (Default: onnx-conv).
        opset: ONNX opset (Default: 17).

    Returns:
        A checked ``onnx.ModelProto`` with dynamic batch and length and the
        config in its ``hearkit.*`` metadata. Inputs shorter than one frame give
        zero frames.
    """
    from hearkit.embedding import is_embedding

    if is_embedding(cfg):  # the frozen speech embedding: its own graphs, composed (docs/design.md §17)
        from hearkit.training.embedding import build_embedding_graph

        return build_embedding_graph(cfg)
    _check(cfg, backend, opset)
    g = _G()
    x = _center(g, "waveform", cfg)
    if backend == "onnx-conv":
        _dft_core(g, x, cfg, "logmel")
        doc = f"hearkit log-mel front-end, {describe_plan(cfg)}"
    else:
        _stft_core(g, x, cfg, "logmel")
        doc = "hearkit log-mel front-end, STFT op"
    inputs = [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])]
    outputs = [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", "frames", cfg.n_mels])]
    return _model(g, cfg, inputs, outputs, opset, backend, doc)


def build_streaming_frontend_graph(cfg: FrontendConfig, backend: str = "onnx-conv", opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """A front-end graph for chunked audio with an explicit sample cache.

    Inputs ``waveform`` (batch, n) and ``cache`` (batch, c) float32, where
    ``cache`` holds the samples not yet consumed by a complete frame (start
    with c = 0). Outputs ``logmel`` (batch, k, n_mels), the frames completed by
    ``cache ++ waveform``, and ``cache_out`` (batch, c') to pass to the next
    call. Concatenating the outputs of successive calls gives the offline
    features of the whole signal.

    Args:
        cfg: the front-end config; must have ``center=False``.
        backend: ``onnx-conv`` | ``onnx-stft`` (Default: onnx-conv).
        opset: ONNX opset (Default: 17).
    """
    _check(cfg, backend, opset)
    if cfg.center:
        raise ConfigError("streaming needs center=False (a centred frame would need samples before the stream)")
    g = _G()
    buf = g.op("Concat", ["cache", "waveform"], "buffer", axis=1)
    core = _dft_core if backend == "onnx-conv" else _stft_core
    _, frames = core(g, buf, cfg, "logmel")
    consumed = g.op("Mul", [frames, g.i64([cfg.hop_length])], "consumed")
    g.op("Slice", [buf, consumed, g.i64([np.iinfo(np.int64).max]), g.i64([1])], outputs=["cache_out"])
    inputs = [
        helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"]),
        helper.make_tensor_value_info("cache", TensorProto.FLOAT, ["batch", "cached"]),
    ]
    outputs = [
        helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", "frames", cfg.n_mels]),
        helper.make_tensor_value_info("cache_out", TensorProto.FLOAT, ["batch", "cached_out"]),
    ]
    return _model(g, cfg, inputs, outputs, opset, backend, f"hearkit streaming log-mel front-end ({backend})")
