"""Index labelled audio folders into examples with speaker-safe splits (torch-free).

Three layouts are understood (``FORMATS``); ``detect_format`` picks one when none is given:

``speech-commands``
    Google's layout: ``<label>/<clip>`` plus ``validation_list.txt`` and
    ``testing_list.txt`` (paths relative to the root). Clips in neither list are
    training clips. When both lists are absent or empty, the split is a
    deterministic hash of the speaker taken from the file name (Google's
    ``<speaker>_nohash_<n>`` convention), so no speaker crosses splits.
    ``_background_noise_`` holds long noise recordings for augmentation, never
    examples; ``_silence_``, when present as a folder, is a class like any other.
    With ``keywords`` given, other word folders become ``_unknown_``.
``urbansound8k``
    ``metadata.csv`` with ``slice_file_name,fold,classID,class`` and audio in
    ``fold<k>/``. The user picks the validation and test folds; every other
    fold trains. Rows whose audio is missing are reported and left out. A
    ``metadata.csv`` that lacks a column, is not UTF-8, or holds a fold or class
    id that is not a positive / non-negative integer is refused naming the file,
    line and column: indexing its folders as labels instead would train on folds.
``folders``
    ``<label>/<clip>``, nothing else. Split by speaker hash when the file name
    names a speaker (``speaker_pattern``), else by a hash of the file name.

The result is deterministic: examples are sorted by path, labels by name
(UrbanSound8K: by class id).
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hearkit.errors import ConfigError

FORMATS = ("speech-commands", "urbansound8k", "folders")
SPLITS = ("train", "val", "test")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")
BACKGROUND_NOISE_DIR = "_background_noise_"
SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
URBANSOUND_METADATA = "metadata.csv"
URBANSOUND_COLUMNS = ("slice_file_name", "fold", "classID", "class")
DEFAULT_VAL_PERCENT = 10.0  # hash split when no lists exist, as Google's input_data.which_set
DEFAULT_TEST_PERCENT = 10.0
_HASH_BUCKETS = 2**27 - 1  # Google's MAX_NUM_WAVS_PER_CLASS, keeps the split stable as data grows

# Speaker ids in file names: Google's "<speaker>_nohash_<n>" (optionally "<word>_" before),
# and Free Spoken Digits' "<digit>_<speaker>_<n>".
DEFAULT_SPEAKER_PATTERNS = (
    r"^(?:.*_)?(?P<speaker>[^_]+)_nohash_\d+$",
    r"^\d+_(?P<speaker>[A-Za-z][A-Za-z0-9-]*)_\d+$",
)


@dataclass(frozen=True)
class Example:
    """One labelled clip.

    Attributes:
        path: absolute path of the audio file.
        label: class name (an entry of ``DatasetIndex.labels``).
        split: ``train`` | ``val`` | ``test``.
        speaker: speaker id from the file name, or ``None`` (noise, sounds).
        fold: UrbanSound8K fold, else ``None``.
    """

    path: str
    label: str
    split: str
    speaker: str | None = None
    fold: int | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """The examples of a dataset and its label list.

    Attributes:
        root: the dataset folder.
        format: one of ``FORMATS``.
        labels: class names; a label's index is the model's output index.
        examples: every example, sorted by path.
        noise_files: background-noise recordings found in the dataset (``_background_noise_``).
        skipped: ``(path, reason)`` of entries left out (e.g. metadata rows without audio).
    """

    root: str
    format: str
    labels: tuple[str, ...]
    examples: tuple[Example, ...]
    noise_files: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def split(self, name: str) -> list[Example]:
        """The examples of one split (``train`` | ``val`` | ``test`` | ``all``)."""
        if name == "all":
            return list(self.examples)
        if name not in SPLITS:
            raise ConfigError(f"unknown split {name!r}; allowed: {list(SPLITS) + ['all']}")
        return [e for e in self.examples if e.split == name]

    def label_index(self, label: str) -> int:
        """Output index of a class name."""
        return self.labels.index(label)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {label: clips}}`` for a quick report."""
        out: dict[str, dict[str, int]] = {}
        for e in self.examples:
            out.setdefault(e.split, {}).setdefault(e.label, 0)
            out[e.split][e.label] += 1
        return out


# -- helpers --------------------------------------------------------------------
def _is_audio(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _is_audio(p))


def speaker_from_name(path: str | Path, patterns=DEFAULT_SPEAKER_PATTERNS) -> str | None:
    """The speaker id in a clip's file name (stem), or ``None`` when no pattern matches.

    Args:
        path: the clip's path or name.
        patterns: regular expressions with a ``speaker`` group, tried in order
            (Default: Google's ``<speaker>_nohash_<n>`` and FSDD's ``<digit>_<speaker>_<n>``).
    """
    stem = Path(path).stem
    if stem.endswith(".wav"):  # some copies are named *.wav.wav / *.wav.flac
        stem = stem[:-4]
    for pat in patterns:
        m = re.match(pat, stem)
        if m:
            return m.group("speaker")
    return None


