"""Export a CTC checkpoint: front-end, network, fused pipeline, quantized variants.

``export_ctc(checkpoint, out_dir)`` writes (single-file ONNX, ``hearkit.*`` metadata
with ``task=ctc``, ``vocab``, ``blank``, ``subsampling``):

    frontend.onnx        waveform (batch, samples) -> logmel (batch, frames, n_mels), fp32
    model.onnx           logmel -> log_probs (batch, out_frames, vocab), fp32
    pipeline.onnx        waveform -> log_probs (front-end + network fused)
    model.int8.onnx, pipeline.int8.onnx
                         ctc-conv: static QDQ S8S8 per-channel (Conv/BN/ReLU only), calibrated
                         on training utterances through the exported front-end.
                         ctc-crnn: dynamic quantization of the LSTM and MatMul/Gemm weights
                         (ORT never quantizes GRU, and LSTM only dynamically, docs/design.md §5).
    export.json          files, checks against torch, calibration

Exporters: ``ctc-conv`` uses the dynamo exporter (C's ``export_network``); ``ctc-crnn``
uses the TorchScript exporter (``dynamo=False``), because dynamo fails on
bidirectional/multi-layer RNNs with a dynamic time axis or silently bakes in the
example length (docs/design.md §6). Every graph is checked against torch at 0.5 s, 3.7 s
and 30 s and at batch 1 and 3 before the export counts as done.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
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
from hearkit.frontend import FrontendConfig
from hearkit.metadata import ModelInfo

OUTPUT = "log_probs"
CHECK_SECONDS = (0.5, 3.7, 30.0)  # lengths every CTC graph is checked at (the issue's; 30 s catches baked lengths)
CHECK_BATCHES = (1, 3)
FP32_CHECK_ATOL = 2e-3  # log-probs of confident frames reach -40; float32 error there is ~1e-5 relative
CALIBRATION_UTTERANCES = 200  # training utterances used to calibrate static quantization
CALIBRATION_SECONDS = 3.0  # calibration utterances are cut into windows of this length (one array shape)
OPSET_TORCHSCRIPT = 17  # TorchScript exporter opset for the RNN model


def load_ctc(ckpt: dict) -> tuple[torch.nn.Module, FrontendConfig]:
    """Rebuild the CTC network (eval mode) and its front-end config from a checkpoint dict."""
    from hearkit.training.ctc_models import build_model

    if ckpt.get("task") != "ctc":
        raise ModelError(f"checkpoint task is {ckpt.get('task')!r}, expected 'ctc'")
    for key in ("vocab", "blank"):
        if key not in ckpt:
            raise ModelError(f"CTC checkpoint lacks '{key}'")
    cfg = FrontendConfig.from_dict(ckpt["frontend"])
    net = build_model(dict(ckpt["model"]), cfg.n_mels, len(ckpt["vocab"]))
    net.load_state_dict(ckpt["state_dict"])
    return net.eval(), cfg


WaveformCTC = WaveformModel  # the CTC reference (name kept for callers)


def export_rnn_network(net: torch.nn.Module, n_mels: int, example_frames: int = 300) -> onnx.ModelProto:
    """Export an RNN network with the TorchScript exporter (``dynamo=False``), batch and time dynamic."""
    net = net.eval()
    x = torch.randn(2, example_frames, n_mels, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(prefix="hearkit-rnn-") as tmp:
        p = Path(tmp) / "net.onnx"
        try:
            torch.onnx.export(
                net, (x,), str(p), dynamo=False, input_names=[FEATURES], output_names=[OUTPUT],
                dynamic_axes={FEATURES: {0: "batch", 1: "frames"}, OUTPUT: {0: "batch", 1: "out_frames"}},
                opset_version=OPSET_TORCHSCRIPT,
            )
        except Exception as e:
            raise ModelError(f"ONNX export of {type(net).__name__} failed: {str(e).splitlines()[0][:300]}") from e
        return onnx.load(str(p))


def quantize_rnn_dynamic(model_path, out_path) -> onnx.ModelProto:
    """Dynamic int8 for the RNN model: LSTM (DynamicQuantizeLSTM) and MatMul/Gemm weights; convs stay fp32.

    Convolutions are left out on purpose: dynamic ConvInteger is 10-14x slower
    than fp32 (docs/design.md §5). GRU stays fp32 (ORT has no quantized GRU).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(os.fspath(model_path), os.fspath(out_path), op_types_to_quantize=["LSTM", "MatMul", "Gemm"],
                     per_channel=False, weight_type=QuantType.QInt8)
    return onnx.load(os.fspath(out_path))


