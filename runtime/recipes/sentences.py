"""Sentences spoken by espeak-ng in many voices, rates and pitches: ``hearkit data synth``.

Each line of a text file becomes one or more utterances (FLAC at 16 kHz) and a line of
a NeMo-style ``manifest.jsonl`` whose text is the normalised sentence, so the audio
says exactly its label. Speech comes from :func:`hearkit.recipes.voices.speak`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from hearkit.errors import ConfigError
from hearkit.files import write_audio, write_text
from hearkit.manifest import Utterance, write_manifest
from hearkit.text import normalize_text
from hearkit.text import text_lines

SAMPLE_RATE = 16000  # Hz, every utterance is written at this rate
DEFAULT_VOICES = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)
DEFAULT_VARIANTS = ("", "m1", "m3", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Storm", "Adam")
RATE_WPM = (120, 200)  # espeak-ng -s range, words per minute
PITCH = (25, 75)  # espeak-ng -p range (0-99)
TRIM_MODE = "level"  # the trim these sets were measured with (hearkit.recipes.voices.LEVEL_TRIM_KEEP)


def read_sentences(path) -> list[str]:
    """Non-empty lines of a text file (one sentence per line), normalised; empties after normalising dropped."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"--text {p}: no such file")
    out = []
    for _, line in text_lines(p, "sentence file"):  # not UTF-8, a FIFO, an endless line: one error naming it
        if normalize_text(line):
            out.append(line.strip())
    if not out:
        raise ConfigError(f"--text {p}: no sentences (one per line)")
    return out


def build_synth(
    text_file,
    out_dir,
    voices=DEFAULT_VOICES,
    variants=DEFAULT_VARIANTS,
    per_sentence: int = 1,
    seed: int = 0,
    progress=None,
) -> dict:
    """Speak each sentence ``per_sentence`` times with random voice, variant, rate and pitch.

    espeak-ng writes 22.05 kHz WAV; it is resampled to 16 kHz (soxr) and saved
    as FLAC. The manifest text is the normalised sentence; characters the
    normaliser dropped are reported in ``summary.json``.

    Args:
        text_file: one sentence per line.
        out_dir: gets ``audio/*.flac``, ``manifest.jsonl``, ``summary.json``.
        voices: espeak-ng voice names (``espeak-ng --voices=en``).
        variants: voice variants (``espeak-ng --voices=variant``); ``""`` = none.
        per_sentence: renditions per sentence (Default: 1).
        seed: RNG seed.
        progress: optional callable(done, total).
    """
    from hearkit.recipes.voices import ESPEAK_WPM, Voice, engine_binary, speak

    engine_binary("espeak-ng")  # fail before any work when espeak-ng is missing
    sentences = read_sentences(text_file)
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    dropped: Counter = Counter()
    utts = []
    total = len(sentences) * per_sentence
    voices_used: Counter = Counter()
    for i, s in enumerate(sentences):
        text = normalize_text(s, dropped)
        for r in range(per_sentence):
            voice = voices[rng.integers(len(voices))]
            var = variants[rng.integers(len(variants))] if variants else ""
            v = f"{voice}+{var}" if var else voice
            rate = int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1))
            pitch = int(rng.integers(PITCH[0], PITCH[1] + 1))
            # Speak the normalised text: the audio then says exactly the label
            # (espeak would read digits or symbols in the raw line aloud).
            x = speak(text, Voice("espeak-ng", v, rate=rate / ESPEAK_WPM, pitch=pitch), SAMPLE_RATE, trim_mode=TRIM_MODE)
            path = out_dir / "audio" / f"synth_{i:05d}_{r:02d}.flac"
            write_audio(path, x, SAMPLE_RATE, subtype="PCM_16")
            utts.append(Utterance(str(path), text, len(x) / SAMPLE_RATE))
            voices_used[v] += 1
            if progress is not None:
                progress(len(utts), total)
    write_manifest(utts, out_dir / "manifest.jsonl")
    summary = {
        "utterances": len(utts),
        "hours": round(sum(u.duration for u in utts) / 3600, 4),
        "sentences": len(sentences),
        "voices": dict(voices_used),
        "dropped_characters": dict(dropped),
        "seed": seed,
    }
    write_text(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary
