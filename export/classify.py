"""The ``classify`` task: keyword and sound classifiers (log-mel CNN, logits out).

What the export and verify skeletons (``hearkit.export.exporter``,
``hearkit.export.verify``) ask of it, in ``ClassifyTask``:

- checkpoint: ``labels`` and ``window_samples`` beside the model and front-end config;
  both travel into every ONNX file (``hearkit.labels``, ``hearkit.window_samples``);
- network: dynamo exporter, ``logmel`` (batch, frames, n_mels) -> ``logits`` (batch, labels);
  the front-end graph and the pipeline are checked against torch at 0.37, 1 and 2.3 s
  (the front-end's difference is recorded, not enforced);
- calibration: training clips spread evenly over the labels, cut to the model's window;
- verify: on a dataset split (``--data``, ``--split``): logits error and top-1 agreement
  of fp32 ONNX with torch, top-1 agreement and accuracy drop of each quantized variant,
  latency of one clip; ``ClassifyThresholds`` are the limits;
- runtime: ``hearkit.Classifier``.

Torch-free on import (torch and the export steps load inside the methods), so the
CLI lists these options on a device without torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from hearkit import artifacts
from hearkit.audio import load_centre_windows
from hearkit.errors import ConfigError
from hearkit.export.task import Calibration, CliOption, Evaluation, Task, check_checkpoint
from hearkit.frontend import frontend_from_dict

OUTPUT = "logits"                # the network's and pipeline's output tensor
DEFAULT_CALIBRATION_CLIPS = 300  # training clips used to calibrate static quantization
FP32_CHECK_ATOL = 1e-3           # export fails when an fp32 graph is further than this from torch (logits)
CHECK_SECONDS = (0.37, 1.0, 2.3)  # waveform lengths (s) the graphs are checked at: shorter, equal to and longer than 1 s
CHECK_FRAMES = (37, 98, 230)     # log-mel frames the network is checked at (98: 1 s at a 10 ms hop)
VERIFY_BATCH = 64                # clips per torch / onnxruntime call in verify
SPLITS = ("val", "test", "train", "all")
DATA_DIR = click.Path(exists=True, file_okay=False)


@dataclass(frozen=True)
class ClassifyThresholds:
    """Pass/fail limits of ``hearkit verify`` for a classification export."""

    fp32_logits_atol: float = 1e-3         # logits: max |ONNX fp32 - torch| over every clip and label
    fp32_top1_agreement: float = 1.0       # fraction of clips where fp32 ONNX and torch pick the same label
    quant_top1_agreement: float = 0.99     # the same, for each quantized variant against torch
    quant_max_accuracy_drop: float = 0.01  # fraction (0.01 = 1 point): accuracy of a quantized variant below fp32 ONNX's


def load_classifier(ckpt: dict):
    """Rebuild the network (eval mode) and its front-end config from a checkpoint dict."""
    from hearkit.training.models import model_from_config

    check_checkpoint(ckpt, "classify", ("labels", "window_samples"), "classification")
    net = model_from_config(ckpt["model"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval(), frontend_from_dict(ckpt["frontend"])


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
    idx = index_dataset(root, fmt or (tc.get("format") if data is None else None), **dataset_options(tc, fmt, data))
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


def eval_examples(summary: dict, data, fmt, split: str, max_clips: int | None):
    """``(examples, data folder, format)`` of the split to verify on, labels checked against the model's."""
    from hearkit.datasets import index_dataset

    tc = summary.get("train_config") or {}
    root = data or tc.get("data")
    if not root:
        raise ConfigError("no evaluation data: pass --data DIR")
    idx = index_dataset(root, fmt or (tc.get("format") if data is None else None), **dataset_options(tc, fmt, data))
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


