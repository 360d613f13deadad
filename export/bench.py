"""torch-vs-ONNX benchmarks: the front-end backends, a classifier export, a CTC export, side by side in one run.

``bench_frontend`` times every front-end backend (numpy, torch, the two ONNX graphs,
exported files) with librosa and ``torch.stft`` beside them; ``bench_classify`` the
latency of one clip for torch eager, ONNX fp32 and ONNX int8 (pipeline and network)
and the CPU share of keyword spotting; ``bench_transcribe`` the real-time factor and
peak memory of the same three transcribing the same audio. All timing goes through
``hearkit.evaluate.bench.time_calls`` (interleaved rounds). The torch rows are skipped,
with the reason, when torch is missing or the export's checkpoint cannot be loaded:
this module imports torch, onnx and librosa only inside functions, so the ONNX rows
also run on a device.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hearkit import artifacts
from hearkit.errors import ModelError
from hearkit.evaluate.bench import (
    PEAK_RSS_SNIPPET,
    REFERENCE_SECONDS,
    STREAM_SECONDS,
    bench_signal,
    onnx_runner,
    run_child,
    stream_cpu_share,
    time_calls,
)
from hearkit.plots import save_figure

PORTABLE = "onnx fp32 (no NCHWc)"  # fp32 at optimisation level 'extended'
CLASSIFY_REPEAT = 400     # classify: timed runs per model
INTERLEAVE_ROUNDS = 20    # classify: timed rounds; every candidate runs in every round
CLASSIFY_WARMUP = 10      # classify: untimed calls of each candidate first
TRANSCRIBE_REPEAT = 10    # transcribe: timed rounds (each runs every variant once)

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


# -- the torch side, shared by the benchmarks ----------------------------------------
def export_checkpoint(d) -> tuple[dict | None, str]:
    """(checkpoint dict, "") of the checkpoint named in ``d/export.json``, or (None, why not).

    A missing torch or a missing or changed checkpoint is a reason to skip the torch
    row of a benchmark, not an error.
    """
    from importlib.util import find_spec

    if find_spec("torch") is None:
        return None, 'torch not installed (pip install "hearkit[train]")'
    if not artifacts.summary_path(d).is_file():
        return None, f"no {artifacts.EXPORT_SUMMARY} (checkpoint unknown)"
    from hearkit.export.verify import load_export_checkpoint

    try:
        return load_export_checkpoint(artifacts.read_export(d), folder=d), ""
    except ModelError as e:
        return None, str(e)


def _torch_one_thread():
    import importlib

    torch = importlib.import_module("torch")  # measured only; hearkit's runtime does not need it
    torch.set_num_threads(1)
    return torch


class TorchSession:
    """Stands in for an onnxruntime session: ``run(None, feed)`` computes the outputs with a torch module.

    Swapping a runtime object's session, rather than writing a torch loop beside it,
    keeps chunking, streaming and decoding identical to the ONNX rows, so the
    comparison is fair. One input, one output (the log-probs or logits).
    """

    def __init__(self, module, torch):
        self.module, self.torch = module.eval(), torch

    def run(self, output_names, feed: dict):
        (x,) = feed.values()
        with self.torch.inference_mode():
            return [self.module(self.torch.from_numpy(np.ascontiguousarray(x))).numpy()]


def torch_transcriber(export_dir, fp32_model):
    """(Transcriber computing with torch eager on 1 thread, "") or (None, why torch is skipped).

    Args:
        export_dir: folder with ``export.json`` naming the checkpoint (sha256 checked).
        fp32_model: the export's ``pipeline.onnx``; its metadata (vocabulary, hop,
            subsampling) configures the transcriber, torch computes the log-probs.
    """
    ckpt, why = export_checkpoint(export_dir)
    if ckpt is None:
        return None, why
    from hearkit.export.ctc import load_ctc
    from hearkit.export.pipeline import WaveformModel
    from hearkit.transcribe import Transcriber

    torch = _torch_one_thread()
    try:
        net, cfg = load_ctc(ckpt)
    except ModelError as e:
        return None, str(e)
    tr = Transcriber(fp32_model, threads=1)
    if list(ckpt["vocab"]) != list(tr.vocab) or cfg != tr.info.frontend:
        return None, f"checkpoint in {artifacts.EXPORT_SUMMARY} does not match {Path(fp32_model).name} (vocabulary or front-end differ)"
    tr.session = TorchSession(WaveformModel(net, cfg), torch)
    return tr, ""


def torch_classifier(d, window: int):
    """((pipeline fn, network fn), "") timing the checkpoint in ``d/export.json`` on one clip, or (None, reason).

    The callables run the torch modules directly on tensors made once (no session shim):
    the network of a keyword model takes a fraction of a millisecond, so every
    conversion inside the timed call would show.
    """
    ckpt, why = export_checkpoint(d)
    if ckpt is None:
        return None, why
    from hearkit.export.classify import load_classifier
    from hearkit.export.pipeline import WaveformModel

    torch = _torch_one_thread()
    net, cfg = load_classifier(ckpt)
    pipe = WaveformModel(net, cfg).eval()
    wav = torch.from_numpy((0.1 * np.random.default_rng(0).standard_normal((1, window))).astype(np.float32))
    feats = torch.randn(1, cfg.num_frames(window), cfg.n_mels)

    def run_pipe():
        with torch.inference_mode():
            pipe(wav)

    def run_net():
        with torch.inference_mode():
            net(feats)

    return (run_pipe, run_net), ""


def _export_dir(model_dir) -> tuple[Path, list[tuple[str, Path, Path | None]]]:
    """(export folder, its variants) of a folder or a model file in one; ModelError without a pipeline."""
    d = Path(model_dir)
    if d.is_file():  # a model file: bench every variant of the export folder it lives in
        d = d.parent
    variants = artifacts.list_variants(d)
    if not variants:
        raise ModelError(f"{d}: no pipeline*.onnx here; pass a folder written by `hearkit export`")
    return d, variants


# -- hearkit bench frontend ----------------------------------------------------------
@contextlib.contextmanager
def blas_threads(threads: int):
    """Limit numpy's BLAS pool (numpy, librosa) to ``threads`` too, so "1 thread" means it for all.

    Unlimited OpenBLAS threads spin and, on a loaded machine, made librosa look 15x slower.
    Yields a note for the report.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield "not limited (threadpoolctl not installed)"
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield f"{threads} thread(s)"


