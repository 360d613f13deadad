"""The default int8 recipe's graph, after onnxruntime's optimiser, has the fused int8 structure its speed relies on.

Measured on DS-CNN-S: a 1-input-channel int8 stem conv runs a generic
im2col path 2.5x slower than fp32, and a ReduceMean head forces
DequantizeLinear + Transpose + fp32 ReduceMean + QuantizeLinear. The recipe keeps
the stem fp32 and turns the mean into GlobalAveragePool, so everything between
the stem and the logits is int8 kernels.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

N_MELS, FRAMES, N_LABELS = 40, 49, 5


def _optimized_nodes(path, tmp_path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # what hearkit's sessions use
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return onnx.load(str(tmp_path / "optimized.onnx")).graph.node


def _optimized_ops(path, tmp_path) -> Counter:
    return Counter(n.op_type for n in _optimized_nodes(path, tmp_path))


def _int8_export(tmp_path_factory, model: str):
    """An untrained ``model`` exported and quantized with the default recipe: (folder, net, calibration features)."""
    from hearkit.export.pipeline import export_network
    from hearkit.export.quantize import DEFAULT_RECIPE, quantize_network
    from hearkit.training.models import build_model

    torch.manual_seed(0)
    net = build_model(model, N_LABELS, N_MELS).eval()
    d = tmp_path_factory.mktemp(model)
    onnx.save(export_network(net, N_MELS, example_frames=FRAMES), str(d / "model.onnx"))
    feats = np.random.default_rng(0).standard_normal((32, FRAMES, N_MELS)).astype(np.float32)
    quantize_network(d / "model.onnx", d / "model.int8.onnx", DEFAULT_RECIPE, feats)
    return d, net, feats


@pytest.fixture(scope="module")
def dscnn_int8(tmp_path_factory):
    return _int8_export(tmp_path_factory, "dscnn-s")


@pytest.fixture(scope="module")
def cnn4s_int8(tmp_path_factory):
    return _int8_export(tmp_path_factory, "cnn4-s")


def test_default_recipe_fuses_dscnn_into_int8_kernels(dscnn_int8, tmp_path):
    d, _, _ = dscnn_int8
    ops = _optimized_ops(d / "model.int8.onnx", tmp_path)
    # 1 stem + 4 x (depthwise + pointwise): the stem stays fp32, the other 8 run as QLinearConv
    assert ops["Conv"] == 1 and ops["QLinearConv"] == 8, ops
    assert ops["QLinearGlobalAveragePool"] == 1 and ops["ReduceMean"] == 0, ops
    assert ops["QGemm"] == 1 and ops["Gemm"] == 0, ops
    # one QuantizeLinear after the fp32 stem, one DequantizeLinear for the logits: nothing in between
    assert ops["QuantizeLinear"] == 1 and ops["DequantizeLinear"] == 1, ops


@pytest.mark.parametrize("exported", ["dscnn_int8", "cnn4s_int8"])
def test_int8_graph_still_computes_the_network(exported, request):
    d, net, feats = request.getfixturevalue(exported)
    s = ort.InferenceSession(str(d / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    got = s.run(None, {s.get_inputs()[0].name: feats})[0]
    with torch.inference_mode():
        want = net(torch.from_numpy(feats)).numpy()
    # int8 of an untrained net: logits within 10 % of their spread (loose: 8-bit activations, random weights)
    assert np.abs(got - want).max() <= 0.1 * (want.max() - want.min()), np.abs(got - want).max()


def test_mean_to_global_pool_is_exact():
    from onnx import TensorProto, helper

    from hearkit.export.quantize import _mean_to_global_pool

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 5, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    g = helper.make_graph([helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)], "g", [x], [y], [axes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    xv = np.random.default_rng(1).standard_normal((2, 3, 5, 7)).astype(np.float32)
    assert _mean_to_global_pool(m.graph) == 1
    assert [n.op_type for n in m.graph.node] == ["GlobalAveragePool", "Flatten"]
    out = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": xv})[0]
    np.testing.assert_allclose(out, xv.mean(axis=(2, 3)), rtol=1e-6, atol=1e-6)  # float32 summation order only


def test_cnn4s_stem_pools_in_fp32_before_the_quantizer(cnn4s_int8, tmp_path):
    # Conv -> Relu -> MaxPool as exported: onnxruntime moved the QuantizeLinear above the pool and
    # ran a generic uint8 NCHW MaxPool, 61 % of the int8 network's time (0.45 ms against 0.21 ms)
    d, _, _ = cnn4s_int8
    ops = Counter((n.domain, n.op_type) for n in _optimized_nodes(d / "model.int8.onnx", tmp_path))
    assert ops[("", "MaxPool")] == 0, ops  # no pool left outside the fp32 NCHWc stem and the NHWC int8 chain
    assert ops[("com.microsoft.nchwc", "MaxPool")] == 1 and ops[("com.microsoft", "NhwcMaxPool")] == 3, ops
    assert ops[("com.microsoft", "QLinearConv")] == 3 and ops[("", "QuantizeLinear")] == 1, ops


def test_pool_before_stem_relu_is_exact(tmp_path):
    from hearkit.export.pipeline import export_network
    from hearkit.export.quantize import _pool_before_stem_relu
    from hearkit.training.models import build_model

    torch.manual_seed(1)
    m = export_network(build_model("cnn4-s", N_LABELS, N_MELS).eval(), N_MELS, example_frames=FRAMES)
    x = np.random.default_rng(2).standard_normal((4, FRAMES, N_MELS)).astype(np.float32)
    before = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = before.run(None, {before.get_inputs()[0].name: x})[0]
    assert _pool_before_stem_relu(m.graph) == 1  # the stem only; deeper blocks are int8 already
    types = [n.op_type for n in m.graph.node if n.op_type in ("Conv", "Relu", "MaxPool")]
    assert types[:3] == ["Conv", "MaxPool", "Relu"], types
    onnx.checker.check_model(m)
    after = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    got = after.run(None, {after.get_inputs()[0].name: x})[0]
    np.testing.assert_array_equal(got, want)  # max and relu commute: bit-identical, no tolerance