class ClassifyTask(Task):
    """Classification: labels and a fixed window in, logits out, accuracy as the metric."""

    name = "classify"
    output = OUTPUT
    thresholds = ClassifyThresholds
    unit = "clips"
    calibration_clips = DEFAULT_CALIBRATION_CLIPS
    fp32_check_atol = FP32_CHECK_ATOL
    checked_graphs = (artifacts.FRONTEND, artifacts.PIPELINE)
    check_seconds = CHECK_SECONDS
    check_frames = CHECK_FRAMES
    data_option = "data"
    export_options = (
        CliOption("--data", "data", "calibration data folder (default: the one recorded in the checkpoint)", DATA_DIR),
        CliOption("--format", "fmt", "dataset format of --data (default: detected)", str),
        CliOption("--calibration-clips", "calibration_clips", "training clips used to calibrate static int8",
                  click.IntRange(min=1), DEFAULT_CALIBRATION_CLIPS),
    )
    verify_options = (
        CliOption("--data", "data", "evaluation data folder (default: the checkpoint's training data)", DATA_DIR),
        CliOption("--format", "fmt", "dataset format (default: detected)", str),
        CliOption("--split", "split", "the split to verify on", click.Choice(SPLITS), "val"),
        CliOption("--fp32-atol", "fp32_logits_atol", "max |fp32 logits - torch logits|", threshold=True),
        CliOption("--fp32-agreement", "fp32_top1_agreement", "min fp32 top-1 agreement with torch", threshold=True),
        CliOption("--quant-agreement", "quant_top1_agreement", "min quantized top-1 agreement with torch", threshold=True),
        CliOption("--quant-max-drop", "quant_max_accuracy_drop", "max quantized accuracy drop vs fp32, in points",
                  threshold=True, scale=0.01),
    )

    def load(self, ckpt):
        return load_classifier(ckpt)

    def model_info(self, ckpt, net):
        return {"labels": tuple(str(x) for x in ckpt["labels"]), "window_samples": int(ckpt["window_samples"])}

    def check_lengths(self, ckpt, net):
        # a head on the last N speech-embedding vectors needs at least its window: checked there and a bit beyond
        frames = getattr(net, "frames", None)
        if frames:
            window_s = int(ckpt["window_samples"]) / frontend_from_dict(ckpt["frontend"]).sample_rate
            return (window_s, window_s + 0.37), (frames, frames + 7)
        return self.check_seconds, self.check_frames

    def summary(self, ckpt, net):
        return {"labels": [str(x) for x in ckpt["labels"]], "window_samples": int(ckpt["window_samples"])}

    def export_network(self, net, cfg, ckpt, log):
        from hearkit.export.pipeline import export_network

        log(f"export: network {ckpt['model'].get('name')} ({len(ckpt['labels'])} labels)")
        frames = max(cfg.num_frames(int(ckpt["window_samples"])), getattr(net, "frames", 8))
        return export_network(net, cfg.n_mels, example_frames=frames, output_name=OUTPUT), "dynamo"

    def calibration(self, ckpt, checkpoint, count, log, data=None, fmt=None):
        examples, root = calibration_examples(ckpt, data, fmt, count)
        log(f"export: calibration features of {len(examples)} training clips from {root} (exported front-end)")
        cfg = frontend_from_dict(ckpt["frontend"])
        return Calibration(load_centre_windows([e.path for e in examples], cfg.sample_rate, int(ckpt["window_samples"])),
                           len(examples), root)

    def evaluate(self, out, summary, net, cfg, variants, *, max_clips, latency_runs, log, data=None, fmt=None,
                 split=None):
        import torch

        from hearkit.export.quantize import compute_features
        from hearkit.export.report import onnx_latency_ms, torch_latency_ms
        from hearkit.training.frontend import frontend_module

        split = split or "val"
        labels = list(summary["labels"])
        window = int(summary["window_samples"])
        examples, root, data_format = eval_examples(summary, data, fmt, split, max_clips)
        log(f"verify: {len(examples)} clips of split '{split}' from {root}")
        wav = load_centre_windows([e.path for e in examples], cfg.sample_rate, window)
        y = np.array([labels.index(e.label) for e in examples])

        ref, fe = self.reference(net, cfg), frontend_module(cfg)
        batches = [torch.from_numpy(wav[i : i + VERIFY_BATCH]) for i in range(0, len(wav), VERIFY_BATCH)]
        with torch.inference_mode():
            feats_torch = np.concatenate([fe(b).numpy() for b in batches])
            logits_torch = np.concatenate([ref(b).numpy() for b in batches])
        top_torch = logits_torch.argmax(1)
        # front-end parity on real audio
        feats_onnx = compute_features(out / artifacts.file_name(artifacts.FRONTEND), wav)
        fe_err = float(np.abs(feats_onnx.astype(np.float64) - feats_torch).max())

        ckpt_file = Path(summary.get("checkpoint", ""))
        results: dict[str, dict] = {
            "torch": {"accuracy": float((top_torch == y).mean()), "bytes": ckpt_file.stat().st_size if ckpt_file.is_file() else None}
        }
        for name, v in variants.items():
            path, net_path = out / v["pipeline"], out / v["model"]
            log(f"verify: running {v['pipeline']}")
            logits = self.runner(path).logits(list(wav), batch_size=VERIFY_BATCH)
            top = logits.argmax(1)
            results[name] = {
                "file": v["pipeline"],
                "recipe": v["recipe"],
                "bytes": path.stat().st_size,
                "network_bytes": net_path.stat().st_size if net_path.is_file() else None,
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
                results[name]["speedup_vs_fp32"] = results[artifacts.FP32]["latency_ms"] / results[name]["latency_ms"]
        fields = {"data": root, "format": data_format, "split": split, "clips": len(examples),
                  "frontend_max_abs_err": fe_err}
        return Evaluation(fields, results)

    def checks(self, results, th):
        from hearkit.export.report import limit_check

        fp = results[artifacts.FP32]
        rows = [
            limit_check("fp32 logits max |onnx - torch|", fp["logits_max_abs_err"], th.fp32_logits_atol),
            limit_check("fp32 top-1 agreement with torch", fp["top1_agreement_with_torch"], th.fp32_top1_agreement,
                        at_least=True),
        ]
        for name, r in results.items():
            if name in ("torch", artifacts.FP32):
                continue
            rows.append(limit_check(f"{name} top-1 agreement with torch", r["top1_agreement_with_torch"],
                                    th.quant_top1_agreement, at_least=True))
            rows.append(limit_check(f"{name} accuracy drop vs fp32 (points)", fp["accuracy"] - r["accuracy"],
                                    th.quant_max_accuracy_drop, points=True))
        return rows

    def report_markdown(self, r):
        from hearkit.export.report import fmt, kib, report_markdown, results_table

        table = results_table(r["results"], [
            ("file", lambda v: v.get("file", "checkpoint") if v.get("bytes") else "–"),
            ("size (KiB)", kib),
            ("accuracy", lambda v: fmt(v["accuracy"], True)),
            ("top-1 agreement with torch", lambda v: fmt(v.get("top1_agreement_with_torch"), True)),
            ("logits max err", lambda v: fmt(v.get("logits_max_abs_err"))),
            ("latency (ms, 1 thread)", lambda v: fmt(v.get("latency_ms"))),
        ])
        slower = [k for k, v in r["results"].items()
                  if k not in ("torch", artifacts.FP32) and v.get("recipe") != "fp16" and v.get("speedup_vs_fp32", 1) < 1]
        notes = [f"Note: {', '.join(slower)} ran slower than fp32 on this machine. For a model this small the "
                 "quantize/dequantize steps and int8 kernels that lose to fp32 (onnxruntime's int8 depthwise "
                 "convolutions, single-channel stems) can outweigh the int8 matrix work; where int8 gains nothing, "
                 "ship fp32 (docs/design.md §5: benchmark against fp32, keep the faster; `hearkit bench classify`)."
                 ] if slower else []
        about = [
            f"- data: `{r['data']}` ({r['format']}), split **{r['split']}**, {r['clips']} clips",
            f"- front-end max |onnx − torch| on these clips: {r['frontend_max_abs_err']:.3g} (log-mel)",
        ]
        return report_markdown(r, "", about, table, notes)
