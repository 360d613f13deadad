"""``hearkit bench MODEL_OR_BUNDLE [--device NAME]``: load time, latency, RTF, peak RSS, size.

Every model variant found (int8 and fp32, ``.onnx`` and ``.ort``) is measured in
the same run, so "int8 or fp32 on this board?" is answered by one table. The
footprint benchmark starts fresh processes: one that loads the bundle and
classifies one clip through ``hearkit.Classifier`` (target: peak RSS < 80 MB,
< 0.5 s), and one that only runs ``import torch``, for scale. Torch-free: the
torch figure comes from a subprocess and is skipped when torch is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

from hearkit.bench import PEAK_RSS_SNIPPET

FOOTPRINT_RSS_MB = 80.0     # target peak RSS of a process that classifies one clip
FOOTPRINT_SECONDS = 0.5     # target wall time of that process, start to exit
CTC_SECONDS = 10.0          # audio per call for models without a fixed window (RTF base)
KiB = 1024

_FOOTPRINT_HEARKIT = PEAK_RSS_SNIPPET + """
import json, sys, time
t0 = time.perf_counter()
from hearkit.artifacts import resolve
from hearkit.classify import Classifier
path = resolve(sys.argv[1], prefer=sys.argv[2])
clf = Classifier(path)
p = clf.classify(sys.argv[3]) if sys.argv[3] != "-" else clf.classify(__import__("numpy").zeros(clf.window_samples, "float32"))
print(json.dumps({"rss_kb": peak_kb(), "inner_s": time.perf_counter() - t0, "label": p.label, "model": str(path)}))
"""
_FOOTPRINT_TORCH = PEAK_RSS_SNIPPET + """
import json, time
t0 = time.perf_counter()
__import__("torch")  # the thing measured: what importing torch alone costs
print(json.dumps({"rss_kb": peak_kb(), "inner_s": time.perf_counter() - t0}))
"""


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def candidates(path: Path, prefer: str) -> list[Path]:
    """The model files to measure: the verified variants of a bundle or export folder, or the file itself."""
    from hearkit.artifacts import KINDS, PIPELINE, file_name, is_bundle, load_manifest, resolve, variant_order

    if path.is_file():
        return [resolve(path)]
    out = []
    for kind in KINDS:
        for v in variant_order(prefer):
            name = file_name(PIPELINE, v, kind)
            if (path / name).is_file() or (is_bundle(path) and name in load_manifest(path)["files"]):
                out.append(resolve(path / name))
    if not out:
        out.append(resolve(path, prefer=prefer))
    return out


def bench_one(path: Path, profile, repeat: int, seconds: float | None) -> dict:
    """Load time and latency percentiles of one model file with the profile's session settings."""
    import numpy as np

    from hearkit.metadata import make_session, read_model_info
    from hearkit.sessions import profile_session

    info = read_model_info(path)
    sr = info.frontend.sample_rate
    n = int(info.window_samples) if (info.window_samples and seconds is None) else int(round((seconds or CTC_SECONDS) * sr))
    x = (0.1 * np.random.default_rng(0).standard_normal((1, n))).astype(np.float32)
    if info.input == "logmel":
        from hearkit.frontend import logmel

        x = logmel(x, info.frontend).astype(np.float32)

    def load():
        if profile is not None:
            return profile_session(profile, path)
        return make_session(path, threads=1)

    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        sess = load()
        loads.append(time.perf_counter() - t0)
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x})  # warm-up (allocations, first-run kernels)
    lat = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        lat.append(time.perf_counter() - t0)
    audio_s = n / sr
    p50 = _percentile(lat, 50)
    return {
        "model": path.name,
        "task": info.task,
        "quantization": (info.quantization or {}).get("recipe") or (info.quantization or {}).get("format", "fp32"),
        "bytes": path.stat().st_size,
        "load_ms": 1e3 * min(loads),
        "audio_s": audio_s,
        "p50_ms": 1e3 * p50,
        "p95_ms": 1e3 * _percentile(lat, 95),
        "rtf": p50 / audio_s,
        "providers": sess.get_providers(),
    }


