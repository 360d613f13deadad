"""A keyword set for any phrase from its text alone: ``hearkit data wakeword "hey computer" -o DIR``.

The set has the layout ``hearkit train classify`` reads (Speech Commands'): one folder per
phrase, ``_unknown_``, ``_silence_``, ``_background_noise_``, and ``validation_list.txt``
naming the clips of the validation voices (the split is by voice, so validation measures
voices the model has not heard). What goes in, and why (docs/design.md §10):

- **Positives**: the phrase spoken by many synthetic speakers (every installed engine, or
  those ``engines`` names, and the Piper voice files given; each voice multiplied by rate,
  pitch, word gaps, Piper's noise scales and a vocal-tract warp; see
  :mod:`hearkit.recipes.voices`), at a random level and position in the window, a share
  with room reverberation (pyroomacoustics' image-source rooms) and band-limited as by a
  cheap microphone. Speaker diversity is what transfers to real voices.
- **Negatives that make a detector precise**: partial phrases (each word alone, the first
  and last phonemes of each word), phonetic near-misses (the phrase's espeak phonemes with
  one substituted, and the dictionary words whose phonemes are closest), other words and
  word sequences, all by the same synthetic speakers; and windows cut from real recordings
  the user gives (``negatives``), leaving out any whose transcript holds the phrase.
- **Silence**: noise from the user's noise folders, else generated (white, pink, brown, hum).

Nothing is downloaded. The word list is the system dictionary (Debian package
``wamerican``); without it a small built-in list is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hearkit.errors import ConfigError
from hearkit.files import write_audio, write_text

SAMPLE_RATE = 16000
DICTIONARY = Path("/usr/share/dict/words")
FALLBACK_WORDS = (
    "about after again also always another answer back because before better between both bring call came "
    "change city close come could country different does down during each early easy enough even every family "
    "father find first follow food found four friend from give good great group hand happen hard head help here "
    "high home house important keep kind know land large last later learn leave left letter life light line "
    "little live long look made make many mean might mile mother move much music must name near need never "
    "next night number often only open order other over paper part people picture place plant play point "
    "power question quick read really right river round same school second seem sentence should show side "
    "small something sound spell start state still story study such take talk tell than thing think those "
    "thought three through time today together took tree under until very walk want watch water where which "
    "while white world would write year young"
).split()
# espeak-ng's ASCII phoneme symbols for English (its -x output), longest first for tokenising
VOWELS = ("aI@", "aU@", "i@3", "eI", "aI", "aU", "OI", "oU", "@U", "e@", "i@", "U@", "O@", "o@", "A@", "3:", "i:",
          "u:", "O:", "A:", "a#", "@L", "@2", "@5", "0", "3", "@", "a", "A", "E", "I", "i", "O", "U", "V", "u", "e", "o")
CONSONANTS = ("tS", "dZ", "n-", "l/", "r-", "p", "b", "t", "d", "k", "g", "f", "v", "T", "D", "s", "z", "S", "Z",
              "h", "m", "n", "N", "l", "r", "j", "w", "x", "t#", "?")
SYMBOLS = tuple(sorted(VOWELS + CONSONANTS, key=len, reverse=True))
NON_PHONEME = "'," + "_:!#=" + " "   # stress marks and pauses that are not phonemes on their own
LEVEL_DBFS = (-38.0, -16.0)          # RMS level of a positive, uniform in dBFS
REVERB_RT60_S = (0.15, 0.9)          # reverberation time of a simulated room
ROOM_M = ((3.0, 10.0), (2.5, 8.0), (2.4, 3.5))  # room length, width, height ranges
MAX_ORDER = 17                       # image-source order: the early reflections; the rest decays below it
BANDLIMIT_HZ = (3400.0, 7000.0)      # cut-off of a band-limited (cheap microphone, phone line) clip
STREAM_SHARE = 0.5                 # share of real negative windows cut across recordings played back to back
LEXICON_SAMPLE = 20000              # dictionary words searched for phonetic near-misses
WINDOW_MARGIN_S = 0.3               # automatic window: a typical utterance of the phrases plus this
BACKGROUND_LEVEL_DBFS = -60.0        # floor of noise under every clip, so none is digital silence
RECORDING_MARGIN_S = 0.05            # kept each side of a real recording's utterance


@dataclass(frozen=True)
class WakewordConfig:
    """Options of ``hearkit data wakeword`` (written to ``wakeword.json`` in the set).

    Attributes:
        phrases: the phrases, one label each (spaces become ``_`` in the folder name).
        voices: synthetic speakers per phrase (Default: 800).
        val_share: share of speakers kept for validation (Default: 0.15).
        near_misses: phonetic near-miss and partial-phrase clips per phrase (Default: 800).
        other_words: clips of other words and word sequences (Default: 1500).
        negatives: folders or manifests of real audio to cut negative windows from (Default: none).
        negative_windows: windows cut from ``negatives`` (Default: 12000: against 4000, with 0.1 h more
            real speech among the negatives, the emb-dnn recipe missed 29.2 % at 1 FA/h instead of 40.7 %,
            three seeds each; docs/recipes/wakeword.md).
        recordings: folders or manifests holding real recordings of the phrases (a folder per
            phrase, e.g. ``hey_computer/``, or manifest lines whose ``text`` is the phrase), added
            to training (Default: none: text only).
        recording_repeats: copies of each recording, each at its own place in the window and
            level (Default: 8, as measured in docs/recipes/wakeword.md: 50 recordings become 400
            clips beside 800 synthetic ones).
        noise: folders of noise recordings for ``_silence_`` and ``_background_noise_`` (Default: generated noise).
        silence: ``_silence_`` clips (Default: 400).
        reverb: share of synthetic clips given a simulated room (Default: 0.5).
        bandlimit: share of synthetic clips band-limited (Default: 0.2).
        window_seconds: clip length; 0 picks it from the phrases' synthesised length, 1.0-2.0 s (Default: 0).
        seed: seed of every random choice (Default: 0).
        workers: synthesiser processes run at once (Default: CPU count).
        engines: the engines that speak, among ``hearkit.recipes.voices.ENGINES`` (Default: every
            installed Debian engine, plus piper when ``piper_voices`` are given). They speak
            the negatives too, so that no engine's sound marks the phrase.
        piper_voices: Piper voice files (``.onnx``, its ``.onnx.json`` beside it); every speaker
            of each is a voice (Default: none).
    """

    phrases: tuple[str, ...]
    voices: int = 800
    val_share: float = 0.15
    near_misses: int = 800
    other_words: int = 1500
    negatives: tuple[str, ...] = ()
    negative_windows: int = 12000
    recordings: tuple[str, ...] = ()
    recording_repeats: int = 8
    noise: tuple[str, ...] = ()
    silence: int = 400
    reverb: float = 0.5
    bandlimit: float = 0.2
    window_seconds: float = 0.0
    seed: int = 0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    engines: tuple[str, ...] = ()
    piper_voices: tuple[str, ...] = ()

    def __post_init__(self):
        from hearkit.recipes.voices import ENGINES

        if not self.phrases:
            raise ConfigError("give at least one phrase")
        for p in self.phrases:
            w = phrase_words(p)
            if not w:
                raise ConfigError(f"phrase {p!r}: nothing to say (no word of letters a-z)")
            if not 1 <= len(w) <= 5:
                raise ConfigError(f"phrase {p!r}: needs 1 to 5 words of letters, got {len(w)}")
        if bad := [e for e in self.engines if e not in ENGINES]:
            raise ConfigError(f"unknown engine {', '.join(map(repr, bad))}; allowed: {', '.join(ENGINES)}")
        labels = [label_of(p) for p in self.phrases]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"phrases must differ: {list(self.phrases)}")
        if not 1 <= self.recording_repeats <= 100:
            raise ConfigError(f"recording_repeats must be in 1..100, got {self.recording_repeats}")
        for name in ("voices", "near_misses", "other_words", "negative_windows", "silence"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.voices < 4:
            raise ConfigError(f"voices must be >= 4 (some train, some validate), got {self.voices}")
        if not 0 < self.val_share < 1:
            raise ConfigError(f"val_share must be in (0, 1), got {self.val_share}")
        for name in ("reverb", "bandlimit"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be a share in [0, 1], got {getattr(self, name)}")
        if self.window_seconds and not 0.5 <= self.window_seconds <= 3.0:
            raise ConfigError(f"window_seconds must be 0 (automatic) or in [0.5, 3.0] s, got {self.window_seconds}")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"workers must be in 1..64, got {self.workers}")


def phrase_words(phrase: str) -> list[str]:
    """The lower-case words of a phrase (apostrophes kept inside a word only: ``it's``, not ``'``)."""
    return [w for w in (t.strip("'") for t in re.findall(r"[a-z']+", phrase.lower())) if w]


def label_of(phrase: str) -> str:
    """The folder and label name of a phrase: its words joined by ``_``."""
    return "_".join(phrase_words(phrase))


def tokenize(phon: str) -> list[str]:
    """espeak ASCII phonemes (``s'Ev@n``) as a list of phoneme symbols, stress marks dropped."""
    out, i = [], 0
    while i < len(phon):
        if phon[i] in NON_PHONEME:
            i += 1
            continue
        for sym in SYMBOLS:
            if phon.startswith(sym, i):
                out.append(sym)
                i += len(sym)
                break
        else:
            i += 1  # a symbol this table lacks: skip it
    return out


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two symbol sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def dictionary_words(limit: int | None = None, rng: np.random.Generator | None = None) -> list[str]:
    """Plain lower-case words of the system dictionary (else the built-in list), optionally a random sample."""
    if DICTIONARY.is_file():
        words = sorted({w for w in DICTIONARY.read_text(encoding="utf-8", errors="ignore").split()
                        if re.fullmatch(r"[a-z]{2,12}", w)})
    else:
        words = list(FALLBACK_WORDS)
    if limit is not None and limit < len(words):
        rng = rng or np.random.default_rng(0)
        words = [words[i] for i in sorted(rng.choice(len(words), limit, replace=False))]
    return words


def phonetic_lexicon(words: list[str]) -> list[tuple[str, list[str]]]:
    """(word, phoneme symbols) of each word, from one espeak-ng call."""
    from hearkit.recipes.voices import phonemes

    return list(zip(words, (tokenize(p) for p in phonemes(words))))


def near_miss_texts(phrase: str, rng: np.random.Generator, n_words: int = 60, n_subst: int = 40,
                    lexicon: list[str] | list[tuple[str, list[str]]] | None = None) -> dict[str, list[str]]:
    """Negative texts for one phrase: ``partial`` words and sub-phrases, ``phonemes`` (espeak
    phoneme strings: prefixes, suffixes and one-phoneme substitutions of the phrase) and
    ``words`` (dictionary words and word pairs whose phonemes are closest to the phrase's)."""
    from hearkit.recipes.voices import phonemes

    words = phrase_words(phrase)
    partial = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)} - {" ".join(words)}
    phon = phonemes([phrase])[0]
    toks = tokenize(phon)
    word_toks = [tokenize(p) for p in phonemes(words)]
    pieces: set[str] = set()
    for wt in word_toks:  # the start and the end of each word alone
        for k in range(max(1, len(wt) // 2), len(wt)):
            pieces.add("".join(wt[:k]))
            pieces.add("".join(wt[-k:]))
    vowels, cons = [v for v in VOWELS if len(v) <= 2], [c for c in CONSONANTS if c not in ("?", "t#", "n-", "l/", "r-")]
    for _ in range(n_subst * 3):
        if len(pieces) >= n_subst + len(word_toks) * 4 or not toks:
            break
        t = list(toks)
        i = int(rng.integers(len(t)))
        pool = vowels if t[i] in VOWELS else cons
        t[i] = str(rng.choice([p for p in pool if p != t[i]]))
        pieces.add("".join(t))
    pieces.discard("".join(toks))
    lexicon = lexicon if lexicon is not None else dictionary_words(LEXICON_SAMPLE, rng)
    if lexicon and isinstance(lexicon[0], str):
        lexicon = phonetic_lexicon(list(lexicon))
    # one- and two-word candidates, ranked by phoneme distance to the phrase
    cands = [(w, t) for w, t in lexicon if w not in words]
    pairs = [(f"{a} {b}", ta + tb) for (a, ta), (b, tb) in
             zip(cands, [cands[i] for i in rng.permutation(len(cands))]) if len(ta + tb) <= len(toks) + 3][:3000]
    slack = max(2, len(toks) // 3)  # a small distance needs lengths this close
    similar = [c for c in cands + pairs if abs(len(c[1]) - len(toks)) <= slack]
    ranked = sorted(similar, key=lambda c: (edit_distance(c[1], toks), c[0]))
    close = [w for w, _ in ranked if w.replace(" ", "") != "".join(words)][:n_words]
    return {"partial": sorted(partial), "phonemes": sorted(pieces), "words": close}


def synthetic_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """One of white, pink, brown noise or mains hum, at a random level (float32, n samples)."""
    kind = rng.integers(4)
    if kind == 0:
        x = rng.standard_normal(n)
    elif kind == 1:  # pink: 1/f power via spectral shaping
        spec = np.fft.rfft(rng.standard_normal(n))
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
        x = np.fft.irfft(spec, n)
    elif kind == 2:  # brown: integrated white noise, high-passed by removing the drift
        x = np.cumsum(rng.standard_normal(n))
        x -= np.convolve(x, np.ones(801) / 801, mode="same")
    else:
        t = np.arange(n) / SAMPLE_RATE
        f0 = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 6))
        x += 0.3 * rng.standard_normal(n)
    x = x / (np.abs(x).max() + 1e-9)
    return (x * 10 ** rng.uniform(-3.0, -0.7)).astype(np.float32)


def room_response(rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Impulse response of a random shoebox room (pyroomacoustics' image-source model), peak-normalised."""
    import pyroomacoustics as pra

    dims = [rng.uniform(*r) for r in ROOM_M]
    rt60 = rng.uniform(*REVERB_RT60_S)
    try:
        absorption, order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # a reverberation time this room cannot have: take a drier one
        absorption, order = pra.inverse_sabine(REVERB_RT60_S[0], dims)
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=min(order, MAX_ORDER))
    inside = lambda: [rng.uniform(0.4, d - 0.4) for d in dims]  # noqa: E731
    room.add_source(inside())
    room.add_microphone(inside())
    room.compute_rir()
    h = np.asarray(room.rir[0][0], np.float64)
    return (h / (np.abs(h).max() + 1e-12)).astype(np.float32)


def band_limit(x: np.ndarray, cutoff_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Remove everything above ``cutoff_hz`` (FFT brick wall), as a narrow-band microphone would."""
    spec = np.fft.rfft(x)
    spec[int(cutoff_hz / sample_rate * len(x)) + 1 :] = 0
    return np.fft.irfft(spec, len(x)).astype(np.float32)


def realise(word: np.ndarray, n: int, rng: np.random.Generator, reverb: float, bandlimit: float) -> np.ndarray | None:
    """A synthesised utterance as a recording: room, band, level, random place in an n-sample window.

    Returns None when the utterance (with its reverberation tail cut at the window) does not fit.
    """
    if len(word) > n:
        return None
    x = word.astype(np.float32)
    if rng.random() < reverb:
        h = room_response(rng)
        x = np.convolve(x, h)[: len(x) + len(h) // 4].astype(np.float32)
    if rng.random() < bandlimit:
        x = band_limit(x, rng.uniform(*BANDLIMIT_HZ))
    x = x[:n]
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12
    x = x * (10 ** (rng.uniform(*LEVEL_DBFS) / 20) / rms)
    out = np.zeros(n, np.float32)
    start = int(rng.integers(0, n - len(x) + 1))
    out[start : start + len(x)] = x
    out += (10 ** (BACKGROUND_LEVEL_DBFS / 20)) * rng.standard_normal(n).astype(np.float32)
    return np.clip(out, -1.0, 1.0)


def _cut_windows(files: list[Path], count: int, n: int, rng: np.random.Generator,
                 stream_share: float = STREAM_SHARE) -> list[tuple[Path, np.ndarray]]:
    """``count`` windows of n samples from real recordings.

    ``1 - stream_share`` of them hold one recording each (a random part of a long one, or a
    short one at a random place); the rest are cut at random offsets from the recordings
    played back to back in a random order, as a spotter sees them in a stream: most of
    those hold the end of one recording and the start of the next.
    """
    from hearkit.audio import load_audio

    if not files or count == 0:
        return []
    n_stream = int(round(count * stream_share))
    order = [files[i] for i in rng.permutation(len(files))]
    out: list[tuple[Path, np.ndarray]] = []
    per = max(1, int(np.ceil((count - n_stream) / len(files))))  # several parts of a long file when files are few
    for f in order:
        if len(out) >= count - n_stream:
            break
        x = load_audio(f, SAMPLE_RATE)[0]
        if np.sqrt(np.mean(x.astype(np.float64) ** 2)) < 1e-5:
            continue
        for _ in range(per if len(x) > n else 1):
            w = np.zeros(n, np.float32)
            if len(x) > n:
                s = int(rng.integers(0, len(x) - n + 1))
                w[:] = x[s : s + n]
            else:
                s = int(rng.integers(0, n - len(x) + 1))
                w[s : s + len(x)] = x
            out.append((f, w))
            if len(out) >= count - n_stream:
                break
    if n_stream:
        # window starts: a Poisson process (mean gap one window) over the files played back to back
        gaps = rng.exponential(float(n), size=n_stream).astype(int)
        buf, pos, start, k = np.zeros(0, np.float32), 0, int(gaps[0]), 0  # buf[0] is stream sample `pos`
        laps = max(1, int(np.ceil(2 * n_stream * n / max(1, len(order) * n))))  # play the files again when they are few
        for f in (order[i] for _ in range(laps) for i in rng.permutation(len(order))):
            buf = np.concatenate([buf, load_audio(f, SAMPLE_RATE)[0]])
            while k < n_stream and start - pos + n <= len(buf):
                out.append((f, buf[start - pos : start - pos + n].copy()))
                k += 1
                start += n + int(gaps[k]) if k < n_stream else 0
            if k >= n_stream:
                break
            drop = min(len(buf), max(0, start - pos))  # audio before the next window's start is not needed
            buf, pos = buf[drop:], pos + drop
    return out


def _noise_clips(folders: Sequence[str], count: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    from hearkit.evaluate.detector import audio_files

    files = [p for d in folders for p in audio_files(Path(d))]
    if folders and not files:
        raise ConfigError(f"--noise {', '.join(folders)}: no audio files")
    if files:
        return [w for _, w in _cut_windows(files, count, n, rng)]
    return [synthetic_noise(rng, n) for _ in range(count)]


def build_wakeword_set(cfg: WakewordConfig, out: str | os.PathLike, force: bool = False,
                       log: Callable[[str], None] = lambda m: None) -> dict:
    """Write a keyword set for ``cfg.phrases`` to ``out``; return its summary (also in ``out/wakeword.json``).

    Raises:
        ConfigError: ``out`` holds files and ``force`` is not set, an option is out of range, or
            no engine can say a phrase.
        SynthError: no synthesiser is installed, an engine asked for is missing, a Piper voice
            file or its config is missing.
        MissingDependencyError: Piper voices are given and piper-tts is not installed.
    """
    import soundfile as sf

    from hearkit.evaluate.detector import negative_files
    from hearkit.progress import StatusLine
    from hearkit.recipes.voices import SynthError, available_voices, random_voices, speak

    root = Path(out)
    if root.exists() and any(root.iterdir()):
        if not force:
            raise ConfigError(f"-o {root}: the folder is not empty; choose a new folder or pass --force to replace it")
        if not (root / "wakeword.json").is_file():
            raise ConfigError(f"-o {root}: not a set `hearkit data wakeword` wrote (no wakeword.json); refusing to replace it")
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    engines = available_voices(cfg.engines or None, cfg.piper_voices)
    if not engines:
        raise SynthError("no speech synthesiser is installed: apt-get install espeak-ng flite festival")
    labels = [label_of(p) for p in cfg.phrases]

    # speakers: positives by every voice; negatives by the same voices (split alike)
    voices = random_voices(cfg.voices, seed=cfg.seed, engines=engines)
    n_val = max(1, int(round(cfg.val_share * len(voices))))
    val_keys = {v.key for v in voices[-n_val:]}

    log(f"data wakeword: phrases {', '.join(repr(p) for p in cfg.phrases)}; engines "
        + ", ".join(f"{e} ({len(v)} {'speakers' if e == 'piper' else 'voices'})" for e, v in engines.items()))
    # window: a typical (75th percentile) utterance of the phrases plus a margin, 1.0-2.0 s; a phrase
    # that no probe voice can say is refused here, before any work
    probe_voices = random_voices(8, seed=cfg.seed + 1, engines=engines)
    probe = []
    for p in cfg.phrases:
        said, failed = [], []
        for v in probe_voices:
            try:
                said.append(speak(p, v))
            except SynthError as e:
                failed.append(str(e))
        if not said:
            raise ConfigError(f"phrase {p!r}: none of the engines ({', '.join(engines)}) can say it: {failed[0]}")
        probe += said
    typical = float(np.quantile([len(x) for x in probe], 0.75)) / SAMPLE_RATE
    window = cfg.window_seconds or float(np.clip(np.ceil((typical + WINDOW_MARGIN_S) * 10) / 10, 1.0, 2.0))
    n = int(round(window * SAMPLE_RATE))
    texts: list[tuple[str, str, bool]] = []  # (folder, text, is_phonemes) for negatives
    plan_neg: dict[str, int] = {}
    lexicon = phonetic_lexicon(dictionary_words(LEXICON_SAMPLE, rng))
    for p in cfg.phrases:
        nm = near_miss_texts(p, rng, lexicon=lexicon)
        for kind, items in nm.items():
            plan_neg[kind] = plan_neg.get(kind, 0) + len(items)
            texts += [("_unknown_", t, kind == "phonemes") for t in items]
    others = dictionary_words(6000, rng)
    banned = [phrase_words(p) for p in cfg.phrases]

    def holds_phrase(text: str) -> bool:
        w = text.split()
        return any(w[i : i + len(b)] == b for b in banned for i in range(len(w) - len(b) + 1))

    n_seq = cfg.other_words // 3
    singles = [str(w) for w in rng.choice(others, cfg.other_words - n_seq)]
    seqs = [" ".join(rng.choice(others, int(rng.integers(2, 5)))) for _ in range(n_seq)]
    other_texts = [t for t in singles + seqs if not holds_phrase(t)]

    jobs: list[tuple[str, str, bool, object, int]] = []  # (folder, text, phonemes, voice, seed)
    for lab, p in zip(labels, cfg.phrases):
        jobs += [(lab, p, False, v, int(rng.integers(1 << 31))) for v in voices]
    neg_texts = [texts[i] for i in rng.choice(len(texts), cfg.near_misses * len(cfg.phrases))] if texts else []
    neg_texts += [("_unknown_", t, False) for t in other_texts]
    phoneme_voices = [v for v in voices if v.engine in ("espeak-ng", "piper")] or voices  # the engines that read phonemes
    for folder, t, ph in neg_texts:
        v = phoneme_voices[int(rng.integers(len(phoneme_voices)))] if ph else voices[int(rng.integers(len(voices)))]
        jobs.append((folder, t, ph, v, int(rng.integers(1 << 31))))

    tmp = root.with_name(f".{root.name}.hearkit-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for d in labels + ["_unknown_", "_silence_", "_background_noise_"]:
        (tmp / d).mkdir(parents=True)
    try:
        val_list: list[str] = []
        counts = {lab: 0 for lab in labels} | {"_unknown_": 0, "_silence_": 0, "skipped": 0}
        status = StatusLine()

        def run(i_job):
            i, (folder, text, ph, voice, seed) = i_job
            r = np.random.default_rng(seed)
            try:
                word = speak(text, voice, SAMPLE_RATE, phonemes=ph)
            except SynthError:
                return i, folder, voice, None
            return i, folder, voice, realise(word, n, r, cfg.reverb, cfg.bandlimit)

        with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
            for done, (i, folder, voice, clip) in enumerate(pool.map(run, enumerate(jobs)), 1):
                if clip is None:
                    counts["skipped"] += 1
                else:
                    rel = f"{folder}/{voice.key}_nohash_{i}.flac"
                    sf.write(tmp / rel, clip, SAMPLE_RATE, subtype="PCM_16")
                    counts[folder] += 1
                    if voice.key in val_keys:
                        val_list.append(rel)
                status.show(f"data wakeword: synthesised {done}/{len(jobs)} clips ({time.perf_counter() - t0:.0f} s)",
                            100 * done / len(jobs))
        status.close()
        if mute := [p for lab, p in zip(labels, cfg.phrases) if counts[lab] == 0]:
            raise ConfigError(f"phrase {mute[0]!r}: none of the {len(voices)} voices said it in a {window:g} s window")

        if cfg.recordings:
            counts["real_positive_recordings"] = _add_recordings(cfg, labels, n, rng, tmp)
            log(f"data wakeword: {counts['real_positive_recordings']} real recordings of the phrases, "
                f"{cfg.recording_repeats} copies each, for training")
            for lab in labels:
                counts[lab] = sum(1 for _ in (tmp / lab).iterdir())
        # real negatives: windows of the user's recordings, none whose transcript holds a phrase
        left_out: dict[str, int] = {}
        if cfg.negatives:
            files, left_out = negative_files(list(cfg.negatives), list(cfg.phrases))
            held = _held_out(cfg.negatives)
            files = [f for f in files if str(Path(f).resolve()) not in held]
            windows = _cut_windows(files, cfg.negative_windows, n, rng)
            origin = _common_folder(cfg.negatives)
            for j, (src, w) in enumerate(windows):
                # named by the file's path under the sources' common folder, not its absolute path: the
                # same sources elsewhere (another machine, or the demo's own -o) give the same set
                digest = hashlib.sha1(os.path.relpath(Path(src).resolve(), origin).encode()).hexdigest()
                rel = f"_unknown_/real{digest[:10]}_nohash_{j}.flac"
                sf.write(tmp / rel, w, SAMPLE_RATE, subtype="PCM_16")
                counts["_unknown_"] += 1
                if int(digest, 16) % 100 < 100 * cfg.val_share:
                    val_list.append(rel)
            counts["real_negative_windows"] = len(windows)
            log(f"data wakeword: {len(files)} real negative files ({sum(left_out.values())} left out: transcript holds a phrase)")
        for j, w in enumerate(_noise_clips(cfg.noise, cfg.silence, n, rng)):
            rel = f"_silence_/noise_{j:05d}.flac"
            sf.write(tmp / rel, w, SAMPLE_RATE, subtype="PCM_16")
            counts["_silence_"] += 1
            if j % 10 == 0:
                val_list.append(rel)
        for j, w in enumerate(_noise_clips(cfg.noise, 6, 30 * SAMPLE_RATE, rng)):
            sf.write(tmp / "_background_noise_" / f"noise_{j}.flac", w, SAMPLE_RATE, subtype="PCM_16")
        write_text(tmp / "validation_list.txt", "\n".join(sorted(val_list)) + "\n")
        write_text(tmp / "testing_list.txt", "")
        summary = {
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "labels": labels, "window_seconds": window, "clips": counts, "validation_clips": len(val_list),
            "voices": {"total": len(voices), "validation": n_val, "engines": {e: sum(v.engine == e for v in voices) for e in engines},
                       "piper_voices": [os.path.abspath(q) for q in cfg.piper_voices]},
            "negative_texts": plan_neg | {"other": len(other_texts)}, "left_out": left_out,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        write_text(tmp / "wakeword.json", json.dumps(summary, indent=2) + "\n")
        if root.exists():
            shutil.rmtree(root)  # checked above: empty, or a set this function wrote (wakeword.json)
        os.replace(tmp, root)
    except BaseException:  # a failure or Ctrl-C leaves no half-written set behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"data wakeword: {sum(counts[lab] for lab in labels)} positives, {counts['_unknown_']} negatives, "
        f"{counts['_silence_']} silence clips of {window:g} s ({len(val_list)} for validation) in {summary['seconds']:.0f} s -> {root}")
    return summary


def trimmed_recording(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A real recording cut to its utterance plus ``RECORDING_MARGIN_S`` each side: the frames
    ``OVER_FLOOR_DB`` above the recording's own noise floor (and within 35 dB of its peak), the rule
    training aligns clips by, as synthetic clips carry no lead-in."""
    from hearkit.evaluate.detector import OVER_FLOOR_DB, utterance_extent

    a, b = utterance_extent(x, sample_rate, above_floor_db=OVER_FLOOR_DB)
    m = int(round(RECORDING_MARGIN_S * sample_rate))
    return x[max(0, a - m) : min(len(x), b + m)]


def _add_recordings(cfg: WakewordConfig, labels: list[str], n: int, rng: np.random.Generator, tmp: Path) -> int:
    """Write ``cfg.recording_repeats`` copies of every real recording of a phrase into its label folder.

    Each recording is first cut to its utterance (``trimmed_recording``: its own background noise
    would otherwise count as speech, and a word that ends 0.5 s before the end of its 1-s clip
    teaches a detector to fire that late), then each copy sits at a random place in the
    ``n``-sample window at a random level (as synthetic positives do, without a simulated room:
    the recording has its own). All go to training: the validation split stays the held-out
    synthetic voices, so it still measures unseen speakers. Returns the number of recordings.
    """
    import soundfile as sf

    from hearkit.audio import load_audio
    from hearkit.evaluate.detector import positive_files

    found = positive_files(list(cfg.recordings), labels)
    total = 0
    for lab, paths in found.items():
        for src in paths:
            x = trimmed_recording(load_audio(src, SAMPLE_RATE)[0], SAMPLE_RATE)
            if len(x) > n:  # longer than the window: keep the loudest window-long stretch of it
                c = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
                start = int(np.argmax(c[n:] - c[:-n]))
                x = x[start : start + n]
            key = "rec" + hashlib.sha1(str(Path(src).resolve()).encode()).hexdigest()[:10]
            for k in range(cfg.recording_repeats):
                clip = realise(x, n, rng, reverb=0.0, bandlimit=0.0)
                sf.write(tmp / lab / f"{key}_nohash_{k}.flac", clip, SAMPLE_RATE, subtype="PCM_16")
            total += 1
    return total


def _common_folder(sources: Sequence[str | os.PathLike]) -> str:
    """The deepest folder holding every source (a manifest file counts as its folder)."""
    dirs = [str(p if p.is_dir() else p.parent) for p in (Path(s).resolve() for s in sources)]
    return os.path.commonpath(dirs)


def _held_out(sources: Sequence[str]) -> set[str]:
    """Files a source folder lists in ``validation_list.txt`` / ``testing_list.txt``: never cut for training."""
    held: set[str] = set()
    for s in sources:
        d = Path(s)
        for name in ("validation_list.txt", "testing_list.txt"):
            f = d / name
            if d.is_dir() and f.is_file():
                held |= {str((d / ln.strip()).resolve()) for ln in f.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()}
    return held


def mine_hard_negatives(
    model: str | os.PathLike,
    negatives: Sequence[str | os.PathLike],
    set_dir: str | os.PathLike,
    windows: int = 2000,
    min_score: float = 0.2,
    hop_seconds: float | None = None,
    batch: int = 64,
    log: Callable[[str], None] = lambda m: None,
) -> dict:
    """Add the negative windows a keyword model scores highest to ``set_dir/_unknown_`` (training only).

    The negatives are streamed back to back, as in :mod:`hearkit.evaluate.detector`, and every
    hop's window is scored; windows whose best keyword probability reaches ``min_score``
    are kept, one per second (the peak), and the ``windows`` highest of them are written.
    These are what the model would fire on: a fine-tuning stage on them (``train classify
    --init``) aims at false alarms per hour rather than at clip accuracy.

    Args:
        model: an export folder, bundle or classification ONNX file.
        negatives: folders or manifests (clips whose transcript holds a phrase, or that a
            ``validation_list.txt`` names, are left out).
        set_dir: a set written by ``hearkit data wakeword`` (its labels must be the model's).
        windows: most windows to add (Default: 2000).
        min_score: lowest keyword probability worth adding (Default: 0.2).
        hop_seconds: time between scored windows (Default: the spotter's, 0.1 s, or 0.08 s on the
            speech embedding).
        batch: windows scored per ONNX call (Default: 64).

    An export folder or bundle is streamed as a ``KeywordSpotter`` streams it (each front-end
    frame once, :class:`~hearkit.classify.StreamingScorer`); a single file scores each window
    whole (on the speech embedding that is about 13 times the CPU).

    Returns:
        a summary: windows added, scored, hours streamed, score quantiles.
    """
    from hearkit.classify import OnnxScorer, SlidingWindow, StreamingScorer, default_hop_seconds, is_background_label, softmax
    from hearkit.evaluate.detector import negative_files, negative_stream

    root = Path(set_dir)
    if not (root / "wakeword.json").is_file():
        raise ConfigError(f"{root}: not a set `hearkit data wakeword` wrote (no wakeword.json)")
    scorer = OnnxScorer(model)
    labels = list(scorer.info.labels)
    if sorted(json.loads((root / "wakeword.json").read_text())["labels"]) != sorted(
            lab for lab in labels if not is_background_label(lab)):
        raise ConfigError(f"{model}: its labels {labels} are not the set's phrases")
    phrases = [lab for lab in labels if not is_background_label(lab)]
    kw = np.array([labels.index(p) for p in phrases])
    sr, n = scorer.info.frontend.sample_rate, int(scorer.info.window_samples)
    files, left_out = negative_files(list(negatives), [p.replace("_", " ") for p in phrases])
    held = _held_out([str(s) for s in negatives])
    files = [f for f in files if str(Path(f).resolve()) not in held]
    hop = int(round((hop_seconds if hop_seconds is not None else default_hop_seconds(scorer.info.frontend, scorer.info.model)) * sr))
    win = SlidingWindow(n, hop)
    streamer = (StreamingScorer(model, n, hop) if Path(model).is_dir()
                and StreamingScorer.can_stream(scorer.info.frontend, n, hop) else None)
    cands: list[tuple[float, int, np.ndarray]] = []  # (score, end sample, window)
    pending: list[tuple[np.ndarray, int]] = []
    scored = 0

    def consider(s: float, end: int, w: np.ndarray) -> None:
        if s >= min_score:
            if cands and end - cands[-1][1] < sr and s <= cands[-1][0]:
                return  # one per second: keep the peak
            if cands and end - cands[-1][1] < sr:
                cands.pop()
            cands.append((float(s), end, w.copy()))

    def flush_batch():
        nonlocal scored
        if not pending:
            return
        x = np.stack([w for w, _ in pending])
        p = softmax(scorer(x))[:, kw].max(axis=1)
        scored += len(pending)
        for (w, end), s in zip(pending, p):
            consider(s, end, w)
        pending.clear()

    recent = np.zeros(n + hop, np.float32)  # the stream's last samples (zeros before it), for the windows' audio
    for block in negative_stream(files, sr):
        if streamer is None:
            for w, end in win.push(block):
                pending.append((w, end))
                if len(pending) >= batch:
                    flush_batch()
            continue
        recent = np.concatenate([recent[-(n + hop) :], block])  # a window and an unfinished hop before it
        for logits, end in streamer.push(block):
            stop = recent.size - (streamer.samples_received - end)
            consider(float(softmax(logits)[kw].max()), end, recent[stop - n : stop])
            scored += 1
    flush_batch()
    cands.sort(key=lambda c: -c[0])
    keep = cands[:windows]
    dest = root / "_unknown_"
    for i, (s, end, w) in enumerate(keep):
        write_audio(dest / f"hard{end:x}_nohash_{i}.flac", w, sr, subtype="PCM_16")
    hours = (win.samples_seen if streamer is None else streamer.samples_seen) / sr / 3600
    summary = {"added": len(keep), "candidates": len(cands), "scored_windows": scored, "hours": round(hours, 3),
               "files": len(files), "left_out": left_out,
               "score_quantiles": [float(q) for q in np.quantile([c[0] for c in keep], [0, 0.5, 1])] if keep else []}
    info = json.loads((root / "wakeword.json").read_text())
    info.setdefault("hard_negatives", []).append({"model": str(model), **summary})
    write_text(root / "wakeword.json", json.dumps(info, indent=2) + "\n")
    log(f"data mine: {len(keep)} hard negatives (of {len(cands)} windows scoring >= {min_score}) from {hours:.2f} h -> {dest}")
    return summary
