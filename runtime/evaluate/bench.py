"""Device benchmarks, torch-free: the one timing helper, and load time, latency, RTF and peak RSS of a model.

``time_calls`` is the timing helper every benchmark uses (these here, and the
torch-vs-ONNX ones in ``hearkit.export.bench``): it times callables round-robin so
that load from other processes hits every contender alike, and records wall and
process-CPU time of every call. ``bench_model`` is ``hearkit bench MODEL_OR_BUNDLE``:
every model variant found (int8 and fp32, ``.onnx`` and ``.ort``) measured in one
run, plus the footprint of a fresh process that loads the bundle and classifies one
clip, beside one that only runs ``import torch`` (a subprocess, skipped without torch).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hearkit.errors import HearkitError, run_session
from hearkit.tasks import TASKS

REFERENCE_SECONDS = 10.0    # front-end figures are reported per 10 s of audio
FOOTPRINT_RSS_MB = 80.0     # target peak RSS of a process that classifies one clip
FOOTPRINT_SECONDS = 0.5     # target wall time of that process, start to exit
CTC_SECONDS = 10.0          # audio per call for models without a fixed window (RTF base)
DEFAULT_SIGNAL_SECONDS = 30.0  # generated benchmark signal when no audio is given
STREAM_SECONDS = 30.0       # audio fed to a keyword spotter for its CPU share
STREAM_CHUNK = 0.1          # seconds per accept_waveform call, as a microphone delivers them
CHILD_TIMEOUT_S = 600       # one benchmark child process
KiB = 1024

# Source of `peak_kb()` for benchmark child processes: this process's peak RSS in KiB.
# VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec and so reports the *parent's*
# peak when the parent was larger (the bench process itself, or pytest). ru_maxrss only
# where /proc is absent (macOS, bytes).
PEAK_RSS_SNIPPET = """
def peak_kb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource, sys
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r
"""

# A process that does what a device does for one clip: verify the bundle, load, classify.
_FOOTPRINT_HEARKIT = PEAK_RSS_SNIPPET + """
import json, sys, time
t0 = time.perf_counter()
from hearkit.artifacts import resolve
from hearkit.classify import Classifier
path = resolve(sys.argv[1], prefer=sys.argv[2])
clf = Classifier(path)
p = clf.classify(sys.argv[3]) if sys.argv[3] != "-" else clf.classify(__import__("numpy").zeros(clf.window_samples, "float32"))
print(json.dumps({"rss_kb": peak_kb(), "inner_s": time.perf_counter() - t0, "label": p.label, "model": str(path)}))
"""
_FOOTPRINT_TORCH = PEAK_RSS_SNIPPET + """
import json, time
t0 = time.perf_counter()
__import__("torch")  # the thing measured: what importing torch alone costs
print(json.dumps({"rss_kb": peak_kb(), "inner_s": time.perf_counter() - t0}))
"""


@dataclass
class Timing:
    """Wall and process-CPU seconds of every timed call of one contender.

    The CPU time is the figure to trust on a shared machine: other processes
    stretch wall time but not our own CPU time (at 1 thread they are equal on
    an idle machine).
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall seconds."""
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        """Median process-CPU seconds."""
        return statistics.median(self.cpu)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of wall seconds (numpy's linear interpolation)."""
        return float(np.percentile(np.asarray(self.wall), q))


