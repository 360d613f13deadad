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

import re
import unicodedata
from collections import Counter

from hearkit.errors import ConfigError

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
