"""What a verify measures and writes, shared by every task: latency, a check against a limit, report.md.

The tasks' evaluators (``hearkit.export.classify``, ``hearkit.export.ctc``) and the verify skeleton
(``hearkit.export.verify``) import from here; this module imports neither, so the tasks never reach
back up to the skeleton that calls them.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import numpy as np

LATENCY_RUNS = 50        # timed inferences per model (after warm-up), median reported
LATENCY_WARMUP = 5
POINTS_SLACK = 1e-12     # a delta of two fractions may exceed its limit by float rounding of the subtraction


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
    from hearkit.sessions import make_session

    s = make_session(path, threads=1)
    name = s.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, window)).astype(np.float32) * 0.1
    return _median_ms(lambda: s.run(None, {name: x}), runs)


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
