"""The one export skeleton: checkpoint -> front-end, network, fused pipeline, quantized variants, export.json.

``export(checkpoint, out_dir)`` takes the task the checkpoint records
(``hearkit.export.tasks.TASKS``) and writes, all single-file ONNX with the
``hearkit.*`` metadata of docs/design.md §3:

    frontend.onnx            waveform (batch, samples) -> logmel (batch, frames, n_mels), fp32
    model.onnx               logmel -> the task's output (logits | log_probs), fp32
    pipeline.onnx            waveform -> output (front-end + network fused)
    model.<tag>.onnx, pipeline.<tag>.onnx
                             per quantized variant: the network quantized, fp32 front-end merged
                             back; ``int8`` for the default recipe (or the task's own int8),
                             ``fp16``, or the recipe's name
    export.json              what was written, checks against torch, calibration, sizes

Every graph is checked against torch at the task's lengths and batch sizes before
anything is reported as done. What differs between tasks (network exporter,
metadata, lengths, tolerance, calibration data, the CTC RNN's dynamic int8) comes
from the task; the steps and their order are the same for all.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from hearkit import artifacts
from hearkit.export.onnx_io import sha256_file
from hearkit.export.pipeline import (
    CHECK_BATCHES,
    FEATURES,
    check_feature_graph,
    check_waveform_graphs,
    enforce_checks,
    merge_frontend,
    save_variant,
    save_with_info,
    scalar_metrics,
    torch_fn,
    write_summary,
)
from hearkit.export.quantize import DEFAULT_RECIPE, compute_features, get_recipe, quantize_network, recipe_metadata
from hearkit.export.tasks import get_task
from hearkit.metadata import ModelInfo


def variant_tag(recipe_name: str) -> str:
    """File-name tag of a quantized variant: ``int8`` for the default recipe, else the recipe name."""
    return artifacts.INT8 if recipe_name == DEFAULT_RECIPE else recipe_name


def export(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    task: str | None = None,
    quantize: tuple[str, ...] = ("int8",),
    calibration_clips: int | None = None,
    device=None,
    ckpt: dict | None = None,
    check_seconds=None,
    log=None,
    **options,
) -> dict:
    """Export a checkpoint of any registered task to ``out_dir``; return the ``export.json`` summary.

    Args:
        checkpoint: ``best.pt`` written by ``hearkit train``.
        out_dir: output folder (created).
        task: the task the checkpoint must be (Default: whatever it records).
        quantize: variants to add: ``int8`` (default recipe, or the task's own int8 such as
            the CTC RNN's dynamic one), ``fp16`` or any recipe name; empty or ``("none",)``
            for fp32 only (Default: int8).
        calibration_clips: clips (classify) or utterances (ctc) for static calibration
            (Default: the task's ``calibration_clips``).
        device: a ``DeviceProfile``, profile name or path: its recipe makes the int8 variant
            and the device is recorded (Default: None).
        ckpt: the already loaded checkpoint dict (skips loading it again).
        check_seconds: lengths (s) the waveform graphs are checked at (Default: the task's).
        log: callable taking a progress line (Default: stderr).
        options: the task's data options (``data``, ``fmt`` for classify; ``manifest`` for ctc).
    """
    from hearkit.export.frontend import build_frontend_graph, describe_frontend
    from hearkit.training.checkpoint import check_finite_weights, load_checkpoint
    from hearkit.training.frontend import frontend_module

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    checkpoint = Path(checkpoint).resolve()
    ckpt = ckpt if ckpt is not None else load_checkpoint(checkpoint)
    check_finite_weights(ckpt, checkpoint)  # before any file is written
    t = get_task(task or ckpt.get("task"), checkpoint, "checkpoint")
    net, cfg = t.load(ckpt)
    count = calibration_clips or t.calibration_clips
    profile, dev_recipe, variants_asked = _device_plan(device, tuple(q for q in quantize if q != "none"))
    for q in variants_asked:  # an unknown recipe fails before any work, naming the known ones
        get_recipe(q)
    sha = sha256_file(checkpoint)
    metrics = scalar_metrics(ckpt)
    fields = t.model_info(ckpt, net)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fe_file, net_file, pipe_file = (artifacts.file_name(s) for s in (artifacts.FRONTEND, artifacts.MODEL, artifacts.PIPELINE))

    def info(**kw) -> ModelInfo:
        base = dict(task=t.name, input="waveform", frontend=cfg, checkpoint_sha256=sha, metrics=metrics,
                    model=dict(ckpt["model"]), quantization={"format": "fp32"}, **fields)
        base.update(kw)
        return ModelInfo(**base)

    log(f"export: front-end graph ({describe_frontend(cfg)})")
    fe = build_frontend_graph(cfg, backend="onnx-conv")
    save_with_info(fe, info(task="frontend"), out / fe_file)
    model, exporter = t.export_network(net, cfg, ckpt, log)
    save_with_info(model, info(input="logmel"), out / net_file)
    save_with_info(merge_frontend(fe, model, FEATURES, t.output), info(), out / pipe_file)

    seconds, frames = t.check_lengths(ckpt, net)
    seconds = tuple(check_seconds or seconds)
    log(f"export: checking graphs against torch at {list(seconds)} s, batch {list(CHECK_BATCHES)}")
    refs = {artifacts.FRONTEND: frontend_module(cfg), artifacts.PIPELINE: t.reference(net, cfg)}
    graphs = {artifacts.file_name(s): s for s in t.checked_graphs}
    checks = check_waveform_graphs({f: out / f for f in graphs}, {f: torch_fn(refs[s]) for f, s in graphs.items()},
                                   cfg.sample_rate, seconds=seconds, batches=CHECK_BATCHES)
    checks.append(check_feature_graph(net_file, out / net_file, torch_fn(net), cfg.n_mels, frames=frames))
    # a checked front-end is recorded only: its parity is the front-end tests' business (docs/design.md §4)
    enforce_checks(checks, t.fp32_check_atol, log, skip=(fe_file,))

    variants, calib, calib_features = {}, None, None
    for q in variants_asked:
        tag = variant_tag(get_recipe(q).name)
        own = t.quantizer(ckpt, q)
        if own is not None:
            log(own.describe)
            qmeta = own.metadata
            qnet = own.quantize(out / net_file, out / artifacts.file_name(artifacts.MODEL, tag))
        else:
            r = get_recipe(q)
            if r.static and calib is None:
                calib = t.calibration(ckpt, checkpoint, count, log, **options)
                calib_features = compute_features(out / fe_file, calib.waveforms)
            log(f"export: quantizing the network with recipe {r.name} ({r.why})")
            qmeta = recipe_metadata(r, calib.count if (calib and r.static) else None)
            qnet = quantize_network(out / net_file, out / artifacts.file_name(artifacts.MODEL, tag), r,
                                    calib_features if r.static else None)
        variants[tag] = save_variant(out, fe, qnet, info, qmeta, tag, t.output)

    summary = {
        "task": t.name,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha,
        "model": dict(ckpt["model"]),
        "exporter": exporter,
        **t.summary(ckpt, net),
        "frontend": cfg.to_dict(),
        "metrics": metrics,
        "train_config": ckpt.get("train_config") or {},
        "checks": [c.to_dict() for c in checks],
        "check_atol": t.fp32_check_atol,
        "variants": variants,
        "calibration": None if calib is None else {t.unit: calib.count, "data": calib.data, "split": "train"},
    }
    summary = write_summary(out, summary, t0, log)
    if profile is not None:
        from hearkit.export.package import make_device_variant

        data = options.get(t.data_option) or options.get("data")
        summary = make_device_variant(out, summary, profile, dev_recipe, data, count)
    return summary


def _device_plan(device, variants: tuple[str, ...]):
    """``(profile, its int8 recipe, the variants to make)``: a device's recipe replaces the default int8."""
    if device is None:
        return None, None, variants
    from hearkit.devices import DeviceProfile, load_profile
    from hearkit.export.package import plan_device_variants

    profile = device if isinstance(device, DeviceProfile) else load_profile(device)
    variants, recipe = plan_device_variants(variants, profile)
    return profile, recipe, variants