def hash_split(key: str, val_percent: float = DEFAULT_VAL_PERCENT, test_percent: float = DEFAULT_TEST_PERCENT) -> str:
    """Deterministic split of a key (speaker id or file name): Google's ``which_set`` rule.

    The sha1 of the key picks a percentage; the same key always lands in the same
    split, whatever else is in the dataset.
    """
    h = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16)
    pct = (h % (_HASH_BUCKETS + 1)) * (100.0 / _HASH_BUCKETS)
    if pct < val_percent:
        return "val"
    if pct < val_percent + test_percent:
        return "test"
    return "train"


def _read_text(path: Path, what: str) -> str:
    """A text file as str (UTF-8, a BOM dropped); ConfigError naming the file when it is not text."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{path}: {what} is a directory, expected a text file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: {what} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from e
    if "\x00" in text:  # UTF-16 without a BOM, or a binary file under a text file's name
        raise ConfigError(f"{path}: {what} holds NUL bytes at byte {data.index(0)}; expected UTF-8 text")
    return text


def _read_list(path: Path) -> set[str]:
    if not path.exists():
        return set()
    text = _read_text(path, "split list")
    return {ln.strip().replace("\\", "/") for ln in text.splitlines() if ln.strip()}


def _read_urbansound_metadata(meta: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line number, row)`` of an UrbanSound8K ``metadata.csv``, refusing what cannot be indexed.

    Every required column must be there (extra ones, such as fsID or salience, are fine)
    and every row must have a value in each.
    """
    text = _read_text(meta, "UrbanSound8K metadata")
    try:
        lines = list(csv.reader(text.splitlines()))
    except csv.Error as e:
        raise ConfigError(f"{meta}: not a CSV file hearkit can read ({e})") from e
    while lines and not any(c.strip() for c in lines[0]):
        lines.pop(0)
    header = [c.strip() for c in lines[0]] if lines else []
    missing = [c for c in URBANSOUND_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"{meta}: lacks column(s) {', '.join(repr(c) for c in missing)}; urbansound8k metadata needs "
            f"{', '.join(URBANSOUND_COLUMNS)} (pass --format folders or speech-commands to index the folder without it)"
        )
    col = {c: header.index(c) for c in URBANSOUND_COLUMNS}
    rows = []
    for n, cells in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in cells):
            continue  # blank lines
        row = {}
        for c, i in col.items():
            v = cells[i].strip() if i < len(cells) else ""
            if not v:
                raise ConfigError(f"{meta}: line {n} has no value in column '{c}'")
            row[c] = v
        rows.append((n, row))
    if not rows:
        raise ConfigError(f"{meta}: has a header but no rows")
    return header, rows


def _int_cell(meta: Path, line: int, column: str, value: str, low: int) -> int:
    try:
        k = int(value)
    except ValueError:
        k = None
    if k is None or k < low:
        raise ConfigError(f"{meta}: line {line}, column '{column}': expected an integer >= {low}, got {value!r}")
    return k


def _warn(msg: str) -> None:
    print(f"hearkit: {msg}", file=sys.stderr)


