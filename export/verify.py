"""Prove an export behaves like its checkpoint: torch vs ONNX fp32 vs quantized variants.

``verify_classifier(out_dir, data)`` reads ``export.json``, reloads the checkpoint
it names (checking its sha256), runs torch and every exported pipeline on the
evaluation split, and writes ``report.json`` and ``report.md``. Parity is both
numeric (front-end and logits max error) and decisional (top-1 agreement,
accuracy delta), as silero-vad's verify script does; a failed threshold makes
the command exit with 1.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hearkit import artifacts
from hearkit.artifacts import read_export
from hearkit.errors import ConfigError, ModelError

LATENCY_RUNS = 50        # timed inferences per model (after warm-up), median reported
LATENCY_WARMUP = 5


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail limits of ``verify``.

    Attributes:
        fp32_logits_atol: max |logits_onnx_fp32 - logits_torch| (Default: 1e-3).
        fp32_top1_agreement: share of clips where fp32 ONNX and torch pick the same label (Default: 1.0).
        quant_top1_agreement: same for each quantized variant (Default: 0.99).
        quant_max_accuracy_drop: accuracy of a quantized variant may be at most this below fp32
            ONNX, as a fraction (Default: 0.01 = 1 point).
    """

    fp32_logits_atol: float = 1e-3
    fp32_top1_agreement: float = 1.0
    quant_top1_agreement: float = 0.99
    quant_max_accuracy_drop: float = 0.01


def load_export_checkpoint(summary: dict, checkpoint: str | os.PathLike | None = None) -> dict:
    """The checkpoint an export came from, checked against the recorded sha256."""
    from hearkit.export.onnx_io import sha256_file
    from hearkit.training.checkpoint import load_checkpoint

    path = Path(checkpoint or summary.get("checkpoint", ""))
    if not path.is_file():
        raise ModelError(f"checkpoint {path} recorded in {artifacts.EXPORT_SUMMARY} is not there; pass --checkpoint PATH")
    sha = sha256_file(path)
    if summary.get("checkpoint_sha256") and sha != summary["checkpoint_sha256"]:
        raise ModelError(
            f"{path}: sha256 {sha[:12]}… differs from the export's {summary['checkpoint_sha256'][:12]}…; "
            "the checkpoint changed since export (re-export, or pass the original with --checkpoint)"
        )
    return load_checkpoint(path)


def _median_ms(fn, runs: int = LATENCY_RUNS) -> float:
    for _ in range(LATENCY_WARMUP):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def torch_latency_ms(module: torch.nn.Module, window: int, runs: int = LATENCY_RUNS) -> float:
    """Median ms of one clip (batch 1) through a torch module, 1 thread."""
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, window)).astype(np.float32) * 0.1)
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            return _median_ms(lambda: module(x), runs)
    finally:
        torch.set_num_threads(prev)


def onnx_latency_ms(path: str | os.PathLike, window: int, runs: int = LATENCY_RUNS) -> float:
    """Median ms of one clip (batch 1) through an ONNX pipeline, 1 thread."""
    from hearkit.metadata import make_session

    s = make_session(path, threads=1)
    name = s.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, window)).astype(np.float32) * 0.1
    return _median_ms(lambda: s.run(None, {name: x}), runs)


def _eval_examples(summary: dict, data, fmt, split: str, max_clips: int | None):
    from hearkit.datasets import index_dataset

    tc = summary.get("train_config") or {}
    from hearkit.export.classify import dataset_options

    f = fmt or (tc.get("format") if data is None else None)
    kw = dataset_options(tc, fmt, data)
    root = data or tc.get("data")
    if not root:
        raise ConfigError("no evaluation data: pass --data DIR")
    idx = index_dataset(root, f, **kw)
    labels = summary["labels"]
    missing = sorted(set(idx.labels) - set(labels))
    if missing:
        raise ConfigError(f"{root}: labels {missing} are not among the model's labels {labels}")
    ex = idx.split(split)
    if not ex:
        raise ConfigError(f"{root}: the '{split}' split is empty; choose another with --split")
    if max_clips and len(ex) > max_clips:
        ex = [ex[i] for i in np.linspace(0, len(ex) - 1, max_clips).round().astype(int)]
    return ex, str(root), idx.format


