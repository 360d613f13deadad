"""PocketSphinx keyphrase spotting as a peer detector, judged on hearkit's streams and rules.

The wake-word engines people compare report misses at a fixed rate of false alarms per
hour (docs/design.md §10); PocketSphinx is the open peer that every such table carries.
This module runs its keyphrase search (the ``pocketsphinx`` package ships an English
acoustic model and CMUdict, so nothing is downloaded) on exactly the streams
:mod:`hearkit.evaluate.detector` builds for a hearkit model, and scores its detections with
the same rules (:func:`~hearkit.evaluate.detector.match`: a hit is the first detection between
an utterance's start and 0.5 s after its end; everything else is a false alarm).

**One decode, then a score sweep.** PocketSphinx's knob is ``kws_threshold`` (a likelihood
ratio, swept as 1e-X in Picovoice's benchmark); a full decode per threshold costs ~100 CPU s
per hour of audio. Its keyphrase search never resets on a detection: every 10-ms frame the
phrase's score against the phone loop is compared with the threshold, and a passing frame
is merged into an overlapping detection of the same phrase (the best-scoring one is kept).
The search state does not depend on the threshold (only which frames enter the merge does),
so a stricter decode keeps the permissive decode's detections whose score passes it: checked,
not assumed, below. Here the stream is decoded
once at ``PERMISSIVE_THRESHOLD``, each detection keeps its score, and the DET curve is swept
over the scores. Checked on real data (180 Speech Commands and FSDD positives at 10 dB SNR
and 12 min of held-out negatives, ~6900 detections at 1e-40): decodes at 1e-30, 1e-20,
1e-10, 1e-5 and 1e-2 gave exactly the cut detections (phrase, frames, score);
``tests/test_evaluate_pocketsphinx.py`` repeats the check on synthetic speech. Picovoice's loop
instead restarts the utterance after every detection, which makes each threshold a decode of
its own; on the same data, at 1e0..1e20 (where 0.5-2 FA/h lie) it hit within 2 of the 60
utterances per phrase and fired within 3 false alarms of the continuous decode (at 1e-20 it
fired ~25 % less: a restart cuts a long spurious match short).

**Times.** A detection's time is when PocketSphinx's hypothesis shows it while audio streams
in: its last frame plus ``kws_delay`` frames plus the feature look-ahead
(``REPORT_LAG_FRAMES``), the counterpart of the decision time a
:class:`~hearkit.classify.KeywordSpotter` reports.

Torch-free; ``pocketsphinx`` is the optional extra ``hearkit[peer]``, imported inside the
functions that run it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hearkit.evaluate.detector import (
    Streams,
    Utterance,
    build_curve,
    cpu_timed,
    det_axes,
    envelope,
    feed_stream,
    match,
    negative_stream,
    words,
)
from hearkit.errors import ConfigError, require
from hearkit.plots import save_figure

SAMPLE_RATE = 16000            # the shipped en-us acoustic model's rate
PERMISSIVE_THRESHOLD = 1e-40   # kws_threshold of the one decode; every stricter one is recovered from scores.
                               # Its curve already runs to thousands of FA/h (~20 000 detections per hour of
                               # speech, a list pocketsphinx scans every frame): lower costs CPU for nothing
KWS_MAX = 1500                 # pocketsphinx (kws_search.c) subtracts this from a detection's score: prob < 0
SENSCR_SHIFT = 10              # senone scores are log(base) values shifted right by this many bits
REPORT_LAG_FRAMES = 6          # frames after the kws_delay until hyp() shows a detection: the 25.6-ms
                               # analysis window and the ±3-frame delta-delta context (measured by
                               # polling hyp() every 10 ms)
FLUSH_SECONDS = 0.5            # silence fed after a stream so detections of its last moments come out
CHUNK_SAMPLES = 1600           # audio per process_raw call (0.1 s, as a microphone delivers it): PocketSphinx's
                               # live CMN moves once per call, so its detections depend on the chunking; a
                               # fixed chunk makes them independent of how a stream is cut into blocks
THRESHOLD_UNIT = "log10 kws_threshold"


@dataclass(frozen=True)
class KeyphraseDetection:
    """One PocketSphinx detection.

    Attributes:
        label: the phrase's label (as the hearkit model names it, e.g. ``hey_computer``).
        time: seconds into the stream at which the detection is reported.
        score: integer score in PocketSphinx's threshold units: it survives any
            ``kws_threshold`` t with ``threshold_score(t) <= score``.
        start, end: first and last 10-ms frame of the matched phrase.
    """

    label: str
    time: float
    score: int
    start: int
    end: int


@dataclass
class PeerStream:
    """Detections of one streamed run (the counterpart of ``hearkit.evaluate.detector.StreamScores``)."""

    detections: list[KeyphraseDetection]
    seconds: float
    utterances: list[Utterance] = field(default_factory=list)
    files: int = 0
    cpu_seconds: float = 0.0


# -- thresholds -------------------------------------------------------------------------------
def threshold_score(kws_threshold: float, logbase: float = 1.0001) -> int:
    """The integer a detection's score must reach to pass ``kws_threshold`` (PocketSphinx's own conversion).

    ``logmath_log`` truncates toward zero, then the senone-score shift floors.
    """
    if not (kws_threshold > 0 and math.isfinite(kws_threshold)):
        raise ConfigError(f"kws_threshold must be a positive number (1e-40 .. 1), got {kws_threshold}")
    return int(math.log(kws_threshold) / math.log(logbase)) >> SENSCR_SHIFT


def score_log10_threshold(score: int, logbase: float = 1.0001) -> float:
    """log10 of a ``kws_threshold`` that keeps exactly the detections scoring ``score`` or more.

    It lies half a log unit inside the strictest such threshold, so float rounding of
    ``10 ** x`` cannot move it across: ``threshold_score(10 ** score_log10_threshold(s)) == s``.
    """
    return (((score + 1) << SENSCR_SHIFT) - 1.5) * math.log10(logbase)


# -- the engine -------------------------------------------------------------------------------
class KeyphraseSpotter:
    """PocketSphinx keyphrase search over a stream fed in blocks of any size.

    Args:
        phrases: {label: phrase} or a list of labels; a label's words (``_`` and ``-`` separate
            them) are the phrase PocketSphinx spots. Every word must be in CMUdict.
        kws_threshold: the decode's threshold, the same for every phrase (Default: ``PERMISSIVE_THRESHOLD``).

    Raises:
        MissingDependencyError: ``pocketsphinx`` is not installed (``pip install "hearkit[peer]"``).
        ConfigError: a phrase holds a word the dictionary lacks.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, phrases: Sequence[str] | dict[str, str], kws_threshold: float = PERMISSIVE_THRESHOLD):
        ps = require("pocketsphinx", "peer")
        if not isinstance(phrases, dict):
            phrases = {lab: " ".join(words(lab)) for lab in phrases}
        if not phrases or not all(phrases.values()):
            raise ConfigError(f"PocketSphinx needs at least one phrase with words, got {phrases}")
        self.phrases = dict(phrases)
        self._label = {p: lab for lab, p in self.phrases.items()}
        self.kws_threshold = float(kws_threshold)
        threshold_score(self.kws_threshold)  # validates
        self._decoder_class = ps.Decoder
        self.decoder = self._new_decoder()
        missing = sorted({w for p in self.phrases.values() for w in p.split() if self.decoder.lookup_word(w) is None})
        if missing:
            raise ConfigError(f"PocketSphinx's dictionary (CMUdict) has no pronunciation of {missing}; "
                              f"phrases: {list(self.phrases.values())}")
        cfg = self.decoder.config
        self.frate = int(cfg["frate"])
        self.kws_delay = int(cfg["kws_delay"])
        self.logbase = float(cfg["logbase"])
        self._fresh = True
        self.reset()

    def _new_decoder(self):
        with tempfile.TemporaryDirectory() as d:
            # one threshold per line ("phrase /1e-40/"): the multi-phrase form kws_search reads
            path = Path(d) / "keyphrases.txt"
            path.write_text("".join(f"{p} /{self.kws_threshold!r}/\n" for p in self.phrases.values()))
            return self._decoder_class(kws=str(path), samprate=SAMPLE_RATE, loglevel="ERROR")

    def reset(self) -> None:
        """Forget the stream: times restart at 0, CPU time at 0, and a fresh decoder starts.

        A fresh decoder (~0.1 s, untimed), because PocketSphinx carries its live cepstral mean
        and noise estimates from one utterance to the next: a reused one would decode a
        stream differently depending on what came before.
        """
        if not self._fresh:
            self.decoder = self._new_decoder()
        self._fresh = False
        self.decoder.start_utt()
        self.samples_seen = 0
        self.cpu_seconds = 0.0
        self._pending = np.zeros(0, np.int16)

    def accept_waveform(self, chunk: np.ndarray) -> None:
        """Add float32 samples in [-1, 1] at 16 kHz (or int16 PCM), any length.

        They reach PocketSphinx in ``CHUNK_SAMPLES`` pieces, so the same audio in any
        chunking gives the same detections. Only ``process_raw`` is timed.
        """
        x = np.asarray(chunk)
        if x.dtype != np.int16:
            x = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
        self.samples_seen += x.size
        buf = np.concatenate([self._pending, x.ravel()]) if self._pending.size else x.ravel()
        n = buf.size - buf.size % CHUNK_SAMPLES
        self._process(buf[:n])
        self._pending = buf[n:].copy()

    def _process(self, pcm: np.ndarray) -> None:
        with cpu_timed(self):
            for i in range(0, pcm.size, CHUNK_SAMPLES):
                self.decoder.process_raw(pcm[i : i + CHUNK_SAMPLES].tobytes(), False, False)

    def finish(self) -> list[KeyphraseDetection]:
        """End of stream: flush, end the utterance and return every detection in creation order.

        Times are capped at the stream's real end (the flush is not audio). Call ``reset()``
        before feeding a new stream.
        """
        end = self.samples_seen / SAMPLE_RATE
        self._process(np.concatenate([self._pending, np.zeros(int(FLUSH_SECONDS * SAMPLE_RATE), np.int16)]))
        self._pending = np.zeros(0, np.int16)
        out = []
        with cpu_timed(self):
            self.decoder.end_utt()
            for seg in self.decoder.seg() or ():  # None when nothing was detected
                # seg.prob is logbase ** (score - KWS_MAX); its log is an integer to within float rounding
                score = round(math.log(seg.prob) / math.log(self.logbase)) + KWS_MAX
                t_rep = (seg.end_frame + self.kws_delay + REPORT_LAG_FRAMES) / self.frate
                out.append(KeyphraseDetection(self._label[seg.word.strip()], min(t_rep, end), int(score),
                                              int(seg.start_frame), int(seg.end_frame)))
        return out