def time_calls(fns: dict[str, Callable[[], object]], rounds: int, per_round: int = 1,
               warmup: int = 1) -> dict[str, Timing]:
    """Time each ``fns[name]()`` in interleaved rounds; wall and CPU seconds of every call.

    Every round runs every contender ``per_round`` times, so that a burst of load
    from other processes hits all of them alike instead of whichever happened to
    run then, and their ratios stay meaningful.

    Args:
        fns: name -> callable without arguments (its result is discarded).
        rounds: timed rounds (at least 1).
        per_round: timed calls of each contender per round (Default: 1).
        warmup: untimed calls of each contender first (Default: 1; first runs allocate).

    Returns:
        name -> ``Timing`` with ``rounds * per_round`` calls each, in ``fns`` order.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {name: Timing() for name in fns}
    for _ in range(max(1, rounds)):
        for name, fn in fns.items():
            for _ in range(max(1, per_round)):
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                out[name].wall.append(time.perf_counter() - t0)
                out[name].cpu.append(time.process_time() - c0)
    return out


def run_child(code: str, *args: str, timeout: float = CHILD_TIMEOUT_S) -> dict:
    """Run ``code`` in a fresh interpreter on 1 thread; its last JSON line plus ``wall_s``, or ``{"error": ...}``.

    ``rss_kb`` in the child's JSON (from ``PEAK_RSS_SNIPPET``) comes back as ``rss_mb``.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result: dict = {}

    def child():
        try:
            result["r"] = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                                         env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            result["r"] = None

    wall = time_calls({"child": child}, rounds=1, warmup=0)["child"].median
    r = result["r"]
    if r is None:
        return {"error": f"timed out after {timeout:g} s"}
    lines = [s for s in r.stdout.splitlines() if s.startswith("{")]
    if r.returncode != 0 or not lines:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {r.returncode}: {tail[:200]}"}
    d = json.loads(lines[-1])
    if "rss_kb" in d:
        d["rss_mb"] = d.pop("rss_kb") / KiB
    d["wall_s"] = wall
    return d


def bench_signal(sample_rate: int, seconds: float | None = None,
                 audio: Sequence[str | os.PathLike] = ()) -> tuple[np.ndarray, str]:
    """(samples at ``sample_rate``, description) of a benchmark signal.

    Args:
        sample_rate: rate of the result in Hz.
        seconds: length; with ``audio``, the files are joined in order (round again when
            they hold less) and cut to it (Default: all of ``audio``, or 30 s generated).
        audio: audio files to use (Default: none: seeded white noise, 0.1 RMS).
    """
    from hearkit.audio import load_audio

    files = [os.fspath(a) for a in audio]
    if not files:
        n = int(round((DEFAULT_SIGNAL_SECONDS if seconds is None else seconds) * sample_rate))
        return (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32), "seeded white noise"
    n = None if seconds is None else int(round(seconds * sample_rate))
    parts, have, used = [], 0, 0
    # every file once, or round again until `seconds` (load_audio refuses empty files, so this ends)
    while used < len(files) or (n is not None and have < n):
        x, _ = load_audio(files[used % len(files)], sample_rate)
        parts.append(x)
        have += x.size
        used += 1
        if n is not None and have >= n:
            break
    x = np.concatenate(parts)[:n]
    return x, files[0] if used == 1 else f"{used} recordings joined ({Path(files[0]).name} ...)"


def onnx_runner(path: str | os.PathLike, shape: tuple[int, ...], optimization: str = "all") -> Callable[[], object]:
    """A callable that runs the model at ``path`` once on seeded noise of ``shape`` (1 thread)."""
    from hearkit.sessions import make_session

    s = make_session(path, threads=1, optimization=optimization)
    name = s.get_inputs()[0].name
    x = (0.1 * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)
    return lambda: s.run(None, {name: x})


def stream_cpu_share(model: str | os.PathLike, seconds: float = STREAM_SECONDS, hop: float | None = None,
                     streaming: bool | None = None, device=None) -> dict:
    """Process CPU time / audio time of a KeywordSpotter fed ``seconds`` of noise in 100 ms chunks.

    Args:
        model: a classification model file, export folder or bundle.
        seconds: audio fed (Default: ``STREAM_SECONDS``).
        hop: seconds between decisions (Default: None, the spotter's own: the model's calibrated hop,
            else 100 ms, or 80 ms on the speech embedding).
        streaming: the spotter's ``streaming`` (Default: None, its own choice).
        device: device profile for the session (Default: None, 1 thread, CPU).

    Returns:
        ``{"cpu_share_percent", "wall_ms_per_hop", "hop_seconds", "streaming"}`` (``streaming``: whether it ran
        frame by frame).
    """
    from hearkit.classify import KeywordSpotter

    kws = KeywordSpotter(model, hop_seconds=hop, streaming=streaming, device=device)
    sr = kws.sample_rate
    x = (0.05 * np.random.default_rng(1).standard_normal(int(seconds * sr))).astype(np.float32)
    n = int(STREAM_CHUNK * sr)
    kws.accept_waveform(x[: 10 * n])  # warm-up: first runs allocate
    kws.reset()

    def feed():
        for i in range(0, len(x), n):
            kws.accept_waveform(x[i : i + n])

    t = time_calls({"stream": feed}, rounds=1, warmup=0)["stream"]
    hop = kws.hop_samples / sr
    return {"cpu_share_percent": 100 * t.cpu_median / seconds, "wall_ms_per_hop": 1e3 * t.median / (seconds / hop),
            "hop_seconds": hop, "streaming": kws.streamer is not None}


