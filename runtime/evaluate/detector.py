"""Judge a keyword model as a detector: misses at a fixed rate of false alarms per hour.

This is the number users of a wake-word engine compare (docs/design.md §10), measured in
streaming mode exactly as a device runs the model: a :class:`~hearkit.classify.KeywordSpotter`
is fed one long stream of positives (each real utterance of a phrase placed between gaps
of silence or noise) and one long stream of negatives (speech and sounds back to back).

- A **hit** is a detection of the right label between the keyword's start and
  ``HIT_AFTER_END_S`` after its end; the first one per utterance counts.
- Every other detection is a **false alarm**: outside any utterance, of the wrong label,
  or a second detection of one utterance. False alarms per hour count both streams.
- The spotter is run once per stream with its scores recorded; detections at every
  threshold are then recomputed from the recorded smoothed scores with the spotter's own
  rules (re-arm below the threshold, refractory period), one label at a time, which gives
  the DET curve (false-reject rate against false alarms per hour) per phrase.
- Few negative hours make the low end of the curve coarse (one false alarm in 1 h is
  1 FA/h), so every operating point carries a 95 % interval: Wilson's for the false-reject
  rate, the exact Poisson (Garwood) interval for false alarms per hour.

Torch-free. Memory is bounded by the recorded scores (a few MB per hour of audio), never
by the audio: streams are generated clip by clip.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hearkit.audio import iter_blocks, load_audio, snr_gain
from hearkit.errors import ConfigError
from hearkit.plots import save_figure

HIT_AFTER_END_S = 0.5            # a detection up to this long after the utterance's end is a hit
FA_TARGETS = (0.5, 1.0, 2.0)     # false alarms per hour at which the false-reject rate is reported
GAP_SECONDS = (1.5, 2.5)         # silence or noise between two positives (uniform), longer than a hit window
EXTENT_DB = 35.0                 # an utterance spans the 10-ms frames within this many dB of its loudest
OVER_FLOOR_DB = 10.0             # ... and, where a clip has a noise floor of its own, this many dB above it
N_THRESHOLDS = 400               # thresholds swept (quantiles of the recorded scores, plus 0 and 1)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
BACKGROUND_FOLDERS = ("_silence_", "_background_noise_")
Z95 = 1.959963984540054          # two-sided 95 % normal quantile


@dataclass(frozen=True)
class Utterance:
    """One positive placed in the positive stream: label, and start/end in seconds of the stream."""

    label: str
    start: float
    end: float
    source: str


@dataclass
class StreamScores:
    """The recorded decisions of one streamed run.

    Attributes:
        times: (n,) decision times in seconds.
        scores: (n, n_labels) smoothed posteriors at those times.
        seconds: length of the stream.
        utterances: positives placed in it (empty for negatives).
        left_out: negatives left out because their transcript holds a phrase, by phrase.
        blocks: audio blocks streamed (a short file is one; a long one is read in parts).
    """

    times: np.ndarray
    scores: np.ndarray
    seconds: float
    utterances: list[Utterance] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    blocks: int = 0


# -- data ---------------------------------------------------------------------------------
def words(text: str) -> list[str]:
    """Lower-case word list of a phrase or label (``_`` and ``-`` separate words)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("_", " ").replace("-", " "))


def contains_phrase(text: str, phrase: str) -> bool:
    """True when the words of ``phrase`` occur consecutively in ``text``."""
    t, p = words(text), words(phrase)
    return bool(p) and any(t[i : i + len(p)] == p for i in range(len(t) - len(p) + 1))


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith("."))


def transcribed_files(source: str | os.PathLike) -> list[tuple[Path, str | None]]:
    """(audio file, transcript or None) for every file of a folder or JSONL manifest.

    A manifest (or a folder holding ``manifest.jsonl``) gives each line's ``text``. In a
    folder, a clip's transcript is the name of its label folder (``yes/0a7c2a8d_nohash_0.flac``
    says "yes"); clips of a Speech Commands ``_unknown_`` folder say the word their name starts
    with; background folders (``_silence_``, ``_background_noise_``) and loose files say nothing.
    """
    src = Path(source)
    manifest = src / "manifest.jsonl" if src.is_dir() else src
    if manifest.is_file():
        from hearkit.manifest import read_manifest

        return [(Path(u.audio), u.text) for u in read_manifest(manifest)]
    if not src.is_dir():
        raise ConfigError(f"{src}: no such folder or manifest")
    out = []
    for p in audio_files(src):
        rel = p.relative_to(src).parts
        folder = rel[-2] if len(rel) > 1 else None
        if folder is None or folder in BACKGROUND_FOLDERS:
            text = None
        elif folder == "_unknown_":
            text = p.stem.split("_")[0]
        else:
            text = folder
        out.append((p, text))
    return out