def spot_stream(spotter: KeyphraseSpotter, blocks: Iterable) -> PeerStream:
    """Feed a stream (blocks, or (block, utterance) pairs as ``positive_stream`` yields) through PocketSphinx."""
    utts, n, seconds = feed_stream(spotter, blocks, SAMPLE_RATE)
    dets = spotter.finish()
    return PeerStream(dets, seconds, utts, files=n, cpu_seconds=spotter.cpu_seconds)


# -- scoring ----------------------------------------------------------------------------------
def peer_curve(pos: PeerStream, neg: PeerStream, name: str, logbase: float = 1.0001) -> dict:
    """False-reject rate and false alarms per hour of one phrase at every score cut.

    The cuts are the phrase's distinct detection scores (every distinct operating point of
    the decode) plus one above them all (no detection); ``thresholds`` holds each cut as
    log10 of the strictest ``kws_threshold`` that gives it, so ``operating_point``'s
    "higher threshold" is the stricter one, as for hearkit's posteriors.
    """
    utts = [u for u in pos.utterances if u.label == name]
    pt = np.array([d.time for d in pos.detections if d.label == name], np.float64)
    ps_ = np.array([d.score for d in pos.detections if d.label == name], np.int64)
    ns = np.array([d.score for d in neg.detections if d.label == name], np.int64)
    scores = np.unique(np.concatenate([ps_, ns]))
    cuts = np.append(scores, scores[-1] + 1) if scores.size else np.array([0], np.int64)
    by_threshold = {score_log10_threshold(int(s), logbase): int(s) for s in cuts}

    def at(t):  # (hits, positive-stream false alarms, negative-stream false alarms) at a score cut
        s = by_threshold[t]
        return (*match(pt[ps_ >= s], utts), int(np.count_nonzero(ns >= s)))

    curve = build_curve(name, utts, pos.seconds + neg.seconds, list(by_threshold), at)
    curve["scores"] = cuts.tolist()
    return curve


