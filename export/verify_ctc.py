"""Prove a CTC export behaves like its checkpoint: torch vs ONNX fp32 vs quantized variants.

``verify_ctc(out_dir, manifest=M)`` reloads the checkpoint named in ``export.json``
(sha256 checked), runs torch and every exported pipeline on each utterance of the
manifest (batch 1, the whole utterance: the runtime's case), and checks

- numeric parity: max |log_probs_onnx_fp32 - log_probs_torch| over all frames;
- decisions: greedy transcripts of fp32 ONNX identical to torch's on >= 99 % of utterances;
- task metric: CER of each quantized variant at most 0.5 point above fp32's.

It writes ``report.json`` and ``report.md`` beside the models; ``report["passed"]``
drives the exit code of ``hearkit verify``, as for classification.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hearkit.asr_metrics import wer_cer
from hearkit import artifacts
from hearkit.artifacts import REPORT_JSON, REPORT_MD
from hearkit.errors import ConfigError, ModelError


@dataclass(frozen=True)
class CTCThresholds:
    """Pass/fail limits of CTC verify.

    Attributes:
        fp32_logprob_atol: max |log_probs fp32 ONNX - torch| over every frame and token (Default: 5e-3;
            log-probs of unlikely tokens reach -40 and long utterances sum many float32 roundings).
        fp32_transcript_agreement: share of utterances whose greedy transcript of fp32 ONNX equals
            torch's exactly (Default: 0.99).
        quant_max_cer_increase: CER of a quantized variant minus fp32's, as a fraction (Default: 0.005 = 0.5 point).
    """

    fp32_logprob_atol: float = 5e-3
    fp32_transcript_agreement: float = 0.99
    quant_max_cer_increase: float = 0.005


def greedy_text(log_probs: np.ndarray, vocab, blank: int) -> str:
    """Best path of (frames, vocab) log-probs with the runtime's own greedy decoder (``hearkit.ctc``)."""
    from hearkit.ctc import greedy_decode

    return greedy_decode(np.asarray(log_probs), vocab, blank).text


def _default_manifest(summary: dict) -> str:
    tc = summary.get("train_config") or {}
    m = tc.get("val_manifest")
    run_cfg = Path(summary.get("checkpoint") or "").parent / "config.json"
    if not m and run_cfg.is_file():  # the run folder's config.json (hearkit train ctc writes it)
        m = json.loads(run_cfg.read_text()).get("val_manifest")
    if not m:
        raise ConfigError("no evaluation data: the checkpoint records no validation manifest; pass --manifest M")
    return m


