"""Generic export steps shared by every task: network to ONNX, front-end + network
merged into one pipeline graph, metadata, and checks against torch.

Task-agnostic on purpose: the one export skeleton (``hearkit.export.exporter``)
calls these for every task, whatever its output (logits, log-probs). The pitfalls they guard against are docs/design.md §6:
``external_data=False`` (one self-contained file), an example batch >= 2 with
dynamic batch and time axes, and a check of every graph at several input
lengths and batch sizes (the exporter can silently bake in the example length).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from hearkit.errors import ModelError
from hearkit import artifacts
from hearkit.export.onnx_io import save_model, set_metadata, sha256_file
from hearkit.files import is_temp
from hearkit.metadata import ModelInfo

FEATURES = "logmel"        # name of the log-mel tensor between front-end and network
WAVEFORM = "waveform"      # name of the pipeline input
NET_PREFIX = "net/"        # prefix given to the network's names when merged (avoids clashes)
EXAMPLE_BATCH = 2          # example batch for export: batch 1 would be baked in (docs/design.md §6)
CHECK_BATCHES = (1, 3)     # batch sizes every exported graph is checked at
CHECK_SECONDS = (0.37, 1.0, 2.3)  # input lengths (s) every exported graph is checked at


def export_network(
    net: torch.nn.Module,
    n_mels: int,
    example_frames: int = 98,
    output_name: str = "logits",
    input_name: str = FEATURES,
    time_axis_out: int | None = None,
    dynamo: bool = True,
    opset: int | None = None,
) -> onnx.ModelProto:
    """Export a log-mel-in network with the dynamo exporter, batch and time dynamic.

    Args:
        net: module mapping (batch, frames, n_mels) float32 to one output tensor.
        n_mels: feature size (static axis).
        example_frames: frames of the example input (Default: 98, 1 s at 10 ms hop).
        output_name: name of the graph output (``logits`` for classifiers, ``log_probs`` for CTC).
        input_name: name of the graph input (Default: ``logmel``).
        time_axis_out: output axis that follows the input time (CTC), named ``out_frames``; None if none.
        dynamo: use the dynamo exporter (Default: True). Multi-layer or bidirectional
            LSTM/GRU need ``False`` (the TorchScript exporter) to keep time dynamic (docs/design.md §6).
        opset: ONNX opset (Default: the exporter's; 17 for ``dynamo=False``).

    Returns:
        the ONNX model (single file, opset of the exporter), dims named ``batch`` / ``frames``.
    """
    net = net.eval()
    x = torch.randn(EXAMPLE_BATCH, example_frames, n_mels, generator=torch.Generator().manual_seed(0))
    try:
        if dynamo:
            dyn = torch.export.Dim.DYNAMIC
            kw = {"opset_version": opset} if opset else {}
            prog = torch.onnx.export(
                net,
                (x,),
                dynamo=True,
                external_data=False,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes=({0: dyn, 1: dyn},),
                verbose=False,
                **kw,
            )
            model = prog.model_proto
        else:
            import io

            buf = io.BytesIO()
            out_axes = {0: "batch"} if time_axis_out is None else {0: "batch", time_axis_out: "out_frames"}
            torch.onnx.export(
                net,
                (x,),
                buf,
                dynamo=False,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: "batch", 1: "frames"}, output_name: out_axes},
                opset_version=opset or 17,
            )
            model = onnx.load_from_string(buf.getvalue())
    except Exception as e:
        raise ModelError(f"ONNX export of {type(net).__name__} failed: {str(e).splitlines()[0][:300]}") from e
    _strip_node_debug_info(model.graph)
    _name_dims(model.graph.input[0], {0: "batch", 1: "frames"})
    out_dims = {0: "batch"}
    if time_axis_out is not None:
        out_dims[time_axis_out] = "out_frames"
    _name_dims(model.graph.output[0], out_dims)
    return model


def _strip_node_debug_info(graph: onnx.GraphProto) -> None:
    """Drop the exporter's per-node debug entries (stack traces, fx node, class hierarchy, scopes).

    They are a fifth of a cnn4-s int8 file (13 of 65 KB) and nothing reads them; the firmware
    budget is 64 KB for the network (docs/design.md §5).
    """
    for n in graph.node:
        del n.metadata_props[:]
        n.doc_string = ""
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _strip_node_debug_info(a.g)
            for g in a.graphs:
                _strip_node_debug_info(g)


def _name_dims(value_info, names: dict[int, str]) -> None:
    dims = value_info.type.tensor_type.shape.dim
    for axis, name in names.items():
        if axis < len(dims) and not dims[axis].HasField("dim_value"):
            dims[axis].dim_param = name


def _align(a: onnx.ModelProto, b: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Bring two models to the same default-domain opset and IR version (merge_models needs both)."""
    def opset(m):
        return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)

    va, vb = opset(a), opset(b)
    if va is not None and vb is not None and va != vb:
        target = max(va, vb)
        from onnx import version_converter

        if va < target:
            a = version_converter.convert_version(a, target)
        else:
            b = version_converter.convert_version(b, target)
    ir = max(a.ir_version, b.ir_version)
    a.ir_version = b.ir_version = ir
    # other domains (e.g. com.microsoft from a quantizer) must be listed in both
    doms = {}
    for m in (a, b):
        for o in m.opset_import:
            doms[o.domain] = max(doms.get(o.domain, 0), o.version)
    for m in (a, b):
        have = {o.domain for o in m.opset_import}
        for d, v in doms.items():
            if d not in have:
                m.opset_import.append(onnx.helper.make_opsetid(d, v))
    return a, b


