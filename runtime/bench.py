"""``hearkit bench``: speed figures measured side by side in one run.

A lazy click group: each benchmark is a subcommand named in ``BENCH_COMMANDS``
(``"name": "module:attr"``, one line each), imported only when it runs, so
adding ``classify`` or ``transcribe`` is one line here. Benchmarks print a
table (or JSON with ``--json``); speed targets live here, never in timed tests.
torch, onnx and librosa are imported inside functions, only to measure them.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from pathlib import Path

import click

from hearkit import artifacts
from hearkit.cli import LazyGroup
from hearkit.commands.options import config_from_options, frontend_options

# name -> "module:attribute". Keep alphabetical; one line per benchmark.
BENCH_COMMANDS: dict[str, str] = {
    "classify": "hearkit.commands.bench_classify:bench_classify",
    "frontend": "hearkit.bench:bench_frontend",
    "model": "hearkit.commands.bench_model:bench_model",
    "transcribe": "hearkit.commands.bench_transcribe:bench_transcribe",
}

REFERENCE_SECONDS = 10.0  # figures are reported per 10 s of audio

# Source of `peak_kb()` for benchmark child processes: this process's peak RSS in KiB.
# VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec and so reports the *parent's*
# peak when the parent was larger (the bench process itself, or pytest). ru_maxrss only
# where /proc is absent (macOS, bytes).
PEAK_RSS_SNIPPET = """
def peak_kb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource, sys
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r
"""

# A process that does what a device does for one clip: verify the bundle, load, classify.


class BenchGroup(LazyGroup):
    """``hearkit bench PATH ...`` means ``hearkit bench model PATH ...`` when PATH is not a benchmark name."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.lazy_commands and not args[0].startswith("-") and os.path.exists(args[0]):
            return "model", self.get_command(ctx, "model"), list(args)
        return super().resolve_command(ctx, args)


@click.group(cls=BenchGroup, lazy_commands=BENCH_COMMANDS)
def bench():
    """Measure speed: every backend and its references, in the same run.

    \b
    hearkit bench MODEL_OR_BUNDLE [--device NAME]   (same as `hearkit bench model ...`)
    """