def positive_files(sources: Sequence[str | os.PathLike], labels: Sequence[str]) -> dict[str, list[Path]]:
    """The recordings of each keyword label in ``sources``: files whose transcript is the label's phrase."""
    want = {lab: words(lab) for lab in labels if not (lab.startswith("_") and lab.endswith("_"))}
    found: dict[str, list[Path]] = {lab: [] for lab in want}
    for src in sources:
        for path, text in transcribed_files(src):
            if text is None:
                continue
            w = words(text)
            for lab, lw in want.items():
                if w == lw:
                    found[lab].append(path)
    if not any(found.values()):
        raise ConfigError(
            f"--positives {', '.join(map(str, sources))}: no recording of any of the model's phrases {list(want)} "
            "(a folder per phrase, or a manifest whose text is the phrase)"
        )
    return found


@contextlib.contextmanager
def cpu_timed(owner, attr: str = "cpu_seconds") -> Iterator[None]:
    """Add the process CPU seconds the block takes to ``owner.<attr>`` (set with ``object.__setattr__``,
    so a wrapper that forwards its attributes keeps the count itself): the peers' figures of CPU per hour."""
    t = time.process_time()
    try:
        yield
    finally:
        object.__setattr__(owner, attr, getattr(owner, attr) + time.process_time() - t)


def negative_files(sources: Sequence[str | os.PathLike], phrases: Sequence[str]) -> tuple[list[Path], dict[str, int]]:
    """Negative files of ``sources``, without those whose transcript contains a phrase; and the count left out per phrase."""
    keep, left = [], {p: 0 for p in phrases}
    for src in sources:
        for path, text in transcribed_files(src):
            hit = [p for p in phrases if text is not None and contains_phrase(text, p)]
            for p in hit:
                left[p] += 1
            if not hit:
                keep.append(path)
    if not keep:
        raise ConfigError(f"--negatives {', '.join(map(str, sources))}: no audio files left to stream")
    return keep, left


def utterance_extent(x: np.ndarray, sample_rate: int, above_floor_db: float | None = None) -> tuple[int, int]:
    """(first, last + 1) sample of the 10-ms frames within ``EXTENT_DB`` of the clip's loudest frame.

    With ``above_floor_db``, frames must also be that many dB above the clip's noise floor (its
    10th-percentile frame, capped 6 dB under the loudest): a quiet voice over a steady floor less
    than ``EXTENT_DB`` below it then spans the voice, not the whole clip.
    """
    hop = max(1, sample_rate // 100)
    n = len(x) // hop
    if n < 2:
        return 0, len(x)
    e = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    level = e.max() - EXTENT_DB
    if above_floor_db is not None:
        level = max(level, min(float(np.percentile(e, 10)) + above_floor_db, e.max() - 6.0))
    on = np.nonzero(e > level)[0]
    return int(on[0] * hop), int(min(len(x), (on[-1] + 1) * hop))


class _Noise:
    """Background noise drawn from files, scaled to a target SNR against each utterance."""

    def __init__(self, files: Sequence[Path], sample_rate: int, rng: np.random.Generator):
        self.files, self.sr, self.rng = list(files), sample_rate, rng
        self._buf = np.zeros(0, np.float32)

    def take(self, n: int) -> np.ndarray:
        parts, have = [self._buf], self._buf.size
        while have < n:
            x = load_audio(self.files[int(self.rng.integers(len(self.files)))], self.sr)[0]
            if np.sqrt(np.mean(x.astype(np.float64) ** 2)) < 1e-5:
                continue  # digital silence cannot be scaled to an SNR
            parts.append(x)
            have += x.size
        buf = np.concatenate(parts)
        self._buf = buf[n:]
        return buf[:n]


def positive_stream(
    files: dict[str, list[Path]],
    sample_rate: int,
    noise_files: Sequence[Path] = (),
    snr_db: float | None = None,
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, Utterance | None]]:
    """Yield (audio block, utterance placed in it or None): every positive between gaps.

    Positives come in a seeded random order, each after a gap drawn from ``GAP_SECONDS``.
    With noise files, the whole stream carries noise, scaled so that each utterance's
    power over its extent is ``snr_db`` above the noise's; otherwise the gaps are silent.
    """
    if noise_files and snr_db is None:
        raise ConfigError("--noise needs --snr")
    rng = np.random.default_rng(seed)
    order = [(lab, p) for lab, ps in sorted(files.items()) for p in ps]
    order = [order[i] for i in rng.permutation(len(order))]
    noise = _Noise(noise_files, sample_rate, rng) if noise_files else None
    pos = 0
    for lab, path in order:
        x = load_audio(path, sample_rate)[0]
        a, b = utterance_extent(x, sample_rate)
        gap = int(rng.uniform(*GAP_SECONDS) * sample_rate)
        block = np.zeros(gap + x.size, np.float32)
        block[gap:] = x
        if noise is not None:
            n = noise.take(block.size).astype(np.float64)
            p_speech = np.mean(x[a:b].astype(np.float64) ** 2)
            p_noise = max(np.mean(n**2), 1e-20)
            block = block + (n * snr_gain(p_speech, p_noise, snr_db)).astype(np.float32)
            block = np.clip(block, -1.0, 1.0)
        start = (pos + gap + a) / sample_rate
        end = (pos + gap + b) / sample_rate
        yield block, Utterance(lab, start, end, str(path))
        pos += block.size
    yield np.zeros(int(GAP_SECONDS[1] * sample_rate), np.float32), None  # let the last utterance's window pass


