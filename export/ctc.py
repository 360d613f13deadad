"""The ``ctc`` task: speech recognisers (CTC encoder, log-probs out).

What the export and verify skeletons (``hearkit.export.exporter``,
``hearkit.export.verify``) ask of it, in ``CTCTask``:

- checkpoint: ``vocab`` and ``blank`` beside the model and front-end config; with the
  network's subsampling they travel into every ONNX file (``hearkit.vocab``,
  ``hearkit.blank``, ``hearkit.subsampling``);
- network: ``logmel`` -> ``log_probs`` (batch, out_frames, vocab). ``ctc-conv`` uses the
  dynamo exporter; ``ctc-crnn`` the TorchScript exporter (``dynamo=False``), because
  dynamo fails on bidirectional/multi-layer RNNs with a dynamic time axis or silently
  bakes in the example length (docs/design.md §6). The pipeline is checked against
  torch at 0.5 s, 3.7 s and 30 s and at batch 1 and 3;
- quantization: ctc-conv takes the static recipes (Conv/BN/ReLU only), calibrated on
  training utterances cut into windows; ctc-crnn's ``int8`` is dynamic quantization of
  the LSTM and MatMul/Gemm weights (ORT never quantizes GRU, and LSTM only
  dynamically, docs/design.md §5);
- verify: each utterance of a manifest, whole, at batch 1 (the runtime's case):
  log-prob error and greedy-transcript agreement of fp32 ONNX with torch, and the CER
  increase of each quantized variant; ``CTCThresholds`` are the limits;
- runtime: ``hearkit.Transcriber``.

Torch-free on import (torch, onnx and the export steps load inside the methods),
so the CLI lists these options on a device without torch.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from hearkit import artifacts
from hearkit.errors import ConfigError, ModelError, check_finite
from hearkit.export.task import Calibration, CliOption, Evaluation, Quantizer, Task, check_checkpoint
from hearkit.frontend import FrontendConfig
from hearkit.tasks import get_task

OUTPUT = "log_probs"
CHECK_SECONDS = (0.5, 3.7, 30.0)  # lengths every CTC graph is checked at (30 s catches baked-in lengths)
CHECK_FRAMES = (48, 371, 3001)    # log-mel frames the network is checked at (the same lengths at a 10 ms hop)
FP32_CHECK_ATOL = 2e-3  # log-probs of confident frames reach -40; float32 error there is ~1e-5 relative
# training utterances used to calibrate static quantization: what `hearkit export` has always
# used (its --calibration-clips default), with which docs/recipes measured the int8 figures
CALIBRATION_UTTERANCES = 300
CALIBRATION_SECONDS = get_task("ctc").calibration_seconds  # utterances are cut into windows this long (one array shape)
OPSET_TORCHSCRIPT = 17  # TorchScript exporter opset for the RNN model
EXAMPLE_FRAMES = 300    # frames of the example input the network is exported with (3 s)
RNN_INT8_OPS = ["LSTM", "MatMul", "Gemm"]  # what the RNN's dynamic int8 quantizes


@dataclass(frozen=True)
class CTCThresholds:
    """Pass/fail limits of ``hearkit verify`` for a CTC export."""

    # log-probs (natural log): max |ONNX fp32 - torch| over every frame and token; unlikely tokens
    # reach -40 and long utterances sum many float32 roundings
    fp32_logprob_atol: float = 5e-3
    fp32_transcript_agreement: float = 0.99  # fraction of utterances whose fp32 greedy transcript equals torch's
    quant_max_cer_increase: float = 0.005    # fraction (0.005 = 0.5 point): CER of a quantized variant above fp32's


def load_ctc(ckpt: dict):
    """Rebuild the CTC network (eval mode) and its front-end config from a checkpoint dict."""
    from hearkit.training.ctc_models import build_model

    check_checkpoint(ckpt, "ctc", ("vocab", "blank"), "CTC")
    cfg = FrontendConfig.from_dict(ckpt["frontend"])
    net = build_model(dict(ckpt["model"]), cfg.n_mels, len(ckpt["vocab"]))
    net.load_state_dict(ckpt["state_dict"])
    return net.eval(), cfg


def export_rnn_network(net, n_mels: int, example_frames: int = EXAMPLE_FRAMES):
    """Export an RNN network with the TorchScript exporter (``dynamo=False``), batch and time dynamic."""
    import onnx
    import torch

    from hearkit.export.pipeline import FEATURES

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


def quantize_rnn_dynamic(model_path, out_path):
    """Dynamic int8 for the RNN model: LSTM (DynamicQuantizeLSTM) and MatMul/Gemm weights; convs stay fp32.

    Convolutions are left out on purpose: dynamic ConvInteger is 10-14x slower
    than fp32 (docs/design.md §5). GRU stays fp32 (ORT has no quantized GRU).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(os.fspath(model_path), os.fspath(out_path), op_types_to_quantize=RNN_INT8_OPS,
                     per_channel=False, weight_type=QuantType.QInt8)
    return onnx.load(os.fspath(out_path))


