"""Classify clips and spot keywords in streams, torch-free (numpy + onnxruntime).

Everything a model needs (labels, front-end, window length) comes from its
``hearkit.*`` metadata (docs/design.md §3). The decision logic (sliding window, posterior
smoothing, thresholds, refractory period) works on numpy arrays only and talks
to the network through a plain ``scores(windows) -> logits`` callable, so torch
and onnxruntime paths share it (STYLE: a seam between decoding and the network).

Example:
    >>> clf = hearkit.Classifier("out/kws/pipeline.int8.onnx")
    >>> clf.classify("clip.wav").label
    'yes'
    >>> kws = hearkit.KeywordSpotter("out/kws")
    >>> for chunk in chunks:
    ...     for d in kws.accept_waveform(chunk):
    ...         print(d.label, d.time, d.score)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hearkit.audio import ChunkChecker, check_waveform, fit_window, load_centre
from hearkit.errors import ConfigError, ModelError, NotAudioError, check_finite, run_session
from hearkit.frontend import logmel
from hearkit.limits import check, check_optional, check_threshold
from hearkit.metadata import ModelInfo

DEFAULT_HOP_SECONDS = 0.1      # seconds between two spotting decisions
DEFAULT_THRESHOLD = 0.6        # smoothed posterior needed to report a keyword
DEFAULT_SMOOTHING = 3          # decisions averaged (posterior smoothing window, in hops)
DEFAULT_REFRACTORY = 1.0       # seconds after a detection during which no other fires
LONG_AUDIO_WINDOWS = 3         # classify_files notes that a file longer than this many windows wants `stream`


def default_hop_seconds(fe, model: dict | None = None) -> float:
    """The spotter's step when none is given: 100 ms, or the front-end's own step where its frames are
    that coarse (the speech embedding's 80 ms: docs/design.md §17), so each frame is computed once.
    A distilled student (``model``, the metadata's model entry, holds ``student``) keeps the embedding's
    clock, a vector every 8 log-mel frames: its step is those 8 frames (80 ms, docs/design.md §18)."""
    from hearkit.embedding import EMBEDDING_STRIDE

    step = fe.hop_length / fe.sample_rate * (EMBEDDING_STRIDE if (model or {}).get("student") else 1)
    return step if step >= 0.05 else DEFAULT_HOP_SECONDS


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64 (probabilities that sum to 1 within 1e-12)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@dataclass(frozen=True)
class Prediction:
    """The result of classifying one clip.

    Attributes:
        label: the most probable label.
        score: its probability.
        scores: probability of every label, in the model's label order.
    """

    label: str
    score: float
    scores: dict[str, float]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable (label, probability) pairs, best first."""
        return sorted(self.scores.items(), key=lambda kv: -kv[1])[:k]

    def to_dict(self) -> dict:
        return {"label": self.label, "score": self.score, "scores": self.scores}


def check_input_bands(inp, info: ModelInfo, source) -> None:
    """ModelError when a log-mel-input graph's mel axis is fixed and differs from its metadata's ``n_mels``."""
    if info.input != "logmel":
        return
    shape = list(getattr(inp, "shape", None) or [])
    bands = shape[-1] if shape else None
    if len(shape) != 3 or (isinstance(bands, int) and bands != info.frontend.n_mels):
        raise ModelError(f"{source}: a log-mel-input model whose input '{inp.name}' has shape {shape}, but its "
                         f"metadata front-end makes (batch, frames, {info.frontend.n_mels}); re-export it")


def clip_list(audios) -> list:
    """``audios`` of a batch API as a list of clips; one clip (a path, an array) or a scalar is a ConfigError saying what to pass."""
    if isinstance(audios, (str, os.PathLike)):
        raise ConfigError(f"audios must be a list of clips (paths or 1-D arrays), got one path {os.fspath(audios)!r}: "
                          "pass [path], or use classify() for one clip")
    if isinstance(audios, np.ndarray) and audios.ndim < 2:
        what = "a single number (0-d array)" if audios.ndim == 0 else f"one 1-D array of {audios.size} samples"
        raise ConfigError(f"audios must be a list of clips (paths or 1-D arrays), got {what}: pass [x], "
                          "or use classify() for one clip")
    try:
        return list(audios)
    except TypeError:
        raise ConfigError(f"audios must be a list of clips (paths or 1-D arrays), got {type(audios).__name__}") from None


class OnnxScorer:
    """The network behind a plain callable: waveform windows (batch, samples) -> logits (batch, labels).

    Waveform-input models (``pipeline*.onnx``) take the audio as is; log-mel-input
    models (``model*.onnx``) get features from the numpy reference front-end of
    the config in their metadata.

    Args:
        path: model file, export directory or bundle.
        threads: intra-op threads (Default: the device profile's, or 1).
        spinning: let idle ORT threads spin; off for periodic streaming (docs/design.md §6)
            (Default: the device profile's, or on).
        device: device profile name, path or ``DeviceProfile`` (Default: None, CPU):
            its providers, threads and optimisation level make the session, and its
            preferred variant (int8 / fp32 / fp16) is taken from a folder or bundle.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None, spinning: bool | None = None, device=None):
        from hearkit.sessions import open_model

        self.path, self.session = open_model(path, device, threads=threads, spinning=spinning)
        self.info: ModelInfo = ModelInfo.from_props(dict(self.session.get_modelmeta().custom_metadata_map), source=os.fspath(self.path))
        if self.info.task != "classify":
            raise ModelError(
                f"{self.path}: metadata task is '{self.info.task}', but this needs a 'classify' model"
            )
        if not self.info.window_samples:
            raise ModelError(f"{self.path}: metadata key 'hearkit.window_samples' is missing (needed to classify)")
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: expected one input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[0].name
        check_input_bands(inputs[0], self.info, self.path)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if self.info.input == "logmel":
            x = logmel(x, self.info.frontend)
        out = run_session(self.session, [self.output_name], {self.input_name: np.ascontiguousarray(x)}, self.path)[0]
        n = len(self.info.labels)
        if out.ndim != 2 or out.shape[1] != n:
            raise ModelError(f"{self.path}: output shape {out.shape} does not match {n} labels (batch, {n})")
        return check_finite(out, self.path, "scores")


class Classifier:
    """Classify whole clips with a hearkit classification model.

    Args:
        path: ``pipeline.onnx`` / ``pipeline.int8.onnx`` / ``model.onnx``, or an export
            directory (then ``pipeline.int8.onnx`` is preferred).
        threads: intra-op threads (Default: the device profile's, or 1).
        device: device profile name, path or ``DeviceProfile`` (Default: None, CPU);
            see ``OnnxScorer``.

    Attributes:
        labels: class names, in output order.
        sample_rate: the rate audio is resampled to.
        window_samples: clip length the model sees; others are padded or centre-cropped.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None, device=None):
        self.scorer = OnnxScorer(path, threads=threads, device=device)
        self.info = self.scorer.info
        self.path = self.scorer.path
        self.labels = list(self.info.labels)
        self.sample_rate = self.info.frontend.sample_rate
        self.window_samples = int(self.info.window_samples)

    def _prepare(self, audio, sample_rate: int | None) -> np.ndarray:
        if isinstance(audio, (str, os.PathLike)):
            x = load_centre(audio, self.sample_rate, self.window_samples)  # what fit_window keeps, read alone
        else:
            from hearkit.audio import resample

            x = check_waveform(audio)
            if sample_rate is not None:
                x = resample(x, sample_rate, self.sample_rate)
        return fit_window(x, self.window_samples)

    def logits(self, audios, sample_rate: int | None = None, batch_size: int = 32) -> np.ndarray:
        """Raw logits of several clips: (n, n_labels) float32.

        Args:
            audios: paths, or 1-D arrays at ``sample_rate`` (Default: the model's rate).
            batch_size: clips per ONNX call.
        """
        sample_rate = check_optional("sample_rate", sample_rate, "sample_rate")
        batch_size = check("batch_size", batch_size, "batch_size")
        audios = clip_list(audios)
        out = []
        for i in range(0, len(audios), batch_size):
            batch = np.stack([self._prepare(a, sample_rate) for a in audios[i : i + batch_size]])
            out.append(self.scorer(batch))
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def classify_batch(self, audios, sample_rate: int | None = None, batch_size: int = 32) -> list[Prediction]:
        """``classify`` for several clips, batched."""
        probs = softmax(self.logits(audios, sample_rate, batch_size))
        return [self._prediction(p) for p in probs]

    def classify(self, audio, sample_rate: int | None = None) -> Prediction:
        """Classify one clip.

        Args:
            audio: a file path, or samples (1-D, or (samples, channels)) as numpy.
            sample_rate: rate of ``audio`` when it is an array (Default: the model's rate).
        """
        return self.classify_batch([audio], sample_rate)[0]

    def _prediction(self, p: np.ndarray) -> Prediction:
        k = int(np.argmax(p))
        return Prediction(self.labels[k], float(p[k]), {lab: float(v) for lab, v in zip(self.labels, p)})


# -- keyword spotting ------------------------------------------------------------
@dataclass(frozen=True)
class Detection:
    """A keyword found in a stream.

    Attributes:
        label: the keyword.
        time: end of the window that triggered it, in seconds since the stream began (or ``reset``).
        score: the smoothed posterior that crossed the threshold.
    """

    label: str
    time: float
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "time": round(self.time, 4), "score": round(self.score, 4)}


def is_background_label(label: str) -> bool:
    """Labels like ``_silence_`` / ``_unknown_`` (Speech Commands' convention) never trigger."""
    return label.startswith("_") and label.endswith("_")


def classify_files(model, paths, top: int = 3, device=None, note: Callable[[str], None] | None = None):
    """One result dict per audio file: label, score and the ``top`` best labels.

    A clip longer than the model's window is classified by its centre window (the
    rest is not read); a file longer than ``LONG_AUDIO_WINDOWS`` windows (a 15-s sentence
    for a 1-s keyword model) gets a one-line ``note`` saying so, since `hearkit
    stream` is what scores a long recording throughout.
    """
    from hearkit.audio import audio_info

    note = note or (lambda m: None)
    clf = Classifier(model, device=device)
    for p in paths:
        pred = clf.classify(p)
        duration = audio_info(p)["duration"]
        if duration > LONG_AUDIO_WINDOWS * clf.window_samples / clf.sample_rate:
            note(f"note: {p} is {duration:.2f} s long; the model heard its centre "
                 f"{clf.window_samples / clf.sample_rate:g} s; for long audio use `hearkit stream`, "
                 "which scores all of it")
        yield {"file": str(p), "label": pred.label, "score": round(pred.score, 5),
               "top": [[lab, round(s, 5)] for lab, s in pred.top(top)]}


@dataclass
class DetectionLogic:
    """Posterior smoothing, per-label thresholds and a refractory period, on arrays only.

    Args:
        labels: class names in output order.
        thresholds: per-label smoothed-posterior thresholds; labels not listed use ``default_threshold``.
            Background labels (``_x_``) never trigger unless given a threshold explicitly.
        smoothing: number of consecutive decisions averaged (1 = no smoothing).
        refractory_seconds: after a detection, no detection of any label for this long.

    A label that fired re-arms only once its smoothed posterior has fallen below its
    threshold again, so one utterance fires once however long its score stays high
    (a wake word held for 3 s, or a model that saturates); the refractory period comes
    on top of that, for every label.
    """

    labels: list[str]
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float = DEFAULT_THRESHOLD
    smoothing: int = DEFAULT_SMOOTHING
    refractory_seconds: float = DEFAULT_REFRACTORY

    def __post_init__(self):
        unknown = sorted(set(self.thresholds) - set(self.labels))
        if unknown:
            raise ConfigError(f"thresholds given for unknown labels {unknown}; the model's labels are {self.labels}")
        self.smoothing = check("smoothing", self.smoothing, "smoothing")  # hearkit.limits: NaN, inf, 10**9 refused
        self.refractory_seconds = check("refractory_s", self.refractory_seconds, "refractory_seconds")
        self.default_threshold = check_threshold(self.default_threshold, "default_threshold")
        self.thresholds = {k: check_threshold(v, f"thresholds[{k!r}]") for k, v in self.thresholds.items()}
        th = []
        for lab in self.labels:
            if lab in self.thresholds:
                th.append(float(self.thresholds[lab]))
            else:
                th.append(np.inf if is_background_label(lab) else float(self.default_threshold))
        self._th = np.array(th)
        self.reset()

    def label_thresholds(self) -> dict[str, float]:
        """{label: threshold} of every label that can fire (background labels only when given one)."""
        return {lab: float(t) for lab, t in zip(self.labels, self._th) if np.isfinite(t)}

    def reset(self) -> None:
        self._hist = np.zeros((self.smoothing, len(self.labels)))
        self._count = 0
        self._last_time = -np.inf
        self._armed = np.ones(len(self.labels), bool)

    def update(self, probs: np.ndarray, time: float) -> tuple[np.ndarray, Detection | None]:
        """Feed the posteriors (n_labels,) of one decision at ``time`` s; return (smoothed, detection or None)."""
        self._hist[self._count % self.smoothing] = probs
        self._count += 1
        smoothed = self._hist[: min(self._count, self.smoothing)].mean(axis=0)
        margin = smoothed - self._th
        self._armed |= margin < 0
        k = int(np.argmax(margin))
        if margin[k] >= 0 and self._armed[k] and time - self._last_time >= self.refractory_seconds - 1e-9:
            self._last_time = time
            self._armed[k] = False
            return smoothed, Detection(self.labels[k], float(time), float(smoothed[k]))
        return smoothed, None


class SlidingWindow:
    """Cuts a stream of any chunking into fixed windows every ``hop`` samples (numpy state).

    Starts from a window of zeros, so a keyword at the very start of a stream
    is seen. The windows produced depend on the samples only, never on how they
    were chunked.

    Args:
        window: samples per window.
        hop: samples between window ends.
    """

    def __init__(self, window: int, hop: int):
        if not 0 < hop <= window:
            raise ConfigError(f"hop must be in 1..window ({window}) samples, got {hop}")
        self.window, self.hop = int(window), int(hop)
        self.reset()

    def reset(self) -> None:
        # buffer: the last `window` samples of the last emitted window, then pending samples
        self._buf = np.zeros(self.window + self.hop, np.float32)
        self._fill = self.window
        self.samples_seen = 0

    def push(self, chunk: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """Add mono samples (1-D); return each complete window (copy) with its end position in samples.

        Numbers only, no audio policy (``KeywordSpotter.accept_waveform`` applies it); a 2-D
        chunk is refused rather than flattened, which would interleave its channels.
        """
        chunk = np.asarray(chunk)
        if chunk.ndim > 1 and chunk.size:
            raise NotAudioError("<stream chunk>", f"SlidingWindow takes 1-D samples, got shape {chunk.shape}; "
                                "downmix with hearkit.audio.check_waveform")
        chunk = chunk.astype(np.float32, copy=False).reshape(-1)
        out = []
        pos = 0
        while pos < chunk.size:
            take = min(chunk.size - pos, self._buf.size - self._fill)
            self._buf[self._fill : self._fill + take] = chunk[pos : pos + take]
            self._fill += take
            pos += take
            self.samples_seen += take
            if self._fill == self._buf.size:
                out.append((self._buf[self.hop :].copy(), self.samples_seen))
                self._buf[: self.window] = self._buf[self.hop :]
                self._fill = self.window
        return out


class _MelParts(NamedTuple):
    """The speech-embedding front-end of a ``StreamingScorer`` in two parts (``mel.onnx``, ``embedding.onnx``)."""

    mel: object        # session: waveform -> mel frames
    mel_input: str
    emb: object        # session: mel frames -> vectors
    emb_input: str
    kept: int          # mel frames kept between hops: those of one hop's new vectors
    carry: int         # samples carried into the next hop's mel graph
    rest: int          # of those, the samples after the window's last vector (they wait for the next hop)


def network_beside(path: str | os.PathLike) -> Path | None:
    """The log-mel network of a pipeline file (``model.int8.onnx`` beside ``pipeline.int8.onnx``) when it
    and the export's ``frontend.onnx`` sit beside it, else None: the pair a :class:`StreamingScorer` runs."""
    from hearkit import artifacts

    p = Path(path)
    parsed = artifacts.parse_name(p.name) if p.is_file() else None
    if parsed is None or parsed[0] != artifacts.PIPELINE:
        return None
    net = p.with_name(artifacts.file_name(artifacts.MODEL, parsed[1], parsed[2]))
    fe = p.with_name(artifacts.file_name(artifacts.FRONTEND))
    return net if net.is_file() and fe.is_file() else None


class StreamingScorer:
    """Scores of the last window every hop, with each log-mel frame computed once.

    A full-window scorer recomputes the front-end of the whole window at every hop (ten
    times per second for a 1-s window at a 100 ms hop). Here the export's fp32 front-end
    graph runs on the new hop only (plus the samples its first new frame reaches back to),
    the window's frames are kept (the oldest hop's dropped as the new one's arrive), and the
    log-mel-input network runs on them. The windows and frames are those of ``SlidingWindow`` (a window
    of zeros at the start), so the scores equal the waveform-in pipeline's within float
    rounding. It needs ``center=False`` and window and hop in whole frames.

    On the speech embedding (a vector every 80 ms from the last 76 mel frames), an export's
    ``mel.onnx`` and ``embedding.onnx`` (its front-end cut at the mel frames) let each mel frame
    be computed once too: the scorer keeps the last 76, and the embedding graph runs on them.
    Without them, each hop's mel graph recomputes the 76 frames the new vector sees.

    Args:
        path: an export folder or bundle (it holds ``frontend.onnx`` and the network), or a
            network file (``model.int8.onnx``) with ``frontend.onnx`` beside it.
        window: samples per window; hop: samples between windows.
        device, threads: as for :class:`OnnxScorer` (the front-end runs on the CPU provider).
    """

    def __init__(self, path: str | os.PathLike, window: int, hop: int, device=None, threads: int | None = None):
        window, hop = check("window_samples", window, "window"), check("hop_samples", hop, "hop")  # hearkit.limits
        from hearkit import artifacts
        from hearkit.frontend_onnx import OnnxFrontend
        from hearkit.sessions import open_model

        self.path, self.session = open_model(path, device, threads=threads, spinning=False, stems=(artifacts.MODEL,))
        self.info = ModelInfo.from_props(dict(self.session.get_modelmeta().custom_metadata_map), source=os.fspath(self.path))
        if self.info.task != "classify" or self.info.input != "logmel":
            raise ModelError(f"{self.path}: the streaming scorer needs the log-mel-input classification network")
        fe = self.info.frontend
        if not self.can_stream(fe, window, hop):
            raise ConfigError(f"streaming features need center=False and window/hop in whole frames of {fe.hop_length} samples")
        folder = Path(path) if Path(path).is_dir() else Path(path).parent  # a network file: its export's front-end
        fe_path = artifacts.resolve(folder, prefer=artifacts.FP32, stems=(artifacts.FRONTEND,))
        self.frontend = OnnxFrontend(fe_path, threads=1)
        self.frontend_path = os.fspath(fe_path)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        check_input_bands(self.session.get_inputs()[0], self.info, self.path)
        self.window, self.hop = int(window), int(hop)
        self.n_frames = fe.num_frames(self.window)
        # the window's frames end up to hop_length - 1 samples before its end; the next hop's first
        # new frame starts where the window's frames would continue: this far before the window's end
        self.carry = self.window - fe.hop_length * self.n_frames
        self._mel_parts = self._open_mel_parts(folder, fe)
        self.reset()

    def _open_mel_parts(self, folder: Path, fe) -> "_MelParts | None":
        """The speech-embedding front-end in two parts when the export holds them, else None. Both run
        on the CPU provider, as the front-end does."""
        from hearkit import artifacts
        from hearkit.embedding import EMBEDDING_FRAMES, EMBEDDING_STRIDE, MEL_HOP, MEL_N_FFT, is_embedding
        from hearkit.sessions import make_session

        if not is_embedding(fe) or not all((folder / n).is_file() for n in artifacts.STREAM_GRAPHS):
            return None
        mel, emb = (make_session(artifacts.resolve(folder, prefer=artifacts.FP32, stems=(stem,)), threads=1, spinning=False)
                    for stem in (artifacts.MEL, artifacts.EMBEDDING))
        # the window's last vector ends `rest` samples before its end (window_for(n_frames) <= window);
        # each hop's mel frames end there too, so those samples wait for the next hop
        rest = self.window - (fe.n_fft + (self.n_frames - 1) * fe.hop_length)
        return _MelParts(mel, mel.get_inputs()[0].name, emb, emb.get_inputs()[0].name,
                         kept=EMBEDDING_FRAMES - EMBEDDING_STRIDE + self.hop // MEL_HOP,
                         carry=MEL_N_FFT - MEL_HOP + rest, rest=rest)

    def _new_frames(self, seg: np.ndarray) -> np.ndarray:
        """The window's new frames (log-mel, or embedding vectors) from the carried tail plus one hop."""
        m = self._mel_parts
        if m is None:
            return self.frontend(seg[None])[0]  # hop / hop_length frames
        new = m.mel.run(None, {m.mel_input: seg[None, : seg.size - m.rest]})[0][0]  # hop / 160 mel frames
        self._mel = np.concatenate([self._mel, new])[-m.kept :]
        return m.emb.run(None, {m.emb_input: self._mel[None]})[0][0]  # hop / 1280 vectors

    @staticmethod
    def can_stream(fe, window: int, hop: int) -> bool:
        """True when frames of every window are frames of the stream (no centring, frame-aligned hops)."""
        return (not fe.center and window % fe.hop_length == 0 and hop % fe.hop_length == 0
                and window >= fe.n_fft)

    def reset(self) -> None:
        """A stream that begins with a window of zeros, as ``SlidingWindow`` does."""
        zeros = np.zeros((1, self.window), np.float32)
        self._frames = self.frontend(zeros)[0][-self.n_frames :].copy()  # (n_frames, n_mels)
        m = self._mel_parts
        self._tail = np.zeros(self.carry if m is None else m.carry, np.float32)
        if m is not None:
            self._mel = m.mel.run(None, {m.mel_input: zeros})[0][0][-m.kept :].copy()
        self._pending = np.zeros(0, np.float32)
        self.samples_seen = 0
        self._check = ChunkChecker()

    def push(self, chunk: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """Add samples (1-D or (samples, channels), see ``check_waveform``); return (logits (labels,),
        end position in samples) for each completed hop."""
        chunk = self._check(chunk)
        buf = np.concatenate([self._pending, chunk]) if self._pending.size else chunk
        out = []
        pos = 0
        while buf.size - pos >= self.hop:
            seg = np.concatenate([self._tail, buf[pos : pos + self.hop]])
            new = self._new_frames(seg)
            k = len(new)
            self._frames = np.concatenate([self._frames[k:], new]) if k < self.n_frames else new[-self.n_frames :]
            self._tail = seg[-self._tail.size :] if self._tail.size else seg[:0]
            pos += self.hop
            self.samples_seen += self.hop
            logits = run_session(self.session, [self.output_name], {self.input_name: self._frames[None]}, self.path)[0][0]
            if not np.isfinite(logits).all():
                # blame the graph that made the first non-finite values
                check_finite(new, self.frontend_path, "log-mel features")
                check_finite(logits, self.path, "scores")
            out.append((logits, self.samples_seen))
        self._pending = buf[pos:].copy()
        return out

    @property
    def samples_received(self) -> int:
        """Samples fed since the last reset, the ones of an unfinished hop included."""
        return self.samples_seen + self._pending.size


class KeywordSpotter:
    """Detect keywords in a stream fed in chunks of any size.

    Every ``hop_seconds`` the last ``window_samples`` of audio are scored, the
    posteriors are smoothed over ``smoothing`` decisions, and a label fires when
    its smoothed posterior reaches its threshold outside the refractory period.
    The same audio in any chunking gives the same detections.

    A model calibrated with ``hearkit calibrate`` carries its thresholds, hop, smoothing and
    refractory period in its metadata (``hearkit.detector``): they are the defaults here, so a
    device runs the operating point that was measured. Arguments given override them.

    Args:
        path: a classification model file or export directory.
        hop_seconds: time between decisions (Default: the model's calibrated hop, else 0.1, or the
            speech embedding's 0.08 for a model on it).
        thresholds: a float for every keyword, or {label: threshold} (others use ``default_threshold``)
            (Default: the model's calibrated thresholds, else ``default_threshold``).
        default_threshold: threshold of keywords not in a ``thresholds`` dict (Default: 0.6).
        smoothing: decisions averaged (Default: the model's calibrated value, else 3).
        refractory_seconds: quiet time after a detection (Default: the model's calibrated value, else 1.0
            or the model's window where that is longer: 2.0 on the speech embedding).
        record: keep (time, smoothed posteriors) of every decision in ``history`` (for plots).
        scorer: optional callable (batch, window_samples) -> logits replacing the ONNX session
            (the torch path, or tests); needs ``labels``, ``sample_rate`` and ``window_samples`` then.
        device: device profile name, path or ``DeviceProfile`` for the ONNX session
            (Default: None, CPU with 1 thread). Spinning stays off whatever the profile says.
        streaming: compute each log-mel frame once (:class:`StreamingScorer`) instead of the
            whole window at every hop (Default: None = when ``path`` is an export folder or
            bundle, or a pipeline file with its network and ``frontend.onnx`` beside it, and the
            front-end allows it; the scores are the same within float rounding).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        hop_seconds: float | None = None,
        thresholds: float | Mapping[str, float] | None = None,
        smoothing: int | None = None,
        refractory_seconds: float | None = None,
        record: bool = False,
        scorer: Callable[[np.ndarray], np.ndarray] | None = None,
        labels: list[str] | None = None,
        sample_rate: int | None = None,
        window_samples: int | None = None,
        default_threshold: float = DEFAULT_THRESHOLD,
        device=None,
        streaming: bool | None = None,
    ):
        # arguments first, against hearkit.limits (docs/design.md §13), before a model is opened
        hop_seconds = check_optional("hop_s", hop_seconds, "hop_seconds")
        smoothing = check_optional("smoothing", smoothing, "smoothing")
        refractory_seconds = check_optional("refractory_s", refractory_seconds, "refractory_seconds")
        default_threshold = check_threshold(default_threshold, "default_threshold")  # above 1, inf too: never fires
        thresholds = ({k: check_threshold(v, f"thresholds[{k!r}]") for k, v in thresholds.items()}
                      if isinstance(thresholds, Mapping) else None if thresholds is None else check_threshold(thresholds, "thresholds"))
        sample_rate = check_optional("sample_rate", sample_rate, "sample_rate")
        window_samples = check_optional("window_samples", window_samples, "window_samples")
        network = None if path is None or scorer is not None else network_beside(path)
        if streaming and (scorer is not None or path is None or not (Path(path).is_dir() or network)):
            raise ConfigError("streaming=True needs an export folder or bundle (its front-end and network graphs), "
                              "or a pipeline file with them beside it")
        onnx_scorer = None
        if scorer is None:
            if path is None:
                raise ConfigError("KeywordSpotter needs a model path (or a scorer with labels, sample_rate, window_samples)")
            # periodic small inferences: spinning threads would burn a core between hops (docs/design.md §6)
            onnx_scorer = OnnxScorer(path, spinning=False, device=device)
            scorer = onnx_scorer
            labels = list(onnx_scorer.info.labels)
            sample_rate = onnx_scorer.info.frontend.sample_rate
            window_samples = int(onnx_scorer.info.window_samples)
            calibrated = dict(onnx_scorer.info.detector)
        elif labels is None or sample_rate is None or window_samples is None:
            raise ConfigError("a custom scorer needs labels, sample_rate and window_samples")
        else:
            calibrated = {}
        self.calibrated = calibrated
        if hop_seconds is None:
            hop_seconds = calibrated.get("hop_seconds", default_hop_seconds(onnx_scorer.info.frontend, onnx_scorer.info.model)
                                         if onnx_scorer
                                         else DEFAULT_HOP_SECONDS)
        if smoothing is None:
            smoothing = calibrated.get("smoothing", DEFAULT_SMOOTHING)
        if refractory_seconds is None:
            # a phrase stays in view for a window: one detection per window (the speech embedding's 2 s
            # fired twice per real phrase at 1 s, docs/results.md)
            refractory_seconds = calibrated.get("refractory_seconds",
                                                max(DEFAULT_REFRACTORY, int(window_samples) / int(sample_rate)))
        if thresholds is None and calibrated.get("thresholds"):
            thresholds = calibrated["thresholds"]
        self.scorer = scorer
        self.labels = list(labels)
        self.sample_rate = int(sample_rate)
        self.window_samples = int(window_samples)
        hop = int(round(hop_seconds * self.sample_rate))
        if not 0 < hop <= self.window_samples:
            raise ConfigError(
                f"hop_seconds must be in (0, {self.window_samples / self.sample_rate:g}] s (the model's window), got {hop_seconds}"
            )
        self.hop_samples = hop
        if thresholds is None:
            th_map, default = {}, float(default_threshold)
        elif isinstance(thresholds, Mapping):
            th_map, default = dict(thresholds), float(default_threshold)
        else:
            th_map, default = {}, float(thresholds)
        self.logic = DetectionLogic(self.labels, th_map, default, int(smoothing), float(refractory_seconds))
        self.window = SlidingWindow(self.window_samples, hop)
        self.streamer: StreamingScorer | None = None
        if (streaming is not False and onnx_scorer is not None and (Path(path).is_dir() or network is not None)
                and StreamingScorer.can_stream(onnx_scorer.info.frontend, self.window_samples, hop)):
            self.streamer = StreamingScorer(path if network is None else network, self.window_samples, hop, device=device)
        self.record = record
        self.history: list[tuple[float, np.ndarray]] = []
        self._check = ChunkChecker()
        # named when the scores are not finite: the model file, or the custom scorer (the torch path)
        self._scorer_name = os.fspath(onnx_scorer.path) if onnx_scorer is not None else "the KeywordSpotter's scorer"

    @property
    def samples_seen(self) -> int:
        """Samples fed since the last reset."""
        return self.streamer.samples_received if self.streamer is not None else self.window.samples_seen

    def reset(self) -> None:
        """Forget all audio and detections; times restart at 0."""
        self.window.reset()
        if self.streamer is not None:
            self.streamer.reset()
        self.logic.reset()
        self.history = []
        self._check.reset()

    def accept_waveform(self, chunk: np.ndarray) -> list[Detection]:
        """Add samples at the model's rate (any length, 0 included); return new detections.

        ``chunk`` is 1-D or (samples, channels), as a sound card delivers it (channels are
        averaged), float in [-1, 1] or integer PCM (docs/design.md §14: slight overshoot is
        clipped with one warning per stream; NaN, infinite or far out-of-range samples and
        (channels, samples) arrays are refused). Scores that are not finite raise ``ModelError``.
        """
        chunk = self._check(chunk)
        found = []
        if self.streamer is not None:
            scored = ((logits, end) for logits, end in self.streamer.push(chunk))
        else:
            scored = ((self.scorer(win[None])[0], end) for win, end in self.window.push(chunk))
        for logits, end in scored:
            check_finite(logits, self._scorer_name, "scores")
            probs = softmax(logits)
            t = end / self.sample_rate
            smoothed, det = self.logic.update(probs, t)
            if self.record:
                self.history.append((t, smoothed))
            if det is not None:
                found.append(det)
        return found


    def flush(self) -> list[Detection]:
        """End of stream: feed half a window of silence so a keyword in the last moments is scored centred.

        Detections it adds carry at most the stream's real end as their time (the
        padding is not audio). Call ``reset()`` before feeding a new stream.
        """
        end = self.samples_seen / self.sample_rate
        found = self.accept_waveform(np.zeros(self.window_samples // 2, np.float32))
        return [dataclasses.replace(d, time=min(d.time, end)) for d in found]