def frontend_candidates(cfg, x: np.ndarray, threads: int) -> dict:
    """name -> (callable or None, note). A None callable is skipped with the note as the reason."""
    from hearkit.frontend import logmel

    out: dict = {"numpy": (lambda: logmel(x, cfg), "hearkit numpy reference (float64 inside)")}
    try:
        import torch

        torch.set_num_threads(threads)
        from hearkit.training.frontend import LogMel

        mod = LogMel(cfg).eval()
        xt = torch.from_numpy(x[None])
        win = torch.tensor(np.hanning(cfg.n_fft + 1)[:-1], dtype=torch.float32)

        def run_torch():
            with torch.inference_mode():
                mod(xt)

        def run_stft():
            with torch.inference_mode():
                s = torch.stft(xt, cfg.n_fft, cfg.hop_length, window=win, center=cfg.center, return_complex=True)
                s.real.square() + s.imag.square()

        out["torch"] = (run_torch, "hearkit.training.frontend.LogMel")
        out["torch.stft power (ref)"] = (run_stft, "torch.stft + |.|^2 only, no mel or log")
    except ImportError:
        out["torch"] = (None, 'torch not installed (pip install "hearkit[train]")')
        out["torch.stft power (ref)"] = (None, "torch not installed")
    try:
        import onnxruntime as ort

        from hearkit.export.frontend import build_frontend_graph, describe_plan

        for backend in ("onnx-conv", "onnx-stft"):
            model = build_frontend_graph(cfg, backend=backend)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            feed = {"waveform": x[None]}
            note = describe_plan(cfg) if backend == "onnx-conv" else "opset-17 STFT op"
            out[backend] = ((lambda s=sess, f=feed: s.run(None, f)), f"onnxruntime {ort.__version__}, {note}")
    except ImportError:
        out["onnx-conv"] = (None, 'onnx not installed (pip install "hearkit[train]")')
        out["onnx-stft"] = (None, "onnx not installed")
    try:
        import librosa

        def run_librosa():
            librosa.feature.melspectrogram(
                y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                center=cfg.center, pad_mode=cfg.pad_mode, power=2.0, n_mels=cfg.n_mels, fmin=cfg.f_min,
                fmax=cfg.f_max, htk=cfg.mel_scale == "htk", norm="slaney" if cfg.mel_norm == "slaney" else None,
            )

        out["librosa (ref)"] = (run_librosa, f"librosa {librosa.__version__} melspectrogram (power mel, no log)")
    except ImportError:
        out["librosa (ref)"] = (None, "librosa not installed")
    return out