def calibration_windows(manifest, sample_rate: int, utterances: int = CALIBRATION_UTTERANCES,
                        seconds: float = CALIBRATION_SECONDS) -> tuple[np.ndarray, int]:
    """(n, seconds * rate) float32 windows cut from ``utterances`` training utterances spread over the manifest."""
    from hearkit.audio import load_stream_windows
    from hearkit.manifest import read_dataset

    m = read_dataset(manifest)
    pick = np.unique(np.linspace(0, len(m) - 1, min(utterances, len(m))).round().astype(int))
    return load_stream_windows([m.utterances[i].audio for i in pick], sample_rate, int(seconds * sample_rate)), len(pick)


def greedy_text(log_probs: np.ndarray, vocab, blank: int) -> str:
    """Best path of (frames, vocab) log-probs with the runtime's own greedy decoder (``hearkit.ctc``)."""
    from hearkit.ctc import greedy_decode

    return greedy_decode(np.asarray(log_probs), vocab, blank).text


def _run_config(checkpoint: Path | str) -> dict:
    """The options in the run folder's config.json beside a checkpoint (written by ``hearkit train ctc``:
    under ``train``; a run folder from before the trainers shared one shape has them at the top), or {}."""
    p = Path(checkpoint).parent / "config.json"
    if p.is_file():
        try:
            c = json.loads(p.read_text())
        except json.JSONDecodeError:
            return {}
        return c.get("train") or c
    return {}


def _train_manifest(checkpoint: Path) -> str | None:
    """The training manifest named in the run folder's config.json."""
    return _run_config(checkpoint).get("train_manifest")


def _default_manifest(summary: dict) -> str:
    """The validation manifest recorded at training (checkpoint, else the run folder's config.json)."""
    m = (summary.get("train_config") or {}).get("val_manifest") or _run_config(summary.get("checkpoint") or "").get("val_manifest")
    if not m:
        raise ConfigError("no evaluation data: the checkpoint records no validation manifest; pass --manifest M")
    return m


MANIFEST = click.Path(exists=True)
DATA_DIR = click.Path(exists=True, file_okay=False)


