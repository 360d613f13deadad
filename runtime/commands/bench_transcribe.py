"""``hearkit bench transcribe MODEL_DIR``: real-time factor and peak memory of torch eager, ONNX fp32, ONNX int8.

Every variant transcribes the same audio through ``hearkit.Transcriber`` on 1
thread: same chunking (20 s cores with 2 s of context on each side), same greedy
decoder. The torch eager row runs the checkpoint named in ``export.json`` (front-end
and network in torch) in place of the onnxruntime session, so the rows differ only
in what computes the log-probs. Timing uses interleaved rounds
(``hearkit.bench.time_interleaved``): each round transcribes once with every
variant, so load from other processes hits them all alike; wall and process-CPU
time are both reported (CPU time is the one to trust on a shared machine).

Memory: a fresh subprocess per variant loads the model and transcribes the audio
once; its peak RSS (``ru_maxrss``) is reported, with the delta over a process that
only runs ``import hearkit``. torch is imported only when installed and only for
its row (this module never imports it at module level; the runtime stays torch-free).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from hearkit import artifacts
from hearkit.bench import PEAK_RSS_SNIPPET, export_checkpoint, export_variants, time_interleaved
from hearkit.errors import ModelError

DEFAULT_SECONDS = 30.0  # default audio length
DEFAULT_REPEAT = 10     # timed rounds (each runs every variant once)
SPEECH_DIR = "ljspeech_amateur"  # real recordings the default signal is cut from, when present
TARGET_INT8_RTF = 0.01  # int8 real-time factor a ctc-conv-s model must stay under on x86
TARGET_MODEL = "ctc-conv-s"
MiB = 1024 * 1024

# One fresh process per variant: import, load, transcribe once, report peak RSS.
# "baseline" stops after `import hearkit`; that process is what the deltas are measured against.
# "baseline-torch" stops after `import hearkit, torch`: how much of the torch row is torch itself.
_CHILD = PEAK_RSS_SNIPPET + """
import json, sys
kind, model, audio, export_dir = sys.argv[1:5]
import hearkit
out = {}
if kind == "baseline-torch":
    import torch
elif kind != "baseline":
    import numpy as np
    x = np.load(audio)
    if kind == "torch":
        from hearkit.commands.bench_transcribe import torch_transcriber
        tr, why = torch_transcriber(export_dir, model)
        if tr is None:
            print(json.dumps({"error": why}))
            sys.exit(0)
    else:
        from hearkit.transcribe import Transcriber
        tr = Transcriber(model, threads=1)
    out["text"] = tr.transcribe(x).text
