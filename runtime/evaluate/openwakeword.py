"""openWakeWord's official models as a second peer detector, judged on hearkit's streams and rules.

openWakeWord (Apache-2.0) ships models for five phrases, trained on Piper's 904 voices and
thousands of hours of negatives: the reference a wake-word table is read against where the
phrase has one (docs/recipes/wakeword.md). ``pyopen-wakeword`` (the extra ``hearkit[oww]``)
carries them as TFLite with the TFLite C library inside the wheel, so nothing is downloaded.
This module runs its streaming pipeline (mel graph and speech embedding every 80 ms, then the
phrase's head on the last embeddings, one score per 80 ms) on exactly the streams
:mod:`hearkit.evaluate.detector` builds and PocketSphinx hears
(:mod:`hearkit.evaluate.pocketsphinx`), and judges it by the same rules:

- **Hit rule:** :func:`~hearkit.evaluate.detector.match` (the first detection between an
  utterance's start and ``HIT_AFTER_END_S`` after its end is a hit; everything else is a false alarm).
- **Firing rule:** a score reaching the threshold fires when the phrase is armed and
  ``refractory`` seconds have passed; it re-arms when a score falls below the threshold
  (:func:`~hearkit.evaluate.detector.detections`, hearkit's own spotter rule with its 1-s default
  refractory period). openWakeWord's scores are not smoothed: each 80-ms score is a decision.
- **One run, then a sweep:** each stream is run once and every score kept with its time (when
  the score exists while audio streams in: the end of the 80-ms chunk that produced it); the
  DET curve is swept over thresholds taken from those scores (``thresholds``).
- **CPU:** process CPU time of feeding the pipeline (reading and mixing the streams untimed),
  per hour of audio. The TFLite interpreters run on one thread (``THREADS``): left to itself,
  the library starts a thread pool (8 threads here) and its CPU time outgrows its wall time.

Torch-free; ``pyopen_wakeword`` is imported inside the functions that run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hearkit.classify import DEFAULT_REFRACTORY
from hearkit.errors import ConfigError, require
from hearkit.evaluate.detector import (
    HIT_AFTER_END_S,
    N_THRESHOLDS,
    Streams,
    Utterance,
    build_curve,
    cpu_timed,
    detections,
    feed_stream,
    match,
    negative_stream,
    words,
)

ENGINE = "openwakeword"
EXTRA = "oww"
SAMPLE_RATE = 16000        # the official models' rate
CHUNK_SAMPLES = 1280       # 80 ms: what the pipeline consumes per step (one embedding, one score)
THREADS = 1                # TFLite interpreter threads (its default starts a pool)
TOP_NEGATIVE_SCORES = 1000  # the highest distinct negative-stream scores, each a threshold of the sweep:
                            # the low-false-alarm end of the curve is exact there, not a quantile
THRESHOLD_UNIT = "openWakeWord score (0-1)"
STREAM_SECONDS = 30.0      # noise fed for the streaming cost, as hearkit's spotter figure
# phrase (its words, lower case) -> official model; pyopen_wakeword.Model holds the same five
OFFICIAL_MODELS = {
    "alexa": "alexa",
    "hey jarvis": "hey_jarvis",
    "hey mycroft": "hey_mycroft",
    "hey rhasspy": "hey_rhasspy",
    "okay nabu": "okay_nabu",
}
NO_OFFICIAL_MODEL = "no official model"


def official_model(phrase: str) -> str | None:
    """openWakeWord's official model for a phrase or label (``hey_jarvis``, ``Hey Jarvis``), or None."""
    return OFFICIAL_MODELS.get(" ".join(words(phrase)))