class CTCTask(Task):
    """Speech recognition: a vocabulary and a blank in, log-probs out, CER/WER as the metric."""

    name = "ctc"
    output = OUTPUT
    thresholds = CTCThresholds
    unit = "utterances"
    calibration_clips = CALIBRATION_UTTERANCES
    fp32_check_atol = FP32_CHECK_ATOL
    checked_graphs = (artifacts.PIPELINE,)
    check_seconds = CHECK_SECONDS
    check_frames = CHECK_FRAMES
    data_option = "manifest"
    export_options = (
        CliOption("--manifest", "manifest", "JSONL manifest (or LibriSpeech folder) to calibrate on "
                  "(default: the training manifest)", MANIFEST),
        CliOption("--data", "data", "a folder holding manifest.jsonl, or a LibriSpeech folder (as --manifest)", DATA_DIR),
        CliOption("--calibration-clips", "calibration_clips", "training utterances used to calibrate static int8",
                  click.IntRange(min=1), CALIBRATION_UTTERANCES),
    )
    verify_options = (
        CliOption("--manifest", "manifest", "JSONL manifest (or LibriSpeech folder) to verify on "
                  "(default: the validation manifest of training)", MANIFEST),
        CliOption("--data", "data", "a folder holding manifest.jsonl, or a LibriSpeech folder (as --manifest)", DATA_DIR),
        CliOption("--fp32-atol", "fp32_logprob_atol", "max |fp32 log-probs - torch log-probs|", threshold=True),
        CliOption("--fp32-agreement", "fp32_transcript_agreement",
                  "min fraction of fp32 greedy transcripts identical to torch's", threshold=True),
        CliOption("--quant-max-drop", "quant_max_cer_increase", "max CER increase of a quantized variant vs fp32, in points",
                  threshold=True, scale=0.01),
    )

    def load(self, ckpt):
        return load_ctc(ckpt)

    @staticmethod
    def _subsampling(ckpt, net) -> int:
        return int(getattr(net, "subsampling", ckpt.get("subsampling", 1)))

    def model_info(self, ckpt, net):
        return {"vocab": tuple(str(v) for v in ckpt["vocab"]), "blank": int(ckpt["blank"]),
                "subsampling": self._subsampling(ckpt, net)}

    def summary(self, ckpt, net):
        return {"vocab": [str(v) for v in ckpt["vocab"]], "blank": int(ckpt["blank"]),
                "subsampling": self._subsampling(ckpt, net)}

    @staticmethod
    def _is_rnn(ckpt) -> bool:
        return ckpt["model"].get("arch", "conv") == "crnn"

    def export_network(self, net, cfg, ckpt, log):
        from hearkit.export.pipeline import export_network

        exporter = "torchscript (dynamo=False)" if self._is_rnn(ckpt) else "dynamo"
        log(f"export: network {ckpt['model'].get('name')} ({len(ckpt['vocab'])} outputs, subsampling "
            f"{self._subsampling(ckpt, net)}) with the {exporter} exporter")
        if self._is_rnn(ckpt):
            return export_rnn_network(net, cfg.n_mels), exporter
        return export_network(net, cfg.n_mels, example_frames=EXAMPLE_FRAMES, output_name=OUTPUT, time_axis_out=1), exporter

    def calibration(self, ckpt, checkpoint, count, log, manifest=None, data=None):
        src = manifest or data or (ckpt.get("train_config") or {}).get("train_manifest") or _train_manifest(checkpoint)
        if not src:
            raise ConfigError("no calibration data: pass --manifest TRAIN.jsonl")
        cfg = FrontendConfig.from_dict(ckpt["frontend"])
        wav, n_utt = calibration_windows(src, cfg.sample_rate, count)
        log(f"export: calibration features of {n_utt} training utterances ({len(wav)} windows "
            f"of {CALIBRATION_SECONDS} s) from {src} through the exported front-end")
        return Calibration(wav, n_utt, str(src))

    def quantizer(self, ckpt, variant):
        if not (self._is_rnn(ckpt) and variant == artifacts.INT8):
            return None
        return Quantizer(
            "export: int8 for ctc-crnn = dynamic quantization of LSTM and MatMul/Gemm (convs and GRU stay fp32)",
            {"recipe": "dynamic-rnn", "format": "dynamic", "weight_type": "int8", "op_types": list(RNN_INT8_OPS)},
            quantize_rnn_dynamic,
        )

    def evaluate(self, out, summary, net, cfg, variants, *, max_clips, latency_runs, log, manifest=None, data=None):
        import time

        import torch

        from hearkit.asr_metrics import wer_cer
        from hearkit.audio import load_audio
        from hearkit.manifest import read_dataset

        vocab, blank = list(summary["vocab"]), int(summary["blank"])
        src = manifest or data or _default_manifest(summary)
        m = read_dataset(src)
        utts = m.utterances
        if max_clips and max_clips < len(utts):
            utts = [utts[i] for i in np.linspace(0, len(utts) - 1, max_clips).round().astype(int)]
        log(f"verify: {len(utts)} utterances from {src}")
        if m.dropped:
            log(f"verify: {m.report()}")

        # the runtime's runner opens each pipeline (metadata checked); whole utterances go through its session
        sessions = {k: self.runner(out / v["pipeline"], threads=1).session for k, v in variants.items()}
        ref = self.reference(net, cfg)
        prev = torch.get_num_threads()
        torch.set_num_threads(1)
        hyps = {k: [] for k in ["torch", *variants]}
        secs = {k: 0.0 for k in hyps}
        max_err = {k: 0.0 for k in variants}
        audio_s = 0.0
        try:
            for u in utts:
                x, _ = load_audio(u.audio, cfg.sample_rate)
                if len(x) < cfg.n_fft:
                    x = np.pad(x, (0, cfg.n_fft - len(x)))
                audio_s += len(x) / cfg.sample_rate
                t = time.perf_counter()
                with torch.inference_mode():
                    lp_t = ref(torch.from_numpy(x)[None]).numpy()[0]
                secs["torch"] += time.perf_counter() - t
                hyps["torch"].append(greedy_text(lp_t, vocab, blank))
                for k, s in sessions.items():
                    t = time.perf_counter()
                    lp = s.run(None, {s.get_inputs()[0].name: x[None]})[0][0]
                    secs[k] += time.perf_counter() - t
                    if lp.shape != lp_t.shape:
                        raise ModelError(f"{variants[k]['pipeline']}: output {lp.shape} != torch {lp_t.shape} for {u.audio}")
                    check_finite(lp, variants[k]["pipeline"], "log-probs")  # max() below would drop a NaN
                    max_err[k] = max(max_err[k], float(np.abs(lp.astype(np.float64) - lp_t).max()))
                    hyps[k].append(greedy_text(lp, vocab, blank))
        finally:
            torch.set_num_threads(prev)
        refs = [u.text for u in utts]
        results = {}
        for k in hyps:
            wer, cer = wer_cer(refs, hyps[k])
            r = {"wer": wer, "cer": cer}
            if latency_runs:  # the real-time factor of the runs above: no extra timed runs
                r["rtf_1thread"] = secs[k] / max(audio_s, 1e-9)
            if k != "torch":
                path = out / variants[k]["pipeline"]
                r.update(file=variants[k]["pipeline"], recipe=variants[k]["recipe"], bytes=path.stat().st_size,
                         logprob_max_abs_err=max_err[k],
                         transcript_agreement_with_torch=float(np.mean([a == b for a, b in zip(hyps[k], hyps["torch"])])))
            results[k] = r
        transcripts = ("reference\t" + "\t".join(hyps) + "\n"
                       + "".join(r + "\t" + "\t".join(hyps[k][i] for k in hyps) + "\n" for i, r in enumerate(refs)))
        fields = {"manifest": str(src), "utterances": len(utts), "audio_seconds": round(audio_s, 2)}
        return Evaluation(fields, results, {artifacts.VERIFY_TRANSCRIPTS: transcripts})

    def checks(self, results, th):
        from hearkit.export.report import limit_check

        fp = results[artifacts.FP32]
        rows = [
            limit_check("fp32 log-probs max abs difference, ONNX vs torch", fp["logprob_max_abs_err"], th.fp32_logprob_atol),
            limit_check("fp32 greedy transcripts identical to torch", fp["transcript_agreement_with_torch"],
                        th.fp32_transcript_agreement, at_least=True),
        ]
        for k, r in results.items():
            if k not in ("torch", artifacts.FP32):
                rows.append(limit_check(f"{k} CER minus fp32 CER (points)", r["cer"] - fp["cer"], th.quant_max_cer_increase,
                                        points=True))
        return rows

    def report_markdown(self, r):
        from hearkit.export.report import fmt, kib, report_markdown, results_table

        table = results_table(r["results"], [
            ("file", lambda v: v.get("file", "checkpoint")),
            ("size (KiB)", kib),
            ("WER", lambda v: fmt(v["wer"], True)),
            ("CER", lambda v: fmt(v["cer"], True)),
            ("transcripts = torch", lambda v: fmt(v.get("transcript_agreement_with_torch"), True)),
            ("log-prob max err", lambda v: fmt(v.get("logprob_max_abs_err"))),
            ("RTF (1 thread)", lambda v: f"{v['rtf_1thread']:.4f}" if "rtf_1thread" in v else "–"),
        ])
        about = [f"- data: `{r['manifest']}`, {r['utterances']} utterances, {r['audio_seconds']:.1f} s of audio"]
        return report_markdown(r, " (ctc)", about, table)