def evaluate_pocketsphinx(
    phrases: Sequence[str],
    streams: Streams,
    kws_threshold: float = PERMISSIVE_THRESHOLD,
    log: Callable[[str], None] = lambda m: None,
) -> dict:
    """PocketSphinx on the streams ``evaluate_detector`` builds; a report in its format.

    Args:
        phrases: labels to spot (``hey_computer`` spots "hey computer"); background labels are skipped.
        streams: what to stream, as for :func:`~hearkit.evaluate.detector.evaluate_detector`.
        kws_threshold: the one decode's threshold; the curve covers it and everything stricter
            (Default: ``PERMISSIVE_THRESHOLD``).
        log: progress callable (Default: silent).

    Returns:
        ``evaluate_detector``'s report (``phrases`` with ``curve`` and ``points``, ``mean_frr``,
        hours, ``left_out``), with ``engine``, ``kws_threshold``, ``threshold_unit``,
        ``cpu_seconds`` and ``cpu_seconds_per_hour`` (of audio streamed) added.
    """
    src = streams.sources(phrases)
    spotter = KeyphraseSpotter(src.phrases, kws_threshold=kws_threshold)
    pos = spot_stream(spotter, streams.positive_stream(src, SAMPLE_RATE))
    log(f"pocketsphinx: positive stream {pos.seconds / 60:.1f} min decoded ({pos.cpu_seconds:.0f} CPU s)")
    neg = spot_stream(spotter, negative_stream(src.negative, SAMPLE_RATE))
    log(f"pocketsphinx: negative stream {neg.seconds / 3600:.2f} h decoded ({neg.cpu_seconds:.0f} CPU s)")
    cpu = pos.cpu_seconds + neg.cpu_seconds
    hours = (pos.seconds + neg.seconds) / 3600
    curves = [peer_curve(pos, neg, name, spotter.logbase) for name in src.phrases if src.positive.get(name)]
    return {"engine": "pocketsphinx", **streams.report(curves, src, pos.seconds, neg.seconds),
            "kws_threshold": kws_threshold, "threshold_unit": THRESHOLD_UNIT,
            "cpu_seconds": cpu, "cpu_seconds_per_hour": cpu / max(hours, 1e-12)}