def time_call(fn, repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_interleaved(fns: dict, repeat: int, warmup: int = 1) -> dict[str, tuple[float, float]]:
    """Median (wall, process CPU) time in seconds of each ``fns[name]()``, timed round-robin.

    One call of each per round, so that a burst of load from other processes
    hits every contender alike instead of whichever happened to run then. The
    CPU time is the figure to trust on a shared machine: other processes
    stretch wall time but not our own CPU time (at 1 thread they are equal on
    an idle machine).
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, repeat)):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in fns}


def export_variants(d) -> list[tuple[str, Path, Path | None]]:
    """(tag, pipeline, network) of every variant in an export folder, fp32 first.

    ``tag`` is ``fp32`` for ``pipeline.onnx`` and the suffix otherwise (``int8``,
    ``fp16``, ...); ``network`` is the matching ``model*.onnx`` or None.
    """
    return artifacts.list_variants(d)


def export_checkpoint(d) -> tuple[dict | None, str]:
    """(checkpoint dict, "") of the checkpoint named in ``d/export.json``, or (None, why not).

    For the torch eager rows of a benchmark: torch is imported (through
    ``hearkit.export``) only when installed, and a missing or changed checkpoint
    is a reason to skip the row, not an error.
    """
    from importlib.util import find_spec

    from hearkit.errors import ModelError

    if find_spec("torch") is None:
        return None, 'torch not installed (pip install "hearkit[train]")'
    if not artifacts.summary_path(d).is_file():
        return None, f"no {artifacts.EXPORT_SUMMARY} (checkpoint unknown)"
    from hearkit.export.verify import load_export_checkpoint

    try:
        return load_export_checkpoint(artifacts.read_export(d)), ""
    except ModelError as e:
        return None, str(e)


@contextlib.contextmanager
def _blas_threads(threads: int):
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


def _frontend_candidates(cfg, x, threads: int) -> dict:
    """name -> (callable or None, note). A None callable is skipped with the note as the reason."""
    import numpy as np

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


def _bar_chart(rows: list[dict], path: str, title: str) -> None:
    """Horizontal bars of wall and CPU ms per 10 s, measured rows only."""
    from hearkit.errors import require

    mpl = require("matplotlib", "plot")
    mpl.use("Agg")  # files only; a device has no display
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["ms_per_10s"] is not None]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], [r["ms_per_10s"] for r in rows], height=0.4, label="wall (median)")
    ax.barh([y - 0.2 for y in ys], [r["cpu_ms_per_10s"] for r in rows], height=0.4, label="process CPU (median)")
    ax.set_yticks(list(ys), [r["backend"] for r in rows])
    ax.invert_yaxis()
    ax.set(xlabel="ms per 10 s of audio (lower is faster)", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@click.command("frontend")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=REFERENCE_SECONDS, show_default=True, help="Length of the test signal (seeded white noise).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Threads for onnxruntime and torch.")
@click.option("--repeat", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs per backend; the median is reported.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False), help="Also time an exported front-end graph (repeatable); works without torch/onnx, e.g. on a device.")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Also draw the figures as a bar chart (needs hearkit[plot]).")
@frontend_options
def bench_frontend(seconds: float, threads: int, repeat: int, as_json: bool, models: tuple[str, ...], png: str | None, **kw):
    """Time per 10 s of audio for every front-end backend, with librosa and torch.stft beside them."""
    import numpy as np

    cfg = config_from_options(kw)
    n = int(round(seconds * cfg.sample_rate))
    x = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    scale = REFERENCE_SECONDS / (n / cfg.sample_rate)
    candidates = _frontend_candidates(cfg, x, threads)
    for path in models:
        from hearkit.frontend_onnx import OnnxFrontend

        fe = OnnxFrontend(path, threads=threads)
        xm = (0.1 * np.random.default_rng(0).standard_normal(int(round(seconds * fe.cfg.sample_rate)))).astype(np.float32)
        # the file's own config may differ from the options: scale by its own rate
        candidates[f"file {path}"] = ((lambda f=fe, a=xm: f(a)), f"exported graph, n_fft {fe.cfg.n_fft}, hop {fe.cfg.hop_length}")
    live = {name: fn for name, (fn, _) in candidates.items() if fn is not None}
    click.echo(f"timing {', '.join(live)} ({repeat} rounds) ...", err=True)
    with _blas_threads(threads) as blas_note:
        times = time_interleaved(live, repeat)
    rows = []
    for name, (fn, note) in candidates.items():
        wall, cpu = times.get(name, (None, None))
        rows.append({
            "backend": name,
            "ms_per_10s": None if wall is None else wall * 1e3 * scale,
            "cpu_ms_per_10s": None if cpu is None else cpu * 1e3 * scale,
            "note": note,
        })
    if png:
        _bar_chart(rows, png, f"log-mel front-end per 10 s of audio, {threads} thread(s) (n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels)")
        click.echo(f"wrote {png}", err=True)
    if as_json:
        click.echo(json.dumps({"seconds": n / cfg.sample_rate, "threads": threads, "blas_threads": blas_note, "repeat": repeat, "config": cfg.to_dict(), "results": rows}, indent=2))
        return
    click.echo(f"front-end, {n / cfg.sample_rate:g} s of audio, {threads} thread(s), median of {repeat}; "
               f"n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels; numpy BLAS: {blas_note}")
    click.echo(f"{'backend':<24} {'ms / 10 s':>10} {'cpu ms':>8} {'x realtime':>11}  note")
    for r in rows:
        if r["ms_per_10s"] is None:
            click.echo(f"{r['backend']:<24} {'-':>10} {'-':>8} {'-':>11}  skipped: {r['note']}")
        else:
            rt = REFERENCE_SECONDS * 1e3 / r["ms_per_10s"]
            click.echo(f"{r['backend']:<24} {r['ms_per_10s']:>10.2f} {r['cpu_ms_per_10s']:>8.2f} {rt:>11.0f}  {r['note']}")