SPOTTER_TARGET_PERCENT = 0.2  # of one core, int8 at a 100 ms hop: a wake word listening all day
EMBEDDING_SPOTTER_TARGET_PERCENT = 2.0  # on the speech embedding: its fp32 convolutions, one vector per 80 ms
STUDENT_SPOTTER_TARGET_PERCENT = 0.5  # a distilled student (docs/design.md §18): the embedding's ears at a quarter of its cost


def spotter_cpu(model: str | os.PathLike, profile=None, seconds: float = STREAM_SECONDS) -> list[dict]:
    """The keyword spotter's CPU share at its own hop (100 ms; 80 ms on the speech embedding), every way
    it can run, side by side.

    For an export folder or bundle: the preferred variant frame by frame (``StreamingScorer``,
    each log-mel frame computed once) and with the whole window at every hop; then each
    pipeline file of :func:`candidates` with the whole window.

    Returns:
        ``[{"case", "model", "cpu_share_percent", "wall_ms_per_hop", "streaming"}, ...]``.
    """
    path = Path(model)
    cases: list[tuple[str, Path, bool | None]] = []
    if path.is_dir():
        cases += [("preferred variant, streaming", path, True), ("preferred variant, full window", path, False)]
    prefer = profile.prefer if profile else "int8"
    cases += [(f"{p.name}, full window", p, False) for p in candidates(path, prefer) if p.suffix == ".onnx"]
    rows = []
    for case, p, streaming in cases:
        try:
            r = stream_cpu_share(p, seconds, streaming=streaming, device=profile)
        except HearkitError as e:  # a front-end that cannot stream: the row says so
            rows.append({"case": case, "model": p.name, "error": str(e)})
            continue
        rows.append({"case": case, "model": p.name, **r})
    return rows


def peer_spotter_cpu(seconds: float = STREAM_SECONDS) -> list[dict]:
    """openWakeWord's official ``alexa`` model (mel graph, speech embedding and head; TFLite, 1 thread)
    streamed over the noise :func:`stream_cpu_share` feeds hearkit's spotter, in its 80-ms chunks: the
    peer's share of a core, printed beside hearkit's. Without ``hearkit[oww]`` the row says so."""
    from hearkit.evaluate import openwakeword as oww

    if not oww.available():
        return [{"case": "openWakeWord alexa (peer, TFLite)", "model": "alexa.tflite",
                 "error": f'not installed: pip install "hearkit[{oww.EXTRA}]"'}]
    return [oww.stream_cpu_share("alexa", seconds)]


# -- hearkit bench MODEL_OR_BUNDLE ---------------------------------------------------
def candidates(path: Path, prefer: str) -> list[Path]:
    """The model files to measure: the verified variants of a bundle or export folder, or the file itself."""
    from hearkit.artifacts import KINDS, PIPELINE, file_name, is_bundle, load_manifest, resolve, variant_order

    if path.is_file():
        return [resolve(path)]
    out = []
    for kind in KINDS:
        for v in variant_order(prefer):
            name = file_name(PIPELINE, v, kind)
            if (path / name).is_file() or (is_bundle(path) and name in load_manifest(path)["files"]):
                out.append(resolve(path / name))
    if not out:
        out.append(resolve(path, prefer=prefer))
    return out