def negative_stream(files: Sequence[Path], sample_rate: int) -> Iterator[np.ndarray]:
    """Yield the files' audio back to back in blocks of at most ``BLOCK_SECONDS`` (a 2-hour file is not held whole)."""
    for p in files:
        yield from iter_blocks(p, sample_rate)


def stream_blocks(blocks: Iterable, utterances: list[Utterance]) -> Iterator[np.ndarray]:
    """The audio blocks of a stream (blocks, or (block, utterance) pairs as ``positive_stream`` yields);
    the utterances placed in it are appended to ``utterances`` as they pass."""
    for item in blocks:
        block, utt = item if isinstance(item, tuple) else (item, None)
        if utt is not None:
            utterances.append(utt)
        yield block


def feed_stream(spotter, blocks: Iterable, sample_rate: int) -> tuple[list[Utterance], int, float]:
    """Reset a spotter (hearkit's or a peer's) and feed it a stream (blocks, or (block, utterance) pairs as
    ``positive_stream`` yields); returns (the utterances placed in it, its blocks, its seconds)."""
    spotter.reset()
    utts: list[Utterance] = []
    n_blocks = 0
    for block in stream_blocks(blocks, utts):
        spotter.accept_waveform(block)
        n_blocks += 1
    return utts, n_blocks, spotter.samples_seen / sample_rate


def record_stream(spotter, blocks: Iterable) -> StreamScores:
    """Feed a spotter a stream (blocks, or (block, utterance) pairs); return its recorded smoothed scores."""
    spotter.record = True  # reset() keeps it
    utts, n_blocks, seconds = feed_stream(spotter, blocks, spotter.sample_rate)
    spotter.flush()
    hist = spotter.history
    times = np.array([t for t, _ in hist], np.float64)
    scores = np.stack([s for _, s in hist]) if hist else np.zeros((0, len(spotter.labels)))
    return StreamScores(times, scores, seconds, utts, blocks=n_blocks)


# -- detections at a threshold -------------------------------------------------------------
def detections(times: np.ndarray, score: np.ndarray, threshold: float, refractory: float) -> np.ndarray:
    """Decision times at which one label fires at ``threshold``: the spotter's rules on recorded scores.

    A label fires at a decision whose smoothed score reaches the threshold when it is armed
    and at least ``refractory`` s have passed since its last detection; it is disarmed by a
    detection and re-armed by any decision below the threshold. That equals
    :class:`~hearkit.classify.DetectionLogic` with this label alone thresholded.
    """
    above = score >= threshold
    if not above.any():
        return np.zeros(0)
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]  # runs [start, end)
    out, last = [], -np.inf
    for a, b in zip(starts, ends):
        # armed from the run's start (a decision below came before it, or the stream began)
        i = a + int(np.searchsorted(times[a:b], last + refractory - 1e-9))
        if i < b:
            out.append(times[i])
            last = times[i]
    return np.array(out)


