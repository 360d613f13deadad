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
from hearkit.embedding import is_embedding
from hearkit.export.onnx_io import sha256_file
from hearkit.files import removed_on_failure
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
    from hearkit.training.checkpoint import check_finite_weights, load_checkpoint

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    checkpoint = Path(checkpoint).resolve()
    ckpt = ckpt if ckpt is not None else load_checkpoint(checkpoint)
    check_finite_weights(ckpt, checkpoint)  # before any file is written
    t = get_task(task or ckpt.get("task"), checkpoint, "checkpoint")
    net, cfg, fields = _checked_network(t, ckpt, checkpoint)
    count = calibration_clips or t.calibration_clips
    # an unknown recipe fails here, before any work, naming the known ones
    profile, plan = _quantize_plan(device, tuple(q for q in quantize if q != "none"))
    sha = sha256_file(checkpoint)
    metrics = scalar_metrics(ckpt)
    out = Path(out_dir)

    def info(**kw) -> ModelInfo:
        base = dict(task=t.name, input="waveform", frontend=cfg, checkpoint_sha256=sha, metrics=metrics,
                    model=dict(ckpt["model"]), quantization={"format": "fp32"}, **fields)
        base.update(kw)
        return ModelInfo(**base)

    # every field the files will carry, through the rules `hearkit run` reads them with, before any is written
    for kind in (dict(task="frontend"), dict(input="logmel"), dict()):
        _as_run_reads(info, kind, checkpoint)
    # calibration audio too: a missing data folder fails now, not after the fp32 graphs
    calib = None
    if any(t.quantizer(ckpt, asked) is None and r.static for _, asked, r in plan):
        calib = t.calibration(ckpt, checkpoint, count, log, **options)
    earlier = _earlier_export(out)
    out.mkdir(parents=True, exist_ok=True)
    with removed_on_failure(out, also=lambda changed: earlier):
        return _write(t, ckpt, checkpoint, out, net, cfg, info, sha, metrics, plan, calib, profile, check_seconds,
                      log, t0)


def _write(t, ckpt, checkpoint, out, net, cfg, info, sha, metrics, plan, calib, profile, check_seconds, log,
           t0) -> dict:
    """The writing half of :func:`export`: everything it reads was checked before."""
    from hearkit.export.frontend import build_frontend_graph, describe_frontend
    from hearkit.training.frontend import frontend_module

    fe_file, net_file, pipe_file = (artifacts.file_name(s) for s in (artifacts.FRONTEND, artifacts.MODEL, artifacts.PIPELINE))
    log(f"export: front-end graph ({describe_frontend(cfg)})")
    fe = build_frontend_graph(cfg, backend="onnx-conv")
    save_with_info(fe, info(task="frontend"), out / fe_file)
    if is_embedding(cfg):  # the same front-end cut at its mel frames: a stream computes each once
        from hearkit.training.embedding import split_embedding_graph

        for name, part in zip(artifacts.STREAM_GRAPHS, split_embedding_graph(fe)):
            save_with_info(part, info(task="frontend"), out / name)
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

    variants, calib_features = {}, None
    for tag, asked, r in plan:
        own = t.quantizer(ckpt, asked)
        if own is not None:
            log(own.describe)
            qmeta = own.metadata
            qnet = own.quantize(out / net_file, out / artifacts.file_name(artifacts.MODEL, tag))
        else:
            if r.static and calib_features is None:
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
        **({"device": profile.name} if profile is not None else {}),
    }
    return write_summary(out, summary, t0, log)