def official_models(labels: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """({label: official model}, {label: "no official model"}) of a model's phrases (background labels left out)."""
    found, skipped = {}, {}
    for lab in labels:
        if lab.startswith("_") and lab.endswith("_"):
            continue
        m = official_model(lab)
        if m is None:
            skipped[lab] = NO_OFFICIAL_MODEL
        else:
            found[lab] = m
    return found, skipped


def skipped_line(skipped: Mapping[str, str]) -> str:
    """One line naming the phrases openWakeWord has no official model of."""
    return (f"openwakeword: {NO_OFFICIAL_MODEL} for {', '.join(repr(p) for p in skipped)} "
            f"(it has {', '.join(repr(p) for p in OFFICIAL_MODELS)}): skipped")


def available() -> bool:
    """True when ``pyopen_wakeword`` imports (``hearkit[oww]`` is installed)."""
    try:
        import pyopen_wakeword  # noqa: F401
    except ImportError:
        return False
    return True


# -- the engine -------------------------------------------------------------------------------
def _one_thread(lib):
    """The TFLite C library handle, with ``TfLiteInterpreterCreate`` giving ``THREADS``-thread interpreters.

    ``pyopen_wakeword`` creates its interpreters without options (the library then picks its own
    thread count); this proxy hands every creation an options object with the thread count set.
    """
    import ctypes as C

    class Create:  # the package sets argtypes/restype on it: kept here, harmless
        def __init__(self):
            f = lib.TfLiteInterpreterCreate
            f.argtypes, f.restype = [C.c_void_p, C.c_void_p], C.c_void_p
            lib.TfLiteInterpreterOptionsCreate.argtypes, lib.TfLiteInterpreterOptionsCreate.restype = [], C.c_void_p
            lib.TfLiteInterpreterOptionsSetNumThreads.argtypes = [C.c_void_p, C.c_int32]
            lib.TfLiteInterpreterOptionsSetNumThreads.restype = None
            lib.TfLiteInterpreterOptionsDelete.argtypes, lib.TfLiteInterpreterOptionsDelete.restype = [C.c_void_p], None

        def __call__(self, model, _options=None):
            opts = lib.TfLiteInterpreterOptionsCreate()
            lib.TfLiteInterpreterOptionsSetNumThreads(opts, THREADS)
            try:
                return lib.TfLiteInterpreterCreate(model, opts)
            finally:
                lib.TfLiteInterpreterOptionsDelete(opts)

    class Lib:
        TfLiteInterpreterCreate = Create()

        def __getattr__(self, name):
            return getattr(lib, name)

    return Lib()


def _one_thread_classes():
    """Subclasses of pyopen_wakeword's model and feature classes whose interpreters use ``THREADS`` threads."""
    ow = require("pyopen_wakeword", EXTRA)

    class OneThread:
        @property
        def lib(self):
            return self.__dict__["lib"]

        @lib.setter
        def lib(self, value):  # TfLiteWakeWord.__init__ assigns the CDLL here, then builds interpreters through it
            self.__dict__["lib"] = _one_thread(value)

    class Model(OneThread, ow.OpenWakeWord):
        pass

    class Features(OneThread, ow.OpenWakeWordFeatures):
        pass

    return ow, Model, Features


@dataclass
class ScoreStream:
    """The scores of one streamed run (the counterpart of ``hearkit.evaluate.detector.StreamScores``).

    Attributes:
        times: {label: (n,) seconds at which each score exists while audio streams in}.
        scores: {label: (n,) openWakeWord scores}.
        seconds: length of the stream.
        utterances: positives placed in it (empty for negatives).
        files: blocks streamed.
        cpu_seconds: process CPU time of the pipeline on this stream.
    """

    times: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    seconds: float
    utterances: list[Utterance] = field(default_factory=list)
    files: int = 0
    cpu_seconds: float = 0.0


class OfficialSpotter:
    """openWakeWord's streaming pipeline with official models, fed blocks of any size.

    One feature pipeline (mel graph, speech embedding) feeds every phrase's model, as
    openWakeWord runs several wake words at once.

    Args:
        models: {label: official model name} (``official_models``' first result), or labels / phrases.

    Raises:
        MissingDependencyError: ``pyopen_wakeword`` is not installed (``pip install "hearkit[oww]"``).
        ConfigError: no model given, or a phrase without an official model.
    """

    sample_rate = SAMPLE_RATE
    hop_seconds = CHUNK_SAMPLES / SAMPLE_RATE

    def __init__(self, models: Mapping[str, str] | Sequence[str]):
        if not isinstance(models, Mapping):
            models, skipped = official_models(list(models))
            if skipped:
                raise ConfigError(skipped_line(skipped))
        if not models:
            raise ConfigError(f"openWakeWord needs a phrase with an official model ({', '.join(OFFICIAL_MODELS)})")
        bad = sorted(m for m in models.values() if m not in OFFICIAL_MODELS.values())
        if bad:
            raise ConfigError(f"openWakeWord has no official model {bad}; it has {sorted(OFFICIAL_MODELS.values())}")
        self.models = dict(models)
        ow, Model, Features = _one_thread_classes()
        from pyopen_wakeword.openwakeword import _MODELS_DIR, _find_tensorflowlite_c

        lib = _find_tensorflowlite_c()
        self._nets = {lab: Model(m, tflite_model=_MODELS_DIR / f"{m}.tflite", libtensorflowlite_c_path=lib)
                      for lab, m in self.models.items()}
        self._features = Features(_MODELS_DIR / "melspectrogram.tflite", _MODELS_DIR / "embedding_model.tflite", lib)
        self.version = getattr(ow, "__version__", None) or _dist_version()
        self.reset()

    @property
    def labels(self) -> list[str]:
        return list(self.models)

    def reset(self) -> None:
        """Forget the stream: times, scores and CPU time restart at 0, and the pipeline starts fresh
        (openWakeWord pre-fills 8 s of silence, as it does when it starts listening)."""
        self._features.reset()
        for net in self._nets.values():
            net.reset()
        self.samples_seen = 0
        self.cpu_seconds = 0.0
        self._fed = 0  # samples that reached the pipeline (whole chunks)
        self._pending = np.zeros(0, np.int16)
        self._times: dict[str, list[float]] = {lab: [] for lab in self.models}
        self._scores: dict[str, list[float]] = {lab: [] for lab in self.models}

    def accept_waveform(self, chunk: np.ndarray) -> None:
        """Add float32 samples in [-1, 1] at 16 kHz (or int16 PCM), any length.

        They reach openWakeWord in ``CHUNK_SAMPLES`` pieces (its own step), so any chunking of
        the same audio gives the same scores at the same times. Only the pipeline is timed.
        """
        x = np.asarray(chunk)
        if x.dtype != np.int16:
            x = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
        buf = np.concatenate([self._pending, x.ravel()]) if self._pending.size else x.ravel()
        n = buf.size - buf.size % CHUNK_SAMPLES
        self._process(buf[:n])
        self._pending = buf[n:].copy()
        self.samples_seen += x.size

    def _process(self, pcm: np.ndarray) -> None:
        with cpu_timed(self):
            for i in range(0, pcm.size, CHUNK_SAMPLES):
                self._fed += CHUNK_SAMPLES
                now = self._fed / SAMPLE_RATE
                for emb in self._features.process_streaming(pcm[i : i + CHUNK_SAMPLES].tobytes()):
                    for lab, net in self._nets.items():
                        for p in net.process_streaming(emb):
                            self._times[lab].append(now)
                            self._scores[lab].append(p)

    def finish(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """End of stream: the last part chunk, padded with silence, goes through (times capped at the
        stream's end); returns ({label: times}, {label: scores}). Call ``reset()`` before a new stream."""
        if self._pending.size:
            self._process(np.concatenate([self._pending, np.zeros(CHUNK_SAMPLES - self._pending.size, np.int16)]))
            self._pending = np.zeros(0, np.int16)
        end = self.samples_seen / SAMPLE_RATE
        times = {lab: np.minimum(np.asarray(t, np.float64), end) for lab, t in self._times.items()}
        scores = {lab: np.asarray(s, np.float64) for lab, s in self._scores.items()}
        return times, scores

    def close(self) -> None:
        for net in self._nets.values():
            net.close()
        self._features.close()


def _dist_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyopen-wakeword")
    except PackageNotFoundError:
        return None


def spot_stream(spotter: OfficialSpotter, blocks: Iterable) -> ScoreStream:
    """Feed a stream (blocks, or (block, utterance) pairs as ``positive_stream`` yields) through openWakeWord."""
    utts, n, seconds = feed_stream(spotter, blocks, SAMPLE_RATE)
    times, scores = spotter.finish()
    return ScoreStream(times, scores, seconds, utts, files=n, cpu_seconds=spotter.cpu_seconds)


# -- scoring ----------------------------------------------------------------------------------
def thresholds(pos: ScoreStream, neg: ScoreStream, name: str, utts: Sequence[Utterance],
               n_thresholds: int = N_THRESHOLDS, top: int = TOP_NEGATIVE_SCORES) -> np.ndarray:
    """The thresholds swept for one phrase, ascending.

    ``n_thresholds`` quantiles of all its scores (as hearkit's sweep); each utterance's best score
    in its hit window (where that utterance stops being hit); the ``top`` highest distinct
    negative-stream scores (where false alarms per hour are low, the count changes only there);
    0, and one above every score (nothing fires).
    """
    sp, sn = pos.scores[name], neg.scores[name]
    s_all = np.concatenate([sp, sn])
    parts = [np.array([0.0])]
    if s_all.size:
        parts.append(np.quantile(s_all, np.linspace(0, 1, n_thresholds)))
    tp = pos.times[name]  # ascending
    for u in utts:
        a, b = np.searchsorted(tp, [u.start, u.end + HIT_AFTER_END_S + 1e-9])
        if b > a:
            parts.append(sp[a:b].max(keepdims=True))
    if sn.size:
        parts.append(np.unique(sn)[-top:])
    th = np.unique(np.concatenate(parts))
    return np.append(th, np.nextafter(th[-1], np.inf) if th[-1] >= 1.0 else 1.0)


def score_curve(pos: ScoreStream, neg: ScoreStream, name: str, refractory: float = DEFAULT_REFRACTORY,
                n_thresholds: int = N_THRESHOLDS) -> dict:
    """False-reject rate and false alarms per hour of one phrase at every swept threshold (``thresholds``).

    Detections at each threshold follow hearkit's spotter rule on the recorded scores
    (:func:`~hearkit.evaluate.detector.detections`); a higher threshold is the stricter one.
    """
    utts = [u for u in pos.utterances if u.label == name]
    th = thresholds(pos, neg, name, utts, n_thresholds)

    def at(t):  # (hits, false alarms in the positive stream, in the negative stream)
        hits, fa_pos = match(detections(pos.times[name], pos.scores[name], t, refractory), utts)
        return hits, fa_pos, len(detections(neg.times[name], neg.scores[name], t, refractory))

    return build_curve(name, utts, pos.seconds + neg.seconds, th.tolist(), at)


def evaluate_openwakeword(
    phrases: Sequence[str],
    streams: Streams,
    refractory: float = DEFAULT_REFRACTORY,
    log: Callable[[str], None] = lambda m: None,
) -> dict:
    """openWakeWord's official models on the streams ``evaluate_detector`` builds; a report in its format.

    Args:
        phrases: labels of the hearkit model (``hey_jarvis`` is openWakeWord's ``hey_jarvis``);
            background labels are left out, phrases without an official model are skipped (their
            positives stay in the stream, as in hearkit's, and count as false alarms where it fires).
        streams: what to stream, as for :func:`~hearkit.evaluate.detector.evaluate_detector`.
        refractory: seconds after a detection during which the phrase cannot fire again
            (Default: hearkit's spotter default, 1 s).
        log: progress callable (Default: silent).

    Returns:
        ``evaluate_detector``'s report (``phrases`` with ``curve`` and ``points``, ``mean_frr``,
        hours, ``left_out``) with ``engine``, ``models`` ({label: official model}), ``skipped``
        ({label: "no official model"}), ``threshold_unit``, ``threads``, ``cpu_seconds`` and
        ``cpu_seconds_per_hour`` (of audio streamed) added. With no phrase that has an official
        model nothing is streamed: ``phrases`` and ``mean_frr`` are empty.
    """
    models, skipped = official_models(list(phrases))
    base = {"engine": ENGINE, "models": models, "skipped": skipped, "threshold_unit": THRESHOLD_UNIT,
            "threads": THREADS, "refractory_seconds": refractory}
    if skipped:
        log(skipped_line(skipped))
    if not models:
        return {**base, "phrases": {}, "mean_frr": {}, "cpu_seconds": 0.0, "cpu_seconds_per_hour": None}
    # every phrase's positives and left-out negatives, as hearkit's streams hold them: another phrase's
    # utterance is a place where openWakeWord may fire falsely
    src = streams.sources(list(phrases))
    spotter = OfficialSpotter(models)
    try:
        pos = spot_stream(spotter, streams.positive_stream(src, SAMPLE_RATE))
        log(f"openwakeword: positive stream {pos.seconds / 60:.1f} min scored ({pos.cpu_seconds:.0f} CPU s)")
        neg = spot_stream(spotter, negative_stream(src.negative, SAMPLE_RATE))
        log(f"openwakeword: negative stream {neg.seconds / 3600:.2f} h scored ({neg.cpu_seconds:.0f} CPU s)")
    finally:
        spotter.close()
    cpu = pos.cpu_seconds + neg.cpu_seconds
    hours = (pos.seconds + neg.seconds) / 3600
    curves = [score_curve(pos, neg, name, refractory) for name in src.phrases if name in models and src.positive.get(name)]
    return {**base, "version": spotter.version,
            **streams.report(curves, src, pos.seconds, neg.seconds, hop_seconds=OfficialSpotter.hop_seconds),
            "cpu_seconds": cpu, "cpu_seconds_per_hour": cpu / max(hours, 1e-12)}


# -- streaming cost -------------------------------------------------------------------------------
def stream_cpu_share(model: str = "alexa", seconds: float = STREAM_SECONDS) -> dict:
    """openWakeWord's share of one core: process CPU time / audio time of ``seconds`` of noise fed in 80-ms chunks.

    The same noise as hearkit's spotter figure (:func:`hearkit.evaluate.bench.stream_cpu_share`:
    0.05 RMS, seed 1), one TFLite thread, after a second of warm-up (its interpreters allocate,
    and its 8-s pre-fill of silence is paid once when it starts listening, not per chunk).

    Args:
        model: official model name or phrase (Default: ``alexa``).
        seconds: audio fed (Default: ``STREAM_SECONDS``).

    Returns:
        ``{"case", "model", "cpu_share_percent", "wall_ms_per_hop", "hop_seconds", "streaming", "threads"}``.
    """
    name = model if model in OFFICIAL_MODELS.values() else official_model(model)
    if name is None:
        raise ConfigError(skipped_line({model: NO_OFFICIAL_MODEL}))
    sp = OfficialSpotter({name: name})
    try:
        x = (0.05 * np.random.default_rng(1).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
        sp.accept_waveform(x[:SAMPLE_RATE])  # warm-up, not reset: the pipeline listens on
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, x.size, CHUNK_SAMPLES):
            sp.accept_waveform(x[i : i + CHUNK_SAMPLES])
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    finally:
        sp.close()
    hop = CHUNK_SAMPLES / SAMPLE_RATE
    return {"case": f"openWakeWord {name} (peer, TFLite)", "model": f"{name}.tflite",
            "cpu_share_percent": 100 * cpu / seconds, "wall_ms_per_hop": 1e3 * wall / (seconds / hop),
            "hop_seconds": hop, "streaming": True, "threads": THREADS}