def verify_classifier(
    out_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    fmt: str | None = None,
    split: str = "val",
    thresholds: Thresholds = Thresholds(),
    checkpoint: str | os.PathLike | None = None,
    max_clips: int | None = None,
    latency_runs: int = LATENCY_RUNS,
    log=None,
) -> dict:
    """Verify a classification export; write ``report.json`` and ``report.md``; return the report.

    Args:
        out_dir: directory written by ``hearkit export``.
        data: evaluation data folder (Default: the checkpoint's training data folder).
        fmt: dataset format (Default: detected).
        split: ``val`` | ``test`` | ``train`` | ``all`` (Default: val).
        thresholds: pass/fail limits.
        checkpoint: the checkpoint, when it moved since export (Default: the one in export.json).
        max_clips: evaluate an even subset of at most this many clips (Default: all).
        latency_runs: timed runs per model (0 skips latency).

    Returns:
        the report dict; ``report["passed"]`` is False when any threshold failed.
    """
    from hearkit.classify import Classifier
    from hearkit.export.classify import WaveformClassifier, load_classifier, load_windows
    from hearkit.training.frontend import LogMel

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    out = Path(out_dir)
    summary = read_export(out)
    if summary.get("task") != "classify":
        raise ModelError(f"{out}: export task is {summary.get('task')!r}; this verifies 'classify' exports")
    ckpt = load_export_checkpoint(summary, checkpoint)
    net, cfg = load_classifier(ckpt)
    labels = list(summary["labels"])
    window = int(summary["window_samples"])
    examples, root, data_format = _eval_examples(summary, data, fmt, split, max_clips)
    log(f"verify: {len(examples)} clips of split '{split}' from {root}")
    wav = load_windows([e.path for e in examples], cfg.sample_rate, window)
    y = np.array([labels.index(e.label) for e in examples])

    # torch reference
    ref = WaveformClassifier(net, cfg).eval()
    with torch.inference_mode():
        feats_torch = np.concatenate([LogMel(cfg)(torch.from_numpy(wav[i : i + 64])).numpy() for i in range(0, len(wav), 64)])
        logits_torch = np.concatenate([ref(torch.from_numpy(wav[i : i + 64])).numpy() for i in range(0, len(wav), 64)])
    top_torch = logits_torch.argmax(1)

    # front-end parity on real audio
    from hearkit.export.quantize import compute_features

    feats_onnx = compute_features(out / artifacts.file_name(artifacts.FRONTEND), wav)
    fe_err = float(np.abs(feats_onnx.astype(np.float64) - feats_torch).max())

    variants = {artifacts.FP32: {"pipeline": artifacts.file_name(artifacts.PIPELINE), "recipe": "fp32"}}
    for suffix, v in (summary.get("variants") or {}).items():
        variants[suffix] = {"pipeline": v["pipeline"], "recipe": v["recipe"]}
    results: dict[str, dict] = {
        "torch": {"accuracy": float((top_torch == y).mean()), "bytes": Path(summary["checkpoint"]).stat().st_size
                  if Path(summary.get("checkpoint", "")).is_file() else None}
    }
    for name, v in variants.items():
        path = out / v["pipeline"]
        log(f"verify: running {v['pipeline']}")
        logits = Classifier(path).logits(list(wav), batch_size=64)
        top = logits.argmax(1)
        results[name] = {
            "file": v["pipeline"],
            "recipe": v["recipe"],
            "bytes": path.stat().st_size,
            "network_bytes": (out / v["pipeline"].replace("pipeline", "model")).stat().st_size
            if (out / v["pipeline"].replace("pipeline", "model")).is_file() else None,
            "accuracy": float((top == y).mean()),
            "top1_agreement_with_torch": float((top == top_torch).mean()),
            "logits_max_abs_err": float(np.abs(logits.astype(np.float64) - logits_torch).max()),
        }
    if latency_runs:
        log(f"verify: latency, one {window / cfg.sample_rate:g}-s clip, 1 thread, median of {latency_runs}")
        results["torch"]["latency_ms"] = torch_latency_ms(ref, window, latency_runs)
        for name, v in variants.items():
            results[name]["latency_ms"] = onnx_latency_ms(out / v["pipeline"], window, latency_runs)
        for name in variants:
            results[name]["speedup_vs_fp32"] = results["fp32"]["latency_ms"] / results[name]["latency_ms"]

    th = thresholds
    checks = [
        {"check": "fp32 logits max |onnx - torch|", "value": results["fp32"]["logits_max_abs_err"],
         "limit": f"<= {th.fp32_logits_atol:g}", "passed": results["fp32"]["logits_max_abs_err"] <= th.fp32_logits_atol},
        {"check": "fp32 top-1 agreement with torch", "value": results["fp32"]["top1_agreement_with_torch"],
         "limit": f">= {th.fp32_top1_agreement:g}", "passed": results["fp32"]["top1_agreement_with_torch"] >= th.fp32_top1_agreement},
    ]
    for name in variants:
        if name == "fp32":
            continue
        r = results[name]
        drop = results["fp32"]["accuracy"] - r["accuracy"]
        checks.append({"check": f"{name} top-1 agreement with torch", "value": r["top1_agreement_with_torch"],
                       "limit": f">= {th.quant_top1_agreement:g}", "passed": r["top1_agreement_with_torch"] >= th.quant_top1_agreement})
        checks.append({"check": f"{name} accuracy drop vs fp32 (points)", "value": round(100 * drop, 3),
                       "limit": f"<= {100 * th.quant_max_accuracy_drop:g}", "passed": drop <= th.quant_max_accuracy_drop + 1e-12})
    report = {
        "export_dir": str(out.resolve()),
        "checkpoint": summary.get("checkpoint"),
        "checkpoint_sha256": summary.get("checkpoint_sha256"),
        "model": summary.get("model"),
        "data": root,
        "format": data_format,
        "split": split,
        "clips": len(examples),
        "frontend_max_abs_err": fe_err,
        "results": results,
        "thresholds": asdict(th),
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }
    (out / artifacts.REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (out / artifacts.REPORT_MD).write_text(report_markdown(report))
    return report


def _fmt(v, pct=False):
    if v is None:
        return "–"
    if pct:
        return f"{100 * v:.2f} %"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def report_markdown(r: dict) -> str:
    """The human-readable report."""
    lines = [
        f"# hearkit verify: {r['model'].get('name') if r.get('model') else ''}",
        "",
        f"- export: `{r['export_dir']}`",
        f"- checkpoint: `{r['checkpoint']}` (sha256 `{(r['checkpoint_sha256'] or '')[:16]}…`)",
        f"- data: `{r['data']}` ({r['format']}), split **{r['split']}**, {r['clips']} clips",
        f"- front-end max |onnx − torch| on these clips: {r['frontend_max_abs_err']:.3g} (log-mel)",
        f"- result: **{'PASSED' if r['passed'] else 'FAILED'}**",
        "",
        "| variant | file | size (KiB) | accuracy | top-1 agreement with torch | logits max err | latency (ms, 1 thread) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, v in r["results"].items():
        size = v.get("bytes")
        lines.append(
            f"| {name} | {v.get('file', 'checkpoint')} | {size / 1024:.1f} | {_fmt(v['accuracy'], True)} | "
            f"{_fmt(v.get('top1_agreement_with_torch'), True) if name != 'torch' else '–'} | "
            f"{_fmt(v.get('logits_max_abs_err'))} | {_fmt(v.get('latency_ms'))} |"
            if size else
            f"| {name} | – | – | {_fmt(v['accuracy'], True)} | – | – | {_fmt(v.get('latency_ms'))} |"
        )
    slower = [k for k, v in r["results"].items()
              if k not in ("torch", "fp32") and v.get("recipe") != "fp16" and v.get("speedup_vs_fp32", 1) < 1]
    if slower:
        lines += ["", f"Note: {', '.join(slower)} ran slower than fp32 on this machine. For a model this small the "
                      "quantize/dequantize steps and int8 kernels that lose to fp32 (onnxruntime's int8 depthwise "
                      "convolutions, single-channel stems) can outweigh the int8 matrix work; where int8 gains nothing, "
                      "ship fp32 (docs/design.md §5: benchmark against fp32, keep the faster; `hearkit bench classify`)."]
    lines += ["", "| check | value | limit | result |", "| --- | --- | --- | --- |"]
    for c in r["checks"]:
        lines.append(f"| {c['check'].replace('|', '&#124;')} | {_fmt(c['value'])} | {c['limit']} | {'pass' if c['passed'] else '**FAIL**'} |")
    return "\n".join(lines) + "\n"