def bench_frontend(cfg, seconds: float = REFERENCE_SECONDS, threads: int = 1, repeat: int = 20,
                   models: Sequence[str | os.PathLike] = (), log: Log = _quiet) -> dict:
    """Time per 10 s of audio for every front-end backend, with librosa and torch.stft beside them.

    Args:
        cfg: the front-end config (``FrontendConfig``).
        seconds: length of the test signal, seeded white noise (Default: 10).
        threads: threads for onnxruntime, torch and numpy's BLAS (Default: 1).
        repeat: timed rounds; the median is reported (Default: 20).
        models: exported front-end graphs to time as well (they run without torch or onnx).
        log: progress messages (Default: none).

    Returns:
        ``{"seconds", "threads", "blas_threads", "repeat", "config", "results": [{"backend",
        "ms_per_10s", "cpu_ms_per_10s", "note"}, ...]}``; a skipped backend has None figures.
    """
    from hearkit.frontend_onnx import OnnxFrontend

    n = int(round(seconds * cfg.sample_rate))
    x = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    scale = REFERENCE_SECONDS / (n / cfg.sample_rate)
    candidates = frontend_candidates(cfg, x, threads)
    for path in models:
        fe = OnnxFrontend(path, threads=threads)
        xm = (0.1 * np.random.default_rng(0).standard_normal(int(round(seconds * fe.cfg.sample_rate)))).astype(np.float32)
        # the file's own config may differ from the options: scale by its own rate
        candidates[f"file {path}"] = ((lambda f=fe, a=xm: f(a)), f"exported graph, n_fft {fe.cfg.n_fft}, hop {fe.cfg.hop_length}")
    live = {name: fn for name, (fn, _) in candidates.items() if fn is not None}
    log(f"timing {', '.join(live)} ({repeat} rounds) ...")
    with blas_threads(threads) as blas_note:
        times = time_calls(live, rounds=repeat)
    rows = []
    for name, (fn, note) in candidates.items():
        t = times.get(name)
        rows.append({
            "backend": name,
            "ms_per_10s": None if t is None else t.median * 1e3 * scale,
            "cpu_ms_per_10s": None if t is None else t.cpu_median * 1e3 * scale,
            "note": note,
        })
    return {"seconds": n / cfg.sample_rate, "threads": threads, "blas_threads": blas_note, "repeat": repeat,
            "config": cfg.to_dict(), "results": rows}


