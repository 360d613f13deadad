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
import os
import sys
from dataclasses import asdict
from pathlib import Path

from hearkit import artifacts
from hearkit.artifacts import read_export
from hearkit.errors import ConfigError, ModelError
from hearkit.export.report import LATENCY_RUNS
from hearkit.export.tasks import get_task
from hearkit.files import write_text


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


def export_variants(summary: dict) -> dict[str, dict]:
    """fp32, then every quantized variant an ``export.json`` records: ``{tag: {"pipeline", "model", "recipe"}}``."""
    variants = {artifacts.FP32: {"recipe": "fp32", **artifacts.variant_files(artifacts.FP32)}}
    for tag, v in (summary.get("variants") or {}).items():
        variants[tag] = {"pipeline": v["pipeline"], "model": v.get("model", artifacts.file_name(artifacts.MODEL, tag)),
                         "recipe": v["recipe"]}
    return variants


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


def verify_classifier(out_dir: str | os.PathLike, **kwargs) -> dict:
    """``verify`` of a classification export (``data``, ``fmt``, ``split``, ``thresholds``,
    ``checkpoint``, ``max_clips``, ``latency_runs``, ``log``: see there); returns the report."""
    return verify(out_dir, task="classify", **kwargs)


def verify_ctc(out_dir: str | os.PathLike, max_utterances: int | None = None, **kwargs) -> dict:
    """``verify`` of a CTC export (``manifest``, ``thresholds``, ``checkpoint``, ``latency_runs``,
    ``log``: see there; ``max_utterances`` is its ``max_clips``); returns the report."""
    return verify(out_dir, task="ctc", max_clips=max_utterances, **kwargs)
