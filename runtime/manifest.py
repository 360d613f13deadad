"""Speech datasets as lists of (audio, text): NeMo JSONL manifests and LibriSpeech folders.

Torch-free, so ``hearkit eval --manifest`` runs on a device. Text is
normalised to the CTC alphabet by ``hearkit.text.normalize_text`` (lower-case
a-z, apostrophe, space; the same normaliser the word LM uses); every character
outside it is counted and reported in ``Manifest.dropped``, never dropped
silently.

NeMo manifest: one JSON object per line,
``{"audio_filepath": "a.flac", "duration": 1.23, "text": "hello world"}``,
with ``audio_filepath`` relative to the manifest's folder (or absolute).

LibriSpeech: ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` files whose
lines are ``<utt id> <TRANSCRIPT>``, with audio ``<utt id>.flac`` beside them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hearkit.errors import ConfigError, HearkitError
from hearkit.limits import LIMITS, check
from hearkit.files import atomic_open

from hearkit.text import normalize_text, text_lines

__all__ = ["Manifest", "ManifestError", "Utterance", "read_dataset", "read_librispeech", "read_manifest",
           "write_manifest"]


class ManifestError(HearkitError):
    """A manifest or dataset folder that cannot be read."""


@dataclass
class Utterance:
    """One utterance: absolute audio path, duration in seconds (None if unknown), normalised text."""

    audio: str
    text: str
    duration: float | None = None
    raw_text: str = ""
    speaker: str | None = None  # optional; written to manifests as "speaker" when known


@dataclass
class Manifest:
    """A list of utterances plus the characters normalisation had to drop.

    Attributes:
        utterances: the entries, in file order.
        dropped: characters outside the alphabet (after lower-casing and
            accent folding) -> count. Report them; never hide them.
        source: where it came from (for messages).
    """

    utterances: list[Utterance] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    source: str = "<manifest>"

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self):
        return iter(self.utterances)

    @property
    def hours(self) -> float:
        return sum(u.duration or 0.0 for u in self.utterances) / 3600.0

    def report(self) -> str:
        """One line: counts, hours and the characters dropped (if any)."""
        line = f"{self.source}: {len(self)} utterances, {self.hours:.3f} h"
        if self.dropped:
            chars = ", ".join(f"{c!r}x{n}" for c, n in self.dropped.most_common(20))
            line += f"; {sum(self.dropped.values())} characters outside the alphabet dropped: {chars}"
        return line


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read a NeMo JSONL manifest (see module docstring); text normalised, drops counted.

    Every line is checked against ``hearkit.limits`` (docs/design.md §13): at most
    ``text_line_bytes`` bytes of UTF-8, a duration from 0 to 24 h when given, a transcript
    of at most ``transcript_chars`` characters (a 10-MB one asked CTC training for 112 GB).

    Raises:
        ManifestError: naming the file and line.
    """
    path = Path(path)
    m = Manifest(source=str(path))
    base = path.parent
    for lineno, line in text_lines(path, "manifest", ManifestError):
        line = line.strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        try:
            d = json.loads(line)
        except ValueError as e:  # not JSON, or an integer of thousands of digits (Python's 4300-digit limit)
            raise ManifestError(f"{where}: not a JSON object ({e})") from e
        except RecursionError as e:  # "[[[[..." deeper than the parser's stack
            raise ManifestError(f"{where}: not a manifest line (JSON nested too deeply)") from e
        if not isinstance(d, dict) or "audio_filepath" not in d or "text" not in d:
            raise ManifestError(f"{where}: each line needs 'audio_filepath' and 'text' (and optionally 'duration')")
        if not isinstance(d["audio_filepath"], str) or not d["audio_filepath"] or "\0" in d["audio_filepath"]:
            raise ManifestError(f"{where}: 'audio_filepath' must be a non-empty path string, got {d['audio_filepath']!r:.80}")
        if isinstance(d["text"], (dict, list, bool)) or d["text"] is None:
            raise ManifestError(f"{where}: 'text' must be a string, got {d['text']!r:.80}")
        text = str(d["text"])
        if len(text) > LIMITS["transcript_chars"].hi:
            raise ManifestError(f"{where}: transcript of {len(text)} characters; at most "
                                f"{int(LIMITS['transcript_chars'].hi)} are allowed (one utterance, not a book)")
        audio = Path(d["audio_filepath"])
        if not audio.is_absolute():
            audio = base / audio
        dur = d.get("duration")
        if dur is not None:
            try:  # json reads NaN, Infinity and 1e999 as floats
                dur = check("duration_s", dur, f"{where}: duration")
            except ConfigError as e:
                raise ManifestError(str(e)) from None
        m.utterances.append(Utterance(str(audio), normalize_text(text, m.dropped), dur, text, d.get("speaker")))
    if not m.utterances:
        raise ManifestError(f"{path}: manifest has no entries")
    return m