def merge_frontend(
    frontend: onnx.ModelProto,
    network: onnx.ModelProto,
    features: str = FEATURES,
    output_name: str | None = None,
) -> onnx.ModelProto:
    """Fuse front-end (waveform -> ``features``) and network (``features`` -> output) into one graph.

    The network's names get the prefix ``net/`` so nothing clashes; its output
    keeps its own name (``logits``/``log_probs``). Metadata of both is dropped:
    the caller sets the pipeline's own.

    Args:
        frontend: model with input ``waveform`` (batch, samples) and output ``features``.
        network: model with one input (batch, frames, n_mels), the features.
        features: name of the front-end output to connect.
        output_name: name of the pipeline output (Default: the network's output name).
    """
    fe, net = onnx.ModelProto(), onnx.ModelProto()
    fe.CopyFrom(frontend)
    net.CopyFrom(network)  # copies: the callers' models stay untouched
    fe_outs = [o.name for o in fe.graph.output]
    if features not in fe_outs:
        raise ModelError(f"front-end graph has outputs {fe_outs}, expected '{features}'")
    if len(net.graph.input) != 1 or len(net.graph.output) != 1:
        raise ModelError("the network graph must have exactly one input and one output")
    net_in, net_out = net.graph.input[0].name, net.graph.output[0].name
    out_name = output_name or net_out
    del fe.metadata_props[:]
    del net.metadata_props[:]
    fe, net = _align(fe, net)
    net = onnx.compose.add_prefix(net, NET_PREFIX)
    merged = onnx.compose.merge_models(
        fe,
        net,
        io_map=[(features, NET_PREFIX + net_in)],
        outputs=[NET_PREFIX + net_out],
        producer_name="hearkit",
    )
    _rename_value(merged.graph, NET_PREFIX + net_out, out_name)
    return merged


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a tensor everywhere in a graph (node inputs/outputs, graph outputs, value_info)."""
    for n in graph.node:
        for i, v in enumerate(n.input):
            if v == old:
                n.input[i] = new
        for i, v in enumerate(n.output):
            if v == old:
                n.output[i] = new
    for coll in (graph.output, graph.value_info, graph.input):
        for vi in coll:
            if vi.name == old:
                vi.name = new


def save_with_info(model: onnx.ModelProto, info: ModelInfo, path: str | os.PathLike) -> Path:
    """Attach ``info`` as ``hearkit.*`` metadata and save as one checked file."""
    set_metadata(model, info.to_props())
    return save_model(model, path)


# -- checks against torch --------------------------------------------------------
@dataclass(frozen=True)
class GraphCheck:
    """The worst difference between an ONNX graph and its torch counterpart over all checked shapes."""

    name: str
    max_abs_err: float
    shapes: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict:
        return {"graph": self.name, "max_abs_err": self.max_abs_err, "input_shapes": [list(s) for s in self.shapes]}


def probe_waveforms(sample_rate: int, batch: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Deterministic test audio (batch, samples) float32: a chirp plus noise, peak ~0.5 (own RNG, global state untouched)."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * sample_rate)))
    t = np.arange(n) / sample_rate
    out = []
    for b in range(batch):
        f0, f1 = 100.0 * (b + 1), 0.4 * sample_rate
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(seconds, 1e-3)))
        out.append(0.3 * np.sin(phase) + 0.05 * rng.standard_normal(n))
    return np.stack(out).astype(np.float32)


def check_graph(
    name: str,
    model: onnx.ModelProto | str | os.PathLike,
    reference: Callable[[np.ndarray], np.ndarray],
    inputs: Sequence[np.ndarray],
) -> GraphCheck:
    """Run an ONNX graph (CPU, full optimisation) and ``reference`` on each input; the worst |difference|.

    Raises ``ModelError`` when an output shape differs (e.g. a baked-in batch or length).
    """
    import onnxruntime as ort

    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else os.fspath(model)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    worst, shapes = 0.0, []
    for x in inputs:
        got = sess.run(None, {in_name: x})[0]
        ref = np.asarray(reference(x))
        if got.shape != ref.shape:
            raise ModelError(f"{name}: ONNX output shape {got.shape} != torch {ref.shape} for input {x.shape}")
        bad = [k for k, v in (("ONNX", got), ("torch", ref)) if not np.isfinite(v).all()]
        if bad:
            # max() would drop the NaN and report "0.00 error" (e.g. a BatchNorm with a negative variance)
            raise ModelError(f"{name}: {' and '.join(bad)} give NaN or infinite outputs for the check input {x.shape}; "
                             "the checkpoint's weights are broken")
        worst = max(worst, float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0)
        shapes.append(tuple(x.shape))
    return GraphCheck(name, worst, tuple(shapes))


def torch_fn(module: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy-in, numpy-out wrapper of a torch module in eval mode (no grad)."""
    module = module.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    return run


def check_waveform_graphs(
    graphs: dict[str, onnx.ModelProto | str | os.PathLike],
    references: dict[str, Callable[[np.ndarray], np.ndarray]],
    sample_rate: int,
    seconds: Sequence[float] = CHECK_SECONDS,
    batches: Sequence[int] = CHECK_BATCHES,
) -> list[GraphCheck]:
    """Check waveform-input graphs (front-end, pipeline) at several lengths and batch sizes."""
    inputs = [probe_waveforms(sample_rate, b, s, seed=i) for i, (b, s) in enumerate((b, s) for b in batches for s in seconds)]
    return [check_graph(k, graphs[k], references[k], inputs) for k in graphs]


def check_feature_graph(
    name: str,
    model: onnx.ModelProto | str | os.PathLike,
    reference: Callable[[np.ndarray], np.ndarray],
    n_mels: int,
    frames: Sequence[int] = (37, 98, 230),
    batches: Sequence[int] = CHECK_BATCHES,
) -> GraphCheck:
    """Check a log-mel-input graph (the network) at several frame counts and batch sizes."""
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((b, t, n_mels)).astype(np.float32) * 3 - 5 for b in batches for t in frames]
    return check_graph(name, model, reference, inputs)


class WaveformModel(torch.nn.Module):
    """torch front-end + network (any task): the reference a pipeline graph is checked against."""

    def __init__(self, net: torch.nn.Module, cfg):
        super().__init__()
        from hearkit.training.frontend import frontend_module

        self.frontend, self.net = frontend_module(cfg), net

    def forward(self, waveform):
        return self.net(self.frontend(waveform))


# -- the steps every task's exporter ends with ------------------------------------
def scalar_metrics(ckpt: dict) -> dict:
    """The checkpoint's training metrics that are plain numbers or strings (they go into metadata)."""
    return {k: v for k, v in (ckpt.get("metrics") or {}).items() if isinstance(v, (int, float, str))}


def enforce_checks(checks: list[GraphCheck], atol: float, log, skip: Sequence[str] = ()) -> None:
    """Log every graph check and raise ``ModelError`` when a graph (not in ``skip``) is further than ``atol`` from torch."""
    for c in checks:
        log(f"  {c.name}: max |onnx - torch| = {c.max_abs_err:.2e} over shapes {[list(s) for s in c.shapes]}")
    bad = [c for c in checks if c.name not in skip and not c.max_abs_err <= atol]
    if bad:
        raise ModelError(
            "exported graphs disagree with torch: "
            + ", ".join(f"{c.name} max error {c.max_abs_err:.3g} > {atol}" for c in bad)
        )


def save_variant(out: Path, frontend: onnx.ModelProto, qnet: onnx.ModelProto, info: Callable[..., ModelInfo],
                 qmeta: dict, suffix: str, output_name: str) -> dict:
    """Save ``model.<suffix>.onnx`` and the fused ``pipeline.<suffix>.onnx`` (fp32 front-end); return the variant entry."""
    names = artifacts.variant_files(suffix)
    save_with_info(qnet, info(input="logmel", quantization=qmeta), out / names[artifacts.MODEL])
    qpipe = merge_frontend(frontend, qnet, FEATURES, output_name)
    save_with_info(qpipe, info(quantization=qmeta), out / names[artifacts.PIPELINE])
    return {"recipe": qmeta.get("recipe"), **names}


def write_summary(out: Path, summary: dict, started: float, log) -> dict:
    """Add every graph's size and sha256 and the export time to ``summary``; write ``export.json``."""
    summary["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(out.glob("*.onnx"))
                        if not is_temp(p.name)}
    if summary.get("checkpoint"):
        # absolute (found from any working directory) and relative to the export (found when the
        # run folder moves as a whole): hearkit.artifacts.export_checkpoint tries both
        ck = Path(summary["checkpoint"]).resolve()
        summary["checkpoint"] = str(ck)
        summary["checkpoint_relative"] = os.path.relpath(ck, out.resolve())
    summary["export_seconds"] = round(time.perf_counter() - started, 2)
    artifacts.write_export(out, summary)
    log(f"export: wrote {len(summary['files'])} models to {out} in {summary['export_seconds']} s")
    return summary
