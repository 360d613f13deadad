"""``hearkit calibrate``: per-label thresholds for a keyword export at a chosen rate of false alarms.

The thresholds are measured with :mod:`hearkit.evaluate.detector` (the spotter streamed over
negatives, and over positives when given) and written, with the hop, smoothing and
refractory period they were measured at, into the ``hearkit.detector`` metadata of every
classification graph of the export. :class:`~hearkit.classify.KeywordSpotter`, ``hearkit
stream`` and bundles packaged afterwards use them with no flag.

Each variant (fp32, int8, ...) is calibrated on its own scores: quantization moves the
posteriors a little, and the threshold belongs to the file that runs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from hearkit import artifacts
from hearkit.errors import ConfigError, ModelError

MAX_FA_PER_HOUR = 1000.0  # a target above this is not a wake-word operating point


def threshold_for_negatives(curve_fah: Sequence[float], thresholds: Sequence[float], target: float) -> float:
    """The lowest threshold from which every higher one stays at or under ``target`` false alarms per hour.

    Without positives a lower threshold is the more sensitive one, but the rate is not
    monotone in the threshold (a score held above a low threshold re-arms less often), so
    the choice is the bottom of the top range that keeps the target, never an isolated dip.
    """
    fah = np.asarray(curve_fah)
    th = np.asarray(thresholds)
    order = np.argsort(th)
    ok = fah[order] <= target + 1e-12
    if not ok[-1]:
        return float(th[order][-1])
    bad = np.nonzero(~ok)[0]
    first_ok = 0 if len(bad) == 0 else int(bad[-1]) + 1
    return float(th[order][first_ok])


def calibrate(
    export_dir: str | os.PathLike,
    negatives: Sequence[str | os.PathLike],
    fa_per_hour: float = 0.5,
    positives: Sequence[str | os.PathLike] = (),
    noise: Sequence[str | os.PathLike] = (),
    snr_db: float | None = None,
    hop_seconds: float = 0.1,
    smoothing: int = 3,
    refractory_seconds: float = 1.0,
    seed: int = 0,
    log: Callable[[str], None] = lambda m: None,
) -> dict:
    """Measure thresholds at ``fa_per_hour`` and write them into every classification graph of the export.

    Args:
        export_dir: a folder written by ``hearkit export`` (not a bundle: its files are checksummed;
            calibrate the export, then package it).
        negatives: folders or manifests of audio without the phrases (files whose transcript holds one are left out).
        fa_per_hour: false alarms per hour to allow (Default: 0.5).
        positives: real recordings of the phrases; with them the threshold with the fewest misses
            at the target is chosen, else the most sensitive one that keeps it (Default: none).
        noise, snr_db: noise mixed into the positives (see ``evaluate_detector``).
        hop_seconds, smoothing, refractory_seconds: the spotter settings measured and stored.
        seed: order of the positives and noise (Default: 0).
        log: progress callable.

    Returns:
        ``{variant file: {"thresholds": {...}, "points" or "fa_per_hour": ...}}``.
    """
    import onnx

    from hearkit.classify import KeywordSpotter
    from hearkit.evaluate.detector import (
        StreamScores,
        audio_files,
        det_curve,
        negative_files,
        negative_stream,
        operating_point,
        positive_files,
        positive_stream,
        record_stream,
    )
    from hearkit.export.onnx_io import get_metadata, save_model, set_metadata

    folder = Path(export_dir)
    if artifacts.is_bundle(folder):
        raise ConfigError(f"{folder}: a bundle (its files are checksummed); calibrate the export, then `hearkit package` it")
    artifacts.check_export(folder)
    if not 0 < fa_per_hour <= MAX_FA_PER_HOUR:
        raise ConfigError(f"--fa-per-hour must be in (0, {MAX_FA_PER_HOUR:g}], got {fa_per_hour}")
    if not negatives:
        raise ConfigError("calibration needs --negatives (folders or manifests of audio without the phrases)")
    results: dict = {}
    for variant, pipeline, network in artifacts.list_variants(folder):
        kws = KeywordSpotter(pipeline, hop_seconds=hop_seconds, smoothing=smoothing, refractory_seconds=refractory_seconds)
        if kws.scorer.info.task != "classify":
            raise ModelError(f"{pipeline}: a '{kws.scorer.info.task}' model; calibrate takes keyword (classify) exports")
        phrases = [lab for lab in kws.labels if not (lab.startswith("_") and lab.endswith("_"))]
        neg_files, left_out = negative_files(list(negatives), phrases)
        log(f"calibrate {pipeline.name}: streaming {len(neg_files)} negative files")
        neg = record_stream(kws, negative_stream(neg_files, kws.sample_rate))
        if positives:
            pos_files = positive_files(list(positives), phrases)
            noise_files = [p for d in noise for p in audio_files(Path(d))]
            pos = record_stream(kws, positive_stream(pos_files, kws.sample_rate, noise_files, snr_db, seed))
        else:
            pos = StreamScores(np.zeros(0), np.zeros((0, len(kws.labels))), 0.0)
        th, points = {}, {}
        for name in phrases:
            curve = det_curve(pos, neg, kws.labels.index(name), name, refractory_seconds)
            if positives and curve["utterances"]:
                p = operating_point(curve, fa_per_hour)
                th[name], points[name] = p["threshold"], p
            else:
                th[name] = threshold_for_negatives(curve["fa_per_hour"], curve["thresholds"], fa_per_hour)
                i = curve["thresholds"].index(th[name])
                points[name] = {"threshold": th[name], "fa_per_hour": curve["fa_per_hour"][i],
                                "false_alarms": curve["false_alarms"][i]}
                # Above the highest negative score nothing fires, so the sampled grid's next step
                # (often 1.0, a threshold that never fires) is needlessly deaf: take the score just above.
                top = float(neg.scores[:, kws.labels.index(name)].max()) if len(neg.scores) else 1.0
                above = min(1.0, math.ceil(top * 1e6 + 1) / 1e6)  # stored at 6 decimals, still above
                if above < th[name]:
                    th[name] = above
                    points[name] = {"threshold": above, "fa_per_hour": 0.0, "false_alarms": 0}
        detector = {
            "thresholds": {k: round(float(v), 6) for k, v in th.items()},
            "hop_seconds": float(hop_seconds), "smoothing": int(smoothing), "refractory_seconds": float(refractory_seconds),
            "calibration": {"target_fa_per_hour": float(fa_per_hour), "negative_hours": round(neg.seconds / 3600, 4),
                            "negative_files": len(neg_files), "left_out": left_out,
                            "positives": int(len(pos.utterances)), "snr_db": snr_db if noise else None},
        }
        for path in (pipeline, network):
            if path is None:
                continue
            m = onnx.load(os.fspath(path))
            props = {k: v for k, v in get_metadata(m).items() if k.startswith("hearkit.")}
            props["hearkit.detector"] = json.dumps(detector, sort_keys=True)
            save_model(set_metadata(m, props), path)
        results[pipeline.name] = {"thresholds": detector["thresholds"], "points": points,
                                  "negative_hours": detector["calibration"]["negative_hours"]}
        log(f"calibrate {pipeline.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in detector["thresholds"].items()))
    summary = artifacts.read_export(folder)
    summary["calibration"] = {"target_fa_per_hour": fa_per_hour, "variants": results}
    artifacts.write_export(folder, summary)
    return results