# -- format detection -------------------------------------------------------------
def detect_format(root: str | Path) -> str:
    """Guess the layout of a dataset folder.

    ``metadata.csv`` -> ``urbansound8k`` (refused, naming the missing columns, when it is
    not UrbanSound8K's; ``format`` given explicitly ignores it); a
    ``validation_list.txt``, ``testing_list.txt`` or ``_background_noise_`` ->
    ``speech-commands``; sub-folders holding audio -> ``folders``.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: dataset folder does not exist")
    meta = root / URBANSOUND_METADATA
    if meta.exists():
        # a metadata.csv that is not UrbanSound8K's is refused, not skipped: its fold<k>/ folders
        # would be indexed as labels and the model would learn the folds (docs/design.md §14)
        _read_urbansound_metadata(meta)
        return "urbansound8k"
    if (root / VALIDATION_LIST).exists() or (root / TESTING_LIST).exists() or (root / BACKGROUND_NOISE_DIR).is_dir():
        return "speech-commands"
    if any(d.is_dir() and any(_is_audio(p) for p in d.rglob("*")) for d in root.iterdir()):
        return "folders"
    raise ConfigError(
        f"{root}: cannot tell the dataset layout: expected metadata.csv (urbansound8k), "
        f"{VALIDATION_LIST} (speech-commands) or one sub-folder of audio per label (folders)"
    )


# -- indexers ---------------------------------------------------------------------
def _label_folders(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and d.name != BACKGROUND_NOISE_DIR and not d.name.startswith("."))


def _index_speech_commands(root: Path, keywords, speaker_patterns, val_percent, test_percent) -> DatasetIndex:
    val_list, test_list = _read_list(root / VALIDATION_LIST), _read_list(root / TESTING_LIST)
    use_lists = bool(val_list or test_list)
    kw = None if keywords is None else set(keywords)
    examples, rels = [], set()
    for d in _label_folders(root):
        label = d.name
        if kw is not None and label not in kw and label != SILENCE_LABEL:
            label = UNKNOWN_LABEL
        for p in _audio_files(d):
            rel = p.relative_to(root).as_posix()
            rels.add(rel)
            speaker = speaker_from_name(p, speaker_patterns)
            if use_lists:
                split = "val" if rel in val_list else "test" if rel in test_list else "train"
            else:
                # silence clips have no speaker: hash the file name instead
                split = hash_split(speaker if speaker is not None else rel, val_percent, test_percent)
            examples.append(Example(str(p.resolve()), label, split, speaker))
    if not examples:
        raise ConfigError(f"{root}: no audio found in label folders")
    # a list none of whose entries names a clip (paths relative to another folder, another
    # dataset's list) would silently make every clip a training clip
    for name, lst in ((VALIDATION_LIST, val_list), (TESTING_LIST, test_list)):
        if lst and not lst & rels:
            raise ConfigError(f"{root / name}: none of its {len(lst)} entries names a clip under {root} "
                              f"(first: {sorted(lst)[0]!r}); entries are paths like 'yes/0a7c2a8d_nohash_0.wav'")
    labels = sorted({e.label for e in examples})
    if kw is not None:
        missing = sorted(kw - set(labels))
        if missing:
            raise ConfigError(f"{root}: keywords {missing} have no folder; folders found: {[d.name for d in _label_folders(root)]}")
    noise = tuple(str(p.resolve()) for p in _audio_files(root / BACKGROUND_NOISE_DIR)) if (root / BACKGROUND_NOISE_DIR).is_dir() else ()
    return DatasetIndex(str(root.resolve()), "speech-commands", tuple(labels), tuple(sorted(examples, key=lambda e: e.path)), noise)


def _index_folders(root: Path, speaker_patterns, val_percent, test_percent) -> DatasetIndex:
    examples = []
    for d in _label_folders(root):
        for p in _audio_files(d):
            speaker = speaker_from_name(p, speaker_patterns)
            key = speaker if speaker is not None else p.relative_to(root).as_posix()
            examples.append(Example(str(p.resolve()), d.name, hash_split(key, val_percent, test_percent), speaker))
    if not examples:
        raise ConfigError(f"{root}: no audio found; expected one sub-folder of clips per label")
    labels = sorted({e.label for e in examples})
    return DatasetIndex(str(root.resolve()), "folders", tuple(labels), tuple(sorted(examples, key=lambda e: e.path)))


def _index_urbansound(root: Path, val_fold, test_fold) -> DatasetIndex:
    meta = root / URBANSOUND_METADATA
    if not meta.is_file():
        raise ConfigError(f"{root}: urbansound8k format needs {URBANSOUND_METADATA}")
    _, lines = _read_urbansound_metadata(meta)
    rows = []
    names: dict[int, str] = {}
    ids: dict[str, int] = {}
    for n, r in lines:
        fold = _int_cell(meta, n, "fold", r["fold"], 1)
        cid = _int_cell(meta, n, "classID", r["classID"], 0)
        name = r["class"]
        if names.setdefault(cid, name) != name:
            raise ConfigError(f"{meta}: line {n}: classID {cid} is '{name}', but '{names[cid]}' on an earlier line")
        if ids.setdefault(name, cid) != cid:
            raise ConfigError(f"{meta}: line {n}: class '{name}' has classID {cid}, but {ids[name]} on an earlier line")
        rel = Path(r["slice_file_name"])
        if rel.is_absolute() or ".." in rel.parts or len(rel.parts) != 1:
            raise ConfigError(f"{meta}: line {n}, column 'slice_file_name': expected a file name in fold{fold}/, "
                              f"got {r['slice_file_name']!r}")
        rows.append((fold, cid, name, r["slice_file_name"]))
    folds = sorted({fold for fold, *_ in rows})
    if val_fold is None:
        # Without a choice, validate on the last fold present (train on the rest).
        val_fold = folds[-1] if len(folds) > 1 else None
        if val_fold is not None:
            _warn(f"urbansound8k: no validation fold given; using fold {val_fold}")
    for name, k in (("validation", val_fold), ("test", test_fold)):
        if k is not None and k not in folds:
            raise ConfigError(f"{meta}: {name} fold {k} is not in the metadata; folds present: {folds}")
    if val_fold is not None and val_fold == test_fold:
        raise ConfigError(f"validation and test fold must differ, both are {val_fold}")
    examples, skipped = [], []
    for fold, cid, name, file_name in rows:
        stem = Path(file_name).stem
        folder = root / f"fold{fold}"
        cands = [folder / file_name] + [folder / (stem + ext) for ext in AUDIO_EXTENSIONS]
        path = next((c for c in cands if c.is_file()), None)
        if path is None:
            skipped.append((str(folder / file_name), "listed in metadata.csv but no audio file"))
            continue
        split = "val" if fold == val_fold else "test" if fold == test_fold else "train"
        examples.append(Example(str(path.resolve()), name, split, None, fold))
    if not examples:
        raise ConfigError(f"{meta}: none of its {len(rows)} rows has an audio file in {root}/fold<k>/ "
                          f"(first: {skipped[0][0]})")
    if skipped:
        _warn(f"urbansound8k: {len(skipped)} metadata rows have no audio file and are left out (first: {skipped[0][0]})")
    labels = tuple(names[c] for c in sorted(names))
    return DatasetIndex(
        str(root.resolve()), "urbansound8k", labels, tuple(sorted(examples, key=lambda e: e.path)), (), tuple(skipped)
    )


def index_dataset(
    root: str | Path,
    format: str | None = None,
    *,
    val_fold: int | None = None,
    test_fold: int | None = None,
    keywords: list[str] | None = None,
    speaker_patterns=DEFAULT_SPEAKER_PATTERNS,
    val_percent: float = DEFAULT_VAL_PERCENT,
    test_percent: float = DEFAULT_TEST_PERCENT,
) -> DatasetIndex:
    """Index a dataset folder.

    Args:
        root: the dataset folder.
        format: one of ``FORMATS`` (Default: None = ``detect_format``).
        val_fold: UrbanSound8K validation fold (Default: None = the last fold present).
        test_fold: UrbanSound8K test fold (Default: None = no test split).
        keywords: speech-commands only: the word folders kept as classes; other
            words become ``_unknown_`` (Default: None = every folder is a class).
        speaker_patterns: regexes with a ``speaker`` group for speaker ids in file names.
        val_percent: share of speakers (or files) for validation in a hash split (Default: 10).
        test_percent: share for test in a hash split (Default: 10).

    Returns:
        a ``DatasetIndex`` (examples sorted by path, labels sorted).
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: dataset folder does not exist")
    fmt = format or detect_format(root)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown dataset format {fmt!r}; allowed: {list(FORMATS)}")
    if not (0 <= val_percent and 0 <= test_percent and val_percent + test_percent < 100):
        raise ConfigError(f"val_percent + test_percent must be in 0..100, got {val_percent} + {test_percent}")
    if fmt != "urbansound8k" and (val_fold is not None or test_fold is not None):
        raise ConfigError(f"--val-fold/--test-fold apply to urbansound8k only, not {fmt}")
    if fmt == "speech-commands":
        idx = _index_speech_commands(root, keywords, speaker_patterns, val_percent, test_percent)
    elif fmt == "urbansound8k":
        idx = _index_urbansound(root, val_fold, test_fold)
    else:
        if keywords is not None:
            raise ConfigError("keywords apply to the speech-commands format only")
        idx = _index_folders(root, speaker_patterns, val_percent, test_percent)
    if len(idx.labels) < 2:
        raise ConfigError(f"{root}: found {len(idx.labels)} label(s) {list(idx.labels)}; a classifier needs at least 2")
    return idx


def default_window_seconds(index: DatasetIndex) -> float:
    """The clip window a dataset suggests: 4 s for UrbanSound8K, 1 s for keywords."""
    return 4.0 if index.format == "urbansound8k" else 1.0


def noise_files(folder: str | Path) -> list[str]:
    """Audio files of a background-noise folder (recursively), sorted.

    A Speech Commands root gives its ``_background_noise_`` clips, or its
    ``_silence_`` clips when there is no such folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: noise folder does not exist")
    for sub in (BACKGROUND_NOISE_DIR, SILENCE_LABEL):
        if (folder / sub).is_dir() and _audio_files(folder / sub):
            return [str(p.resolve()) for p in _audio_files(folder / sub)]
    files = [str(p.resolve()) for p in _audio_files(folder)]
    if not files:
        raise ConfigError(f"{folder}: no audio files for background noise ({', '.join(AUDIO_EXTENSIONS)})")
    return files
