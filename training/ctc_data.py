"""Speech data for CTC training: connected words from isolated-word recordings.

The builder needs no torch (numpy, soundfile, soxr), so it sits behind
``hearkit data concat`` and runs wherever the recordings are. Sentences spoken
by espeak-ng (``hearkit data synth``) are synthesis: ``hearkit.recipes.sentences``.

Connected words (``build_concat``): utterances of 2..7 words, every word of one
utterance spoken by the SAME speaker, joined with random pauses and optional
background noise. The recordings are real; only the sequencing is made, as in
the classic connected-digits task. Speakers come from the file names:

    Speech Commands   <word>/<speaker>_nohash_<n>           (word = folder)
                      _unknown_/<word>_<speaker>_nohash_<n> (word = file name)
                      _silence_/<n>                         (background noise, no speaker)
    Free Spoken Digits <digit word>/<digit>_<speaker>_<n>

Splits come from the source's ``validation_list.txt`` / ``testing_list.txt``;
a speaker with any clip in a held-out list belongs wholly to that split, so no
speaker ever appears in two splits (the conflicting clips are counted and
left out, never moved).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hearkit.audio import load_audio, snr_gain
from hearkit.errors import ConfigError
from hearkit.files import write_audio, write_text
from hearkit.manifest import Utterance, write_manifest
from hearkit.text import normalize_text, text_lines

SAMPLE_RATE = 16000  # Hz, every utterance is written at this rate
AUDIO_EXTS = (".flac", ".wav", ".ogg", ".mp3")
SPLITS = ("train", "val", "test")
SPLIT_LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

TRIM_DB = 30.0  # trim a word clip where its 20 ms energy is this far below the clip's peak
TRIM_MARGIN_S = 0.05  # seconds kept before/after the trimmed word
PAUSE_S = (0.05, 0.5)  # seconds of pause between words (uniform)
EDGE_S = (0.05, 0.3)  # seconds of silence before the first / after the last word
GAIN_DB = 3.0  # per-word gain jitter, +- dB (one speaker's level varies a little)
NOISE_SNR_DB = (5.0, 30.0)  # SNR range of added background noise (uniform in dB)

_SC_STEM = re.compile(r"^(?:(?P<word>[a-z]+)_)?(?P<spk>[0-9a-f]{8})_nohash_\d+$")
_FSDD_STEM = re.compile(r"^(?P<digit>\d)_(?P<spk>[A-Za-z]+)_\d+$")


@dataclass(frozen=True)
class WordClip:
    """One isolated-word recording."""

    path: str
    word: str
    speaker: str  # "<source>/<speaker>", unique across sources
    split: str


@dataclass
class WordCorpus:
    """Word clips by split and speaker, plus the noise clips and what was left out."""

    clips: list[WordClip] = field(default_factory=list)
    noise: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # split -> paths
    skipped: Counter = field(default_factory=Counter)  # reason -> count

    def speakers(self, split: str) -> dict[str, list[WordClip]]:
        out: dict[str, list[WordClip]] = defaultdict(list)
        for c in self.clips:
            if c.split == split:
                out[c.speaker].append(c)
        return dict(out)


def parse_clip_name(stem: str, folder: str) -> tuple[str, str] | None:
    """(word, speaker) of a clip from its folder and file stem, or None if the name has no speaker."""
    m = _SC_STEM.match(stem)
    if m:
        if folder == "_unknown_":
            return (m.group("word"), m.group("spk")) if m.group("word") else None
        return folder, m.group("spk")
    m = _FSDD_STEM.match(stem)
    if m:
        digit_word = DIGIT_WORDS[int(m.group("digit"))]
        return (folder if folder in DIGIT_WORDS else digit_word), m.group("spk")
    return None


def _read_list(root: Path, name: str) -> set[str]:
    p = root / name
    if not p.exists():
        return set()
    # a FIFO, a non-UTF-8 byte or an endless line is one error naming the list (hearkit.text.text_lines)
    return {line.strip() for _, line in text_lines(p, "validation list") if line.strip()}


def _norm_rel(rel: str) -> str:
    # validation lists may name .wav while the folder holds .flac: compare without extension
    return os.path.splitext(rel.replace("\\", "/"))[0]


def scan_words(roots, noise_dirs=()) -> WordCorpus:
    """Index the word clips of one or more dataset roots (see module docstring).

    Args:
        roots: dataset folders whose sub-folders are words (``speech_commands``,
            ``fsdd``), or a single word folder holding audio files directly.
        noise_dirs: extra folders of background noise (used in every split).

    Returns:
        A ``WordCorpus``; a speaker is assigned to exactly one split.
    """
    corpus = WordCorpus()
    for root in map(Path, roots):
        if not root.is_dir():
            raise ConfigError(f"--words {root}: not a folder")
        lists = {s: {_norm_rel(x) for x in _read_list(root, f)} for s, f in SPLIT_LISTS.items()}
        direct = [p for p in sorted(root.iterdir()) if p.suffix.lower() in AUDIO_EXTS]
        if direct:  # a single word folder: the folder name is the word
            folders = [(root, root.name, root.parent)]
        else:
            folders = [(d, d.name, root) for d in sorted(root.iterdir()) if d.is_dir()]
        found = []
        for folder, name, base in folders:
            files = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_EXTS]
            rels = {p: _norm_rel(str(p.relative_to(base))) for p in files}
            if name == "_silence_" or name == "_background_noise_":
                for p in files:
                    split = next((s for s in ("test", "val") if rels[p] in lists[s]), "train")
                    corpus.noise[split].append(str(p))
                continue
            if name.startswith("_") and name != "_unknown_":
                corpus.skipped[f"folder {name} (not a word)"] += len(files)
                continue
            for p in files:
                parsed = parse_clip_name(p.stem, name)
                if parsed is None:
                    corpus.skipped["no speaker in file name"] += 1
                    continue
                word, spk = parsed
                word = normalize_text(word)
                split = next((s for s in ("test", "val") if rels[p] in lists[s]), "train")
                found.append(WordClip(str(p), word, f"{root.name}/{spk}", split))
        # A speaker with any held-out clip is held out entirely (test before val).
        spk_split: dict[str, str] = {}
        for c in found:
            cur = spk_split.get(c.speaker, "train")
            spk_split[c.speaker] = max(cur, c.split, key=lambda s: {"train": 0, "val": 1, "test": 2}[s])
        for c in found:
            if c.split != spk_split[c.speaker]:
                corpus.skipped[f"speaker of a {spk_split[c.speaker]} clip listed as {c.split}"] += 1
                continue
            corpus.clips.append(c)
    for d in map(Path, noise_dirs):
        if not d.is_dir():
            raise ConfigError(f"--noise-dir {d}: not a folder")
        files = [str(p) for p in sorted(d.rglob("*")) if p.suffix.lower() in AUDIO_EXTS]
        for s in SPLITS:
            corpus.noise[s].extend(files)
    if not corpus.clips:
        raise ConfigError(f"no word clips with a speaker in the file name under {list(map(str, roots))}")
    return corpus


def trim_word(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Cut leading/trailing silence (energy below peak - TRIM_DB in 20 ms frames), keep a margin."""
    hop = sr // 50
    n = len(x) // hop
    if n < 3:
        return x
    e = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    on = np.nonzero(e > e.max() - TRIM_DB)[0]
    margin = int(TRIM_MARGIN_S * sr)
    a = max(0, on[0] * hop - margin)
    b = min(len(x), (on[-1] + 1) * hop + margin)
    return x[a:b]


