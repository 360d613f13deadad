"""CTC decoding in numpy: greedy and prefix beam search, with word timings and confidences.

Decoders take arrays, never sessions (STYLE: a seam between decoding and the
network), so the torch path (training validation) and the onnxruntime path
(``hearkit.Transcriber``) share them. Both decoders are incremental: feed
log-probs in pieces with ``advance`` and the result equals decoding all frames
at once, which is what keeps transcription of hour-long files memory bounded.

Conventions:
    log_probs: (frames, vocab) natural-log posteriors of one utterance.
    vocab: one string per output index; the blank sits at index ``blank``; the
        token ``" "`` (``WORD_SEPARATOR``) separates words.
    Output frame ``t`` starts at ``t * frame_seconds`` seconds, where
        ``frame_seconds = hop_length * subsampling / sample_rate``.

Words and timings: a token is placed at the frame where the decoder emitted it
(greedy: the first frame of its run; beam: the frame at which the prefix ending
in it entered the beam). A word spans from its first token's frame to the end of
its last token's frame; its confidence is the mean posterior of its tokens at
those frames (for greedy, the mean of the per-frame max posteriors).

Fusion (beam search): hypotheses are ranked by
    ln P_ctc(labels) + alpha * ln P_lm(words) + beta * len(words)
where ``P_lm`` includes the end-of-sentence token. The LM's log10 scores are
converted to natural log, so alpha weighs comparable units.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hearkit.errors import ConfigError, ModelError

WORD_SEPARATOR = " "
LN10 = math.log(10.0)
NEG_INF = float("-inf")
DEFAULT_BEAM = 16  # hypotheses kept per frame when a lexicon or LM is used
DEFAULT_TOKEN_MIN_LOGP = -10.0  # ln; tokens less likely than this in a frame are not tried (posterior < 4.5e-5)
DEFAULT_ALPHA = 0.5  # LM weight
DEFAULT_BETA = 1.0  # word insertion bonus (ln units per word)


@dataclass(frozen=True)
class Word:
    """One decoded word.

    Attributes:
        text: the word.
        start: start time in seconds from the beginning of the audio.
        end: end time in seconds.
        confidence: mean posterior of the word's tokens, in [0, 1].
    """

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """A decoding result: the text and its words (``text == " ".join(w.text for w in words)``)."""

    text: str
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict:
        return {"text": self.text, "words": [asdict(w) for w in self.words]}


def _transcript(words: Sequence[Word]) -> Transcript:
    return Transcript(" ".join(w.text for w in words), tuple(words))


def _make_word(text: str, recs: Sequence[tuple[int, float]], frame_seconds: float) -> Word:
    # recs: (frame, posterior) of each token of the word, in order
    start = recs[0][0] * frame_seconds
    end = (recs[-1][0] + 1) * frame_seconds
    conf = sum(p for _, p in recs) / len(recs)
    return Word(text, round(start, 4), round(end, 4), round(float(conf), 4))


def _check_vocab(vocab: Sequence[str], blank: int) -> tuple[str, ...]:
    vocab = tuple(vocab)
    if not vocab:
        raise ConfigError("CTC vocabulary is empty")
    if not 0 <= int(blank) < len(vocab):
        raise ConfigError(f"blank index {blank} is outside the vocabulary (0..{len(vocab) - 1})")
    return vocab


def _check_log_probs(log_probs: np.ndarray, vocab_size: int) -> np.ndarray:
    x = np.asarray(log_probs)
    if x.ndim != 2 or x.shape[1] != vocab_size:
        raise ConfigError(f"log_probs must have shape (frames, {vocab_size}), got {x.shape}")
    if x.dtype.kind != "f":
        raise ConfigError(f"log_probs must be floats, got dtype {x.dtype}")
    # -inf is a log-probability of 0 and decodes; NaN and +inf would make argmax and the beam's sums meaningless
    if x.size and not (x < np.inf).all():
        bad = int((~(x < np.inf)).sum())
        raise ModelError(f"log_probs hold {bad} NaN or +inf values of {x.size}: the model that made them is broken")
    return x


# -- lexicon ------------------------------------------------------------------------------
class Lexicon:
    """A closed word list (a command vocabulary) with every prefix of every word.

    The set of prefixes plays the role of a prefix trie: a hypothesis whose
    unfinished word is not a prefix of some lexicon word is dropped as soon as it
    appears. (A set of strings answers the same question as a trie and is a
    single dict lookup in Python.)
    """

    def __init__(self, words: Iterable[str]):
        ws = {w.strip() for w in words}
        ws.discard("")
        bad = [w for w in ws if any(c.isspace() for c in w)]
        if bad:
            raise ConfigError(f"lexicon words must not contain spaces, got {sorted(bad)[:5]}")
        if not ws:
            raise ConfigError("lexicon is empty: give at least one word")
        self.words = frozenset(ws)
        self.prefixes = frozenset(w[:i] for w in ws for i in range(1, len(w) + 1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Lexicon":
        """Read one word per line (the first whitespace-separated field; ``#`` starts a comment)."""
        from hearkit.text import text_lines

        p = os.fspath(path)
        words = []
        for _, line in text_lines(p, "lexicon"):  # not UTF-8, a FIFO, an endless line: one error naming the file
            line = line.split("#", 1)[0].split()
            if line:
                words.append(line[0])
        try:
            return cls(words)
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from e

    def check_vocab(self, vocab: Sequence[str], blank: int) -> None:
        """Raise ``ConfigError`` if a word cannot be spelled with the model's tokens."""
        letters = {t for i, t in enumerate(vocab) if i != blank and t != WORD_SEPARATOR}
        if not all(len(t) == 1 for t in letters):
            return  # multi-character tokens: spelling is checked as hypotheses grow
        bad = sorted(w for w in self.words if not set(w) <= letters)
        if bad:
            raise ConfigError(
                f"{len(bad)} lexicon word(s) use characters the model cannot emit, e.g. {bad[:5]}; "
                f"allowed characters: {''.join(sorted(letters))!r}"
            )

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.words


# -- greedy ---------------------------------------------------------------------------------
class GreedyDecoder:
    """Best-path decoding (argmax per frame, merge repeats, drop blanks), fed incrementally.

    Args:
        vocab: token strings, one per output index.
        blank: index of the blank token.
        frame_seconds: seconds per output frame, for word timings (Default: 1.0).
    """

    def __init__(self, vocab: Sequence[str], blank: int, frame_seconds: float = 1.0):
        self.vocab = _check_vocab(vocab, blank)
        self.blank = int(blank)
        self.frame_seconds = float(frame_seconds)
        self.reset()

    def reset(self) -> None:
        """Forget everything decoded so far; the next frame is frame 0."""
        self.frames = 0
        self._prev = -1  # token of the previous frame (repeats across calls must merge)
        self._words: list[Word] = []
        self._partial = ""
        self._recs: list[tuple[int, float]] = []

    def advance(self, log_probs: np.ndarray) -> None:
        """Consume frames, shape (frames, vocab)."""
        x = _check_log_probs(log_probs, len(self.vocab))
        n = x.shape[0]
        if n == 0:
            return
        ids = x.argmax(axis=1)
        prev = np.concatenate([[self._prev], ids[:-1]])
        emit = np.nonzero((ids != prev) & (ids != self.blank))[0]
        if emit.size:
            post = np.exp(x[emit, ids[emit]].astype(np.float64))
            for i, p in zip(emit.tolist(), post.tolist()):
                self._push(int(ids[i]), self.frames + i, p)
        self._prev = int(ids[-1])
        self.frames += n

    def _push(self, token: int, frame: int, prob: float) -> None:
        tok = self.vocab[token]
        if tok == WORD_SEPARATOR:
            self._close_word()
        else:
            self._partial += tok
            self._recs.append((frame, prob))

    def _close_word(self) -> None:
        if self._partial:
            self._words.append(_make_word(self._partial, self._recs, self.frame_seconds))
        self._partial, self._recs = "", []

    def partial(self) -> Transcript:
        """The result so far, the unfinished word included."""
        words = list(self._words)
        if self._partial:
            words.append(_make_word(self._partial, self._recs, self.frame_seconds))
        return _transcript(words)

    def finalize(self) -> Transcript:
        """The final result of all frames fed since the last ``reset``."""
        return self.partial()


def greedy_decode(log_probs: np.ndarray, vocab: Sequence[str], blank: int, frame_seconds: float = 1.0) -> Transcript:
    """Greedy CTC decoding of one utterance; see ``GreedyDecoder``."""
    d = GreedyDecoder(vocab, blank, frame_seconds)
    d.advance(log_probs)
    return d.finalize()


def greedy_tokens(log_probs: np.ndarray, blank: int) -> list[int]:
    """The greedy label sequence (token ids) of (frames, vocab) log-probs."""
    ids = np.asarray(log_probs).argmax(axis=1)
    keep = np.ones(ids.shape, bool)
    keep[1:] = ids[1:] != ids[:-1]
    return [int(i) for i in ids[keep] if i != blank]


# -- prefix beam search -----------------------------------------------------------------------
def _lse(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


class _Node:
    """One label prefix. Prefixes share their ancestors; a node is never changed once made.

    Everything that depends only on the prefix (word list, unfinished word, LM
    context and score) is computed once when the node is made. ``key`` names the
    prefix: when a later frame gives the prefix's last token more probability
    than the frame it was first placed at, a re-timed copy with the same key
    replaces the node (so partial results of a cloned decoder never alter the
    original's nodes).
    """

    __slots__ = ("parent", "token", "partial", "recs", "words", "nwords", "ctx", "bonus", "key", "emit")

    def __init__(self, parent, token, partial, recs, words, nwords, ctx, bonus, emit=NEG_INF):
        self.parent = parent  # _Node or None (the empty prefix)
        self.token = token  # int, or -1 for the empty prefix
        self.partial = partial  # str: the unfinished word
        self.recs = recs  # tuple of (frame, posterior) of the unfinished word's tokens
        self.words = words  # cons list of finished words: (Word, previous) or None
        self.nwords = nwords
        self.ctx = ctx  # LM context (tuple of words) or None without LM
        self.bonus = bonus  # alpha * ln P_lm(finished words) + beta * nwords
        self.key = next(_KEYS)
        self.emit = emit  # ln of the probability mass that placed the last token where recs/words say

    def retimed(self, frame: int, prob: float, emit: float, frame_seconds: float) -> "_Node":
        """This prefix with its last token moved to ``frame``."""
        n = object.__new__(_Node)
        for k in _Node.__slots__:
            setattr(n, k, getattr(self, k))
        n.emit = emit
        if self.partial:  # last token is inside the unfinished word
            n.recs = self.recs[:-1] + ((frame, prob),)
        # a separator carries no timing of its own; nothing else to move
        return n


_KEYS = itertools.count()


class BeamSearchDecoder:
    """CTC prefix beam search with an optional lexicon and n-gram LM (shallow fusion), fed incrementally.

    Args:
        vocab: token strings, one per output index.
        blank: index of the blank token.
        beam: hypotheses kept after each frame (Default: 16).
        lexicon: ``Lexicon`` (or iterable of words): only these words may be
            emitted (Default: None, any word).
        lm: an ``hearkit.lm.NGramLM`` (Default: None).
        alpha: LM weight (Default: 0.5). Ignored without LM.
        beta: bonus per word, in natural-log units (Default: 1.0 with an LM, 0 without).
        token_min_logp: tokens with a log-posterior below this in a frame are not
            tried (the frame's best token always is); ``-inf`` disables the
            pruning (Default: -10.0). At most ``beam`` tokens are tried per frame.
        frame_seconds: seconds per output frame, for word timings (Default: 1.0).
    """

    def __init__(
        self,
        vocab: Sequence[str],
        blank: int,
        beam: int = DEFAULT_BEAM,
        lexicon: Lexicon | Iterable[str] | None = None,
        lm=None,
        alpha: float = DEFAULT_ALPHA,
        beta: float | None = None,
        token_min_logp: float = DEFAULT_TOKEN_MIN_LOGP,
        frame_seconds: float = 1.0,
    ):
        self.vocab = _check_vocab(vocab, blank)
        self.blank = int(blank)
        if int(beam) < 1:
            raise ConfigError(f"beam must be >= 1, got {beam}")
        self.beam = int(beam)
        if lexicon is not None and not isinstance(lexicon, Lexicon):
            lexicon = Lexicon(lexicon)
        if lexicon is not None:
            lexicon.check_vocab(self.vocab, self.blank)
        self.lexicon = lexicon
        self.lm = lm
        self.alpha = float(alpha) if lm is not None else 0.0
        self.beta = float(beta) if beta is not None else (DEFAULT_BETA if lm is not None else 0.0)
        self.token_min_logp = float(token_min_logp)
        self.frame_seconds = float(frame_seconds)
        try:
            self._space = self.vocab.index(WORD_SEPARATOR)
        except ValueError:
            self._space = -1
        self.reset()

    def reset(self) -> None:
        """Forget everything decoded so far; the next frame is frame 0."""
        ctx = self.lm.begin() if self.lm is not None else None
        root = _Node(None, -1, "", (), None, 0, ctx, 0.0)
        self.frames = 0
        # each beam: [node, ln P(prefix, ending in blank), ln P(prefix, ending in its last token)]
        self._beams: list[list] = [[root, 0.0, NEG_INF]]

    # -- growing prefixes --
    def _child(self, parent: _Node, token: int, frame: int, prob: float, emit: float) -> _Node | None:
        """The prefix ``parent + token``, or None when the lexicon forbids it."""
        if token == self._space:
            if not parent.partial:  # leading or repeated separator: no word, same state
                return _Node(parent, token, "", (), parent.words, parent.nwords, parent.ctx, parent.bonus, emit)
            return self._close(parent, token, emit)
        partial = parent.partial + self.vocab[token]
        if self.lexicon is not None and partial not in self.lexicon.prefixes:
            return None
        return _Node(
            parent, token, partial, parent.recs + ((frame, prob),), parent.words, parent.nwords, parent.ctx, parent.bonus, emit
        )

    def _close(self, node: _Node, token: int, emit: float = NEG_INF) -> _Node | None:
        """Finish ``node``'s unfinished word (the separator ``token`` follows it, or -1 at the end)."""
        word = node.partial
        if self.lexicon is not None and word not in self.lexicon.words:
            return None
        bonus = node.bonus + self.beta
        ctx = node.ctx
        if self.lm is not None:
            lp, ctx = self.lm.score_word(ctx, word)
            bonus += self.alpha * LN10 * lp
        w = _make_word(word, node.recs, self.frame_seconds)
        return _Node(node, token, "", (), (w, node.words), node.nwords + 1, ctx, bonus, emit)

    def advance(self, log_probs: np.ndarray) -> None:
        """Consume frames, shape (frames, vocab) of natural-log posteriors."""
        x = _check_log_probs(log_probs, len(self.vocab))
        blank, beam, cut = self.blank, self.beam, self.token_min_logp
        for row_np in x:
            row = row_np.tolist()
            tokens = [i for i in np.nonzero(row_np >= cut)[0].tolist() if i != blank]
            if len(tokens) > beam:
                # pre-beam: a frame cannot put more than `beam` new tokens into the next beam
                tokens = sorted(tokens, key=row.__getitem__, reverse=True)[:beam]
            best = int(row_np.argmax())
            if best != blank and best not in tokens:
                tokens.append(best)
            t = self.frames
            lb = row[blank]
            # prefixes already in the beam, found by (parent, token): an extension of
            # "a" by "b" must merge with a beam "ab" that is already there
            known = {(b[0].parent.key, b[0].token): b[0] for b in self._beams if b[0].parent is not None}
            made: dict[tuple[int, int], _Node | None] = {}
            cand: dict[int, list] = {}
            for node, pb, pnb in self._beams:
                tot = _lse(pb, pnb)
                e = cand.get(node.key)
                if e is None:
                    e = cand[node.key] = [node, NEG_INF, NEG_INF]
                e[1] = _lse(e[1], tot + lb)  # blank: same prefix, now ending in blank
                if node.token >= 0:  # repeat of the last token collapses into it
                    e[2] = _lse(e[2], pnb + row[node.token])
                for c in tokens:
                    ext = (pb if c == node.token else tot) + row[c]
                    if ext == NEG_INF:
                        continue
                    key = (node.key, c)
                    child = known.get(key)
                    if child is None:
                        if key in made:
                            child = made[key]
                        else:
                            child = made[key] = self._child(node, c, t, math.exp(row[c]), ext)
                        if child is None:
                            continue
                    ce = cand.get(child.key)
                    if ce is None:
                        ce = cand[child.key] = [child, NEG_INF, NEG_INF]
                    if ext > ce[0].emit:
                        # this frame places the token more probably than the one recorded
                        ce[0] = ce[0].retimed(t, math.exp(row[c]), ext, self.frame_seconds)
                    ce[2] = _lse(ce[2], ext)
            scored = sorted(cand.values(), key=lambda e: -(_lse(e[1], e[2]) + e[0].bonus))
            self._beams = [e for e in scored[:beam] if _lse(e[1], e[2]) > NEG_INF] or scored[:1]
            self.frames += 1

    # -- results --
    def _final(self, node: _Node) -> _Node | None:
        """Close the unfinished word and score end of sentence; None if the lexicon forbids it."""
        if node.partial:
            node = self._close(node, -1)
            if node is None:
                return None
        if self.lm is not None:
            end = self.alpha * LN10 * self.lm.end_score(node.ctx)
            node = _Node(node, -1, "", (), node.words, node.nwords, node.ctx, node.bonus + end)
        return node

    def nbest(self) -> list[tuple[tuple[int, ...], float, float]]:
        """Final hypotheses, best first: (token ids, ln P_ctc, fused score).

        Hypotheses whose last word the lexicon forbids are left out.
        """
        out = []
        for node, pb, pnb in self._beams:
            fin = self._final(node)
            if fin is None:
                continue
            lp = _lse(pb, pnb)
            out.append((_labels(node), lp, lp + fin.bonus))
        out.sort(key=lambda h: -h[2])
        return out

    def partial(self) -> Transcript:
        """The best hypothesis so far, its unfinished word included (not checked against the lexicon)."""
        node = self._beams[0][0]
        words = _unroll(node.words)
        if node.partial:
            words.append(_make_word(node.partial, node.recs, self.frame_seconds))
        return _transcript(words)

    def finalize(self) -> Transcript:
        """The best complete hypothesis of all frames fed since the last ``reset``."""
        best, best_score = None, NEG_INF
        for node, pb, pnb in self._beams:
            fin = self._final(node)
            if fin is not None and _lse(pb, pnb) + fin.bonus > best_score:
                best, best_score = fin, _lse(pb, pnb) + fin.bonus
        if best is None:
            # every hypothesis ends inside a word the lexicon lacks: keep the finished words
            best = self._beams[0][0]
        return _transcript(_unroll(best.words))


def _labels(node: _Node) -> tuple[int, ...]:
    out = []
    while node is not None and node.token >= 0:
        out.append(node.token)
        node = node.parent
    return tuple(reversed(out))


def _unroll(cell) -> list[Word]:
    out = []
    while cell is not None:
        out.append(cell[0])
        cell = cell[1]
    out.reverse()
    return out


def beam_search(log_probs: np.ndarray, vocab: Sequence[str], blank: int, **options) -> Transcript:
    """Prefix beam search over one utterance; ``options`` are ``BeamSearchDecoder``'s (beam, lexicon, lm, ...)."""
    d = BeamSearchDecoder(vocab, blank, **options)
    d.advance(log_probs)
    return d.finalize()


def make_decoder(
    vocab: Sequence[str],
    blank: int,
    beam: int | None = None,
    lexicon: Lexicon | Iterable[str] | None = None,
    lm=None,
    alpha: float = DEFAULT_ALPHA,
    beta: float | None = None,
    frame_seconds: float = 1.0,
):
    """Greedy decoder when ``beam`` is 1 (or None) without lexicon and LM, else a beam search.

    With a lexicon or LM and ``beam=None``, the beam is ``DEFAULT_BEAM``.
    """
    if lexicon is None and lm is None and (beam is None or int(beam) <= 1):
        return GreedyDecoder(vocab, blank, frame_seconds)
    return BeamSearchDecoder(
        vocab, blank, DEFAULT_BEAM if beam is None else beam, lexicon, lm, alpha, beta, frame_seconds=frame_seconds
    )