def bench_one(path: Path, profile=None, repeat: int = 50, seconds: float | None = None) -> dict:
    """Load time and latency percentiles of one model file with the profile's session settings.

    Args:
        path: a model file.
        profile: a device profile (``hearkit.devices.load_profile``) or None (1 thread, CPU).
        repeat: timed runs (Default: 50).
        seconds: audio per call (Default: the model's window, or ``CTC_SECONDS`` without one).
    """
    from hearkit.metadata import read_model_info
    from hearkit.sessions import make_session, profile_session

    info = read_model_info(path)
    sr = info.frontend.sample_rate
    n = int(info.window_samples) if (info.window_samples and seconds is None) else int(round((seconds or CTC_SECONDS) * sr))
    x = (0.1 * np.random.default_rng(0).standard_normal((1, n))).astype(np.float32)
    if info.input == "logmel":
        from hearkit.frontend import logmel

        x = logmel(x, info.frontend).astype(np.float32)

    sessions = []

    def load():
        sessions.append(profile_session(profile, path) if profile is not None else make_session(path, threads=1))

    loads = time_calls({"load": load}, rounds=3, warmup=0)["load"]
    sess = sessions[-1]
    name = sess.get_inputs()[0].name
    # a model that cannot run on its own input is one ModelError, before anything is timed
    run_session(sess, None, {name: x}, path)
    # one untimed run first (time_calls' warm-up): allocations, first-run kernels
    lat = time_calls({"run": lambda: sess.run(None, {name: x})}, rounds=repeat, warmup=1)["run"]
    audio_s = n / sr
    p50 = lat.percentile(50)
    return {
        "model": path.name,
        "task": info.task,
        "quantization": (info.quantization or {}).get("recipe") or (info.quantization or {}).get("format", "fp32"),
        "bytes": path.stat().st_size,
        "load_ms": 1e3 * min(loads.wall),
        "audio_s": audio_s,
        "p50_ms": 1e3 * p50,
        "p95_ms": 1e3 * lat.percentile(95),
        "rtf": p50 / audio_s,
        "providers": sess.get_providers(),
    }


def measure_footprint(path: Path, prefer: str, clip: str | None = None) -> dict:
    """Peak RSS and wall time of a fresh process that classifies one clip, beside `import torch`."""
    import importlib.util

    out = {"hearkit": run_child(_FOOTPRINT_HEARKIT, str(path), prefer, clip or "-")}
    if importlib.util.find_spec("torch") is not None:
        out["import torch"] = run_child(_FOOTPRINT_TORCH)
    else:
        out["import torch"] = {"error": "torch not installed here"}
    return out