def _child(code: str, *args: str) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d["rss_mb"] = d.pop("rss_kb") / KiB
    d["wall_s"] = wall
    return d


def measure_footprint(path: Path, prefer: str, clip: str | None) -> dict:
    """Peak RSS and wall time of a fresh process that classifies one clip, beside `import torch`."""
    import importlib.util

    out = {"hearkit": _child(_FOOTPRINT_HEARKIT, str(path), prefer, clip or "-")}
    if importlib.util.find_spec("torch") is not None:
        out["import torch"] = _child(_FOOTPRINT_TORCH)
    else:
        out["import torch"] = {"error": "torch not installed here"}
    return out


@click.command("model")
@click.argument("model", type=click.Path(exists=True))
@click.option("--device", "-d", default=None, help="Device profile (see `hearkit devices`): threads, providers, preferred variant.")
@click.option("--repeat", type=click.IntRange(min=1), default=50, show_default=True, help="Timed runs per model.")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=None,
              help=f"Audio per call (Default: the model's window, or {CTC_SECONDS:g} s for CTC models).")
@click.option("--clip", type=click.Path(exists=True, dir_okay=False), default=None, help="Audio clip for the footprint run (Default: silence).")
@click.option("--footprint/--no-footprint", default=True, show_default=True,
              help="Also measure a fresh process classifying one clip against `import torch` (classification models).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_model(model, device, repeat, seconds, clip, footprint, as_json):
    """Benchmark a model file, export folder or bundle: load, p50/p95 latency, RTF, size, peak RSS."""
    import resource

    import onnxruntime as ort

    from hearkit import __version__
    from hearkit.devices import load_profile

    profile = load_profile(device) if device else None
    prefer = profile.prefer if profile else "int8"
    path = Path(model)
    results = [bench_one(p, profile, repeat, seconds) for p in candidates(path, prefer)]
    report = {
        "hearkit": __version__,
        "onnxruntime": ort.__version__,
        "device": profile.name if profile else None,
        "threads": profile.threads if profile else 1,
        "machine": os.uname().machine,
        "repeat": repeat,
        "models": results,
        "bench_process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KiB,
    }
    if footprint and results and results[0]["task"] == "classify":
        report["footprint"] = footprint_report = measure_footprint(path, prefer, clip)
        report["footprint_targets"] = {"rss_mb": FOOTPRINT_RSS_MB, "wall_s": FOOTPRINT_SECONDS}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"hearkit {__version__}, onnxruntime {ort.__version__}, {report['machine']}, "
               f"device {report['device'] or '(none: 1 thread, CPU)'}, {repeat} runs")
    click.echo(f"{'model':<22} {'variant':<24} {'MB':>6} {'load ms':>8} {'audio s':>7} {'p50 ms':>8} {'p95 ms':>8} {'RTF':>8}")
    for r in results:
        click.echo(f"{r['model']:<22} {str(r['quantization']):<24} {r['bytes'] / 1e6:>6.2f} {r['load_ms']:>8.1f} "
                   f"{r['audio_s']:>7.2f} {r['p50_ms']:>8.2f} {r['p95_ms']:>8.2f} {r['rtf']:>8.4f}")
    if "footprint" in report:
        click.echo(f"footprint (fresh process, start to exit; targets < {FOOTPRINT_RSS_MB:g} MB, < {FOOTPRINT_SECONDS:g} s):")
        for k, v in footprint_report.items():
            if "error" in v:
                click.echo(f"  {k:<34} {v['error']}")
            else:
                what = "load bundle + classify one clip" if k == "hearkit" else "import torch only"
                click.echo(f"  {k + ' (' + what + ')':<48} peak RSS {v['rss_mb']:>7.1f} MB   wall {v['wall_s']:>6.3f} s")
