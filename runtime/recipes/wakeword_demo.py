"""A wake word of the user's choice end to end, from text only: ``hearkit demo --wakeword "hey hearkit"``.

Synthesize a keyword set for the phrase (``hearkit data wakeword``), train a compact
CNN on it, export and quantize it, calibrate its threshold on sentences that do
not contain the phrase, draw the DET curve on the phrase spoken by speakers
training never heard, and spot the phrase in sentences by further unseen
speakers. Everything is synthetic, so it runs on a fresh machine with no data;
the figures it prints are on synthetic speech and say nothing of real voices
(docs/recipes/wakeword.md measures those).

Speakers: a speaker is a synthesiser voice with a rate, pitch, vocal-tract warp
and word gap (``hearkit.recipes.voices.Voice``). The test speakers are drawn with
another seed and none of them is a training speaker; the three synthesisers have
only so many base voices, so a test speaker may share a base voice with a
training one at another rate, pitch and warp.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearkit import artifacts
from hearkit.files import write_audio, write_text
from hearkit.recipes.wakeword import SAMPLE_RATE, WakewordConfig, label_of, phrase_words, synthetic_noise

# Ordinary sentences, none holding a wake word a user is likely to pick. Training hears
# the first list as continuous speech (windows cut from it, the negatives that make a
# detector precise in a stream); calibration, the DET curve and the sentences the phrase
# is spotted in use the second, by other speakers.
TRAIN_CARRIERS = (
    "what time is it in london", "please turn on the kitchen light", "the weather looks fine today",
    "play some music for me", "remind me to call my sister", "how far is the station from here",
    "set a timer for ten minutes", "the meeting starts at nine", "open the window a little",
    "i would like a cup of tea", "read me the news", "where did i leave my keys",
    "turn the volume down", "what is the capital of spain", "tell me a short story",
    "the train was late again", "add milk to the shopping list", "we should leave soon",
    "close the garage door", "how do you spell necessary", "my brother lives near the river",
    "can you hear the birds outside", "the children are playing in the garden", "send a message to anna",
    "i forgot my umbrella at work", "the shop closes at six tonight", "we had pasta for dinner",
    "is it going to rain tomorrow", "turn off the television", "the cat is sleeping on the sofa",
)
TEST_CARRIERS = (
    "good morning how did you sleep", "the bus leaves in five minutes", "put the book on the table",
    "call the doctor after lunch", "the coffee is too hot", "show me the photos from last summer",
    "who won the football match", "lock the front door please", "my phone battery is almost empty",
    "we are going to the beach on sunday", "how many days until friday", "the printer is out of paper",
    "let us meet at the library", "she plays the piano every evening", "what is on the radio",
    "i need new shoes for the winter", "the garden needs water", "water the plants on the balcony",
    "the film starts at eight", "pick up some bread on the way home",
)


EMBEDDING_WINDOW_S = 2.0  # clips for a head on the speech embedding: its 16 vectors (docs/recipes/wakeword.md)


@dataclass(frozen=True)
class WakewordDemoConfig:
    """Settings of ``hearkit demo --wakeword``.

    Attributes:
        phrase: the wake word, one to three English words (Default: "hey hearkit").
        out: working folder (Default: runs/wakeword-demo).
        voices: synthetic training speakers (Default: 300; ``hearkit data wakeword`` uses 800).
        epochs: training epochs (Default: 30).
        model: architecture (Default: cnn4-s). A model on the speech embedding (``emb-dnn``, needs
            ``hearkit[embedding]``) or on a distilled student (``student-dnn``) gets a set of 2-s clips,
            the window its head sees.
        student: for ``student-dnn``: the ``best.pt`` of a ``hearkit train distill`` run (Default: None).
        fa_per_hour: false alarms per hour the threshold is calibrated for (Default: 1).
        test_speakers: unseen speakers saying the phrase for the DET curve (Default: 60).
        seed: seed of synthesis and training (Default: 0).
        threads: torch threads for training (Default: 1; see ``hearkit.training.loop.set_threads``).
    """

    phrase: str = "hey hearkit"
    out: str = "runs/wakeword-demo"
    voices: int = 300
    epochs: int = 30
    model: str = "cnn4-s"
    student: str | None = None
    fa_per_hour: float = 1.0
    test_speakers: int = 60
    seed: int = 0
    threads: int = 1


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def unseen_voices(n: int, train_seed: int, train_voices: int, seed: int) -> list:
    """``n`` speakers drawn with ``seed``, none of them among the ``train_voices`` of ``train_seed``."""
    from hearkit.recipes.voices import random_voices

    seen = {v.key for v in random_voices(train_voices, seed=train_seed)}
    pool = [v for v in random_voices(n + train_voices, seed=seed) if v.key not in seen]
    return pool[:n]


def _level(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) + 1e-9
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def _speak_to(folder: Path, stem: str, voices: list, text_of: Callable[[], str], rng: np.random.Generator) -> int:
    """``text_of()`` said by each speaker of ``voices`` at -30..-18 dBFS into ``folder/<stem>_<i>.flac``; the count written."""
    from hearkit.recipes.voices import SynthError, speak

    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, v in enumerate(voices):
        text = text_of()
        try:
            x = speak(text, v, SAMPLE_RATE)
        except SynthError:  # a voice that cannot say it: the next speaker
            continue
        write_audio(folder / f"{stem}_{i:04d}.flac", _level(x, float(rng.uniform(-30, -18))), SAMPLE_RATE,
                    subtype="PCM_16")
        n += 1
    return n


def write_test_material(phrase: str, root: Path, positives: list, negatives: list, calibration: list,
                        seed: int) -> dict:
    """Positives (the phrase alone), negative and calibration sentences (no phrase), by unseen speakers.

    Layout: ``positives/<label>/*.flac`` (what ``hearkit eval --positives`` reads), and
    ``negatives/*.flac``, ``calibration/*.flac`` (loose files: no transcript, no phrase).
    """
    rng = np.random.default_rng(seed)
    sentence = lambda: str(rng.choice(TEST_CARRIERS))  # noqa: E731
    return {
        "positives": _speak_to(root / "positives" / label_of(phrase), "positives", positives, lambda: phrase, rng),
        "negatives": _speak_to(root / "negatives", "negatives", negatives, sentence, rng),
        "calibration": _speak_to(root / "calibration", "calibration", calibration, sentence, rng),
    }


def write_sentences(root: Path, voices: list, texts: Sequence[str], seed: int) -> int:
    """One sentence of ``texts`` per speaker of ``voices`` into ``root`` as loose FLAC files; returns the count."""
    rng = np.random.default_rng(seed)
    return _speak_to(root, "sentence", voices, lambda: str(rng.choice(list(texts))), rng)


def sentence_stream(phrase: str, voices: list, seed: int) -> tuple[np.ndarray, list[dict]]:
    """Sentences by ``voices``, every other one holding the phrase, with what each says and where.

    Returns:
        (waveform, [{"text", "speaker", "start", "end" (s), "phrase": [start, end] or None}, ...]):
        the text is what was spoken (a segment a voice cannot say is left out of both).
    """
    from hearkit.recipes.voices import SynthError, speak

    rng = np.random.default_rng(seed)
    parts, sentences, t = [np.zeros(SAMPLE_RATE // 2, np.float32)], [], 0.5
    for i, v in enumerate(voices):
        words = str(TEST_CARRIERS[(i * 7 + seed) % len(TEST_CARRIERS)]).split()
        segments = [" ".join(words)]
        if i % 2 == 0:  # the phrase at the start, in the middle or at the end
            cut = int(rng.choice([0, len(words) // 2, len(words)]))
            segments = [s for s in (" ".join(words[:cut]), phrase, " ".join(words[cut:])) if s]
        level = float(rng.uniform(-28, -18))
        said, start, extent = [], t, None
        for s in segments:
            try:
                x = _level(speak(s, v, SAMPLE_RATE), level)
            except SynthError:
                continue
            if s == phrase:
                extent = [t, t + len(x) / SAMPLE_RATE]
            said.append(s)
            pause = np.zeros(int(rng.uniform(0.05, 0.25) * SAMPLE_RATE), np.float32)
            parts += [x, pause]
            t += (len(x) + len(pause)) / SAMPLE_RATE
        if said:
            sentences.append({"text": " ".join(said), "speaker": v.key, "start": start, "end": t, "phrase": extent})
        gap = np.zeros(int(rng.uniform(0.6, 1.2) * SAMPLE_RATE), np.float32)
        parts.append(gap)
        t += len(gap) / SAMPLE_RATE
    wav = np.concatenate(parts)
    # a loud speaker's peaks pass full scale: clipped here, as a sound card would (the spotter would clip them too)
    return np.clip(wav + synthetic_noise(rng, len(wav)) * 0.01, -1.0, 1.0), sentences


def spoken_sentences(phrase: str, voices: list, seed: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Sentences by ``voices``, every other one holding the phrase; returns (waveform, phrase extents in s)."""
    wav, sentences = sentence_stream(phrase, voices, seed)
    return wav, [tuple(s["phrase"]) for s in sentences if s["phrase"] is not None]


HIT_AFTER_S = 0.5  # a detection up to this long after the phrase's end still hits it (hearkit eval's rule)


def match_stream(truth: list[tuple[float, float]], detections: list, label: str,
                 after: float = HIT_AFTER_S) -> list[int | None]:
    """Per detection, the index in ``truth`` of the phrase it hits, or None for a false alarm (``score_stream``'s rule)."""
    matched: list[int | None] = [None] * len(detections)
    for j, (start, end) in enumerate(truth):
        for i, d in enumerate(detections):
            if matched[i] is None and d.label == label and start <= d.time <= end + after:
                matched[i] = j
                break
    return matched


def score_stream(truth: list[tuple[float, float]], detections: list, label: str,
                 after: float = HIT_AFTER_S) -> tuple[int, list]:
    """(hits, false alarms): a phrase is hit by the first detection of ``label`` between its start and
    ``after`` s past its end; every other detection is a false alarm (the rule of ``hearkit eval``)."""
    matched = match_stream(truth, detections, label, after)
    return sum(j is not None for j in matched), [d for d, j in zip(detections, matched) if j is None]


def stream_report(phrase: str, label: str, sentences: list[dict], detections: list) -> dict:
    """What demo.json says of the sentences: their text, where the phrase was said, each detection as hit or false alarm."""
    truth = [tuple(s["phrase"]) for s in sentences if s["phrase"] is not None]
    matched = match_stream(truth, detections, label)
    found = {j: d for d, j in zip(detections, matched) if j is not None}
    r = lambda x: round(float(x), 2)  # noqa: E731
    return {
        "sentences": [{"text": s["text"], "speaker": s["speaker"], "start": r(s["start"]), "end": r(s["end"]),
                       "phrase": None if s["phrase"] is None else [r(x) for x in s["phrase"]]} for s in sentences],
        "truth": [{"phrase": phrase, "start": r(a), "end": r(b), "found": j in found,
                   "detection_time": r(found[j].time) if j in found else None} for j, (a, b) in enumerate(truth)],
        "hit_rule": (f"a said phrase is found by the first detection from its start to {HIT_AFTER_S:g} s after its end; "
                     "every other detection is a false alarm"),
        "detections": [{"label": d.label, "time": r(d.time), "score": round(float(d.score), 3),
                        "outcome": "false alarm" if j is None else "hit",
                        "matched": None if j is None else {"start": r(truth[j][0]), "end": r(truth[j][1])}}
                       for d, j in zip(detections, matched)],
    }


def run_wakeword_demo(cfg: WakewordDemoConfig = WakewordDemoConfig()) -> dict:
    """Synthesize → train → export + int8 → calibrate → DET → spot the phrase in sentences. Returns the summary."""
    from hearkit.classify import KeywordSpotter
    from hearkit.plots.detection import plot_timeline
    from hearkit.errors import ConfigError
    from hearkit.evaluate.detector import Streams, evaluate_detector, plot_det, streamed_text
    from hearkit.export.thresholds import calibrate
    from hearkit.export.exporter import export_classifier
    from hearkit.recipes.voices import random_voices
    from hearkit.recipes.wakeword import build_wakeword_set
    from hearkit.training.models import uses_embedding, uses_student
    from hearkit.training.train_classify import TrainConfig, train_classifier

    if not 1 <= len(phrase_words(cfg.phrase)) <= 3:
        raise ConfigError(f"--wakeword {cfg.phrase!r}: give one to three English words")
    TrainConfig(data=".", out=".", model=cfg.model, student=cfg.student)  # a bad model/student pair fails before synthesis
    two_seconds = uses_embedding(cfg.model) or uses_student(cfg.model)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    label = label_of(cfg.phrase)
    t_start = time.perf_counter()
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    data = out / "data"
    if not (data / "wakeword.json").is_file():
        _say(f"[demo] synthesising a keyword set for {cfg.phrase!r} ({cfg.voices} speakers)")
        speech = out / "train-sentences"
        write_sentences(speech, random_voices(cfg.voices, seed=cfg.seed), TRAIN_CARRIERS, cfg.seed)
        build_wakeword_set(WakewordConfig(phrases=(cfg.phrase,), voices=cfg.voices, near_misses=cfg.voices,
                                          other_words=2 * cfg.voices, negatives=(str(speech),),
                                          negative_windows=2 * cfg.voices, silence=cfg.voices // 2, seed=cfg.seed,
                                          window_seconds=EMBEDDING_WINDOW_S if two_seconds else 0.0),
                           data, force=data.exists(), log=_say)
    times["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _say(f"[demo] training {cfg.model} for {cfg.epochs} epochs")
    run = train_classifier(TrainConfig(data=str(data), out=str(out / "run"), model=cfg.model, epochs=cfg.epochs,
                                       seed=cfg.seed, num_threads=cfg.threads, student=cfg.student,
                                       resume=(out / "run" / "last.pt").is_file()))
    times["train"] = time.perf_counter() - t0
    metrics = json.loads((Path(run) / "metrics.json").read_text())

    t0 = time.perf_counter()
    _say("[demo] exporting the waveform-in pipeline and quantizing it to int8")
    export = out / "export"
    export_classifier(Path(run) / "best.pt", export, quantize=("int8",), calibration_clips=200)
    times["export"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _say("[demo] speaking test material with speakers training never heard")
    test = out / "test"
    n = cfg.test_speakers
    voices = unseen_voices(8 * n, cfg.seed, cfg.voices, seed=cfg.seed + 104_729)
    counts = write_test_material(cfg.phrase, test, voices[:n], voices[n:4 * n], voices[4 * n:7 * n], cfg.seed)
    times["test_material"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    _say(f"[demo] calibrating the threshold at {cfg.fa_per_hour:g} false alarms per hour")
    cal = calibrate(export, [str(test / "calibration")], fa_per_hour=cfg.fa_per_hour, log=_say)
    int8 = artifacts.file_name(artifacts.PIPELINE, artifacts.INT8)
    calibrated = cal.get(int8, next(iter(cal.values())))["thresholds"][label]
    _say("[demo] drawing the DET curve")
    spotter = KeywordSpotter(export)
    streams = Streams([str(test / "positives")], [str(test / "negatives")], noise=[str(data / "_background_noise_")],
                      snr_db=10.0, seed=cfg.seed)
    report = evaluate_detector(spotter, streams, log=_say)
    plot_det(report, out / "det.png", title=f"{cfg.phrase!r} (synthetic, unseen speakers, 10 dB SNR)")
    times["calibrate_eval"] = time.perf_counter() - t0

    _say("[demo] spotting the phrase in sentences by further unseen speakers")
    wav, sentences = sentence_stream(cfg.phrase, voices[7 * n:7 * n + 12], seed=cfg.seed + 1)
    write_audio(out / "sentences.flac", wav, SAMPLE_RATE)
    kws = KeywordSpotter(export, record=True)
    used = kws.logic.label_thresholds()  # what the detector uses: the calibrated thresholds the int8 model carries
    if abs(used[label] - calibrated) > 1e-6:
        _say(f"[demo] the spotter uses threshold {used[label]:.3f}, not the calibrated {calibrated:.3f}")
    detections = []
    for i in range(0, len(wav), 1600):  # 100 ms chunks, as a microphone delivers them
        detections += kws.accept_waveform(wav[i:i + 1600])
    told = stream_report(cfg.phrase, label, sentences, detections)
    # ground truth: each sentence a grey span, the phrase in its label's colour (sentence texts are in demo.json)
    truth_spans = [("", s["start"], s["end"]) for s in sentences] + [(label, *s["phrase"]) for s in sentences
                                                                      if s["phrase"] is not None]
    plot_timeline(kws.history, kws.labels, detections, out / "timeline.png", title=f"{cfg.phrase!r} in sentences",
                  thresholds={label: used[label]}, truth=truth_spans,
                  outcomes=[d["outcome"] for d in told["detections"]])

    point = next((p for p in report["phrases"][label]["points"] if p["target_fa_per_hour"] == cfg.fa_per_hour), None)
    point = dict(point) if point else None
    det_threshold = point.pop("threshold") if point else None
    summary = {
        "phrase": cfg.phrase,
        "model": cfg.model,
        "parameters": metrics.get("parameters"),
        "val_accuracy": metrics.get("best_val_acc"),
        "threshold": used[label],
        "threshold_note": (f"the detector's threshold: calibrated at {cfg.fa_per_hour:g} false alarm(s) per hour on "
                           "the calibration sentences (hearkit calibrate) and stored in the int8 model; the "
                           "sentences below are spotted with it"),
        "test_material": counts,
        "det": {"frr": report["mean_frr"], "point": point, "negative_hours": report.get("negative_hours"),
                "streamed_hours": report["negative_hours"] + report["positive_hours"], "streamed": streamed_text(report),
                "sweep_threshold": det_threshold,
                "sweep_threshold_note": (f"not used by the detector: the threshold with the fewest misses at or under "
                                         f"{cfg.fa_per_hour:g} false alarm(s) per hour on det.png's own streams "
                                         "(the DET sweeps every threshold); it differs from the calibrated one "
                                         "because the streams differ")},
        "phrases_in_sentences": len(told["truth"]),
        "phrases_found": sum(t["found"] for t in told["truth"]),
        "false_alarms": sum(d["outcome"] == "false alarm" for d in told["detections"]),
        "sentence_seconds": round(len(wav) / SAMPLE_RATE, 1),
        **told,
        "seconds": {k: round(v, 1) for k, v in times.items()} | {"total": round(time.perf_counter() - t_start, 1)},
        "files": {
            "model": str(export / int8),
            "det": str(out / "det.png"),
            "timeline": str(out / "timeline.png"),
            "sentences": str(out / "sentences.flac"),
        },
    }
    write_text(out / "demo.json", json.dumps(summary, indent=1) + "\n")
    return summary