def bench_model(model: str | os.PathLike, profile=None, repeat: int = 50, seconds: float | None = None,
                clip: str | None = None, footprint: bool = True, spotter: bool = True) -> dict:
    """Benchmark a model file, export folder or bundle: load, p50/p95 latency, RTF, size, peak RSS.

    Args:
        model: a model file, an export folder or a bundle.
        profile: device profile: threads, providers, preferred variant (Default: None: 1 thread, CPU, int8 first).
        repeat: timed runs per model (Default: 50).
        seconds: audio per call (Default: the model's window, or ``CTC_SECONDS``).
        clip: audio clip for the footprint run (Default: silence).
        footprint: also measure a fresh process classifying one clip against `import torch`
            (classification models; Default: True).
        spotter: also measure the keyword spotter's CPU share at a 100 ms hop, streaming and
            full window (:func:`spotter_cpu`; classification models; Default: True), and beside it
            openWakeWord's official model on the same noise (:func:`peer_spotter_cpu`).

    Returns:
        ``{"hearkit", "onnxruntime", "device", "threads", "machine", "repeat", "models": [bench_one, ...],
        "bench_process_peak_rss_mb"}``, plus ``footprint`` and ``footprint_targets`` when measured.
    """
    import resource

    import onnxruntime as ort

    from hearkit import __version__

    prefer = profile.prefer if profile else "int8"
    path = Path(model)
    if clip is not None:  # the clip the footprint run classifies: unreadable audio is one AudioError, now
        from hearkit.audio import load_audio

        load_audio(clip)
    results = [bench_one(p, profile, repeat, seconds) for p in candidates(path, prefer)]
    task = TASKS.get(results[0]["task"]) if results else None
    spots = task is not None and task.spots_keywords
    if spots and (footprint or spotter):
        # what the footprint child and the spotter do, once here: a model whose output does not
        # match its labels, or a clip it cannot take, fails with its own one line instead of a table row
        from hearkit.artifacts import resolve
        from hearkit.classify import Classifier

        clf = Classifier(resolve(path, prefer=prefer))
        clf.classify(clip if clip is not None else np.zeros(clf.window_samples, np.float32))
    report = {
        "hearkit": __version__,
        "onnxruntime": ort.__version__,
        "device": profile.name if profile else None,
        "threads": profile.threads if profile else 1,
        "machine": os.uname().machine,
        "repeat": repeat,
        "models": results,
        "bench_process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KiB,
    }
    if footprint and spots:
        report["footprint"] = measure_footprint(path, prefer, clip)
        report["footprint_targets"] = {"rss_mb": FOOTPRINT_RSS_MB, "wall_s": FOOTPRINT_SECONDS}
    if spotter and spots:
        report["spotter"] = spotter_cpu(path, profile)
        from hearkit.embedding import is_embedding

        on_embedding, on_student = is_embedding(clf.info.frontend), bool(clf.info.model.get("student"))
        report["spotter_target_percent"] = (EMBEDDING_SPOTTER_TARGET_PERCENT if on_embedding else
                                            STUDENT_SPOTTER_TARGET_PERCENT if on_student else SPOTTER_TARGET_PERCENT)
        report["spotter_peers"] = peer_spotter_cpu()
    return report


# -- hearkit bench soak: memory over an hour of streaming -----------------------------
SOAK_MINUTES = 60.0        # audio streamed by default: an hour, as a device runs unattended
SOAK_GROWTH_MB = 2.0       # target: RSS after the hour minus RSS after the first report, at most this
SOAK_EVERY_SECONDS = 60.0  # audio between RSS reports: one per minute
SOAK_PARTIAL_SECONDS = 1.0  # audio between the transcriber's partial results ("every second or so")


