"""Offline speech synthesis with espeak-ng (a Debian package): demo keyword sets and bootstrap data.

espeak-ng is a formant synthesiser: robotic, but offline, fast, and with many
accents and voice variants, so a set spoken in dozens of voices, rates and
pitches trains a model that also reacts to people. Nothing is downloaded.
"""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from hearkit.errors import HearkitError

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie",
            "Denis", "Gene", "Henrique", "Jacky", "Lee", "Mario", "Michael", "Mr serious", "Storm", "Tweaky",
            "anika", "belinda", "boris", "david", "edward", "iven", "john", "kaukovalta", "linda", "max", "michel",
            "norbert", "paul", "quincy", "rob", "steph", "travis", "victor", "zac")


class SynthError(HearkitError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class Voice:
    """One espeak-ng speaking style."""

    name: str = "en-us"  # espeak voice, "accent+variant"
    speed: int = 160  # words per minute
    pitch: int = 50  # 0..99
    gap: int = 0  # extra pause between words, in units of 10 ms


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise SynthError("espeak-ng is not installed: apt-get install espeak-ng (Debian/Ubuntu)")
    return exe


def speak(text: str, voice: Voice = Voice(), sample_rate: int = 16000) -> np.ndarray:
    """Speak ``text``; returns float32 mono at ``sample_rate``, leading/trailing silence kept short."""
    import soundfile as sf

    from hearkit.audio import resample

    cmd = [espeak_binary(), "--stdout", "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch),
           "-g", str(voice.gap), text]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    if r.returncode != 0 or not r.stdout:
        raise SynthError(f"espeak-ng failed for voice {voice.name!r}: {r.stderr.decode(errors='replace').strip()[:200]}")
    x, sr = sf.read(io.BytesIO(r.stdout), dtype="float32")
    if x.ndim == 2:
        x = x.mean(axis=1)
    return resample(trim(x), sr, sample_rate)


def trim(x: np.ndarray, threshold: float = 1e-3, keep: int = 400) -> np.ndarray:
    """Cut leading/trailing samples below ``threshold``, keeping ``keep`` samples of margin."""
    idx = np.flatnonzero(np.abs(x) > threshold)
    if idx.size == 0:
        return x
    return x[max(0, idx[0] - keep) : idx[-1] + keep]


def random_voices(n: int, seed: int = 0) -> list[Voice]:
    """``n`` distinct-ish voices: accent × variant × speed × pitch, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [
        Voice(
            name=f"{rng.choice(ACCENTS)}+{rng.choice(VARIANTS)}",
            speed=rng.randint(120, 210),
            pitch=rng.randint(20, 80),
        )
        for _ in range(n)
    ]