out["rss_bytes"] = peak_kb() * 1024
print(json.dumps(out))
"""


class _TorchSession:
    """Stands in for the onnxruntime session of a ``Transcriber``: ``run`` computes log-probs with torch.

    Swapping the session, rather than writing a torch transcription loop, keeps the
    chunking and decoding identical to the ONNX rows, so the comparison is fair.
    """

    def __init__(self, module, torch):
        self.module, self.torch = module.eval(), torch

    def run(self, output_names, feed: dict):
        (x,) = feed.values()
        with self.torch.inference_mode():
            return [self.module(self.torch.from_numpy(np.ascontiguousarray(x))).numpy()]


def torch_transcriber(export_dir, fp32_model):
    """(Transcriber computing with torch eager on 1 thread, "") or (None, why torch is skipped).

    Args:
        export_dir: folder with ``export.json`` naming the checkpoint (sha256 checked).
        fp32_model: the export's ``pipeline.onnx``; its metadata (vocabulary, hop,
            subsampling) configures the transcriber, torch computes the log-probs.
    """
    ckpt, why = export_checkpoint(export_dir)
    if ckpt is None:
        return None, why
    import importlib

    from hearkit.export.ctc import WaveformCTC, load_ctc
    from hearkit.transcribe import Transcriber

    torch = importlib.import_module("torch")  # measured only; hearkit's runtime does not need it
    torch.set_num_threads(1)
    try:
        net, cfg = load_ctc(ckpt)
    except ModelError as e:
        return None, str(e)
    tr = Transcriber(fp32_model, threads=1)
    if list(ckpt["vocab"]) != list(tr.vocab) or cfg != tr.info.frontend:
        return None, f"checkpoint in {artifacts.EXPORT_SUMMARY} does not match {Path(fp32_model).name} (vocabulary or front-end differ)"
    tr.session = _TorchSession(WaveformCTC(net, cfg), torch)
    return tr, ""


def _speech_dirs() -> list[Path]:
    """Where ../shared/data/ljspeech_amateur may be: beside the working directory, or beside the checkout."""
    import hearkit

    return [Path.cwd().parent / "shared" / "data" / SPEECH_DIR,
            Path(hearkit.__file__).resolve().parents[2] / "shared" / "data" / SPEECH_DIR]


def bench_audio(sample_rate: int, seconds: float | None, audio: str | None) -> tuple[np.ndarray, str]:
    """(samples at ``sample_rate``, description) of the benchmark signal.

    ``audio`` given: that file (its first ``seconds`` when given). Otherwise
    ``seconds`` (Default: 30) of real speech, the ljspeech_amateur recordings
    joined in name order, when that folder exists; else seeded white noise.
    """
    from hearkit.audio import load_audio

    if audio is not None:
        x, _ = load_audio(audio, sample_rate)
        if seconds is not None:
            x = x[: int(round(seconds * sample_rate))]
        return x, f"{audio}"
    seconds = DEFAULT_SECONDS if seconds is None else seconds
    n = int(round(seconds * sample_rate))
    for d in _speech_dirs():
        files = sorted(d.glob("*.flac")) if d.is_dir() else []
        if not files:
            continue
        parts, have, used = [], 0, 0
        while have < n:  # joined in order, round again if the folder holds less than asked
            x, _ = load_audio(files[used % len(files)], sample_rate)
            parts.append(x)
            have += x.size
            used += 1
        return np.concatenate(parts)[:n], f"{used} {SPEECH_DIR} recordings joined ({files[0].stem} ...)"
    return (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32), f"seeded white noise (no {SPEECH_DIR} found)"


def peak_rss(kind: str, model: str, audio_npy: str, export_dir: str) -> dict:
    """Run ``_CHILD`` in a fresh interpreter (1 thread); its JSON, or {"error": ...}."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        r = subprocess.run([sys.executable, "-c", _CHILD, kind, model, audio_npy, export_dir],
                           capture_output=True, text=True, env=env, timeout=600)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 600 s"}
    lines = [s for s in r.stdout.splitlines() if s.startswith("{")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {r.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


@click.command("transcribe")
@click.argument("model_dir", type=click.Path(exists=True))
@click.option("--audio", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Audio file to transcribe (Default: 30 s of ../shared/data/ljspeech_amateur speech, else seeded noise).")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=None,
              help="Length of the default signal (Default: 30), or the first SECONDS of --audio.")
@click.option("--repeat", type=click.IntRange(min=1), default=DEFAULT_REPEAT, show_default=True,
              help="Timed rounds; each transcribes once with every variant; the median is reported.")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="Measure peak RSS in a fresh process per variant.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_transcribe(model_dir, audio, seconds, repeat, memory, as_json):
    """Real-time factor on 1 thread and peak memory: torch eager, ONNX fp32, ONNX int8, side by side.

    MODEL_DIR is a folder written by `hearkit export` for a CTC model (or a model
    file in one). All variants transcribe the same audio (greedy, same chunking),
    timed in interleaved rounds. RTF = processing time / audio time (lower is faster).

    \b
    hearkit bench transcribe runs/asr-export
    hearkit bench transcribe runs/asr-export --audio meeting.flac --repeat 3 --json
    """
    from hearkit.metadata import read_model_info
    from hearkit.transcribe import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS, Transcriber

    d = Path(model_dir)
    if d.is_file():  # a model file: bench every variant of the export folder it lives in
        d = d.parent
    variants = [(tag, pipe) for tag, pipe, _ in export_variants(d)]
    if not variants:
        raise ModelError(f"{d}: no pipeline*.onnx here; pass a folder written by `hearkit export`")
    info = read_model_info(variants[0][1])
    if info.task != "ctc":
        raise ModelError(f"{variants[0][1]}: is a '{info.task}' model; `hearkit bench transcribe` needs a CTC export "
                         "(use `hearkit bench classify` for classifiers)")
    sr = info.frontend.sample_rate
    x, source = bench_audio(sr, seconds, audio)
    if x.size == 0:
        raise ModelError(f"{source}: no samples to transcribe")
    audio_s = x.size / sr
    fp32 = dict(variants).get(artifacts.FP32)

    # name -> (Transcriber or None, model file or "", note)
    contenders: dict = {}
    if fp32 is None:
        contenders["torch eager"] = (None, "", f"needs {artifacts.file_name(artifacts.PIPELINE)} (fp32) for the transcriber's settings")
    else:
        tr, why = torch_transcriber(d, fp32)
        ck = artifacts.read_export(d).get("checkpoint", "") if artifacts.summary_path(d).is_file() else ""
        contenders["torch eager"] = (tr, ck, why or f"checkpoint from {artifacts.EXPORT_SUMMARY}, torch front-end + network")
    for tag, pipe in variants:
        contenders[f"onnx {tag}"] = (Transcriber(pipe, threads=1), str(pipe), f"{pipe.name}, onnxruntime")
    for name, (tr, _, note) in contenders.items():
        if tr is None:
            click.echo(f"{name} skipped: {note}", err=True)
    live = {name: tr for name, (tr, _, _) in contenders.items() if tr is not None}

    # first run of each: the transcript (compared across variants) and the warm-up
    texts = {name: tr.transcribe(x).text for name, tr in live.items()}
    click.echo(f"timing {', '.join(live)}: {repeat} interleaved rounds of {audio_s:.1f} s ...", err=True)
    times = time_interleaved({name: (lambda t=tr: t.transcribe(x)) for name, tr in live.items()}, repeat, warmup=0)

    mem: dict = {}
    baseline = baseline_torch = None
    if memory:
        click.echo("peak memory: a fresh process per variant ...", err=True)
        with tempfile.TemporaryDirectory(prefix="hearkit-bench-") as tmp:
            npy = str(Path(tmp) / "audio.npy")
            np.save(npy, x.astype(np.float32))
            base = peak_rss("baseline", "", npy, str(d))
            baseline = base.get("rss_bytes")
            if baseline is None:
                click.echo(f"baseline process failed: {base.get('error')}", err=True)
            if contenders["torch eager"][0] is not None:
                baseline_torch = peak_rss("baseline-torch", "", npy, str(d)).get("rss_bytes")
            for name, (tr, path, _) in contenders.items():
                if tr is not None:
                    kind = "torch" if name == "torch eager" else "onnx"
                    mem[name] = peak_rss(kind, str(fp32) if kind == "torch" else path, npy, str(d))

    rows = []
    ref_text = texts.get("onnx fp32")
    for name, (tr, path, note) in contenders.items():
        wall, cpu = times.get(name, (None, None))
        m = mem.get(name, {})
        rss = m.get("rss_bytes")
        rows.append({
            "variant": name,
            "model": path,
            # ONNX file size; a checkpoint's would mislead (it may hold optimizer state)
            "bytes": Path(path).stat().st_size if path.endswith(".onnx") and Path(path).is_file() else None,
            "rtf": None if wall is None else wall / audio_s,
            "cpu_rtf": None if cpu is None else cpu / audio_s,
            "x_realtime": None if not cpu else audio_s / cpu,
            "peak_rss_mb": None if rss is None else rss / MiB,
            "rss_delta_mb": None if (rss is None or baseline is None) else (rss - baseline) / MiB,
            "words": None if name not in texts else len(texts[name].split()),
            "same_text_as_fp32": None if (name not in texts or ref_text is None) else texts[name] == ref_text,
            "note": note,
            **({"memory_error": m["error"]} if m.get("error") else {}),
        })
    model_name = (info.model or {}).get("name", "?")
    int8 = next((r for r in rows if r["variant"] == "onnx int8" and r["cpu_rtf"] is not None), None)
    target = None
    if int8 is not None:
        target = {"model": TARGET_MODEL, "int8_rtf_max": TARGET_INT8_RTF, "applies": model_name == TARGET_MODEL,
                  "int8_cpu_rtf": int8["cpu_rtf"], "int8_rtf": int8["rtf"], "met": int8["cpu_rtf"] <= TARGET_INT8_RTF}
    result = {
        "model_dir": str(d), "model": model_name, "task": "ctc",
        "audio": {"source": source, "seconds": audio_s, "sample_rate": sr},
        "threads": 1, "repeat": repeat, "decoder": "greedy",
        "chunk_seconds": DEFAULT_CHUNK_SECONDS, "overlap_seconds": DEFAULT_OVERLAP_SECONDS,
        "baseline_rss_mb": None if baseline is None else baseline / MiB,
        "baseline_torch_rss_mb": None if baseline_torch is None else baseline_torch / MiB,
        "rows": rows, "target": target,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return

    def f(v, fmt="{:.4f}"):
        return "-" if v is None else fmt.format(v)

    click.echo(f"{d} ({model_name}): {audio_s:.1f} s of {source}; greedy, {DEFAULT_CHUNK_SECONDS:g} s chunks, "
               f"1 thread, median of {repeat} interleaved rounds")
    click.echo(f"{'variant':<12} {'MB':>6} {'RTF':>8} {'CPU RTF':>8} {'x realtime':>10} {'peak RSS MB':>11} "
               f"{'+MB':>7} {'words':>5} {'= fp32':>6}  note")
    for r in rows:
        same = {None: "-", True: "yes", False: "no"}[r["same_text_as_fp32"]]
        note = r["note"] if r["rtf"] is not None else f"skipped: {r['note']}"
        if r.get("memory_error"):
            note += f"; memory run failed: {r['memory_error']}"
        click.echo(f"{r['variant']:<12} {f(r['bytes'] and r['bytes'] / MiB, '{:.2f}'):>6} {f(r['rtf']):>8} "
                   f"{f(r['cpu_rtf']):>8} {f(r['x_realtime'], '{:.0f}'):>10} {f(r['peak_rss_mb'], '{:.1f}'):>11} "
                   f"{f(r['rss_delta_mb'], '{:+.1f}'):>7} {f(r['words'], '{}'):>5} {same:>6}  {note}")
    click.echo("RTF: wall time / audio time; CPU RTF: process CPU time / audio time (the one to trust on a loaded "
               "machine); x realtime = 1 / CPU RTF; = fp32: same transcript as onnx fp32")
    if memory:
        click.echo(f"peak RSS: fresh process that loads the model and transcribes the audio once; "
                   f"+MB over `import hearkit` alone ({f(result['baseline_rss_mb'], '{:.1f}')} MB); "
                   f"the torch row includes torch (`import hearkit, torch` alone: "
                   f"{f(result['baseline_torch_rss_mb'], '{:.1f}')} MB) and onnxruntime with the fp32 session "
                   "that configures its transcriber")
    if target is not None:
        head = (f"target: int8 RTF <= {TARGET_INT8_RTF} for {TARGET_MODEL} on x86: CPU RTF {int8['cpu_rtf']:.4f} "
                f"(wall {int8['rtf']:.4f})")
        if target["applies"]:
            click.echo(f"{head} -> {'met' if target['met'] else 'NOT met'}")
        else:
            click.echo(f"{head}; no verdict: the target is for {TARGET_MODEL}, this is {model_name}")