class _Cache:
    """Decoded + trimmed clips, kept in memory (the word sets are small: ~100 MB for an hour)."""

    def __init__(self, trim: bool = True):
        self.trim = trim
        self._d: dict[str, np.ndarray] = {}

    def get(self, path: str) -> np.ndarray:
        x = self._d.get(path)
        if x is None:
            x, _ = load_audio(path, SAMPLE_RATE)
            if self.trim:
                x = trim_word(x)
            self._d[path] = x
        return x


def _add_noise(y: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    if len(noise) < len(y):  # loop the noise clip (1 s _silence_ cuts are shorter than utterances)
        noise = np.tile(noise, int(np.ceil(len(y) / len(noise))))
    start = rng.integers(0, len(noise) - len(y) + 1)
    n = noise[start : start + len(y)].astype(np.float64)
    ps = np.mean(y.astype(np.float64) ** 2) + 1e-12
    pn = np.mean(n**2) + 1e-12
    return (y + n * snr_gain(ps, pn, snr_db)).astype(np.float32)


def build_concat(
    roots,
    out_dir,
    split: str = "train",
    hours: float = 1.0,
    min_words: int = 2,
    max_words: int = 7,
    noise_dirs=(),
    noise_prob: float = 0.5,
    seed: int = 0,
    progress=None,
) -> dict:
    """Write connected-word utterances of ``split`` speakers as FLAC + ``manifest.jsonl``.

    Args:
        roots: word dataset folders (see ``scan_words``).
        out_dir: output folder; gets ``audio/*.flac``, ``manifest.jsonl`` and ``summary.json``.
        split: ``train`` | ``val`` | ``test``: which speakers to use.
        hours: total audio to generate, in hours.
        min_words, max_words: words per utterance (uniform, inclusive).
        noise_dirs: extra noise folders; ``_silence_`` clips of the same split are used too.
        noise_prob: probability that an utterance gets background noise (Default: 0.5).
        seed: RNG seed; the same arguments give the same files.
        progress: optional callable(seconds_done, seconds_total).

    Returns:
        The summary dict (also written to ``summary.json``): utterances, hours,
        speakers, word counts, skipped clips.
    """
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {list(SPLITS)}, got {split!r}")
    if not 1 <= min_words <= max_words:
        raise ConfigError(f"need 1 <= --min-words <= --max-words, got {min_words}, {max_words}")
    if hours <= 0:
        raise ConfigError(f"--hours must be > 0, got {hours}")
    corpus = scan_words(roots, noise_dirs)
    by_spk = corpus.speakers(split)
    if not by_spk:
        raise ConfigError(f"no speakers in split {split!r} under {list(map(str, roots))} (validation_list.txt / testing_list.txt)")
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    speakers = sorted(by_spk)
    # Pick speakers in proportion to their clip count, so every clip is about equally used.
    weights = np.array([len(by_spk[s]) for s in speakers], dtype=np.float64)
    weights /= weights.sum()
    noise_files = corpus.noise.get(split, [])
    cache = _Cache(trim=True)
    noise_cache = _Cache(trim=False)
    target = hours * 3600.0
    done = 0.0
    utts: list[Utterance] = []
    words_used: Counter = Counter()
    spk_used: Counter = Counter()
    while done < target:
        spk = speakers[rng.choice(len(speakers), p=weights)]
        clips = by_spk[spk]
        k = int(rng.integers(min_words, max_words + 1))
        # Without replacement inside one utterance while the speaker has enough clips.
        idx = rng.choice(len(clips), size=k, replace=len(clips) < k)
        parts = [np.zeros(int(rng.uniform(*EDGE_S) * SAMPLE_RATE), np.float32)]
        words = []
        for j, i in enumerate(idx):
            if j:
                parts.append(np.zeros(int(rng.uniform(*PAUSE_S) * SAMPLE_RATE), np.float32))
            w = cache.get(clips[i].path) * np.float32(10 ** (rng.uniform(-GAIN_DB, GAIN_DB) / 20))
            parts.append(w)
            words.append(clips[i].word)
        parts.append(np.zeros(int(rng.uniform(*EDGE_S) * SAMPLE_RATE), np.float32))
        y = np.concatenate(parts)
        if noise_files and rng.random() < noise_prob:
            y = _add_noise(y, noise_cache.get(noise_files[rng.integers(len(noise_files))]), rng.uniform(*NOISE_SNR_DB), rng)
        peak = float(np.abs(y).max())
        if peak > 0.99:  # gain jitter or noise may clip: scale down rather than clip
            y *= np.float32(0.99 / peak)
        path = out_dir / "audio" / f"{split}_{len(utts):06d}.flac"
        write_audio(path, y, SAMPLE_RATE, subtype="PCM_16")
        dur = len(y) / SAMPLE_RATE
        utts.append(Utterance(str(path), " ".join(words), dur, speaker=spk))
        words_used.update(words)
        spk_used[spk] += 1
        done += dur
        if progress is not None:
            progress(done, target)
    write_manifest(utts, out_dir / "manifest.jsonl")
    summary = {
        "split": split,
        "utterances": len(utts),
        "hours": round(done / 3600.0, 4),
        "speakers": sorted(spk_used),
        "words": dict(sorted(words_used.items())),
        "skipped": dict(corpus.skipped),
        "noise_clips": len(noise_files),
        "sources": [str(Path(r).resolve()) for r in roots],
        "seed": seed,
        "min_words": min_words,
        "max_words": max_words,
        "noise_prob": noise_prob,
    }
    write_text(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary
