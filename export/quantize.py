"""Quantization recipes (docs/design.md §5) and the step that applies them to a network graph.

A recipe is data: a ``hearkit.devices.QuantRecipe`` (the type a device profile's
``[quantization]`` table loads into) registered by name in ``RECIPES``, so device
profiles and ``--recipe NAME`` pick from the same list. Only the network (log-mel in) is quantized; the front-end stays fp32 in
every recipe (int8 gave ±inf log-mel, fp16 errors up to 0.9 in quiet bins) and is
merged back afterwards by the caller.

Static recipes are calibrated on real features: training clips passed through
the *exported* front-end graph, so calibration sees exactly what the device will.
Dynamic quantization is not offered: on convolutions it is 10–14× slower than fp32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx

from hearkit.devices import QuantRecipe
from hearkit.errors import ConfigError, ModelError
from hearkit.files import atomic_path

# The histogram calibrators print their progress; it goes here at DEBUG (shown by `hearkit --verbose`).
CALIBRATOR_LOG = logging.getLogger("hearkit.export.calibrator")


class _LogLines(io.TextIOBase):
    """A text stream that sends each complete line to ``log`` at DEBUG (for ``redirect_stdout``)."""

    def __init__(self, log: logging.Logger):
        self.log, self._part = log, ""

    def write(self, text: str) -> int:
        lines = (self._part + text).split("\n")
        self._part = lines.pop()
        for line in lines:
            if line.strip():
                self.log.debug(line)
        return len(text)

    def flush(self) -> None:
        if self._part.strip():
            self.log.debug(self._part)
        self._part = ""

CALIBRATION_BATCH = 16  # feature windows per calibration batch


RECIPES: dict[str, QuantRecipe] = {
    r.name: r
    for r in (
        QuantRecipe(
            name="qdq-s8s8-perchannel", format="qdq", activation_type="int8", weight_type="int8", per_channel=True,
            calibration="percentile",
            why="default for CNNs: S8S8 QDQ is the int8 format x86 VNNI and ARM dot-product kernels run; "
                "percentile calibration (99.999 %) kept more top-1 decisions than min/max on BC-ResNet (97.8 vs 96.8 %)",
        ),
        QuantRecipe(
            name="qdq-u8u8", format="qdq", activation_type="uint8", weight_type="uint8", per_channel=True,
            symmetric_weights=False,
            why="x86 AVX2 without VNNI: U8S8 can saturate in the 16-bit intermediate; U8U8 cannot",
        ),
        QuantRecipe(
            name="qdq-u8s8-reduce-range", format="qdq", activation_type="uint8", weight_type="int8", per_channel=True,
            reduce_range=True,
            why="x86 AVX2 without VNNI: 7-bit weights keep U8S8 from saturating",
        ),
        QuantRecipe(
            name="qdq-symmetric", format="qdq", activation_type="int8", weight_type="int8", per_channel=True,
            symmetric_activations=True,
            why="TensorRT (Jetson): needs symmetric QDQ, zero point 0; slower on CPU, its own artifact",
        ),
        QuantRecipe(
            name="qoperator-u8s8", format="qoperator", activation_type="uint8", weight_type="int8", per_channel=True,
            why="older runtimes without QDQ fusion; 2.5x slower than QDQ on x86 here, for comparison only",
        ),
        QuantRecipe(
            name="fp16", format="fp16", activation_type=None, weight_type=None, per_channel=False,
            symmetric_weights=False,
            why="GPUs (CUDA, TensorRT fp16): half the size, tensor-core math; no CPU speed-up",
        ),
    )
}
DEFAULT_RECIPE = "qdq-s8s8-perchannel"
# what `--quantize int8|fp16` means
ALIASES = {"int8": DEFAULT_RECIPE, "fp16": "fp16"}


def get_recipe(name: str) -> QuantRecipe:
    """A recipe by name or alias (``int8``, ``fp16``); ConfigError listing the choices otherwise."""
    key = ALIASES.get(name, name)
    if key not in RECIPES:
        raise ConfigError(f"unknown quantization recipe {name!r}; available: {sorted(RECIPES) + sorted(ALIASES)}")
    return RECIPES[key]


def compute_features(frontend_path: str | os.PathLike, waveforms: np.ndarray, batch: int = 32) -> np.ndarray:
    """Log-mel features of (n, samples) float32 audio through the exported front-end graph: (n, frames, n_mels)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.fspath(frontend_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = [sess.run(None, {name: np.ascontiguousarray(waveforms[i : i + batch], dtype=np.float32)})[0]
           for i in range(0, len(waveforms), batch)]
    return np.concatenate(out)


class _FeatureReader:
    """onnxruntime CalibrationDataReader over a feature array, in small batches."""

    def __init__(self, input_name: str, features: np.ndarray, batch: int = CALIBRATION_BATCH):
        # equal batches only: onnxruntime's histogram calibrators (entropy, percentile) stack
        # the batches and fail on a shorter last one, so a remainder of < batch clips is dropped
        batch = min(batch, len(features))
        self.input_name, self.features, self.batch = input_name, features[: len(features) // batch * batch], batch
        self.pos = 0

    def get_next(self):
        if self.pos >= len(self.features):
            return None
        x = self.features[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return {self.input_name: np.ascontiguousarray(x, dtype=np.float32)}

    def rewind(self):
        self.pos = 0


def quantize_network(
    model_path: str | os.PathLike,
    out_path: str | os.PathLike,
    recipe: QuantRecipe | str,
    features: np.ndarray | None = None,
) -> onnx.ModelProto:
    """Quantize a network graph (features in) with a recipe; return the quantized model (also saved).

    Args:
        model_path: the fp32 network ``.onnx`` (input: log-mel features).
        out_path: where to write the quantized network.
        recipe: a ``QuantRecipe`` or its name/alias.
        features: calibration inputs (n, frames, n_mels) float32, needed by static recipes.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
    )
    from onnxruntime.quantization import quantize_static as _quantize_static

    r = get_recipe(recipe) if isinstance(recipe, str) else recipe
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if r.format == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # keep_io_types: the graph still takes and returns float32, so it merges with the fp32 front-end
        model = convert_float_to_float16(onnx.load(os.fspath(model_path)), keep_io_types=True)
        _toposort(model.graph)  # the converter appends its input Casts at the end
        with atomic_path(out_path) as tmp:  # a full disk or a kill leaves the old file or none
            onnx.save_model(model, os.fspath(tmp), save_as_external_data=False)
        return model
    if features is None or len(features) == 0:
        raise ConfigError(f"recipe {r.name} is static and needs calibration features")
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    for what, v in (("activation_type", r.activation_type), ("weight_type", r.weight_type)):
        if v not in types:
            raise ConfigError(f"recipe {r.name}: {what} must be one of {sorted(types)}, got {v!r}")
    if r.calibration not in methods:
        raise ConfigError(f"recipe {r.name}: calibration must be one of {sorted(methods)}, got {r.calibration!r}")
    input_name = onnx.load(os.fspath(model_path), load_external_data=False).graph.input[0].name

    class Reader(_FeatureReader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="hearkit-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quantized = Path(tmp) / "quantized.onnx"  # moved to out_path only when complete
        # folds BatchNorm into Conv and infers shapes, so per-channel scales land on the real weights
        try:
            quant_pre_process(os.fspath(model_path), os.fspath(pre), skip_symbolic_shape=False)
        except Exception:
            quant_pre_process(os.fspath(model_path), os.fspath(pre), skip_symbolic_shape=True)
        prepared = onnx.load(os.fspath(pre))
        # int8 layout: the NHWC int8 chain ends in QLinearGlobalAveragePool instead of
        # DequantizeLinear + Transpose + fp32 ReduceMean + QuantizeLinear (DS-CNN-S: -20 us of 300)
        if _mean_to_global_pool(prepared.graph):
            onnx.save_model(prepared, os.fspath(pre), save_as_external_data=False)
        # a fp32 stem followed by Relu -> MaxPool: pool first (the two commute), or onnxruntime moves
        # the QuantizeLinear above the pool and runs a generic uint8 NCHW MaxPool (cnn4-s: 0.45 ms -> 0.21)
        if r.float_stem and _pool_before_stem_relu(prepared.graph):
            onnx.save_model(prepared, os.fspath(pre), save_as_external_data=False)
        exclude = (_stem_nodes(prepared.graph) if r.float_stem else []) + _posterior_tail(prepared.graph)
        try:
            # the histogram calibrators print progress to stdout; keep stdout for the command's own output
            with contextlib.redirect_stdout(_LogLines(CALIBRATOR_LOG)) as lines:
                _quantize_static(
                    os.fspath(pre),
                    os.fspath(quantized),
                    Reader(input_name, features),
                    quant_format=QuantFormat.QDQ if r.format == "qdq" else QuantFormat.QOperator,
                    per_channel=r.per_channel,
                    reduce_range=r.reduce_range,
                    # always explicit: ORT helpers disagree on the defaults (docs/design.md §5)
                    activation_type=types[r.activation_type],
                    weight_type=types[r.weight_type],
                    calibrate_method=methods[r.calibration],
                    op_types_to_quantize=list(r.op_types) if r.op_types else None,
                    nodes_to_exclude=exclude,
                    extra_options={
                        "ActivationSymmetric": r.symmetric_activations,
                        "WeightSymmetric": r.symmetric_weights,
                    },
                )
                lines.flush()
        except Exception as e:
            raise ModelError(f"quantization with recipe {r.name} failed: {str(e).splitlines()[0][:300]}") from e
        with atomic_path(out_path) as part:
            shutil.copyfile(quantized, part)
    return onnx.load(os.fspath(out_path))


def _mean_to_global_pool(graph: onnx.GraphProto) -> int:
    """Replace ReduceMean over axes (2, 3) of 4-D tensors by GlobalAveragePool (+ Flatten); return the count.

    Exact (both average every element of each (batch, channel) plane). onnxruntime
    fuses a QDQ GlobalAveragePool into QLinearGlobalAveragePool, which runs on the
    int8 NHWC tensors; it has no int8 ReduceMean, so the plain mean forces a
    DequantizeLinear, a layout Transpose and an fp32 ReduceMean at the end of the net.
    Needs inferred shapes (``quant_pre_process``): tensors of unknown rank are left alone.
    """
    from onnx import helper, numpy_helper

    rank = {v.name: len(v.type.tensor_type.shape.dim) for v in list(graph.value_info) + list(graph.input)
            if v.type.tensor_type.HasField("shape")}
    consts = {t.name: t for t in graph.initializer}
    nodes, n_done = [], 0
    for n in graph.node:
        if n.op_type == "ReduceMean" and rank.get(n.input[0]) == 4:
            attrs = {a.name: a for a in n.attribute}
            axes = list(attrs["axes"].ints) if "axes" in attrs else None
            if axes is None and len(n.input) > 1 and n.input[1] in consts:
                axes = numpy_helper.to_array(consts[n.input[1]]).tolist()
            keep = attrs["keepdims"].i if "keepdims" in attrs else 1
            if axes is not None and sorted(a % 4 for a in axes) == [2, 3]:
                pooled = n.output[0] if keep else n.output[0] + "_global_pool"
                nodes.append(helper.make_node("GlobalAveragePool", [n.input[0]], [pooled], name=n.name + "_global_pool"))
                if not keep:
                    nodes.append(helper.make_node("Flatten", [pooled], [n.output[0]], name=n.name + "_flatten", axis=1))
                n_done += 1
                continue
        nodes.append(n)
    if n_done:
        del graph.node[:]
        graph.node.extend(nodes)
    return n_done


def _stem_nodes(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes to keep fp32 for ``QuantRecipe.float_stem``.

    Every ungrouped Conv with one input channel, the Relu right after it, and the
    nodes between the graph input and it (input BatchNorm, Unsqueeze, Transpose):
    quantizing those would only add a QuantizeLinear/DequantizeLinear pair in front.
    """
    weights = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers = _consumers(graph)
    names: list[str] = []
    for n in graph.node:
        if n.op_type != "Conv" or n.input[1] not in weights:
            continue
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        if group != 1 or weights[n.input[1]].dims[1] != 1:
            continue
        names.append(n.name)
        after = consumers.get(n.output[0], [])
        if len(after) == 1 and after[0].op_type == "MaxPool":  # the order _pool_before_stem_relu leaves
            pooled = consumers.get(after[0].output[0], [])
            if len(pooled) == 1 and pooled[0].op_type == "Relu":
                names += [after[0].name, pooled[0].name]
        elif len(after) == 1 and after[0].op_type == "Relu":
            names.append(after[0].name)
        before, todo = [], [n.input[0]]
        while todo:  # ancestors up to the graph input
            p = producer.get(todo.pop())
            if p is not None and p not in before:
                before.append(p)
                todo.extend(i for i in p.input if i not in weights)
        # only a true stem: a 1-channel conv deeper in the net keeps its (quantized) producers
        if not any(p.op_type in ("Conv", "Gemm", "MatMul") for p in before):
            names.extend(p.name for p in before if p.name not in names)
    return names


def _posterior_tail(graph: onnx.GraphProto) -> list[str]:
    """Names of a Softmax inside the network and every node after it (an ensemble's mean posterior and its
    log, ``EmbeddingDNN(heads > 1)``): they stay fp32. Quantized, the posteriors took 256 steps, a small one
    became 0, and its log an infinite score; a wake word's threshold also needs them finer than 1/255 near 1."""
    consumers = _consumers(graph)
    names: list[str] = []
    todo = [n for n in graph.node if n.op_type == "Softmax"]
    while todo:
        n = todo.pop()
        if n.name not in names:
            names.append(n.name)
            todo.extend(c for o in n.output for c in consumers.get(o, []))
    return names


def _consumers(graph: onnx.GraphProto) -> dict[str, list]:
    """Tensor name -> the nodes that read it."""
    out: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def _pool_before_stem_relu(graph: onnx.GraphProto) -> int:
    """Rewrite ``Conv(1 channel) -> Relu -> MaxPool`` as ``Conv -> MaxPool -> Relu``; return how many.

    Exact: ``max(relu(a), relu(b)) == relu(max(a, b))``. With the Relu last the stem stays one fp32
    NCHWc chain (Conv, MaxPool, Relu fused) and the QuantizeLinear lands after it on a quarter of
    the values. In the other order onnxruntime's QDQ propagation moves the QuantizeLinear above the
    MaxPool, and a uint8 MaxPool in NCHW runs a generic kernel: 61 % of cnn4-s's int8 time.
    """
    weights = {t.name: t for t in graph.initializer}
    consumers = _consumers(graph)
    outputs = {o.name for o in graph.output}
    swapped = 0
    for conv in graph.node:
        if conv.op_type != "Conv" or conv.input[1] not in weights or weights[conv.input[1]].dims[1] != 1:
            continue
        after = consumers.get(conv.output[0], [])
        if len(after) != 1 or after[0].op_type != "Relu":
            continue
        relu = after[0]
        pool = consumers.get(relu.output[0], [])
        if len(pool) != 1 or pool[0].op_type != "MaxPool" or relu.output[0] in outputs:
            continue
        pool = pool[0]
        if len(pool.output) != 1:  # MaxPool's optional Indices output: leave it alone
            continue
        x, between, y = conv.output[0], relu.output[0], pool.output[0]
        pool.input[0], pool.output[0] = x, between
        relu.input[0], relu.output[0] = between, y
        # the inferred shape of the tensor between them was the unpooled one
        stale = [v for v in graph.value_info if v.name == between]
        for v in stale:
            graph.value_info.remove(v)
        swapped += 1
    if swapped:
        _toposort(graph)
    return swapped


def _toposort(graph: onnx.GraphProto) -> None:
    """Order the nodes of a graph so every input is produced before use (in place, stable)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for n in pending:
            if all(i in known for i in n.input):
                ordered.append(n)
                known.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ModelError(f"graph has a cycle or an undefined input at node {rest[0].name!r}")
        pending = rest
    copies = [onnx.NodeProto() for _ in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def recipe_metadata(r: QuantRecipe, calibration_clips: int | None = None) -> dict:
    """The ``hearkit.quantization`` entry of a model made with ``r``: its name, settings, op types and stem choice."""
    fields = dataclasses.asdict(r)
    d = {"recipe": r.name, **{k: fields[k] for k in (*QuantRecipe.SETTINGS, "op_types", "float_stem") if fields[k] is not None}}
    if calibration_clips is not None and r.static:
        d["calibration_clips"] = int(calibration_clips)
    return d


def iter_recipe_lines() -> Iterable[str]:
    """One line per recipe: name, format, types and why (for --help and README)."""
    for r in RECIPES.values():
        types = f"{r.activation_type}/{r.weight_type}" if r.static else "-"
        yield f"{r.name:24s} {r.format:9s} {types:11s} {r.why}"