def match(det_times: np.ndarray, utts: Sequence[Utterance], after: float = HIT_AFTER_END_S) -> tuple[int, int]:
    """(hits, false alarms) of one label's detections against that label's utterances."""
    if not len(det_times):
        return 0, 0
    if not utts:
        return 0, len(det_times)
    starts = np.array([u.start for u in utts])
    ends = np.array([u.end for u in utts]) + after
    j = np.searchsorted(starts, det_times, side="right") - 1   # last utterance starting at or before
    inside = (j >= 0) & (det_times <= ends[np.maximum(j, 0)])
    hit_utts = np.unique(j[inside])
    hits = len(hit_utts)
    return hits, len(det_times) - hits


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def poisson_interval(k: int) -> tuple[float, float]:
    """Exact (Garwood) 95 % interval of a Poisson count k, by bisection on the tail sums (no scipy)."""

    def cdf(k_, mu):  # P(X <= k_)
        term = total = math.exp(-mu)
        for i in range(1, k_ + 1):
            term *= mu / i
            total += term
        return total

    def solve(f, lo, hi):
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) > 0 else (lo, mid)
        return (lo + hi) / 2

    upper = solve(lambda mu: cdf(k, mu) - 0.025, 0.0, 10.0 * k + 20.0)
    lower = 0.0 if k == 0 else solve(lambda mu: 0.025 - (1 - cdf(k - 1, mu)), 0.0, 10.0 * k + 20.0)
    return lower, upper


# -- the curve --------------------------------------------------------------------------
def det_curve(pos: StreamScores, neg: StreamScores, label: int, name: str, refractory: float,
              n_thresholds: int = N_THRESHOLDS) -> dict:
    """False-reject rate and false alarms per hour of one label at every swept threshold."""
    utts = [u for u in pos.utterances if u.label == name]
    s_all = np.concatenate([pos.scores[:, label], neg.scores[:, label]])
    th = np.unique(np.concatenate([[0.0, 1.0], np.quantile(s_all, np.linspace(0, 1, n_thresholds))]))

    def at(t):  # (hits, false alarms in the positive stream, in the negative stream)
        hits, fa_pos = match(detections(pos.times, pos.scores[:, label], t, refractory), utts)
        return hits, fa_pos, len(detections(neg.times, neg.scores[:, label], t, refractory))

    return build_curve(name, utts, pos.seconds + neg.seconds, th.tolist(), at)


def build_curve(name: str, utts: Sequence[Utterance], seconds: float, thresholds: Sequence[float],
                at: Callable[[float], tuple[int, int, int]]) -> dict:
    """A DET curve: ``at(threshold)`` gives (hits, positive-stream false alarms, negative-stream false alarms)."""
    hours = seconds / 3600
    frr, fah, fas = [], [], []
    for t in thresholds:
        hits, fa_pos, fa_neg = at(t)
        frr.append(1 - hits / max(1, len(utts)))
        fas.append(fa_pos + fa_neg)
        fah.append((fa_pos + fa_neg) / hours)
    return {"label": name, "utterances": len(utts), "hours": hours, "thresholds": list(thresholds),
            "frr": frr, "false_alarms": fas, "fa_per_hour": fah}


def envelope(curve: dict) -> tuple[np.ndarray, np.ndarray]:
    """(false alarms per hour, best false-reject rate at or under it): the DET curve as drawn.

    Neither rate is monotone in the threshold: a low threshold keeps the score above it
    across several utterances, so the label re-arms less often and fires (and hits) less.
    """
    fah = np.asarray(curve["fa_per_hour"])
    frr = np.asarray(curve["frr"])
    order = np.lexsort((frr, fah))
    return fah[order], np.minimum.accumulate(frr[order])