def rss_mb() -> float:
    """This process's resident set size now, in MiB (VmRSS; the peak, ru_maxrss, where /proc is absent)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / KiB
    except OSError:
        pass
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / KiB / KiB if sys.platform == "darwin" else r / KiB


def soak_audio(sample_rate: int, seconds: float, seed: int = 0) -> Iterator[np.ndarray]:
    """Speech-like audio generated a syllable at a time, so an hour of it costs a second of memory.

    Voiced bursts of 0.2-1.2 s (a 90-250 Hz harmonic series, eight harmonics falling
    1/k, under a syllable-rate envelope) and, one time in five, a fricative (white-noise
    burst), with 0.1-1.0 s gaps between them, over a quiet noise floor (0.003 RMS).
    Pieces stay short on purpose: a minute-long block would be the benchmark's own
    memory churn (glibc keeps freed blocks that large in the heap), not the engines'.

    Yields:
        float32 pieces (a gap, or a burst over the floor) of at most 1.2 s, peak about 0.5,
        ``seconds`` in all; the same arguments give the same audio.
    """
    rng = np.random.default_rng(seed)
    left = int(round(seconds * sample_rate))
    voiced = True
    while left > 0:
        if voiced:
            n = min(left, int(rng.uniform(0.1, 1.0) * sample_rate))  # a gap: the floor alone
            x = 0.003 * rng.standard_normal(n)
        else:
            dur = int(rng.uniform(0.2, 1.2) * sample_rate)
            n = min(left, dur)
            t = np.arange(n) / sample_rate
            env = np.sin(np.pi * t * sample_rate / dur) ** 2 * (1 + 0.5 * np.sin(2 * np.pi * 4.0 * t))
            if rng.random() < 0.2:  # a fricative
                burst = 0.5 * rng.standard_normal(n)
            else:
                f0 = rng.uniform(90, 250) * (1 + 0.1 * t)  # a slight rise, as in a syllable
                phase = 2 * np.pi * np.cumsum(f0) / sample_rate
                burst = sum(np.sin(k * phase) / k for k in range(1, 9))
            x = 0.15 * env * burst + 0.003 * rng.standard_normal(n)
        voiced = not voiced
        left -= n
        yield np.clip(x, -1.0, 1.0).astype(np.float32)


def _soak_chunks(audio: Sequence[str | os.PathLike], sample_rate: int, seconds: float, seed: int, chunk: int):
    """The soak stream in chunks of ``chunk`` samples (the last may be shorter): the files looped
    (read a second at a time) to ``seconds``, else ``soak_audio``."""

    def pieces():
        if not audio:
            yield from soak_audio(sample_rate, seconds, seed)
            return
        from hearkit.audio import iter_blocks

        left = int(round(seconds * sample_rate))
        while left > 0:
            for path in audio:  # iter_blocks refuses an empty file, so each round makes progress
                for b in iter_blocks(path, sample_rate, block_seconds=1.0):
                    yield b[:left]
                    left -= min(left, b.size)
                    if not left:
                        return

    carry = np.zeros(0, np.float32)
    for p in pieces():
        x = np.concatenate([carry, p]) if carry.size else p
        full = x.size // chunk * chunk
        for i in range(0, full, chunk):
            yield x[i : i + chunk]
        carry = x[full:].copy()
    if carry.size:
        yield carry


def _name(engine) -> str | None:
    """A soak report's name for an engine: its path, or its class name."""
    if engine is None:
        return None
    if isinstance(engine, (str, os.PathLike)):
        return os.fspath(engine)
    path = getattr(engine, "path", None)
    return type(engine).__name__ if path is None else os.fspath(path)


