"""Export a classification checkpoint: front-end, network, fused pipeline, quantized variants.

``export_classifier(checkpoint, out_dir)`` writes, all single-file ONNX with
``hearkit.*`` metadata (docs/design.md §3):

    frontend.onnx            waveform (batch, samples) -> logmel (batch, frames, n_mels), fp32
    model.onnx               logmel -> logits (batch, n_labels), fp32
    pipeline.onnx            waveform -> logits (front-end + network fused)
    model.int8.onnx          the network, static QDQ S8S8 per-channel (default int8 recipe)
    pipeline.int8.onnx       fp32 front-end + int8 network
    model.fp16.onnx, pipeline.fp16.onnx   with --quantize fp16
    export.json              what was written, checks against torch, calibration, sizes

Every graph is checked against torch at several batch sizes and lengths before
anything is reported as done.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hearkit import artifacts
from hearkit.errors import ConfigError, ModelError
from hearkit.export.onnx_io import sha256_file
from hearkit.export.pipeline import (
    FEATURES,
    check_feature_graph,
    check_waveform_graphs,
    enforce_checks,
    export_network,
    merge_frontend,
    save_variant,
    save_with_info,
    scalar_metrics,
    torch_fn,
    write_summary,
    WaveformModel,
)
from hearkit.export.quantize import DEFAULT_RECIPE, compute_features, get_recipe, quantize_network, recipe_metadata
from hearkit.frontend import FrontendConfig
from hearkit.metadata import ModelInfo

DEFAULT_CALIBRATION_CLIPS = 300  # training clips used to calibrate static quantization
FP32_CHECK_ATOL = 1e-3           # export fails when an fp32 graph is further than this from torch


def artifact_suffix(recipe_name: str) -> str:
    """File-name tag of a quantized variant: ``int8`` for the default recipe, else the recipe name."""
    return "int8" if recipe_name == DEFAULT_RECIPE else recipe_name


def load_classifier(ckpt: dict) -> tuple[torch.nn.Module, FrontendConfig]:
    """Rebuild the network (eval mode) and its front-end config from a checkpoint dict."""
    from hearkit.training.models import model_from_config

    if ckpt.get("task") != "classify":
        raise ModelError(f"checkpoint task is {ckpt.get('task')!r}, expected 'classify'")
    for key in ("labels", "window_samples"):
        if key not in ckpt:
            raise ModelError(f"classification checkpoint lacks '{key}'")
    net = model_from_config(ckpt["model"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval(), FrontendConfig.from_dict(ckpt["frontend"])


WaveformClassifier = WaveformModel  # the classification reference (name kept for callers)


def fit_window(x: np.ndarray, window_samples: int) -> np.ndarray:
    """Pad/crop exactly as the runtime does (``hearkit.classify.fit_window``)."""
    from hearkit.classify import fit_window as fw

    return fw(x, window_samples)


def dataset_options(train_config: dict, fmt: str | None, data) -> dict:
    """``index_dataset`` options that reproduce the training run's labels and splits.

    UrbanSound8K folds and Speech Commands keywords come from the checkpoint's
    ``train_config`` when the data is the training data's format.
    """
    tc = train_config or {}
    same_format = fmt is None or fmt == tc.get("format")
    kw: dict = {}
    if same_format and tc.get("format") == "urbansound8k":
        kw.update(val_fold=tc.get("val_fold"), test_fold=tc.get("test_fold"))
    if same_format and tc.get("keywords") and (tc.get("format") in (None, "speech-commands")):
        kw["keywords"] = list(tc["keywords"])
    return kw


def calibration_examples(ckpt: dict, data: str | os.PathLike | None, fmt: str | None, clips: int):
    """Training clips for calibration: ``clips`` examples spread evenly over the labels, deterministic.

    The data folder and format default to the ones recorded in the checkpoint's ``train_config``.
    """
    from hearkit.datasets import index_dataset

    tc = ckpt.get("train_config") or {}
    root = data or tc.get("data") or tc.get("data_dir")
    if not root:
        raise ConfigError("no calibration data: the checkpoint records no data folder; pass --data DIR")
    if not Path(root).is_dir():
        raise ConfigError(f"calibration data folder {root} does not exist; pass --data DIR")
    kw = {}
    kw = dataset_options(tc, fmt, data)
    idx = index_dataset(root, fmt or (tc.get("format") if data is None else None), **kw)
    train = idx.split("train") or idx.split("all")
    by_label: dict[str, list] = {}
    for e in train:
        by_label.setdefault(e.label, []).append(e)
    # round-robin over labels, each label's clips strided evenly: every class calibrates the ranges
    picked, k = [], 0
    per = {lab: np.linspace(0, len(v) - 1, min(len(v), clips)).round().astype(int) for lab, v in by_label.items()}
    while len(picked) < min(clips, len(train)):
        for lab in sorted(by_label):
            if k < len(per[lab]) and len(picked) < clips:
                picked.append(by_label[lab][per[lab][k]])
        k += 1
    return picked, str(root)


def load_windows(paths, sample_rate: int, window_samples: int) -> np.ndarray:
    """(n, window_samples) float32 of audio files (resampled, padded/cropped); unreadable files fail loudly."""
    from hearkit.audio import load_audio

    return np.stack([fit_window(load_audio(p, sample_rate)[0], window_samples) for p in paths]).astype(np.float32)


def export_classifier(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    quantize: tuple[str, ...] = ("int8",),
    calibration_clips: int = DEFAULT_CALIBRATION_CLIPS,
    data: str | os.PathLike | None = None,
    fmt: str | None = None,
    ckpt: dict | None = None,
    log=None,
) -> dict:
    """Export a classification checkpoint to ``out_dir``; return the ``export.json`` summary.

    Args:
        checkpoint: ``best.pt`` written by ``hearkit train classify``.
        out_dir: output folder (created).
        quantize: variants to add: ``int8`` (default recipe), ``fp16`` or any recipe name;
            empty or ``("none",)`` for fp32 only.
        calibration_clips: training clips for static calibration (Default: 300).
        data: calibration data folder (Default: the checkpoint's training data).
        fmt: dataset format of ``data`` (Default: detected).
        ckpt: the already loaded checkpoint dict (skips loading it again).
        log: callable taking a progress line (Default: stderr).
    """
    from hearkit.export.frontend import build_frontend_graph
    from hearkit.training.checkpoint import load_checkpoint

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    checkpoint = Path(checkpoint).resolve()
    ckpt = ckpt if ckpt is not None else load_checkpoint(checkpoint)
    net, cfg = load_classifier(ckpt)
    labels = [str(x) for x in ckpt["labels"]]
    window = int(ckpt["window_samples"])
    sha = sha256_file(checkpoint)
    metrics = scalar_metrics(ckpt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fe_file, net_file, pipe_file = (artifacts.file_name(s) for s in (artifacts.FRONTEND, artifacts.MODEL, artifacts.PIPELINE))
    recipes = [get_recipe(q) for q in quantize if q != "none"]

    def info(**kw) -> ModelInfo:
        base = dict(task="classify", input="waveform", frontend=cfg, labels=tuple(labels), window_samples=window,
                    checkpoint_sha256=sha, metrics=metrics, model=dict(ckpt["model"]),
                    quantization={"format": "fp32"})
        base.update(kw)
        return ModelInfo(**base)

    log(f"export: front-end graph (n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels)")
    fe = build_frontend_graph(cfg, backend="onnx-conv")
    save_with_info(fe, info(task="frontend"), out / fe_file)
    log(f"export: network {ckpt['model'].get('name')} ({len(labels)} labels)")
    frames = max(cfg.num_frames(window), 8)
    model = export_network(net, cfg.n_mels, example_frames=frames, output_name="logits")
    save_with_info(model, info(input="logmel"), out / net_file)
    pipe = merge_frontend(fe, model, FEATURES, "logits")
    save_with_info(pipe, info(), out / pipe_file)

    log("export: checking graphs against torch at several batch sizes and lengths")
    from hearkit.training.frontend import LogMel

    ref_pipe = WaveformClassifier(net, cfg).eval()
    checks = check_waveform_graphs(
        {fe_file: out / fe_file, pipe_file: out / pipe_file},
        {fe_file: torch_fn(LogMel(cfg)), pipe_file: torch_fn(ref_pipe)},
        cfg.sample_rate,
    )
    checks.append(check_feature_graph(net_file, out / net_file, torch_fn(net), cfg.n_mels))
    # the front-end's own parity is the front-end tests' business (float32 log floor, docs/design.md §4)
    enforce_checks(checks, FP32_CHECK_ATOL, log, skip=(fe_file,))

    variants = {}
    calib = None
    for r in recipes:
        suffix = artifact_suffix(r.name)
        feats = None
        if r.static:
            if calib is None:
                examples, root = calibration_examples(ckpt, data, fmt, calibration_clips)
                log(f"export: calibration features of {len(examples)} training clips from {root} (exported front-end)")
                wav = load_windows([e.path for e in examples], cfg.sample_rate, window)
                calib = {"features": compute_features(out / fe_file, wav), "clips": len(examples), "data": root}
            feats = calib["features"]
        log(f"export: quantizing the network with recipe {r.name} ({r.why})")
        qmeta = recipe_metadata(r, calib["clips"] if (calib and r.static) else None)
        qnet = quantize_network(out / net_file, out / artifacts.file_name(artifacts.MODEL, suffix), r, feats)
        variants[suffix] = save_variant(out, fe, qnet, info, qmeta, suffix, "logits")

    summary = {
        "task": "classify",
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha,
        "model": dict(ckpt["model"]),
        "labels": labels,
        "window_samples": window,
        "frontend": cfg.to_dict(),
        "metrics": metrics,
        "train_config": ckpt.get("train_config") or {},
        "checks": [c.to_dict() for c in checks],
        "variants": variants,
        "calibration": None if calib is None else {"clips": calib["clips"], "data": calib["data"], "split": "train"},
    }
    return write_summary(out, summary, t0, log)