def operating_point(curve: dict, fa_per_hour: float) -> dict:
    """The threshold with the fewest misses among those at or under ``fa_per_hour``, with intervals.

    Ties go to the fewer false alarms, then to the higher threshold. With no threshold at or
    under the target, the one with the fewest false alarms is reported and ``reached`` is False.
    """
    fah = np.asarray(curve["fa_per_hour"])
    frr = np.asarray(curve["frr"])
    th = np.asarray(curve["thresholds"])
    ok = np.nonzero(fah <= fa_per_hour + 1e-12)[0]
    cand = ok if len(ok) else np.nonzero(fah == fah.min())[0]
    i = int(cand[np.lexsort((-th[cand], fah[cand], frr[cand]))[0]])
    n = curve["utterances"]
    misses = int(round(curve["frr"][i] * n))
    fa = int(curve["false_alarms"][i])
    lo, hi = wilson(misses, n)
    flo, fhi = poisson_interval(fa)
    return {"target_fa_per_hour": fa_per_hour, "threshold": float(curve["thresholds"][i]), "frr": curve["frr"][i],
            "frr_ci95": [lo, hi], "misses": misses, "utterances": n, "false_alarms": fa,
            "fa_per_hour": float(fah[i]), "fa_per_hour_ci95": [flo / curve["hours"], fhi / curve["hours"]],
            "reached": bool(len(ok))}


@dataclass(frozen=True)
class Streams:
    """What a detector evaluation streams and where it reads the curve: the same for hearkit and its peers.

    Attributes:
        positives: folders or manifests holding real recordings of the model's phrases.
        negatives: folders or manifests streamed back to back; files whose transcript
            contains a phrase are left out and counted.
        noise: folders of noise mixed into the positive stream at ``snr_db`` (Default: none, silent gaps).
        snr_db: speech-to-noise ratio in dB of each positive (Default: None; needed with ``noise``).
        targets: false alarms per hour at which the false-reject rate is reported (Default: 0.5, 1, 2).
        seed: order of the positives, gaps and noise; the same seed gives the same streams (Default: 0).
    """

    positives: Sequence[str | os.PathLike]
    negatives: Sequence[str | os.PathLike]
    noise: Sequence[str | os.PathLike] = ()
    snr_db: float | None = None
    targets: Sequence[float] = FA_TARGETS
    seed: int = 0

    def sources(self, labels: Sequence[str]) -> "StreamSources":
        """The files of an evaluation of a model over ``labels`` (background labels are no phrase)."""
        phrases = [lab for lab in labels if not (lab.startswith("_") and lab.endswith("_"))]
        neg_files, left_out = negative_files(self.negatives, phrases)
        noise_files = [p for d in self.noise for p in audio_files(Path(d))]
        if self.noise and not noise_files:
            raise ConfigError(f"--noise {', '.join(map(str, self.noise))}: no audio files")
        return StreamSources(phrases, positive_files(self.positives, phrases), neg_files, left_out, noise_files)

    def positive_stream(self, src: "StreamSources", sample_rate: int) -> Iterator:
        """``positive_stream`` of these sources, noise and seed."""
        return positive_stream(src.positive, sample_rate, src.noise, self.snr_db, self.seed)

    def report(self, curves: Sequence[dict], src: "StreamSources", positive_seconds: float, negative_seconds: float,
               **settings) -> dict:
        """The report of ``evaluate_detector`` from its curves: operating points per phrase, the mean, the streams."""
        out: dict = {"phrases": {}, "negative_hours": negative_seconds / 3600, "positive_hours": positive_seconds / 3600,
                     "negative_files": len(src.negative), "left_out": src.left_out,
                     "snr_db": self.snr_db if src.noise else None, **settings, "hit_after_end_seconds": HIT_AFTER_END_S}
        for curve in curves:
            out["phrases"][curve["label"]] = {"curve": curve, "points": [operating_point(curve, t) for t in self.targets]}
        out["mean_frr"] = {str(t): float(np.mean([p["points"][i]["frr"] for p in out["phrases"].values()]))
                           for i, t in enumerate(self.targets)}
        return out


@dataclass
class StreamSources:
    """The files ``Streams.sources`` found: phrases, positives by phrase, negatives, left-out counts, noise."""

    phrases: list[str]
    positive: dict
    negative: list
    left_out: dict
    noise: list


