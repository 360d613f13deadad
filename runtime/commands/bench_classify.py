"""``hearkit bench classify MODEL_DIR``: torch eager, ONNX fp32 and ONNX int8 side by side.

Latency of one clip (batch 1, 1 thread) for the fused pipeline and for the
network alone, and the CPU share of keyword spotting with a 100 ms hop
(process CPU time / audio time). torch is measured only when installed, through
``hearkit.export`` (this runtime module never imports torch itself).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

from hearkit.bench import export_checkpoint, export_variants
from hearkit.errors import ModelError

STREAM_SECONDS = 30.0   # audio fed to the spotter for the CPU-share figure
STREAM_CHUNK = 0.1      # seconds per accept_waveform call, as a microphone delivers them


# shared with `hearkit bench transcribe`; the old private name stays for callers
_variants = export_variants


PORTABLE = "onnx fp32 (no NCHWc)"  # fp32 at optimisation level 'extended'
INTERLEAVE_ROUNDS = 20  # timed rounds; every candidate runs in every round


def interleaved_ms(fns: dict, repeat: int, warmup: int = 10) -> dict:
    """Median ms per call of each callable, measured in interleaved rounds.

    On a shared machine the load drifts; timing the candidates round-robin
    (each round runs every one ``repeat / rounds`` times) exposes them all to
    the same drift, so their ratios stay meaningful.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    per = max(1, repeat // INTERLEAVE_ROUNDS)
    times: dict = {k: [] for k in fns}
    for _ in range(max(1, min(INTERLEAVE_ROUNDS, repeat))):
        for k, fn in fns.items():
            for _ in range(per):
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def _onnx_fn(path: Path, shape, optimization: str = "all"):
    from hearkit.metadata import make_session

    s = make_session(path, threads=1, optimization=optimization)
    name = s.get_inputs()[0].name
    x = (0.1 * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)
    return lambda: s.run(None, {name: x})


def stream_cpu_share(model: Path, seconds: float = STREAM_SECONDS, hop: float = 0.1) -> dict:
    """Process CPU time / audio time of a KeywordSpotter fed ``seconds`` of noise in 100 ms chunks."""
    from hearkit.classify import KeywordSpotter

    kws = KeywordSpotter(model, hop_seconds=hop)
    sr = kws.sample_rate
    x = (0.05 * np.random.default_rng(1).standard_normal(int(seconds * sr))).astype(np.float32)
    n = int(STREAM_CHUNK * sr)
    kws.accept_waveform(x[: 10 * n])  # warm-up: first runs allocate
    kws.reset()
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(0, len(x), n):
        kws.accept_waveform(x[i : i + n])
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {"cpu_share_percent": 100 * cpu / seconds, "wall_ms_per_hop": 1e3 * wall / (seconds / hop)}


def _torch_fns(d: Path):
    """(pipeline fn, network fn) of the checkpoint in export.json, or (None, reason)."""
    ckpt, why = export_checkpoint(d)
    if ckpt is None:
        return None, why
    import importlib

    from hearkit.artifacts import read_export
    from hearkit.export.classify import WaveformClassifier, load_classifier

    summary = read_export(d)
    torch = importlib.import_module("torch")  # measured only; hearkit's runtime does not need it
    torch.set_num_threads(1)
    net, cfg = load_classifier(ckpt)
    pipe = WaveformClassifier(net, cfg).eval()
    window = int(summary["window_samples"])
    wav = torch.from_numpy((0.1 * np.random.default_rng(0).standard_normal((1, window))).astype(np.float32))
    feats = torch.randn(1, cfg.num_frames(window), cfg.n_mels)

    def run_pipe():
        with torch.inference_mode():
            pipe(wav)

    def run_net():
        with torch.inference_mode():
            net(feats)

    return (run_pipe, run_net), ""


@click.command("classify")
@click.argument("model_dir", type=click.Path(exists=True))
@click.option("--repeat", type=click.IntRange(min=1), default=400, show_default=True, help="Timed runs per model (interleaved rounds); median reported.")
@click.option("--stream-seconds", type=click.FloatRange(min=1), default=STREAM_SECONDS, show_default=True,
              help="Audio fed to the keyword spotter for the CPU share.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_classify(model_dir, repeat, stream_seconds, as_json):
    """Latency of one clip on 1 thread: torch eager, ONNX fp32, ONNX int8 (pipeline and network),
    and the CPU share of streaming with a 100 ms hop.

    MODEL_DIR is a folder written by `hearkit export` (or a model file in one)."""
    from hearkit.metadata import read_model_info

    d = Path(model_dir)
    if d.is_file():  # a model file: bench every variant of the export folder it lives in
        d = d.parent
    variants = _variants(d)
    if not variants:
        raise ModelError(f"{d}: no pipeline*.onnx here; pass a folder written by `hearkit export`")
    info = read_model_info(variants[0][1])
    window = int(info.window_samples or info.frontend.sample_rate)
    frames = info.frontend.num_frames(window)
    fns: dict = {}
    torch_fns, why = _torch_fns(d)
    if torch_fns is None:
        click.echo(f"torch eager skipped: {why}", err=True)
    else:
        fns[("torch eager", "pipeline_ms")], fns[("torch eager", "network_ms")] = torch_fns
    for tag, pipe, net in variants:
        fns[(f"onnx {tag}", "pipeline_ms")] = _onnx_fn(pipe, (1, window))
        if net:
            fns[(f"onnx {tag}", "network_ms")] = _onnx_fn(net, (1, frames, info.frontend.n_mels))
        if tag == "fp32":
            # The same fp32 graph without the x86-only NCHWc layout rewrite of level 'all': the speed fp32
            # has where MLAS has no NCHWc kernels (ARM boards) and in graphs saved at 'extended' (docs/design.md §6).
            # On x86 NCHWc makes fp32 depthwise convs faster than the int8 ones, so int8's gain over
            # fp32 differs by a factor of ~3 between the two rows; both are real deployments.
            fns[(PORTABLE, "pipeline_ms")] = _onnx_fn(pipe, (1, window), "extended")
            if net:
                fns[(PORTABLE, "network_ms")] = _onnx_fn(net, (1, frames, info.frontend.n_mels), "extended")
    click.echo(f"timing {len(fns)} models, interleaved ...", err=True)
    ms = interleaved_ms(fns, repeat)
    rows = []
    for (variant, col), v in ms.items():
        if not rows or rows[-1]["variant"] != variant:
            rows.append({"variant": variant, "pipeline_ms": None, "network_ms": None})
        rows[-1][col] = v
    base = {r["variant"]: r for r in rows}
    for tag, pipe, _ in variants:
        if tag in ("fp32", "int8"):
            click.echo(f"streaming with {pipe.name} ...", err=True)
            base[f"onnx {tag}"].update(stream_cpu_share(pipe, stream_seconds))
    for r in rows:
        for ref in ("onnx fp32", PORTABLE, "torch eager"):
            key = "x_vs_" + ("onnx_fp32_no_nchwc" if ref == PORTABLE else ref.replace(" ", "_"))
            if ref in base and r.get("network_ms") and base[ref].get("network_ms"):
                r[key] = base[ref]["network_ms"] / r["network_ms"]
    result = {"model_dir": str(d), "window_seconds": window / info.frontend.sample_rate, "threads": 1,
              "repeat": repeat, "stream_seconds": stream_seconds, "rows": rows}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return

    def f(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    click.echo(f"{d}: one {window / info.frontend.sample_rate:g}-s clip, batch 1, 1 thread, median of {repeat}")
    click.echo(f"{'variant':<28} {'pipeline ms':>11} {'network ms':>10} {'net x fp32':>10} {'x no-NCHWc':>10} "
               f"{'net x torch':>11} {'stream CPU %':>12}")
    for r in rows:
        click.echo(f"{r['variant']:<28} {f(r['pipeline_ms']):>11} {f(r.get('network_ms')):>10} "
                   f"{f(r.get('x_vs_onnx_fp32'), '{:.2f}'):>10} {f(r.get('x_vs_onnx_fp32_no_nchwc'), '{:.2f}'):>10} "
                   f"{f(r.get('x_vs_torch_eager'), '{:.2f}'):>11} {f(r.get('cpu_share_percent'), '{:.2f}'):>12}")
    click.echo("net x fp32 / x no-NCHWc: network speed-up over ONNX fp32 at level 'all' (x86 NCHWc kernels) / "
               "at 'extended' (no NCHWc: ARM, saved graphs)")
    click.echo("stream CPU %: process CPU time / audio time, KeywordSpotter with a 100 ms hop, spinning off")