def soak(
    spotter=None,
    transcriber=None,
    minutes: float = SOAK_MINUTES,
    every_seconds: float = SOAK_EVERY_SECONDS,
    chunk_seconds: float = STREAM_CHUNK,
    partial_seconds: float = SOAK_PARTIAL_SECONDS,
    segment_seconds: float | None = SOAK_EVERY_SECONDS,
    audio: Sequence[str | os.PathLike] = (),
    seed: int = 0,
    on_report: Callable[[dict], None] | None = None,
) -> dict:
    """Stream audio through a KeywordSpotter and/or a Transcriber as a device would, and watch RSS.

    Both engines hear the same chunks of ``chunk_seconds`` (a microphone's pace) in one
    process. The spotter keeps no history (``record`` off); the transcriber is fed with
    ``partial=False``, asked for a partial result every ``partial_seconds`` of audio, and
    finalised every ``segment_seconds`` (its text is counted, then dropped, as a live
    captioner hands it on), so what it keeps is one segment's words. RSS (VmRSS) is read
    after every ``every_seconds`` of audio; growth is the last reading minus the first,
    which comes after the warm-up (first runs allocate the sessions' arenas).

    Args:
        spotter: keyword model (export folder, bundle or .onnx), or a ``KeywordSpotter``
            (Default: None = no spotter).
        transcriber: CTC model, or a ``Transcriber`` (Default: None = no transcriber);
            at least one of the two is needed.
        minutes: audio streamed (Default: ``SOAK_MINUTES``).
        every_seconds: audio between RSS reports (Default: ``SOAK_EVERY_SECONDS``).
        chunk_seconds: samples per ``accept_waveform`` call (Default: ``STREAM_CHUNK``).
        partial_seconds: audio between the transcriber's partial results (Default: 1 s).
        segment_seconds: audio between ``finalize`` calls (Default: 60 s; None = once, at the end).
        audio: files to stream, looped to ``minutes`` (Default: none = ``soak_audio``).
        seed: seed of the generated audio (Default: 0).
        on_report: called with each report row as it is taken (Default: None).

    Returns:
        ``{"minutes", "audio_seconds", "chunk_seconds", "spotter", "transcriber", "rows": [{"audio_s",
        "rss_mb", "detections", "words"}, ...], "baseline_mb", "final_mb", "growth_mb", "max_growth_mb",
        "slope_mb_per_hour", "target_growth_mb", "within_target", "cpu_s", "wall_s"}``.

    Raises:
        ConfigError: neither model given, the models' rates differ, or a length is not positive.
    """
    from hearkit.errors import ConfigError

    if spotter is None and transcriber is None:
        raise ConfigError("a soak needs a keyword model, a transcriber model, or both")
    for name, v in (("minutes", minutes), ("every_seconds", every_seconds), ("chunk_seconds", chunk_seconds),
                    ("partial_seconds", partial_seconds)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
            raise ConfigError(f"{name} must be a positive number, got {v!r}")
    kws, tr = spotter, transcriber  # engines given as objects are used as they are
    if isinstance(spotter, (str, os.PathLike)):
        from hearkit.classify import KeywordSpotter

        kws = KeywordSpotter(spotter)
    if isinstance(transcriber, (str, os.PathLike)):
        from hearkit.transcribe import Transcriber

        tr = Transcriber(transcriber, spinning=False)  # live audio: no busy-waiting threads
    rates = {e.sample_rate for e in (kws, tr) if e is not None}
    if len(rates) > 1:
        raise ConfigError(f"the spotter and the transcriber expect different sample rates: {sorted(rates)} Hz")
    sr = rates.pop()
    seconds = 60.0 * minutes
    chunk = max(1, int(round(chunk_seconds * sr)))
    every = max(chunk, int(round(every_seconds * sr)))
    partial_every = max(chunk, int(round(partial_seconds * sr)))
    segment = None if segment_seconds is None else max(chunk, int(round(segment_seconds * sr)))

    rows: list[dict] = []
    detections = words = fed = 0
    next_report, next_partial = every, partial_every
    next_segment = segment
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for x in _soak_chunks(audio, sr, seconds, seed, chunk):
        if kws is not None:
            detections += len(kws.accept_waveform(x))
        fed += x.size
        if tr is not None:
            tr.accept_waveform(x, partial=fed >= next_partial)
            if fed >= next_partial:
                next_partial += partial_every
            if segment is not None and fed >= next_segment:
                words += len(tr.finalize().words)
                next_segment += segment
        if fed >= next_report:
            row = {"audio_s": fed / sr, "rss_mb": rss_mb(), "detections": detections, "words": words}
            rows.append(row)
            if on_report:
                on_report(row)
            next_report += every
    if kws is not None:
        detections += len(kws.flush())
    if tr is not None:
        words += len(tr.finalize().words)
    if not rows or rows[-1]["audio_s"] < fed / sr:  # the last, partial interval
        row = {"audio_s": fed / sr, "rss_mb": rss_mb(), "detections": detections, "words": words}
        rows.append(row)
        if on_report:
            on_report(row)
    rss = np.array([r["rss_mb"] for r in rows])
    t = np.array([r["audio_s"] for r in rows]) / 3600.0
    slope = float(np.polyfit(t, rss, 1)[0]) if len(rows) >= 3 else 0.0  # a trend needs three points
    growth = float(rss[-1] - rss[0])
    return {
        "minutes": minutes,
        "audio_seconds": fed / sr,
        "chunk_seconds": chunk / sr,
        "spotter": _name(spotter),
        "transcriber": _name(transcriber),
        "audio": [os.fspath(a) for a in audio] or "generated speech-like bursts (soak_audio)",
        "rows": rows,
        "detections": detections,
        "words": words,
        "baseline_mb": float(rss[0]),
        "final_mb": float(rss[-1]),
        "growth_mb": growth,
        "max_growth_mb": float(rss.max() - rss[0]),
        "slope_mb_per_hour": slope,
        "target_growth_mb": SOAK_GROWTH_MB,
        "within_target": growth <= SOAK_GROWTH_MB,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
    }