def evaluate_detector(spotter, streams: Streams, log: Callable[[str], None] = lambda m: None) -> dict:
    """Stream positives and negatives through ``spotter``; return the DET curves and operating points.

    Args:
        spotter: a :class:`~hearkit.classify.KeywordSpotter` (its hop, smoothing and refractory
            period are the ones judged; its thresholds are swept).
        streams: what to stream and the false-alarm rates to report (``Streams``).
        log: progress callable (Default: silent).

    Returns:
        ``{"phrases": {label: {"curve": ..., "points": [...]}}, "mean_frr": {target: ...}, ...}``.
    """
    labels = list(spotter.labels)
    src = streams.sources(labels)
    sr = spotter.sample_rate
    log(f"eval: {sum(map(len, src.positive.values()))} positives ({', '.join(f'{k} {len(v)}' for k, v in src.positive.items())}), "
        f"{len(src.negative)} negative files ({sum(src.left_out.values())} left out: transcript holds a phrase)")
    pos = record_stream(spotter, streams.positive_stream(src, sr))
    log(f"eval: positive stream {pos.seconds / 60:.1f} min scored")
    neg = record_stream(spotter, negative_stream(src.negative, sr))
    neg.left_out = src.left_out
    log(f"eval: negative stream {neg.seconds / 3600:.2f} h scored")
    refractory = spotter.logic.refractory_seconds
    curves = [det_curve(pos, neg, labels.index(name), name, refractory) for name in src.phrases if src.positive.get(name)]
    return streams.report(curves, src, pos.seconds, neg.seconds, hop_seconds=spotter.hop_samples / sr,
                          smoothing=spotter.logic.smoothing, refractory_seconds=refractory)


def duration_text(hours: float) -> str:
    """A stream's length as people read it: minutes under an hour ("7.8 min"), hours above ("2.30 h")."""
    return f"{hours * 60:.1f} min" if hours < 1 else f"{hours:.2f} h"


def streamed_text(report: dict) -> str:
    """What false alarms per hour are counted over, the same words in the DET plot, the summary and the demo:
    "7.8 min streamed (5.1 min of negatives + 2.7 min of positives)"."""
    neg, pos = report["negative_hours"], report["positive_hours"]
    return f"{duration_text(neg + pos)} streamed ({duration_text(neg)} of negatives + {duration_text(pos)} of positives)"


def det_axes(ax, report: dict, title: str, legend_size: int = 8) -> None:
    """A DET plot's axes: log FA/h over what was streamed, the target guide lines, misses in %, legend, title."""
    ax.set_xscale("log")
    draw_fa_targets(ax)
    ax.set_xlabel(f"false alarms per hour (FA/h), over {streamed_text(report)}", fontsize=8)
    ax.set_ylabel("false-reject rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=legend_size)
    ax.set_title(title, fontsize=9)


def draw_fa_targets(ax, targets: Sequence[float] = FA_TARGETS) -> None:
    """The 0.5 / 1 / 2 false-alarms-per-hour guide lines of a DET plot, each labelled at the top."""
    for t in targets:
        ax.axvline(t, color="0.55", lw=0.8, ls=":")
        ax.text(t, 0.99, f" {t:g} FA/h", transform=ax.get_xaxis_transform(), rotation=90, ha="right", va="top",
                fontsize=7, color="0.35")


def summary_lines(report: dict) -> list[str]:
    """One line per phrase and target, plus the mean, for a terminal."""
    lines = [f"{streamed_text(report)}; {report['negative_files']} negative files "
             f"({sum(report['left_out'].values())} left out), positives at "
             + (f"{report['snr_db']:g} dB SNR" if report["snr_db"] is not None else "no noise")]
    for name, ph in report["phrases"].items():
        for p in ph["points"]:
            lo, hi = p["frr_ci95"]
            flo, fhi = p["fa_per_hour_ci95"]
            lines.append(f"{name:<14} FRR {100 * p['frr']:5.1f} % [{100 * lo:.1f}-{100 * hi:.1f}] at "
                         f"{p['fa_per_hour']:.2f} FA/h [{flo:.2f}-{fhi:.2f}] (target {p['target_fa_per_hour']:g}, "
                         f"threshold {p['threshold']:.3f}, {p['misses']}/{p['utterances']} missed)")
    lines.append("mean FRR " + ", ".join(f"{100 * v:.1f} % at {k} FA/h" for k, v in report["mean_frr"].items()))
    return lines


def plot_det(report: dict, path: str | os.PathLike, title: str = "") -> Path:
    """DET curves (false-reject rate against false alarms per hour, one line per phrase) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, ph in report["phrases"].items():
        c = ph["curve"]
        fah, frr = envelope(c)
        # the zero-false-alarm end drawn at half the smallest measurable rate (log axis)
        floor = 0.5 / c["hours"]
        ax.step(np.maximum(fah, floor), 100 * frr, where="post", label=f"{name} ({c['utterances']} utterances)")
    det_axes(ax, report, title or "DET: misses against false alarms per hour", legend_size=8)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=120)  # atomic: a full disk leaves no half PNG
    return path
