"""The one verify skeleton: prove an export behaves like its checkpoint, torch vs ONNX fp32 vs quantized variants.

``verify(out_dir)`` reads ``export.json``, takes the task it records
(``hearkit.export.tasks.TASKS``), reloads the checkpoint it names (checking its
sha256), lets the task's evaluator run torch and every exported pipeline on the
task's data, checks the results against the task's thresholds and writes
``report.json`` and ``report.md`` (plus any file of the task's, such as CTC's
transcripts). Parity is both numeric (max error of the outputs) and decisional
(top-1 agreement or identical transcripts, and the task metric's delta), as
silero-vad's verify script does; a failed threshold makes ``hearkit verify``
exit with 1.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hearkit import artifacts
from hearkit.artifacts import read_export
from hearkit.errors import ConfigError, ModelError
from hearkit.files import write_text

LATENCY_RUNS = 50        # timed inferences per model (after warm-up), median reported
LATENCY_WARMUP = 5
POINTS_SLACK = 1e-12     # a delta of two fractions may exceed its limit by float rounding of the subtraction


def load_export_checkpoint(summary: dict, checkpoint: str | os.PathLike | None = None,
                           folder: str | os.PathLike | None = None) -> dict:
    """The checkpoint an export came from, checked against the recorded sha256.

    Without ``checkpoint`` the one ``export.json`` records is found from any working
    directory (``hearkit.artifacts.export_checkpoint``: its absolute path, else its path
    relative to the export ``folder``).
    """
    from hearkit.export.onnx_io import sha256_file
    from hearkit.training.checkpoint import check_finite_weights, load_checkpoint

    found = None if checkpoint or folder is None else artifacts.export_checkpoint(folder, summary)
    path = Path(checkpoint or found or summary.get("checkpoint", ""))
    if not path.is_file():
        raise ModelError(f"checkpoint {path} recorded in {artifacts.EXPORT_SUMMARY} is not there; pass --checkpoint PATH")
    sha = sha256_file(path)
    if summary.get("checkpoint_sha256") and sha != summary["checkpoint_sha256"]:
        raise ModelError(
            f"{path}: sha256 {sha[:12]}… differs from the export's {summary['checkpoint_sha256'][:12]}…; "
            "the checkpoint changed since export (re-export, or pass the original with --checkpoint)"
        )
    ckpt = load_checkpoint(path)
    check_finite_weights(ckpt, path)
    return ckpt


def _median_ms(fn, runs: int = LATENCY_RUNS) -> float:
    for _ in range(LATENCY_WARMUP):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def torch_latency_ms(module, window: int, runs: int = LATENCY_RUNS) -> float:
    """Median ms of one clip (batch 1) through a torch module, 1 thread."""
    import torch

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


def export_variants(summary: dict) -> dict[str, dict]:
    """fp32, then every quantized variant an ``export.json`` records: ``{tag: {"pipeline", "model", "recipe"}}``."""
    variants = {artifacts.FP32: {"recipe": "fp32", **artifacts.variant_files(artifacts.FP32)}}
    for tag, v in (summary.get("variants") or {}).items():
        variants[tag] = {"pipeline": v["pipeline"], "model": v.get("model", artifacts.file_name(artifacts.MODEL, tag)),
                         "recipe": v["recipe"]}
    return variants


def limit_check(name: str, value: float, limit: float, *, at_least: bool = False, points: bool = False) -> dict:
    """One row of ``report["checks"]``: ``value`` against ``limit``.

    Args:
        name: what is checked, for people.
        value: the measured value.
        limit: the threshold, in the units of ``value``.
        at_least: pass when ``value >= limit`` (agreements) instead of ``<=`` (errors, drops) (Default: False).
        points: ``value`` and ``limit`` are fractions reported in percentage points (metric deltas) (Default: False).
    """
    if not math.isfinite(value):
        # NaN compares false both ways and max() drops it: name it and fail, never "0.00 error".
        # The value is kept as a string so report.json stays JSON (NaN is not).
        return {"check": name, "value": str(value), "limit": f"{'>=' if at_least else '<='} "
                f"{100 * limit if points else limit:g}", "passed": False}
    if points:
        return {"check": name, "value": round(100 * value, 3), "limit": f"<= {100 * limit:g}",
                "passed": value <= limit + POINTS_SLACK}
    passed = value >= limit if at_least else value <= limit
    return {"check": name, "value": value, "limit": f"{'>=' if at_least else '<='} {limit:g}", "passed": passed}


def verify(
    out_dir: str | os.PathLike,
    *,
    task: str | None = None,
    thresholds=None,
    checkpoint: str | os.PathLike | None = None,
    max_clips: int | None = None,
    latency_runs: int = LATENCY_RUNS,
    log=None,
    **options,
) -> dict:
    """Verify an export of any registered task; write ``report.json`` and ``report.md``; return the report.

    Args:
        out_dir: directory written by ``hearkit export``.
        task: the task the export must be (Default: whatever ``export.json`` records).
        thresholds: pass/fail limits, an instance of the task's ``thresholds`` dataclass
            (Default: its defaults).
        checkpoint: the checkpoint, when it moved since export (Default: the one in export.json).
        max_clips: evaluate an even subset of at most this many clips / utterances (Default: all).
        latency_runs: timed runs per model; 0 skips latency (Default: 50).
        log: callable taking a progress line (Default: stderr).
        options: the task's data options (``data``, ``fmt``, ``split`` for classify;
            ``manifest`` for ctc).

    Returns:
        the report dict; ``report["passed"]`` is False when any threshold failed.
    """
    from hearkit.export.tasks import get_task

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    out = Path(out_dir)
    summary = read_export(out)
    if task is not None and summary.get("task") != task:
        raise ModelError(f"{out}: export task is {summary.get('task')!r}; this verifies {task!r} exports")
    t = get_task(summary.get("task"), out, "export")
    th = t.thresholds() if thresholds is None else thresholds
    if not isinstance(th, t.thresholds):
        raise ConfigError(f"a {t.name} export is verified with {t.thresholds.__name__}, got {type(th).__name__}")
    ckpt = load_export_checkpoint(summary, checkpoint, out)
    net, cfg = t.load(ckpt)
    ev = t.evaluate(out, summary, net, cfg, export_variants(summary), max_clips=max_clips, latency_runs=latency_runs,
                    log=log, **options)
    checks = t.checks(ev.results, th)
    report = {
        "task": t.name,
        "export_dir": str(out.resolve()),
        "checkpoint": summary.get("checkpoint"),
        "checkpoint_sha256": summary.get("checkpoint_sha256"),
        "model": summary.get("model"),
        **ev.fields,
        "results": ev.results,
        "thresholds": asdict(th),
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }
    # allow_nan=False: a NaN that got past the checks fails here rather than writing a report.json that is not JSON
    try:
        text = json.dumps(report, indent=2, allow_nan=False)
    except ValueError as e:
        raise ModelError(f"{out}: verification produced NaN or infinite results ({e}); the export or its checkpoint "
                         "is broken") from e
    write_text(out / artifacts.REPORT_JSON, text + "\n")
    write_text(out / artifacts.REPORT_MD, t.report_markdown(report))
    for name, text in ev.files.items():
        write_text(out / name, text)
    return report


# -- report.md ------------------------------------------------------------------
def fmt(v, pct: bool = False) -> str:
    """A report cell: ``–`` for None, ``12.34 %`` for a fraction with ``pct``, 3 significant digits for floats."""
    if v is None:
        return "–"
    if pct:
        return f"{100 * v:.2f} %"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def kib(v: dict) -> str:
    """The size cell of a result: its ``bytes`` in KiB, ``–`` without a file."""
    return f"{v['bytes'] / 1024:.1f}" if v.get("bytes") else "–"


def results_table(results: dict, columns) -> list[str]:
    """A markdown table of ``results``, one row per variant after a ``variant`` column.

    Args:
        results: ``report["results"]``: variant -> its metrics.
        columns: ``(header, cell)`` pairs; ``cell(result)`` gives the text of one row's cell.
    """
    heads = ["variant", *(h for h, _ in columns)]
    lines = ["| " + " | ".join(heads) + " |", "| " + " | ".join("---" for _ in heads) + " |"]
    lines += ["| " + " | ".join([k, *(cell(v) for _, cell in columns)]) + " |" for k, v in results.items()]
    return lines


def report_markdown(r: dict, title: str, about: list[str], table: list[str], notes: list[str] = ()) -> str:
    """The report for people: a head every task shares, the task's lines, then the checks.

    Args:
        r: the report dict.
        title: first line, after ``# hearkit verify``, e.g. `` (ctc)``.
        about: the task's lines on the data (markdown list items).
        table: the task's results table (:func:`results_table`).
        notes: paragraphs after the table (Default: none).
    """
    lines = [
        f"# hearkit verify{title}: {(r.get('model') or {}).get('name', '')}",
        "",
        f"- export: `{r['export_dir']}`",
        f"- checkpoint: `{r['checkpoint']}` (sha256 `{(r['checkpoint_sha256'] or '')[:16]}…`)",
        *about,
        f"- result: **{'PASSED' if r['passed'] else 'FAILED'}**",
        "",
        *table,
    ]
    for n in notes:
        lines += ["", n]
    lines += ["", "| check | value | limit | result |", "| --- | --- | --- | --- |"]
    for c in r["checks"]:
        v = c["value"]
        cell = f"{v:.4g}" if isinstance(v, (int, float)) else str(v)
        lines.append(f"| {c['check'].replace('|', '&#124;')} | {cell} | {c['limit']} | {'pass' if c['passed'] else '**FAIL**'} |")
    return "\n".join(lines) + "\n"