def verify_ctc(
    out_dir: str | os.PathLike,
    manifest: str | os.PathLike | None = None,
    thresholds: CTCThresholds | None = None,
    checkpoint: str | os.PathLike | None = None,
    max_utterances: int | None = None,
    latency: bool = True,
    log=None,
    data: str | os.PathLike | None = None,
    max_clips: int | None = None,
    **_ignored,
) -> dict:
    """Verify a CTC export on a manifest; write ``report.json`` and ``report.md``; return the report.

    Args:
        out_dir: directory written by ``hearkit export`` for a CTC checkpoint.
        manifest: NeMo JSONL manifest (or folder with manifest.jsonl, or LibriSpeech folder)
            (Default: the validation manifest recorded at training). ``data`` is an alias.
        thresholds: pass/fail limits (Default: ``CTCThresholds()``; a classification
            ``Thresholds`` passed by a generic caller is ignored).
        checkpoint: the checkpoint, if it moved since export.
        max_utterances: an even subset of at most this many utterances (``max_clips`` is an alias).
        latency: measure the real-time factor of each variant (1 thread) while running.

    Returns:
        the report dict; ``report["passed"]`` is False when any threshold failed.
    """
    from hearkit.audio import load_audio
    from hearkit.export.ctc import WaveformCTC, load_ctc
    from hearkit.artifacts import read_export
    from hearkit.export.verify import load_export_checkpoint
    from hearkit.manifest import read_dataset
    from hearkit.metadata import make_session

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    th = thresholds if isinstance(thresholds, CTCThresholds) else CTCThresholds()
    out = Path(out_dir)
    summary = read_export(out)
    if summary.get("task") != "ctc":
        raise ModelError(f"{out}: export task is {summary.get('task')!r}; this verifies 'ctc' exports")
    ckpt = load_export_checkpoint(summary, checkpoint)
    net, cfg = load_ctc(ckpt)
    vocab, blank = list(summary["vocab"]), int(summary["blank"])
    src = manifest or data or _default_manifest(summary)
    m = read_dataset(src)
    utts = m.utterances
    limit = max_utterances or max_clips
    if limit and limit < len(utts):
        utts = [utts[i] for i in np.linspace(0, len(utts) - 1, limit).round().astype(int)]
    log(f"verify: {len(utts)} utterances from {src}")
    if m.dropped:
        log(f"verify: {m.report()}")

    variants = {artifacts.FP32: {"pipeline": artifacts.file_name(artifacts.PIPELINE), "recipe": "fp32"}}
    for suffix, v in (summary.get("variants") or {}).items():
        variants[suffix] = {"pipeline": v["pipeline"], "recipe": v["recipe"]}
    sessions = {k: make_session(out / v["pipeline"], threads=1) for k, v in variants.items()}
    ref = WaveformCTC(net, cfg).eval()
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
                max_err[k] = max(max_err[k], float(np.abs(lp.astype(np.float64) - lp_t).max()))
                hyps[k].append(greedy_text(lp, vocab, blank))
    finally:
        torch.set_num_threads(prev)
    refs = [u.text for u in utts]
    results = {}
    for k in hyps:
        wer, cer = wer_cer(refs, hyps[k])
        r = {"wer": wer, "cer": cer}
        if latency:
            r["rtf_1thread"] = secs[k] / max(audio_s, 1e-9)
        if k != "torch":
            path = out / variants[k]["pipeline"]
            r.update(file=variants[k]["pipeline"], recipe=variants[k]["recipe"], bytes=path.stat().st_size,
                     logprob_max_abs_err=max_err[k],
                     transcript_agreement_with_torch=float(np.mean([a == b for a, b in zip(hyps[k], hyps["torch"])])))
        results[k] = r
    checks = [
        {"check": "fp32 log-probs max abs difference, ONNX vs torch", "value": results["fp32"]["logprob_max_abs_err"],
         "limit": f"<= {th.fp32_logprob_atol:g}", "passed": results["fp32"]["logprob_max_abs_err"] <= th.fp32_logprob_atol},
        {"check": "fp32 greedy transcripts identical to torch", "value": results["fp32"]["transcript_agreement_with_torch"],
         "limit": f">= {th.fp32_transcript_agreement:g}",
         "passed": results["fp32"]["transcript_agreement_with_torch"] >= th.fp32_transcript_agreement},
    ]
    for k in variants:
        if k == "fp32":
            continue
        inc = results[k]["cer"] - results["fp32"]["cer"]
        checks.append({"check": f"{k} CER minus fp32 CER (points)", "value": round(100 * inc, 3),
                       "limit": f"<= {100 * th.quant_max_cer_increase:g}", "passed": inc <= th.quant_max_cer_increase + 1e-12})
    report = {
        "task": "ctc",
        "export_dir": str(out.resolve()),
        "checkpoint": summary.get("checkpoint"),
        "checkpoint_sha256": summary.get("checkpoint_sha256"),
        "model": summary.get("model"),
        "manifest": str(src),
        "utterances": len(utts),
        "audio_seconds": round(audio_s, 2),
        "results": results,
        "thresholds": asdict(th),
        "checks": checks,
        "passed": all(c["passed"] for c in checks),
    }
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (out / REPORT_MD).write_text(report_markdown(report))
    (out / artifacts.VERIFY_TRANSCRIPTS).write_text(
        "reference\t" + "\t".join(hyps) + "\n"
        + "".join(r + "\t" + "\t".join(hyps[k][i] for k in hyps) + "\n" for i, r in enumerate(refs)))
    return report


def report_markdown(r: dict) -> str:
    """The human-readable CTC report."""
    name = (r.get("model") or {}).get("name", "")
    lines = [
        f"# hearkit verify (ctc): {name}",
        "",
        f"- export: `{r['export_dir']}`",
        f"- checkpoint: `{r['checkpoint']}` (sha256 `{(r['checkpoint_sha256'] or '')[:16]}…`)",
        f"- data: `{r['manifest']}`, {r['utterances']} utterances, {r['audio_seconds']:.1f} s of audio",
        f"- result: **{'PASSED' if r['passed'] else 'FAILED'}**",
        "",
        "| variant | file | size (KiB) | WER | CER | transcripts = torch | log-prob max err | RTF (1 thread) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, v in r["results"].items():
        size = f"{v['bytes'] / 1024:.1f}" if v.get("bytes") else "–"
        agree = f"{100 * v['transcript_agreement_with_torch']:.2f} %" if "transcript_agreement_with_torch" in v else "–"
        err = f"{v['logprob_max_abs_err']:.3g}" if "logprob_max_abs_err" in v else "–"
        rtf = f"{v['rtf_1thread']:.4f}" if "rtf_1thread" in v else "–"
        lines.append(f"| {k} | {v.get('file', 'checkpoint')} | {size} | {100 * v['wer']:.2f} % | {100 * v['cer']:.2f} % | "
                     f"{agree} | {err} | {rtf} |")
    lines += ["", "| check | value | limit | result |", "| --- | --- | --- | --- |"]
    for c in r["checks"]:
        v = c["value"]
        lines.append(f"| {c['check']} | {v:.4g} | {c['limit']} | {'pass' if c['passed'] else '**FAIL**'} |")
    return "\n".join(lines) + "\n"