def plot_frontend_bench(report: dict, path: str | os.PathLike) -> None:
    """Horizontal bars of wall and CPU ms per 10 s of ``bench_frontend``'s measured rows, as PNG (needs hearkit[plot])."""
    from hearkit.errors import require

    mpl = require("matplotlib", "plot")
    mpl.use("Agg")  # files only; a device has no display
    import matplotlib.pyplot as plt

    c = report["config"]
    title = (f"log-mel front-end per 10 s of audio, {report['threads']} thread(s) "
             f"(n_fft {c['n_fft']}, hop {c['hop_length']}, {c['n_mels']} mels)")
    rows = [r for r in report["results"] if r["ms_per_10s"] is not None]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], [r["ms_per_10s"] for r in rows], height=0.4, label="wall (median)")
    ax.barh([y - 0.2 for y in ys], [r["cpu_ms_per_10s"] for r in rows], height=0.4, label="process CPU (median)")
    ax.set_yticks(list(ys), [r["backend"] for r in rows])
    ax.invert_yaxis()
    ax.set(xlabel="ms per 10 s of audio (lower is faster)", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)  # atomic: a full disk leaves no half PNG


# -- hearkit bench classify ----------------------------------------------------------
def bench_classify(model_dir, repeat: int = CLASSIFY_REPEAT, stream_seconds: float = STREAM_SECONDS, log: Log = _quiet) -> dict:
    """Latency of one clip on 1 thread: torch eager, ONNX fp32, ONNX int8 (pipeline and network), and streaming cost.

    Args:
        model_dir: a folder written by ``hearkit export`` (or a model file in one).
        repeat: timed runs per model, in ``INTERLEAVE_ROUNDS`` interleaved rounds; median reported (Default: 400).
        stream_seconds: audio fed to the keyword spotter for the CPU share (Default: 30).
        log: progress messages (Default: none).

    Returns:
        ``{"model_dir", "window_seconds", "threads", "repeat", "stream_seconds", "rows"}``; each row has
        ``variant``, ``pipeline_ms``, ``network_ms``, speed-ups ``x_vs_*`` and, for fp32 and int8,
        ``cpu_share_percent`` and ``wall_ms_per_hop``.
    """
    from hearkit.metadata import read_model_info

    d, variants = _export_dir(model_dir)
    info = read_model_info(variants[0][1])
    window = int(info.window_samples or info.frontend.sample_rate)
    frames = info.frontend.num_frames(window)
    fns: dict = {}
    torch_fns, why = torch_classifier(d, window)
    if torch_fns is None:
        log(f"torch eager skipped: {why}")
    else:
        fns[("torch eager", "pipeline_ms")], fns[("torch eager", "network_ms")] = torch_fns
    for tag, pipe, net in variants:
        fns[(f"onnx {tag}", "pipeline_ms")] = onnx_runner(pipe, (1, window))
        if net:
            fns[(f"onnx {tag}", "network_ms")] = onnx_runner(net, (1, frames, info.frontend.n_mels))
        if tag == artifacts.FP32:
            # The same fp32 graph without the x86-only NCHWc layout rewrite of level 'all': the speed fp32
            # has where MLAS has no NCHWc kernels (ARM boards) and in graphs saved at 'extended' (docs/design.md §6).
            # On x86 NCHWc makes fp32 depthwise convs faster than the int8 ones, so int8's gain over
            # fp32 differs by a factor of ~3 between the two rows; both are real deployments.
            fns[(PORTABLE, "pipeline_ms")] = onnx_runner(pipe, (1, window), "extended")
            if net:
                fns[(PORTABLE, "network_ms")] = onnx_runner(net, (1, frames, info.frontend.n_mels), "extended")
    log(f"timing {len(fns)} models, interleaved ...")
    times = time_calls(fns, rounds=min(INTERLEAVE_ROUNDS, repeat), per_round=max(1, repeat // INTERLEAVE_ROUNDS),
                       warmup=CLASSIFY_WARMUP)
    rows = []
    for (variant, col), t in times.items():
        if not rows or rows[-1]["variant"] != variant:
            rows.append({"variant": variant, "pipeline_ms": None, "network_ms": None})
        rows[-1][col] = 1e3 * t.median
    base = {r["variant"]: r for r in rows}
    for tag, pipe, _ in variants:
        if tag in (artifacts.FP32, artifacts.INT8):
            log(f"streaming with {pipe.name} ...")
            base[f"onnx {tag}"].update(stream_cpu_share(pipe, stream_seconds))
    for r in rows:
        for ref in ("onnx fp32", PORTABLE, "torch eager"):
            key = "x_vs_" + ("onnx_fp32_no_nchwc" if ref == PORTABLE else ref.replace(" ", "_"))
            if ref in base and r.get("network_ms") and base[ref].get("network_ms"):
                r[key] = base[ref]["network_ms"] / r["network_ms"]
    return {"model_dir": str(d), "window_seconds": window / info.frontend.sample_rate, "threads": 1,
            "repeat": repeat, "stream_seconds": stream_seconds, "rows": rows}


# -- hearkit bench transcribe --------------------------------------------------------
# One fresh process per variant: import, load, transcribe once, report peak RSS.
# "baseline" stops after `import hearkit`; that process is what the deltas are measured against.
# "baseline-torch" stops after `import hearkit, torch`: how much of the torch row is torch itself.
_TRANSCRIBE_CHILD = PEAK_RSS_SNIPPET + """
import json, sys
kind, model, audio, export_dir = sys.argv[1:5]
import hearkit
out = {}
if kind == "baseline-torch":
    import torch
elif kind != "baseline":
    import numpy as np
    x = np.load(audio)
    if kind == "torch":
        from hearkit.export.bench import torch_transcriber
        tr, why = torch_transcriber(export_dir, model)
        if tr is None:
            print(json.dumps({"error": why}))
            sys.exit(0)
    else:
        from hearkit.transcribe import Transcriber
        tr = Transcriber(model, threads=1)
    out["text"] = tr.transcribe(x).text
out["rss_kb"] = peak_kb()
print(json.dumps(out))
"""


def _peak_rss(kind: str, model: str, audio_npy: str, export_dir: str) -> dict:
    """``rss_mb`` (peak) of a fresh ``_TRANSCRIBE_CHILD`` of ``kind``, or {"error": ...}."""
    return run_child(_TRANSCRIBE_CHILD, kind, model, audio_npy, export_dir)


def bench_transcribe(model_dir, audio: Sequence[str | os.PathLike] = (), seconds: float | None = None,
                     repeat: int = TRANSCRIBE_REPEAT, memory: bool = True, log: Log = _quiet) -> dict:
    """Real-time factor on 1 thread and peak memory: torch eager, ONNX fp32, ONNX int8, side by side.

    Every variant transcribes the same audio through ``hearkit.Transcriber`` on 1 thread:
    same chunking, same greedy decoder. The torch eager row swaps the fp32 transcriber's
    session for ``TorchSession`` (front-end and network in torch), so the rows differ only
    in what computes the log-probs. Each timed round transcribes once with every variant.
    Memory: a fresh subprocess per variant loads the model and transcribes the audio once;
    its peak RSS is reported, with the delta over a process that only runs ``import hearkit``.

    Args:
        model_dir: a folder written by ``hearkit export`` for a CTC model (or a model file in one).
        audio: audio files to transcribe, joined in order (Default: 30 s of seeded white noise).
        seconds: length of the signal (Default: all of ``audio``, or 30 s).
        repeat: timed rounds; the median is reported (Default: 10).
        memory: measure peak RSS in a fresh process per variant (Default: True).
        log: progress messages (Default: none).

    Returns:
        ``{"model_dir", "model", "task", "audio", "threads", "repeat", "decoder", "chunk_seconds",
        "overlap_seconds", "baseline_rss_mb", "baseline_torch_rss_mb", "rows"}``.
    """
    from hearkit.metadata import read_model_info
    from hearkit.transcribe import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS, Transcriber

    d, all_variants = _export_dir(model_dir)
    variants = [(tag, pipe) for tag, pipe, _ in all_variants]
    info = read_model_info(variants[0][1])
    if info.task != "ctc":
        raise ModelError(f"{variants[0][1]}: is a '{info.task}' model; `hearkit bench transcribe` needs a CTC export "
                         "(use `hearkit bench classify` for classifiers)")
    sr = info.frontend.sample_rate
    x, source = bench_signal(sr, seconds, audio)
    if x.size == 0:
        raise ModelError(f"{source}: no samples to transcribe")
    audio_s = x.size / sr
    fp32 = dict(variants).get(artifacts.FP32)

    # name -> (Transcriber or None, model file or "", note)
    contenders: dict = {}
    if fp32 is None:
        contenders["torch eager"] = (None, "", f"needs {artifacts.file_name(artifacts.PIPELINE)} (fp32) for the transcriber's settings")
    else:
        tr, why = torch_transcriber(d, fp32)
        ck = artifacts.read_export(d).get("checkpoint", "") if artifacts.summary_path(d).is_file() else ""
        contenders["torch eager"] = (tr, ck, why or f"checkpoint from {artifacts.EXPORT_SUMMARY}, torch front-end + network")
    for tag, pipe in variants:
        contenders[f"onnx {tag}"] = (Transcriber(pipe, threads=1), str(pipe), f"{pipe.name}, onnxruntime")
    for name, (tr, _, note) in contenders.items():
        if tr is None:
            log(f"{name} skipped: {note}")
    live = {name: tr for name, (tr, _, _) in contenders.items() if tr is not None}

    # first run of each: the transcript (compared across variants) and the warm-up
    texts = {name: tr.transcribe(x).text for name, tr in live.items()}
    log(f"timing {', '.join(live)}: {repeat} interleaved rounds of {audio_s:.1f} s ...")
    times = time_calls({name: (lambda t=tr: t.transcribe(x)) for name, tr in live.items()}, rounds=repeat, warmup=0)

    mem: dict = {}
    baseline = baseline_torch = None
    if memory:
        log("peak memory: a fresh process per variant ...")
        with tempfile.TemporaryDirectory(prefix="hearkit-bench-") as tmp:
            npy = str(Path(tmp) / "audio.npy")
            np.save(npy, x.astype(np.float32))
            base = _peak_rss("baseline", "", npy, str(d))
            baseline = base.get("rss_mb")
            if baseline is None:
                log(f"baseline process failed: {base.get('error')}")
            if contenders["torch eager"][0] is not None:
                baseline_torch = _peak_rss("baseline-torch", "", npy, str(d)).get("rss_mb")
            for name, (tr, path, _) in contenders.items():
                if tr is not None:
                    kind = "torch" if name == "torch eager" else "onnx"
                    mem[name] = _peak_rss(kind, str(fp32) if kind == "torch" else path, npy, str(d))

    rows = []
    ref_text = texts.get("onnx fp32")
    for name, (tr, path, note) in contenders.items():
        t = times.get(name)
        m = mem.get(name, {})
        rss = m.get("rss_mb")
        rows.append({
            "variant": name,
            "model": path,
            # ONNX file size; a checkpoint's would mislead (it may hold optimizer state)
            "bytes": Path(path).stat().st_size if path.endswith(".onnx") and Path(path).is_file() else None,
            "rtf": None if t is None else t.median / audio_s,
            "cpu_rtf": None if t is None else t.cpu_median / audio_s,
            "x_realtime": None if not (t and t.cpu_median) else audio_s / t.cpu_median,
            "peak_rss_mb": rss,
            "rss_delta_mb": None if (rss is None or baseline is None) else rss - baseline,
            "words": None if name not in texts else len(texts[name].split()),
            "same_text_as_fp32": None if (name not in texts or ref_text is None) else texts[name] == ref_text,
            "note": note,
            **({"memory_error": m["error"]} if m.get("error") else {}),
        })
    model_name = (info.model or {}).get("name", "?")
    return {
        "model_dir": str(d), "model": model_name, "task": "ctc",
        "audio": {"source": source, "seconds": audio_s, "sample_rate": sr},
        "threads": 1, "repeat": repeat, "decoder": "greedy",
        "chunk_seconds": DEFAULT_CHUNK_SECONDS, "overlap_seconds": DEFAULT_OVERLAP_SECONDS,
        "baseline_rss_mb": baseline,
        "baseline_torch_rss_mb": baseline_torch,
        "rows": rows,
    }