def read_librispeech(root: str | os.PathLike) -> Manifest:
    """Read every ``*.trans.txt`` under ``root`` (LibriSpeech layout); audio is ``<id>.flac`` beside it."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: not a folder")
    m = Manifest(source=str(root))
    files = sorted(root.rglob("*.trans.txt"))
    if not files:
        raise ManifestError(f"{root}: no *.trans.txt files (LibriSpeech layout <spk>/<chapter>/<spk>-<chapter>.trans.txt)")
    for tf in files:
        for lineno, line in text_lines(tf, "transcript file", ManifestError):
            if not line.strip():
                continue
            parts = line.strip().split(maxsplit=1)
            utt = parts[0]
            text = parts[1] if len(parts) > 1 else ""
            if len(text) > LIMITS["transcript_chars"].hi:
                raise ManifestError(f"{tf}:{lineno}: transcript of {len(text)} characters; at most "
                                    f"{int(LIMITS['transcript_chars'].hi)} are allowed")
            audio = tf.parent / f"{utt}.flac"
            m.utterances.append(Utterance(str(audio), normalize_text(text, m.dropped), None, text))
    return m


def read_dataset(path: str | os.PathLike) -> Manifest:
    """A ``.json``/``.jsonl`` manifest file or a LibriSpeech folder."""
    p = Path(path)
    if p.is_dir():
        if (p / "manifest.jsonl").is_file():
            return read_manifest(p / "manifest.jsonl")
        if not any(p.rglob("*.trans.txt")):
            # most often a classification dataset (--data of a classifier) given to a CTC model
            labelled = any(d.is_dir() and not d.name.startswith(".") for d in p.iterdir())
            raise ManifestError(
                f"{p}: holds no manifest.jsonl and no LibriSpeech *.trans.txt"
                + (" (it looks like a labelled classification dataset)" if labelled else "")
                + "; this is a CTC (speech-to-text) model: it takes --manifest M.jsonl with transcripts, "
                "a folder holding manifest.jsonl, or a LibriSpeech folder")
        return read_librispeech(p)
    return read_manifest(p)


def write_manifest(utterances, path: str | os.PathLike) -> Path:
    """Write utterances as a NeMo JSONL manifest, audio paths relative to its folder when inside it."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8") as f:  # temporary file + fsync + rename (hearkit.files)
        for u in utterances:
            a = Path(u.audio)
            try:
                a = a.resolve().relative_to(path.parent.resolve())
            except ValueError:
                pass
            d = {"audio_filepath": str(a), "duration": round(float(u.duration or 0.0), 3), "text": u.text}
            if u.speaker is not None:
                d["speaker"] = u.speaker
            f.write(json.dumps(d) + "\n")
    return path


def join_manifests(sources, out: str | os.PathLike, force: bool = False) -> tuple[Path, Manifest]:
    """Join manifests (files, or folders holding ``manifest.jsonl``) into one; return (written path, joined).

    Audio paths stay valid wherever the result is written (relative to it when inside its
    folder, else absolute). ``out`` ending in ``.jsonl``/``.json`` is the file itself, any
    other path a folder that gets ``manifest.jsonl``.

    Raises:
        ManifestError: a source cannot be read, or the output exists and ``force`` is not set.
    """
    out = Path(out)
    target = out if out.suffix in (".jsonl", ".json") else out / "manifest.jsonl"
    if target.exists() and not force:
        raise ManifestError(f"{target} exists; choose another output or pass --force to replace it")
    sources = list(sources)
    if not sources:
        raise ManifestError("give at least one manifest to join")
    joined = Manifest(source=str(target))
    for src in sources:
        m = read_dataset(src)
        joined.utterances.extend(m.utterances)
        joined.dropped.update(m.dropped)
    write_manifest(joined.utterances, target)
    return target, joined