class _TimedSpotter:
    """A KeywordSpotter that adds the process CPU time of its ``accept_waveform`` and ``flush`` to ``cpu_seconds``.

    Everything else (attributes read and set by ``record_stream``) goes to the spotter, so
    ``evaluate_detector`` judges it unchanged while stream loading and mixing stay untimed.
    """

    def __init__(self, spotter):
        object.__setattr__(self, "_spotter", spotter)
        object.__setattr__(self, "cpu_seconds", 0.0)

    def __getattr__(self, name):
        return getattr(self._spotter, name)

    def __setattr__(self, name, value):
        setattr(self._spotter, name, value)

    def _timed(self, fn, *args):
        with cpu_timed(self):
            return fn(*args)

    def accept_waveform(self, chunk):
        return self._timed(self._spotter.accept_waveform, chunk)

    def flush(self):
        return self._timed(self._spotter.flush)


def compare_engines(
    spotter,
    streams: Streams,
    pocketsphinx: bool = True,
    kws_threshold: float = PERMISSIVE_THRESHOLD,
    log: Callable[[str], None] = lambda m: None,
    openwakeword: bool = False,
) -> dict:
    """hearkit's spotter and its peers on the same streams: ``{"hearkit": report, "pocketsphinx": report, ...}``.

    Args:
        spotter: a :class:`~hearkit.classify.KeywordSpotter`; its phrases (non-background labels)
            are PocketSphinx's too.
        streams: what to stream, as for ``evaluate_detector``: every engine gets the same streams.
        pocketsphinx: also run PocketSphinx (Default: True).
        kws_threshold: PocketSphinx's decode threshold (Default: ``PERMISSIVE_THRESHOLD``).
        log: progress callable (Default: silent).
        openwakeword: also run openWakeWord's official models on the phrases that have one
            (:mod:`hearkit.evaluate.openwakeword`; Default: False). Its report is left out, and
            a line logged, when none of the phrases has one.

    Each report carries ``cpu_seconds_per_hour`` of audio streamed: the spotter's
    ``accept_waveform``/``flush`` process CPU time, PocketSphinx's ``process_raw``/``end_utt``,
    openWakeWord's pipeline.
    """
    from hearkit.evaluate.detector import evaluate_detector

    timed = _TimedSpotter(spotter)
    rep = evaluate_detector(timed, streams, log=log)
    hours = rep["negative_hours"] + rep["positive_hours"]
    rep.update({"engine": "hearkit", "cpu_seconds": timed.cpu_seconds,
                "cpu_seconds_per_hour": timed.cpu_seconds / max(hours, 1e-12)})
    out = {"hearkit": rep}
    if pocketsphinx:
        out["pocketsphinx"] = evaluate_pocketsphinx(list(spotter.labels), streams, kws_threshold=kws_threshold, log=log)
    if openwakeword:
        from hearkit.evaluate.openwakeword import evaluate_openwakeword

        rep = evaluate_openwakeword(list(spotter.labels), streams, log=log)
        if rep["phrases"]:
            out["openwakeword"] = rep
    return out


# -- presenting -------------------------------------------------------------------------------
def comparison_lines(reports: dict[str, dict]) -> list[str]:
    """Engines side by side: per phrase and target, FRR [95 % interval] at the FA/h reached; mean; CPU.

    An operating point whose engine cannot get down to the target is marked ``*`` (the
    fewest false alarms it has are shown instead).
    """
    names = list(reports)
    first = reports[names[0]]
    lines = [f"negatives {first['negative_hours']:.2f} h ({first['negative_files']} files, "
             f"{sum(first['left_out'].values())} left out), positives {first['positive_hours']:.2f} h at "
             + (f"{first['snr_db']:g} dB SNR" if first["snr_db"] is not None else "no noise")]
    col = 36
    lines.append(f"{'phrase':<16} {'FA/h':>5}  " + "".join(f"{n + ' FRR [95 %] at FA/h':<{col}}" for n in names))
    phrases = list(dict.fromkeys(p for r in reports.values() for p in r["phrases"]))
    targets = [p["target_fa_per_hour"] for p in first["phrases"][phrases[0]]["points"]] if phrases else []
    starred = False
    for name in phrases:
        for i, t in enumerate(targets):
            cells = []
            for n in names:
                ph = reports[n]["phrases"].get(name)
                if ph is None:
                    cells.append(f"{'-':<{col}}")
                    continue
                p = ph["points"][i]
                lo, hi = p["frr_ci95"]
                mark = "" if p["reached"] else "*"
                starred |= not p["reached"]
                cell = f"{100 * p['frr']:5.1f} % [{100 * lo:4.1f}-{100 * hi:5.1f}] at {p['fa_per_hour']:.2f}{mark}"
                cells.append(f"{cell:<{col}}")
            lines.append(f"{name:<16} {t:>5g}  " + "".join(cells))
    for t in targets:
        # an engine that covers fewer phrases (openWakeWord: those with an official model) says so
        means = [f"{100 * reports[n]['mean_frr'][str(t)]:5.1f} %"
                 + (f" ({len(reports[n]['phrases'])} of {len(phrases)} phrases)"
                    if len(reports[n]["phrases"]) < len(phrases) else "") for n in names]
        lines.append(f"{'mean':<16} {t:>5g}  " + "".join(f"{m:<{col}}" for m in means))
    lines.append(f"{'CPU s per hour of audio':<24}" + "".join(
        f"{reports[n]['cpu_seconds_per_hour']:<{col}.1f}" for n in names))
    if starred:
        lines.append("* target not reached: the engine's fewest false alarms per hour are shown")
    return lines


ENGINE_STYLES = {"hearkit": "-", "pocketsphinx": "--", "openwakeword": ":"}


def plot_det_engines(reports: dict[str, dict], path: str | os.PathLike, title: str = "") -> Path:
    """DET curves of several engines in one PNG: a colour per phrase, a line style per engine
    (hearkit solid, PocketSphinx dashed, openWakeWord dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    phrases = list(dict.fromkeys(p for r in reports.values() for p in r["phrases"]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (engine, rep) in enumerate(reports.items()):
        style = ENGINE_STYLES.get(engine, [":", "-."][k % 2])
        for name, ph in rep["phrases"].items():
            c = ph["curve"]
            fah, frr = envelope(c)
            floor = 0.5 / c["hours"]  # the zero-false-alarm end drawn at half the smallest measurable rate
            ax.step(np.maximum(fah, floor), 100 * frr, where="post", ls=style,
                    color=colours[phrases.index(name) % len(colours)],
                    label=f"{engine}: {name} ({c['utterances']})")
    first = next(iter(reports.values()))
    det_axes(ax, first, title or "DET: " + " vs ".join(reports), legend_size=7)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=120)  # atomic: a full disk leaves no half PNG
    return path
