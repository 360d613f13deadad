"""Word n-gram language models in pure Python: build (interpolated Kneser–Ney), ARPA I/O, scoring.

No compiled dependency (KenLM and SRILM need a compiler or a binary that a
Raspberry Pi image rarely has); a command vocabulary or a few thousand
sentences build in seconds here.

The model is the interpolated Kneser–Ney of Chen & Goodman (1998) with one
absolute discount per order, ``D = n1 / (n1 + 2 n2)`` (n1, n2: n-grams seen
once and twice at that order, clipped to [0.1, 0.9]):

    P(w | h) = max(c(h w) - D, 0) / c(h) + gamma(h) * P(w | h')   gamma(h) = D * N1+(h .) / c(h)

where ``h'`` drops the oldest word, ``c`` are raw counts at the highest order
and continuation counts (number of distinct left neighbours) below it, except
for n-grams that begin with ``<s>``, which have no left neighbour and keep raw
counts (as KenLM does). The unigram level interpolates with the uniform
distribution over the vocabulary, ``<unk>`` included, so every word has a
probability. Stored in ARPA form, ``P`` of each seen n-gram is the
interpolated probability and the back-off weight of a context is its
``gamma``; back-off lookups then reproduce the interpolated model exactly and
the probabilities of every context sum to 1.

All scores are log10, as in ARPA files.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from hearkit.errors import ConfigError
from hearkit.files import atomic_open
from hearkit.text import ALPHABET, normalize_words, text_lines

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LOG10_ZERO = -99.0  # ARPA's "probability zero" (SRILM writes -99 for <s>)
DISCOUNT_RANGE = (0.1, 0.9)  # clip of the absolute discount; 1.0 would zero singletons
MAX_ORDER = 6
# The characters of hearkit CTC models (the output vocabulary without the blank): a-z,
# apostrophe and the space between words. Text is normalised exactly as the training
# manifests are (hearkit.text), so the LM holds the words the model spells.
DEFAULT_ALPHABET = frozenset(ALPHABET)


def _fmt(x: float) -> str:
    return f"{x:.7f}"


class NGramLM:
    """A back-off word n-gram model (ARPA semantics).

    Attributes:
        order: the n of the n-grams.
        tables: ``tables[k]`` maps k-gram tuples to ``(log10 prob, log10 back-off)``.
        vocab: the words with a unigram, ``<s>``, ``</s>`` and ``<unk>`` included.
    """

    def __init__(self, tables: dict[int, dict[tuple[str, ...], tuple[float, float]]]):
        if not tables or 1 not in tables:
            raise ConfigError("an n-gram LM needs at least the unigram table")
        self.order = max(tables)
        self.tables = tables
        self.vocab = frozenset(w for (w,) in tables[1])
        self._unk = tables[1].get((UNK,), (LOG10_ZERO, 0.0))[0]

    # -- building ------------------------------------------------------------------
    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], order: int = 3) -> "NGramLM":
        """Estimate an interpolated Kneser–Ney model from tokenised sentences.

        Args:
            sentences: each a sequence of words (no ``<s>``/``</s>``; they are added).
            order: n-gram order, 1..6 (Default: 3).
        """
        if not 1 <= int(order) <= MAX_ORDER:
            raise ConfigError(f"order must be in 1..{MAX_ORDER}, got {order}")
        n = int(order)
        raw: list[Counter] = [Counter() for _ in range(n + 1)]
        nsent = 0
        for s in sentences:
            words = [w for w in s if w not in (BOS, EOS)]
            if not words:
                continue
            nsent += 1
            toks = [BOS, *words, EOS]
            for k in range(1, n + 1):
                for i in range(len(toks) - k + 1):
                    raw[k][tuple(toks[i : i + k])] += 1
        if nsent == 0:
            raise ConfigError("no words to build a language model from (is the text empty?)")

        # adjusted counts: raw at the top order and for n-grams starting with <s>,
        # continuation counts (distinct left neighbours) otherwise
        adj: list[dict] = [dict() for _ in range(n + 1)]
        adj[n] = dict(raw[n])
        for k in range(n - 1, 0, -1):
            cont = Counter(g[1:] for g in raw[k + 1])
            adj[k] = {g: (c if g[0] == BOS else cont[g]) for g, c in raw[k].items()}
        adj[1].pop((BOS,), None)  # <s> is never predicted
        adj[1].setdefault((UNK,), 0)

        tables: dict[int, dict] = {}
        probs: list[dict] = [dict() for _ in range(n + 1)]  # interpolated P, linear
        gammas: list[dict] = [dict() for _ in range(n + 1)]  # context -> gamma
        for k in range(1, n + 1):
            counts = adj[k]
            n1 = sum(1 for c in counts.values() if c == 1)
            n2 = sum(1 for c in counts.values() if c == 2)
            d = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
            d = min(max(d, DISCOUNT_RANGE[0]), DISCOUNT_RANGE[1])
            by_ctx: dict[tuple, list] = defaultdict(list)
            for g, c in counts.items():
                by_ctx[g[:-1]].append((g, c))
            for h, items in by_ctx.items():
                total = sum(c for _, c in items)
                seen = sum(1 for _, c in items if c > 0)
                if total == 0:
                    continue
                gamma = d * seen / total
                gammas[k - 1][h] = gamma
                for g, c in items:
                    if k == 1:
                        lower = 1.0 / len(counts)  # uniform over the vocabulary (<unk> and </s> included)
                    else:
                        lower = probs[k - 1][g[1:]]
                    probs[k][g] = max(c - d, 0.0) / total + gamma * lower
        for k in range(1, n + 1):
            t = {}
            for g, p in probs[k].items():
                bow = gammas[k].get(g)
                t[g] = (math.log10(p), math.log10(bow) if bow else 0.0)
            tables[k] = t
        # <s> is a context, never a prediction: probability zero, with its back-off weight
        bow = gammas[1].get((BOS,))
        tables[1][(BOS,)] = (LOG10_ZERO, math.log10(bow) if bow else 0.0)
        return cls(tables)

    @classmethod
    def build_from_text(
        cls, lines: Iterable[str], order: int = 3, alphabet: frozenset[str] | None = DEFAULT_ALPHABET
    ) -> tuple["NGramLM", Counter]:
        """Build from raw text lines (one sentence each), normalised by ``hearkit.text.normalize_words``.

        Args:
            lines: one sentence per line.
            order: n-gram order (Default: 3).
            alphabet: characters kept (Default: ``DEFAULT_ALPHABET``, the model's); None keeps the
                text as it is and only splits on whitespace.

        Returns:
            The model and a Counter of the characters that normalisation removed.
        """
        dropped: Counter = Counter()
        sents = []
        for line in lines:
            words = line.split() if alphabet is None else normalize_words(line, dropped, alphabet)
            if words:
                sents.append(words)
        return cls.build(sents, order), dropped

    # -- ARPA I/O ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the model in ARPA format (atomically)."""
        # hearkit.files: temporary file + fsync + rename, removed on failure (a full disk keeps the old file)
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write("\\data\\\n")
            for k in range(1, self.order + 1):
                f.write(f"ngram {k}={len(self.tables[k])}\n")
            for k in range(1, self.order + 1):
                f.write(f"\n\\{k}-grams:\n")
                for g in sorted(self.tables[k]):
                    lp, bow = self.tables[k][g]
                    line = f"{_fmt(lp)}\t{' '.join(g)}"
                    if k < self.order and bow != 0.0:
                        line += f"\t{_fmt(bow)}"
                    f.write(line + "\n")
            f.write("\n\\end\\\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NGramLM":
        """Read an ARPA file (as written by ``save``, SRILM or KenLM)."""
        p = os.fspath(path)
        tables: dict[int, dict] = {}
        declared: dict[int, int] = {}
        section = None
        # text_lines: a FIFO, a non-UTF-8 byte or an endless line is one error naming the file
        for lineno, raw_line in text_lines(p, "language model"):
            line = raw_line.strip()
            if not line:
                continue
            if line == "\\data\\":
                section = 0
                continue
            if line == "\\end\\":
                break
            m = re.fullmatch(r"\\(\d{1,9})-grams:", line)
            if m:
                section = int(m.group(1))
                if not 1 <= section <= MAX_ORDER:
                    raise ConfigError(f"{p}:{lineno}: {section}-grams; hearkit reads orders 1..{MAX_ORDER}")
                tables[section] = {}
                continue
            if section is None:
                continue  # text before \data\ is allowed (comments)
            if section == 0:
                m = re.fullmatch(r"ngram\s+(\d{1,9})\s*=\s*(\d{1,15})", line)
                if not m:
                    raise ConfigError(f"{p}:{lineno}: expected 'ngram N=COUNT' in the \\data\\ section, got {line[:80]!r}")
                declared[int(m.group(1))] = int(m.group(2))
                continue
            parts = line.split()
            try:
                if len(parts) == section + 1:
                    lp, bow = float(parts[0]), 0.0
                elif len(parts) == section + 2:
                    lp, bow = float(parts[0]), float(parts[-1])
                else:
                    raise ValueError
                if math.isnan(lp) or math.isnan(bow) or lp == math.inf or bow == math.inf:
                    raise ValueError  # float() reads "nan" and "inf"; beam search would rank hypotheses by them
                lp, bow = max(lp, LOG10_ZERO), max(bow, LOG10_ZERO)  # -inf: ARPA's zero, as SRILM's -99
            except ValueError:
                raise ConfigError(
                    f"{p}:{lineno}: a {section}-gram line needs 'log10prob w1 .. w{section} [backoff]', got {line[:80]!r}"
                ) from None
            tables[section][tuple(parts[1 : section + 1])] = (lp, bow)
        if not declared or 1 not in tables:
            raise ConfigError(f"{p}: not an ARPA file (no \\data\\ header or no \\1-grams: section)")
        for k, c in declared.items():
            if len(tables.get(k, {})) != c:
                raise ConfigError(f"{p}: header declares {c} {k}-grams, file holds {len(tables.get(k, {}))}")
        return cls(tables)

    # -- scoring ------------------------------------------------------------------------
    def log10_prob(self, context: Sequence[str], word: str) -> float:
        """log10 P(word | context), backing off through shorter contexts."""
        if (word,) not in self.tables[1]:
            word = UNK
        ctx = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        acc = 0.0
        while True:
            e = self.tables.get(len(ctx) + 1, {}).get(ctx + (word,))
            if e is not None:
                return acc + e[0]
            if not ctx:
                return acc + self._unk
            c = self.tables.get(len(ctx), {}).get(ctx)
            if c is not None:
                acc += c[1]
            ctx = ctx[1:]

    def begin(self) -> tuple[str, ...]:
        """The LM state at the start of a sentence."""
        return (BOS,)

    def score_word(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]:
        """log10 P(word | state) and the state after it."""
        lp = self.log10_prob(state, word)
        keep = self.order - 1
        return lp, ((state + (word,))[-keep:] if keep else ())

    def end_score(self, state: tuple[str, ...]) -> float:
        """log10 P(</s> | state)."""
        return self.log10_prob(state, EOS)

    def score(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 probability of a word sequence (with sentence start and end by default)."""
        state = self.begin() if bos else ()
        total = 0.0
        for w in words:
            lp, state = self.score_word(state, w)
            total += lp
        if eos:
            total += self.end_score(state)
        return total

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Per-token perplexity (``</s>`` counted) over sentences."""
        total, n = 0.0, 0
        for s in sentences:
            total += self.score(s)
            n += len(s) + 1
        return 10.0 ** (-total / max(n, 1))

    def contexts(self) -> list[tuple[str, ...]]:
        """Every context the model stores a distribution for (n-grams below the top order, not ending in </s>)."""
        out = [()]
        for k in range(1, self.order):
            out.extend(g for g in self.tables[k] if g[-1] != EOS)
        return out

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}-grams={len(self.tables[k])}" for k in sorted(self.tables))
        return f"NGramLM(order={self.order}, {sizes})"
