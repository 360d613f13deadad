"""The text of CTC models: one alphabet and one normaliser for manifests, training and the LM.

A word the model can emit must be spelt the same way in its training targets
(``hearkit.manifest``), in the vocabulary an exported model carries and in a word
language model (``hearkit.lm``); otherwise beam search looks up ``dont`` where
the model wrote ``don't``. So all three take their text from this module, which
needs nothing but the standard library.

Normalisation: lower-case, fold accents (``é`` -> ``e``), typographic
apostrophes to ``'``, word separators (hyphens, dashes, underscore, slash) to a
space, single spaces; every other character outside the alphabet is removed and
counted, never dropped silently. ``normalize_text("Café — don’t") == "cafe don't"``.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from collections import Counter
from collections.abc import Iterator

from hearkit.errors import ConfigError, HearkitError
from hearkit.limits import LIMITS

# The CTC output alphabet: index 0 is the blank, then space, apostrophe and a-z.
BLANK = "<blank>"
BLANK_ID = 0
WORD_SEPARATOR = " "  # the token between words (hearkit.ctc splits words on it)
ALPHABET = WORD_SEPARATOR + "'" + "abcdefghijklmnopqrstuvwxyz"
VOCAB: tuple[str, ...] = (BLANK,) + tuple(ALPHABET)

_SPACES = re.compile(r"\s+")
# Characters that separate words: mapped to a space (not counted as dropped).
# Hyphen, underscore, slash, and U+2010..U+2015 (hyphen, non-breaking hyphen, figure dash,
# en dash, em dash, horizontal bar).
SEPARATORS = frozenset("-_/" + "".join(chr(c) for c in range(0x2010, 0x2016)))
# Typographic apostrophes mapped to the ASCII one: ’ ‘ ` ʼ
APOSTROPHES = {"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"}


def normalize_text(text: str, dropped: Counter | None = None, alphabet: str | frozenset[str] = ALPHABET) -> str:
    """Lower-case, fold accents, keep the characters of ``alphabet`` and single spaces.

    Args:
        text: raw transcript or sentence.
        dropped: a Counter updated with each character removed (Default: None, not counted).
        alphabet: characters kept, after lower-casing and accent folding (Default: ``ALPHABET``,
            what hearkit CTC models emit). Whitespace and ``SEPARATORS`` always become a space.

    Returns:
        The normalised text (may be empty).
    """
    out = []
    for ch in unicodedata.normalize("NFKD", text.lower()):
        ch = APOSTROPHES.get(ch, ch)
        if ch in alphabet:
            out.append(ch)
        elif ch.isspace() or ch in SEPARATORS:
            out.append(" ")
        elif unicodedata.combining(ch):
            continue  # accent of a folded letter (é -> e + U+0301): not content
        elif dropped is not None:
            dropped[ch] += 1
    return _SPACES.sub(" ", "".join(out)).strip()


def normalize_words(text: str, dropped: Counter | None = None, alphabet: str | frozenset[str] = ALPHABET) -> list[str]:
    """``normalize_text(text, dropped, alphabet).split()``: the words of a sentence, as a model spells them."""
    return normalize_text(text, dropped, alphabet).split()


def encode(text: str) -> list[int]:
    """Normalised text -> label ids (no blank). Raises on a character outside the alphabet."""
    try:
        return [VOCAB.index(c) for c in text]
    except ValueError as e:
        raise ConfigError(f"text {text!r} has characters outside the alphabet {ALPHABET!r}; normalise it first") from e


def decode_ids(ids) -> str:
    """Label ids (no blanks) -> text."""
    return "".join(VOCAB[i] for i in ids if i != BLANK_ID)


# -- text files from users ---------------------------------------------------------------------
def regular_file(path: str | os.PathLike, what: str = "file", error: type[HearkitError] = ConfigError) -> str:
    """``path`` as a string, or ``error`` when it is missing or not a regular file.

    A FIFO or a device node given as a text file would block the reader (or never end), so it
    is refused by its kind before anything opens it.

    Args:
        path: the file.
        what: what the user gave it as, for the message ("manifest", "lexicon", ...) (Default: "file").
        error: the HearkitError subclass raised (Default: ConfigError).
    """
    p = os.fspath(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise error(f"{p}: no such {what} file") from None
    except OSError as e:
        raise error(f"{p}: cannot read this {what} ({e.strerror})") from e
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise error(f"{p}: not a regular file ({kind}); a {what} must be a text file")
    return p


def text_lines(path: str | os.PathLike, what: str = "text file",
               error: type[HearkitError] = ConfigError) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, newline kept; one clear error for anything else.

    Lines are read with a bound (``hearkit.limits`` ``text_line_bytes``), so a 10-MB line or a
    file with no newline at all is refused before it is held in memory, and a byte that is not
    UTF-8 is an ``error`` naming the file, the line and the byte offset, not a UnicodeDecodeError.
    A UTF-8 byte-order mark at the start is skipped.

    Args:
        path: the file (:func:`regular_file` checks it first).
        what: what it is, for messages ("manifest", "lexicon", "language model") (Default: "text file").
        error: the HearkitError subclass raised (Default: ConfigError).
    """
    p = regular_file(path, what, error)
    limit = int(LIMITS["text_line_bytes"].hi)
    offset = 0
    with open(p, "rb") as f:
        for lineno in range(1, 1 << 62):
            raw = f.readline(limit + 1)
            if not raw:
                return
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise error(f"{p}:{lineno}: line longer than {limit} bytes; a {what} holds short lines")
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw, offset = raw[3:], 3
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise error(f"{p}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {offset + e.start}); "
                            f"save the {what} as UTF-8") from None
            offset += len(raw)
            yield lineno, line


def read_text(path: str | os.PathLike, what: str = "text file", error: type[HearkitError] = ConfigError) -> str:
    """The whole of a UTF-8 text file, read through :func:`text_lines` (same checks and errors)."""
    return "".join(line for _, line in text_lines(path, what, error))
