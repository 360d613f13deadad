"""Offline speech synthesis with every engine the Debian archive offers, as many distinct speakers.

Engines (Debian packages, nothing downloaded at run time):

- ``espeak-ng``: a formant synthesiser with many accents and voice variants; rate, pitch and
  word gaps are its own options. Robotic, but the widest spread of voices.
- ``flite``: CMU's voices ``kal``, ``kal16``, ``awb``, ``rms``, ``slt`` (diphone and clustergen);
  rate through ``duration_stretch``.
- ``festival`` (``text2wave``) with the festvox voices installed (``kal_diphone``, ``ked_diphone``,
  ``cmu_us_slt_arctic_hts``); rate through ``Duration_Stretch`` (the HTS voice ignores it).

A handful of engine voices becomes many speakers by ``warp``: resampling the synthesized
audio by a factor moves formants and pitch together, as a longer or shorter vocal tract
does (the waveform counterpart of the trainer's VTLP), and changes the rate with them.

Every synthesised clip is float32 mono at the rate asked for, with its leading and
trailing silence cut. This module is the one caller of the engines: the wake-word sets,
the demo's keyword set and ``hearkit data synth``'s sentences all speak through ``speak``.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearkit.errors import HearkitError

ENGINES = ("espeak-ng", "flite", "festival")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029", "en-gb-x-gbcwmd",
                  "en-us-nyc")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie",
                   "Denis", "Gene", "Henrique", "Jacky", "Lee", "Mario", "Michael", "Mr serious", "Storm", "Tweaky",
                   "anika", "belinda", "boris", "david", "edward", "iven", "john", "kaukovalta", "linda", "max",
                   "michel", "norbert", "paul", "quincy", "rob", "steph", "travis", "victor", "zac")
FLITE_VOICES = ("kal16", "awb", "rms", "slt", "kal")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
DEBIAN_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite",
                   "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"}
ESPEAK_WPM = 170              # espeak-ng's speaking rate at Voice.rate 1, words per minute
WARP_RANGE = (0.88, 1.14)      # resampling factor: about +-2 semitones of pitch, +-13 % formants
RATE_RANGE = (0.8, 1.25)       # speaking-rate factor where the engine sets it
SYNTH_TIMEOUT_S = 60           # one engine call
TRIM_THRESHOLD = 1e-3          # a clip with no |sample| above this is silent
TRIM_KEEP = 320                # samples of margin kept at each end (20 ms at 16 kHz)
# trim_mode="level": cut only samples below TRIM_THRESHOLD, keeping this many samples of the engine's
# rate (18 ms at espeak's 22.05 kHz). The demo's keyword set and `hearkit data synth` were
# measured with this simpler trim, which keeps the breaths that trim_mode="extent" cuts.
LEVEL_TRIM_KEEP = 400
TRIM_MODES = ("extent", "level")


class SynthError(HearkitError):
    """A synthesiser is missing or failed; the message gives the Debian package."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Attributes:
        engine: one of ``ENGINES``.
        name: the engine's voice (espeak ``accent+variant``, flite ``slt``, festival ``kal_diphone``).
        rate: speaking-rate factor, > 1 faster (Default: 1; engines that cannot set it ignore it).
        pitch: espeak pitch 0..99 (Default: 50; other engines keep their own).
        warp: resampling factor applied after synthesis; > 1 raises formants and pitch
            and shortens the clip (Default: 1).
        gap_ms: extra pause between words, espeak only (Default: 0).
    """

    engine: str
    name: str
    rate: float = 1.0
    pitch: int = 50
    warp: float = 1.0
    gap_ms: int = 0

    @property
    def key(self) -> str:
        """A short name for file names: engine, voice, and the rounded settings."""
        base = re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-")
        return f"{self.engine.split('-')[0]}-{base}-r{self.rate:.2f}-p{self.pitch}-w{self.warp:.3f}-g{self.gap_ms}"


def engine_binary(engine: str) -> str:
    """Path of the engine's program; ``SynthError`` with the Debian package when it is missing."""
    exe = shutil.which({"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}[engine])
    if not exe:
        raise SynthError(f"{engine} is not installed: apt-get install {DEBIAN_PACKAGES[engine]}")
    return exe


def available_voices() -> dict[str, tuple[str, ...]]:
    """The engine voices installed here, by engine (engines that are missing are left out)."""
    out: dict[str, tuple[str, ...]] = {}
    if shutil.which("espeak-ng"):
        out["espeak-ng"] = tuple(f"{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS)
    if shutil.which("flite"):
        r = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S)
        have = set(r.stdout.replace("Voices available:", "").split())
        if voices := tuple(v for v in FLITE_VOICES if v in have):
            out["flite"] = voices
    if shutil.which("text2wave"):
        have = {p.name for p in FESTIVAL_VOICE_DIR.glob("*/*") if p.is_dir()}
        if voices := tuple(v for v in FESTIVAL_VOICES if v in have):
            out["festival"] = voices
    return out


def _run(cmd: list[str], engine: str, stdin: str | None = None) -> None:
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise SynthError(f"{engine} did not finish in {SYNTH_TIMEOUT_S} s") from e
    if r.returncode != 0:
        raise SynthError(f"{engine} failed: {(r.stderr or r.stdout).strip()[:200]}")


def speak(text: str, voice: Voice, sample_rate: int = 16000, phonemes: bool = False,
          trim_mode: str = "extent") -> np.ndarray:
    """Synthesise ``text`` (or, with ``phonemes``, an espeak phoneme string) as float32 mono at ``sample_rate``.

    Args:
        text: what to say.
        voice: the speaker (engine, voice, rate, pitch, warp, word gaps).
        sample_rate: rate of the result in Hz (Default: 16000).
        phonemes: ``text`` is an espeak phoneme string (espeak-ng only; Default: False).
        trim_mode: ``"extent"`` cuts the audio quieter than the utterance (``trim``, Default);
            ``"level"`` cuts only near-silent samples (``trim_level``), as the demo and
            ``hearkit data synth`` were measured with.

    Returns:
        float32 (samples,) at ``sample_rate``.
    """
    import soundfile as sf

    from hearkit.audio import resample

    if phonemes and voice.engine != "espeak-ng":
        raise SynthError("phoneme input needs espeak-ng")
    if trim_mode not in TRIM_MODES:
        raise SynthError(f"trim_mode must be one of {list(TRIM_MODES)}, got {trim_mode!r}")
    exe = engine_binary(voice.engine)
    with tempfile.TemporaryDirectory(prefix="hearkit-tts-") as tmp:
        wav = os.path.join(tmp, "out.wav")
        if voice.engine == "espeak-ng":
            words_per_min = int(round(ESPEAK_WPM * voice.rate))
            say = f"[[{text}]]" if phonemes else text
            _run([exe, "-w", wav, "-v", voice.name, "-s", str(words_per_min), "-p", str(int(voice.pitch)),
                  "-g", str(max(0, int(voice.gap_ms) // 10)), say], voice.engine)
        elif voice.engine == "flite":
            _run([exe, "-voice", voice.name, "--setf", f"duration_stretch={1 / voice.rate:.3f}", "-t", text, "-o", wav],
                 voice.engine)
        elif voice.engine == "festival":
            _run([exe, "-eval", f"(voice_{voice.name})", "-eval", f"(Parameter.set 'Duration_Stretch {1 / voice.rate:.3f})",
                  "-o", wav], voice.engine, stdin=text)
        else:
            raise SynthError(f"unknown engine {voice.engine!r}; allowed: {list(ENGINES)}")
        x, sr = sf.read(wav, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    x = trim_level(x) if trim_mode == "level" else trim(x, sr)
    if x.size == 0:
        raise SynthError(f"{voice.engine} voice {voice.name} produced no audio for {text!r}")
    # warp: play the clip `warp` times faster, i.e. read it as if sampled at sr * warp
    return resample(x, int(round(sr * voice.warp)), sample_rate)


def trim(x: np.ndarray, sample_rate: int, keep: int = TRIM_KEEP) -> np.ndarray:
    """Cut the leading/trailing audio quieter than the utterance (``utterance_extent``), keeping ``keep`` samples of margin.

    Engines end clips with breaths and low-level tails (flite's up to 0.5 s) that are no part of the word.
    """
    from hearkit.evaluate.detector import utterance_extent

    if not np.any(np.abs(x) > TRIM_THRESHOLD):
        return x[:0]
    a, b = utterance_extent(x, sample_rate)
    return x[max(0, a - keep) : b + keep]


def trim_level(x: np.ndarray, threshold: float = TRIM_THRESHOLD, keep: int = LEVEL_TRIM_KEEP) -> np.ndarray:
    """Cut leading/trailing samples below ``threshold``, keeping ``keep`` samples of margin (all kept if none is above)."""
    idx = np.flatnonzero(np.abs(x) > threshold)
    if idx.size == 0:
        return x
    return x[max(0, idx[0] - keep) : idx[-1] + keep]


def espeak_voices(n: int, seed: int = 0, accents: Sequence[str] = ESPEAK_ACCENTS,
                  variants: Sequence[str] = ESPEAK_VARIANTS, words_per_min: tuple[int, int] = (120, 210),
                  pitch: tuple[int, int] = (20, 80)) -> list[Voice]:
    """``n`` espeak-ng speakers: accent x variant x speed x pitch, reproducible from ``seed`` (no warp, no gaps).

    The demo's keyword set draws its speakers here; a seed gives the same speakers as the
    demo's figures were measured with, as long as ``accents`` and ``variants`` are the same.

    Args:
        n: speakers wanted (repeats possible).
        seed: seed of a ``random.Random`` (Default: 0).
        accents: espeak-ng voices to draw from (Default: ``ESPEAK_ACCENTS``).
        variants: voice variants to draw from (Default: ``ESPEAK_VARIANTS``).
        words_per_min: inclusive range of the speaking rate in words per minute (Default: 120..210).
        pitch: inclusive range of espeak's pitch, 0..99 (Default: 20..80).
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        # draw order accent, variant, rate, pitch: changing it changes every seed's speakers
        name = f"{rng.choice(accents)}+{rng.choice(variants)}"
        wpm = rng.randint(*words_per_min)
        out.append(Voice(engine="espeak-ng", name=name, rate=wpm / ESPEAK_WPM, pitch=rng.randint(*pitch)))
    return out


def random_voices(n: int, seed: int = 0, engines: dict[str, tuple[str, ...]] | None = None,
                  share: dict[str, float] | None = None) -> list[Voice]:
    """``n`` distinct speakers drawn over the installed engines, reproducible from ``seed``.

    Args:
        n: speakers wanted.
        seed: random seed (Default: 0).
        engines: engine voices to draw from (Default: ``available_voices()``).
        share: fraction of speakers per engine (Default: espeak-ng 0.5, flite 0.25, festival 0.25,
            renormalised over the engines present). The few natural-sounding diphone and
            clustergen voices get many warps and rates each; espeak brings accents.
    """
    engines = available_voices() if engines is None else engines
    if not engines:
        raise SynthError("no speech synthesiser is installed: apt-get install " + " ".join(DEBIAN_PACKAGES.values()))
    share = share or {"espeak-ng": 0.5, "flite": 0.25, "festival": 0.25}
    weights = np.array([share.get(e, 0.0) for e in engines])
    if weights.sum() <= 0:
        weights = np.ones(len(engines))
    rng = random.Random(seed)
    names = list(engines)
    out, seen = [], set()
    while len(out) < n:
        e = rng.choices(names, weights=list(weights))[0]
        v = Voice(
            engine=e,
            name=rng.choice(engines[e]),
            rate=round(rng.uniform(*RATE_RANGE), 2),
            pitch=rng.randint(20, 80) if e == "espeak-ng" else 50,
            warp=round(rng.uniform(*WARP_RANGE), 3),
            gap_ms=rng.choice((0, 0, 50, 120)) if e == "espeak-ng" else 0,
        )
        if v.key not in seen:
            seen.add(v.key)
            out.append(v)
    return out


def _clause(text: str) -> str:
    """One clause for espeak: punctuation inside would split its phoneme output into several lines."""
    return " ".join(re.sub(r"[^\w' ]+", " ", text).split()) or "_"


def phonemes(texts: list[str], accent: str = "en-us") -> list[str]:
    """espeak-ng's phoneme strings (its ``-x`` ASCII notation) of each text, in one call."""
    if not texts:
        return []
    exe = engine_binary("espeak-ng")
    r = subprocess.run([exe, "-q", "-x", "-v", accent, "--stdin"], input="".join(_clause(t) + ".\n" for t in texts),
                       capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S * 5)
    if r.returncode != 0:
        raise SynthError(f"espeak-ng -x failed: {r.stderr.strip()[:200]}")
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    if len(lines) != len(texts):
        raise SynthError(f"espeak-ng -x gave {len(lines)} lines for {len(texts)} texts")
    return lines
