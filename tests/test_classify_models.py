"""Model registry: parameter counts, shapes, dynamo ONNX export with dynamic batch and frames."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hearkit.errors import ConfigError  # noqa: E402
from hearkit.training.models import MODELS, build_model, count_parameters, model_from_config  # noqa: E402

N_MELS = 40
# Parameter counts at 12 labels, 40 mels. BC-ResNet matches the paper's 9.2K/27.3K/54.2K/321K
# (τ = 1/2/3/8); DS-CNN-S the 23K of Hello Edge and docs/design.md §5.
EXPECTED_PARAMS = {"dscnn-s": 23_182, "dscnn-m": 136_582, "dscnn-l": 413_738, "bcresnet-1": 9_274,
                   "bcresnet-2": 27_366, "bcresnet-3": 54_290, "bcresnet-8": 321_390, "cnn4": 98_942,
                   "cnn4-s": 36_350}
# The default suite covers each kind of block once (DS-CNN, BC-ResNet with SubSpectralNorm
# reshapes, CNN4 with max-pooling); the other sizes repeat the same ops and run with -m slow.
FAST = ("dscnn-s", "bcresnet-1", "cnn4")
# student-dnn is built around a distilled student's checkpoint and needs a 2-s window: tests/test_student.py
OTHERS = sorted(set(MODELS) - set(FAST) - {"student-dnn"})
ALLOWED_OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "ReduceMean", "GlobalAveragePool", "Gemm",
               "Reshape", "Transpose", "Unsqueeze", "Add", "Shape", "Concat", "Gather", "Slice", "Squeeze",
               "LayerNormalization"}  # emb-dnn's head: float between QDQ pairs (its int8 export: tests/test_embedding.py)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts(name):
    assert count_parameters(build_model(name, 12, N_MELS)) == EXPECTED_PARAMS[name]


def _shapes_and_rebuild(name):
    torch.manual_seed(0)
    m = build_model(name, 5, N_MELS).eval()
    for frames in (20, 97, 151):
        assert m(torch.randn(3, frames, N_MELS)).shape == (3, 5)
    m2 = model_from_config(m.config())
    m2.load_state_dict(m.state_dict())  # the config rebuilds the same architecture
    assert m.config()["name"] == name


@pytest.mark.parametrize("name", FAST)
def test_shapes_any_length_and_rebuild(name):
    _shapes_and_rebuild(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS)
def test_shapes_any_length_and_rebuild_slow(name):
    _shapes_and_rebuild(name)


def test_other_mel_counts_and_errors():
    assert build_model("bcresnet-1", 3, 64)(torch.randn(2, 50, 64)).shape == (2, 3)
    assert build_model("dscnn-s", 3, 13)(torch.randn(2, 50, 13)).shape == (2, 3)
    with pytest.raises(ConfigError, match="available models"):
        build_model("resnet-50", 3, 40)
    with pytest.raises(ConfigError, match="at least 2 labels"):
        build_model("cnn4", 1, 40)
    with pytest.raises(ConfigError, match="n_mels >= 16"):
        build_model("cnn4", 3, 8)


def _export_and_compare(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    torch.manual_seed(0)
    m = build_model(name, 12, N_MELS)
    m.train()
    with torch.no_grad():  # move BatchNorm statistics away from identity so export of them is tested
        for _ in range(3):
            m(torch.randn(8, 97, N_MELS) * 3 - 5)
    m.eval()
    path = tmp_path / f"{name}.onnx"
    batch = torch.export.Dim("batch", min=1, max=4096)
    frames = torch.export.Dim("frames", min=16, max=100_000)
    torch.onnx.export(m, (torch.randn(2, 97, N_MELS),), str(path), dynamo=True, external_data=False,
                      input_names=["logmel"], output_names=["logits"], dynamic_shapes={"x": {0: batch, 1: frames}})
    assert not list(tmp_path.glob("*.data"))  # single file, no external data (docs/design.md §6)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops <= ALLOWED_OPS, f"ops outside the quantizable set: {ops - ALLOWED_OPS}"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, t in ((1, 97), (3, 97), (1, 151), (3, 51)):
        x = torch.randn(b, t, N_MELS) * 3 - 5
        with torch.no_grad():
            ref = m(x).numpy()
        got = sess.run(None, {"logmel": x.numpy()})[0]
        assert got.shape == (b, 12)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)  # fp32 graph vs eager: float reordering only


@pytest.mark.parametrize("name", FAST)
def test_onnx_export_dynamic(name, tmp_path):
    _export_and_compare(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS)
def test_onnx_export_dynamic_slow(name, tmp_path):
    _export_and_compare(name, tmp_path)


def test_cli_model_choices_are_the_zoo():
    """`train classify --model` reads the registry itself: its help lists every family, and a name
    outside it is one usage line naming them."""
    from click.testing import CliRunner

    from hearkit.cli import main

    r = CliRunner().invoke(main, ["train", "classify", "--help"])
    assert r.exit_code == 0 and "[" + "|".join(MODELS) + "]" in " ".join(r.output.split()).replace("| ", "|"), r.output
    r = CliRunner().invoke(main, ["train", "classify", "--data", ".", "--model", "nope"])
    assert r.exit_code == 2 and "'nope' is not one of" in r.output and "'cnn4-s'" in r.output, r.output


def test_an_ensemble_of_heads_trains_each_and_answers_their_mean():
    """emb-dnn with heads=3: in training mode every member's logits (each gets its own loss); in eval mode the
    log of their mean posterior (tolerance 1e-6: float32 softmax); one head keeps the one-head state_dict."""
    torch.manual_seed(0)
    one = build_model("emb-dnn", 4, 96)
    assert set(one.state_dict()) == {k for k in one.state_dict() if not k.startswith("members.")}
    m = build_model("emb-dnn", 4, 96, heads=3)
    x = torch.randn(5, 16, 96)
    m.train()
    assert m(x).shape == (3, 5, 4)
    m.eval()
    with torch.no_grad():
        members = torch.stack([m.fc(m.body(x.flatten(1))), *(h(x.flatten(1)) for h in m.members)])
        expected = torch.softmax(members, -1).mean(0)
        got = m(x)
    assert got.shape == (5, 4)
    torch.testing.assert_close(torch.softmax(got, -1), expected, atol=1e-6, rtol=0)
    assert not torch.allclose(members[0], members[1])  # members start from their own weights
    again = model_from_config(m.config())
    again.load_state_dict(m.state_dict())
    assert m.config()["heads"] == 3 and count_parameters(m) == 3 * count_parameters(one)