def calibration_windows(manifest, sample_rate: int, utterances: int = CALIBRATION_UTTERANCES,
                        seconds: float = CALIBRATION_SECONDS) -> tuple[np.ndarray, int]:
    """(n, seconds * rate) float32 windows cut from ``utterances`` training utterances spread over the manifest."""
    from hearkit.audio import load_audio
    from hearkit.manifest import read_dataset

    m = read_dataset(manifest)
    pick = np.unique(np.linspace(0, len(m) - 1, min(utterances, len(m))).round().astype(int))
    audio = np.concatenate([load_audio(m.utterances[i].audio, sample_rate)[0] for i in pick])
    n = int(seconds * sample_rate)
    k = max(1, len(audio) // n)
    if len(audio) < n:
        audio = np.pad(audio, (0, n - len(audio)))
    return audio[: k * n].reshape(k, n).astype(np.float32), len(pick)


def export_ctc(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    quantize: tuple[str, ...] = ("int8",),
    calibration_utterances: int = CALIBRATION_UTTERANCES,
    manifest: str | os.PathLike | None = None,
    ckpt: dict | None = None,
    check_seconds=CHECK_SECONDS,
    log=None,
    calibration_clips: int | None = None,
    data: str | os.PathLike | None = None,
    **_ignored,
) -> dict:
    """Export a CTC checkpoint to ``out_dir``; return the ``export.json`` summary.

    Args:
        checkpoint: ``best.pt`` written by ``hearkit train ctc``.
        out_dir: output folder (created).
        quantize: variants: ``int8`` (static QDQ for ctc-conv, dynamic LSTM/MatMul for ctc-crnn),
            ``fp16`` or a static recipe name; empty or ``("none",)`` for fp32 only.
        calibration_utterances: training utterances for static calibration (Default: 200).
        manifest: calibration manifest (Default: the checkpoint's training manifest).
        ckpt: the already loaded checkpoint dict.
        check_seconds: lengths the graphs are checked at (Default: 0.5, 3.7, 30 s).
        log: callable taking a progress line (Default: stderr).
        calibration_clips, data: aliases of ``calibration_utterances`` and ``manifest`` used by the
            generic ``hearkit export`` command (``--calibration-clips``, ``--data``).
    """
    from hearkit.export.frontend import build_frontend_graph
    from hearkit.export.quantize import get_recipe, quantize_network, recipe_metadata, compute_features
    from hearkit.training.checkpoint import load_checkpoint

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    manifest = manifest or data
    calibration_utterances = calibration_clips or calibration_utterances
    t0 = time.perf_counter()
    checkpoint = Path(checkpoint).resolve()
    ckpt = ckpt if ckpt is not None else load_checkpoint(checkpoint)
    net, cfg = load_ctc(ckpt)
    vocab = [str(v) for v in ckpt["vocab"]]
    blank = int(ckpt["blank"])
    sub = int(getattr(net, "subsampling", ckpt.get("subsampling", 1)))
    arch = ckpt["model"].get("arch", "conv")
    sha = sha256_file(checkpoint)
    metrics = scalar_metrics(ckpt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fe_file, net_file, pipe_file = (artifacts.file_name(s) for s in (artifacts.FRONTEND, artifacts.MODEL, artifacts.PIPELINE))

    def info(**kw) -> ModelInfo:
        base = dict(task="ctc", input="waveform", frontend=cfg, vocab=tuple(vocab), blank=blank, subsampling=sub,
                    checkpoint_sha256=sha, metrics=metrics, model=dict(ckpt["model"]), quantization={"format": "fp32"})
        base.update(kw)
        return ModelInfo(**base)

    log(f"export: front-end graph (n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels)")
    fe = build_frontend_graph(cfg, backend="onnx-conv")
    save_with_info(fe, info(task="frontend"), out / fe_file)
    exporter = "torchscript (dynamo=False)" if arch == "crnn" else "dynamo"
    log(f"export: network {ckpt['model'].get('name')} ({len(vocab)} outputs, subsampling {sub}) with the {exporter} exporter")
    if arch == "crnn":
        model = export_rnn_network(net, cfg.n_mels)
    else:
        model = export_network(net, cfg.n_mels, example_frames=300, output_name=OUTPUT, time_axis_out=1)
    save_with_info(model, info(input="logmel"), out / net_file)
    pipe = merge_frontend(fe, model, FEATURES, OUTPUT)
    save_with_info(pipe, info(), out / pipe_file)

    log(f"export: checking graphs against torch at {list(check_seconds)} s, batch {list(CHECK_BATCHES)}")
    checks = check_waveform_graphs(
        {pipe_file: out / pipe_file},
        {pipe_file: torch_fn(WaveformCTC(net, cfg))},
        cfg.sample_rate, seconds=check_seconds, batches=CHECK_BATCHES,
    )
    checks.append(check_feature_graph(net_file, out / net_file, torch_fn(net), cfg.n_mels,
                                      frames=(48, 371, 3001)))
    enforce_checks(checks, FP32_CHECK_ATOL, log)

    variants, calib = {}, None
    for q in quantize:
        if q == "none":
            continue
        suffix = "int8" if q == "int8" else q
        if arch == "crnn" and q == "int8":
            log("export: int8 for ctc-crnn = dynamic quantization of LSTM and MatMul/Gemm (convs and GRU stay fp32)")
            qnet = quantize_rnn_dynamic(out / net_file, out / artifacts.file_name(artifacts.MODEL, suffix))
            qmeta = {"recipe": "dynamic-rnn", "format": "dynamic", "weight_type": "int8",
                     "op_types": ["LSTM", "MatMul", "Gemm"]}
        else:
            r = get_recipe(q)
            feats = None
            if r.static:
                if calib is None:
                    src = manifest or (ckpt.get("train_config") or {}).get("train_manifest") or _train_manifest(checkpoint)
                    if not src:
                        raise ConfigError("no calibration data: pass --manifest TRAIN.jsonl")
                    wav, n_utt = calibration_windows(src, cfg.sample_rate, calibration_utterances)
                    log(f"export: calibration features of {n_utt} training utterances ({len(wav)} windows "
                        f"of {CALIBRATION_SECONDS} s) from {src} through the exported front-end")
                    calib = {"features": compute_features(out / fe_file, wav), "utterances": n_utt, "data": str(src)}
                feats = calib["features"]
            log(f"export: quantizing the network with recipe {r.name} ({r.why})")
            qmeta = recipe_metadata(r, calib["utterances"] if (calib and r.static) else None)
            qnet = quantize_network(out / net_file, out / artifacts.file_name(artifacts.MODEL, suffix), r, feats)
        variants[suffix] = save_variant(out, fe, qnet, info, qmeta, suffix, OUTPUT)

    summary = {
        "task": "ctc",
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha,
        "model": dict(ckpt["model"]),
        "exporter": exporter,
        "vocab": vocab,
        "blank": blank,
        "subsampling": sub,
        "frontend": cfg.to_dict(),
        "metrics": metrics,
        "train_config": ckpt.get("train_config") or {},
        "checks": [c.to_dict() for c in checks],
        "check_atol": FP32_CHECK_ATOL,
        "variants": variants,
        "calibration": None if calib is None else {"utterances": calib["utterances"], "data": calib["data"], "split": "train"},
    }
    return write_summary(out, summary, t0, log)


def _train_manifest(checkpoint: Path) -> str | None:
    """The training manifest named in the run folder's config.json (written by ``hearkit train ctc``)."""
    p = checkpoint.parent / "config.json"
    if p.is_file():
        try:
            return json.loads(p.read_text()).get("train_manifest")
        except json.JSONDecodeError:
            return None
    return None