def _checked_network(t, ckpt: dict, checkpoint: Path):
    """``(network, front-end config, the task's metadata fields)``, or one ModelError naming the checkpoint.

    The weights must fit the architecture the checkpoint records, and the network's output must
    have one entry per label (classify) or vocabulary symbol (ctc): run refuses such a model later.
    """
    import torch

    from hearkit.errors import HearkitError, ModelError

    name = (ckpt.get("model") or {}).get("name") if isinstance(ckpt.get("model"), dict) else None
    try:
        net, cfg = t.load(ckpt)
        fields = t.model_info(ckpt, net)
    except HearkitError as e:
        if str(checkpoint) in str(e):
            raise
        raise ModelError(f"{checkpoint}: {e}") from e
    except Exception as e:  # a state_dict of other shapes, hyper-parameters the builder refuses
        detail = " ".join(str(e).split())[:300]
        raise ModelError(f"{checkpoint}: its weights do not fit the architecture it records ({name!r}): "
                         f"{type(e).__name__}: {detail}") from e
    names = fields.get("labels") or fields.get("vocab") or ()
    frames = max(t.check_lengths(ckpt, net)[1])
    try:
        with torch.no_grad():
            y = net(torch.zeros(1, frames, cfg.n_mels))
    except Exception as e:
        raise ModelError(f"{checkpoint}: its network cannot run on (1, {frames}, {cfg.n_mels}) "
                         f"log-mel features: {type(e).__name__}: {' '.join(str(e).split())[:200]}") from e
    if names and y.shape[-1] != len(names):
        what = "labels" if fields.get("labels") else "vocabulary symbols"
        raise ModelError(f"{checkpoint}: the network outputs {y.shape[-1]} scores but the checkpoint lists "
                         f"{len(names)} {what}; they must match (`hearkit run` would refuse the export)")
    return net, cfg, fields


def _as_run_reads(info, kind: dict, checkpoint: Path) -> None:
    """Round-trip one file's ModelInfo through ``ModelInfo.from_props`` (what run applies); ModelError naming the checkpoint."""
    from hearkit.errors import HearkitError, ModelError

    try:
        ModelInfo.from_props(info(**kind).to_props(), source=str(checkpoint))
    except ModelError as e:
        msg = str(e).replace("metadata key 'hearkit.", "field '").replace(": metadata ", ": checkpoint field ")
        raise ModelError(msg) from e
    except HearkitError as e:
        raise ModelError(f"{checkpoint}: {e}") from e
    except (TypeError, ValueError, KeyError) as e:
        raise ModelError(f"{checkpoint}: a checkpoint field has the wrong type ({type(e).__name__}: {e})") from e


def _earlier_export(out: Path) -> list[str]:
    """The files of an earlier export in ``out`` (its export.json and the graphs it lists); empty when none."""
    try:
        listed = artifacts.read_export(out).get("files") or {}
    except Exception:  # no export there, or a damaged summary: nothing is known to be hearkit's
        return []
    graphs = [n for n in listed if isinstance(n, str) and "/" not in n and artifacts.parse_name(n) is not None]
    return [*graphs, artifacts.EXPORT_SUMMARY]


def _quantize_plan(device, asked: tuple[str, ...]):
    """``(profile or None, [(file tag, name as asked, recipe), ...])``: the quantized variants to make.

    With a device, its recipe (``hearkit.export.package.device_recipe``: a registered one with the
    same settings, else the profile's own) makes the ``int8`` variant, under the int8 file names
    the runtime and ``hearkit package`` look for; asking for that recipe by name as well makes it
    once. Raises ConfigError for an unknown recipe name.
    """
    plan = [(variant_tag(get_recipe(q).name), q, get_recipe(q)) for q in asked]
    if device is None:
        return None, plan
    from hearkit.devices import DeviceProfile, load_profile
    from hearkit.export.package import device_recipe

    profile = device if isinstance(device, DeviceProfile) else load_profile(device)
    dev = device_recipe(profile)
    if any(tag == artifacts.INT8 for tag, _, _ in plan):
        plan = [p for p in plan if p[0] != artifacts.INT8 and p[2].name != dev.name] + [(artifacts.INT8, dev.name, dev)]
    return profile, plan


def export_classifier(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, **kwargs) -> dict:
    """``export`` of a classification checkpoint (``quantize``, ``calibration_clips``,
    ``data``, ``fmt``, ``ckpt``, ``log``: see there); returns the ``export.json`` summary."""
    return export(checkpoint, out_dir, task="classify", **kwargs)


def export_ctc(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, calibration_utterances: int | None = None,
               **kwargs) -> dict:
    """``export`` of a CTC checkpoint (``quantize``, ``manifest``, ``ckpt``, ``check_seconds``,
    ``log``: see there; ``calibration_utterances`` is its ``calibration_clips``); returns the ``export.json`` summary."""
    return export(checkpoint, out_dir, task="ctc", calibration_clips=calibration_utterances, **kwargs)
