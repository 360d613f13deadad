"""CTC decoding (hearkit.ctc): beam search against brute force, greedy, lexicon, LM fusion, timings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hearkit.ctc import (
    LN10,
    BeamSearchDecoder,
    GreedyDecoder,
    Lexicon,
    beam_search,
    greedy_decode,
    greedy_tokens,
    make_decoder,
)
from hearkit.errors import ConfigError
from hearkit.lm import NGramLM

ATOL = 1e-9  # float64 log-domain sums of at most 4**5 terms: rounding is ~1e-15


def random_log_probs(T, V, seed, sharp=1.0):
    rng = np.random.default_rng(seed)
    z = sharp * rng.standard_normal((T, V))
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def brute_force(lp, blank):
    """Every label sequence with its ln probability: sum over all T-frame alignments that collapse to it."""
    T, V = lp.shape
    out: dict[tuple, float] = {}
    for path in itertools.product(range(V), repeat=T):
        labels = tuple(k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k))
        s = float(sum(lp[t, k] for t, k in enumerate(path)))
        out[labels] = np.logaddexp(out[labels], s) if labels in out else s
    return out


def words_of(labels, vocab):
    return "".join(vocab[i] for i in labels).split()


# vocabularies of 2..4 symbols with the blank in varying places
VOCABS = [
    (["-", "a"], 0),
    (["a", "-", "b"], 1),
    (["-", "a", " ", "b"], 0),
    (["a", " ", "b", "-"], 3),
]


@pytest.mark.parametrize("vocab,blank", VOCABS)
@pytest.mark.parametrize("T", [1, 3, 5])
def test_beam_search_equals_brute_force(vocab, blank, T):
    """Without pruning, the prefix beam search's final hypotheses carry the exact label-sequence probabilities."""
    for seed in range(3):
        lp = random_log_probs(T, len(vocab), seed=100 * T + seed)
        exact = brute_force(lp, blank)
        d = BeamSearchDecoder(vocab, blank, beam=10_000, token_min_logp=-math.inf)
        d.advance(lp)
        got = {labels: ctc for labels, ctc, _ in d.nbest()}
        assert set(got) == set(exact)
        for labels, v in exact.items():
            assert got[labels] == pytest.approx(v, abs=ATOL)
        # the decoded text is that of the most probable label sequence
        best = max(exact, key=exact.get)
        assert beam_search(lp, vocab, blank, beam=10_000, token_min_logp=-math.inf).text == " ".join(words_of(best, vocab))
        # total probability of all label sequences is 1
        assert np.logaddexp.reduce(list(got.values())) == pytest.approx(0.0, abs=ATOL)


def test_beam_search_with_lm_equals_brute_force():
    """Shallow fusion: the best hypothesis maximises ln P_ctc + alpha ln P_lm + beta |words| over all label sequences."""
    vocab, blank = ["-", "a", " ", "b"], 0
    lm = NGramLM.build([["ab", "a"], ["a", "ab"], ["b"], ["ab", "b", "a"]], order=2)
    alpha, beta = 0.8, 0.3
    for seed in range(6):
        lp = random_log_probs(5, 4, seed=seed, sharp=1.5)
        exact = brute_force(lp, blank)
        fused = {lab: v + alpha * LN10 * lm.score(words_of(lab, vocab)) + beta * len(words_of(lab, vocab)) for lab, v in exact.items()}
        d = BeamSearchDecoder(vocab, blank, beam=10_000, lm=lm, alpha=alpha, beta=beta, token_min_logp=-math.inf)
        d.advance(lp)
        nb = d.nbest()
        got = {lab: f for lab, _, f in nb}
        for lab, v in fused.items():
            assert got[lab] == pytest.approx(v, abs=ATOL)
        best = max(fused, key=fused.get)
        assert nb[0][2] == pytest.approx(fused[best], abs=ATOL)
        assert d.finalize().text == " ".join(words_of(best, vocab))


def test_lexicon_constraint_exact_and_pruned():
    """Only lexicon words appear; without pruning the best allowed sequence is found exactly."""
    vocab, blank = ["-", "a", " ", "b"], 0
    lex = Lexicon(["ab", "b"])
    for seed in range(8):
        lp = random_log_probs(5, 4, seed=50 + seed, sharp=1.5)
        exact = brute_force(lp, blank)
        allowed = {lab: v for lab, v in exact.items() if all(w in lex for w in words_of(lab, vocab))}
        best = max(allowed, key=allowed.get)
        t = beam_search(lp, vocab, blank, beam=10_000, lexicon=lex, token_min_logp=-math.inf)
        assert t.text == " ".join(words_of(best, vocab))
    rng = np.random.default_rng(7)
    vocab2 = ["-", " ", "a", "b", "c", "d"]
    lex2 = Lexicon(["ab", "cad", "d"])
    for seed in range(10):
        lp = random_log_probs(int(rng.integers(5, 40)), len(vocab2), seed=seed, sharp=3.0)
        t = beam_search(lp, vocab2, 0, beam=4, lexicon=lex2)
        assert all(w.text in lex2 for w in t.words), t.text


def test_lexicon_rejects_unspellable_words(tmp_path):
    with pytest.raises(ConfigError, match="cannot emit"):
        BeamSearchDecoder(["-", " ", "a", "b"], 0, lexicon=["ab", "abc"])
    p = tmp_path / "lex.txt"
    p.write_text("# commands\nyes\nno  extra columns ignored\n\n")
    assert Lexicon.load(p).words == {"yes", "no"}
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        Lexicon.load(tmp_path / "empty.txt")


def naive_greedy(lp, blank):
    ids = lp.argmax(axis=1)
    return [int(k) for k, _ in itertools.groupby(ids) if k != blank]


def test_greedy_matches_definition_and_is_incremental():
    vocab = ["-", " ", "a", "b", "c"]
    rng = np.random.default_rng(3)
    for seed in range(20):
        lp = random_log_probs(int(rng.integers(1, 60)), 5, seed=seed, sharp=2.0)
        assert greedy_tokens(lp, 0) == naive_greedy(lp, 0)
        whole = greedy_decode(lp, vocab, 0, frame_seconds=0.04)
        expect = "".join(vocab[i] for i in naive_greedy(lp, 0)).split()
        assert whole.text == " ".join(expect)
        # fed in random pieces (repeats across piece borders must merge): same result, timings included
        d = GreedyDecoder(vocab, 0, frame_seconds=0.04)
        cuts = sorted(rng.choice(np.arange(1, lp.shape[0]), size=min(3, lp.shape[0] - 1), replace=False)) if lp.shape[0] > 1 else []
        for piece in np.split(lp, cuts):
            d.advance(piece)
        assert d.finalize() == whole


def peaky_log_probs(T, V, seed, top=0.95):
    """Each frame gives one random token probability >= top (what trained CTC models emit)."""
    rng = np.random.default_rng(seed)
    p = rng.random((T, V))
    ids = rng.integers(0, V, T)
    p[np.arange(T), ids] = 0
    p = (1 - top) * p / p.sum(axis=1, keepdims=True)
    p[np.arange(T), ids] = top
    return np.log(p)


def test_greedy_equals_beam_width_one_on_peaky_posteriors():
    """Beam 1 keeps the single most probable prefix; when each frame's best token has >= 0.95 of the mass,
    that prefix is the greedy path's. (With flatter posteriors they may differ: merged alignments can outweigh
    the best path, e.g. 'b-' + 'bb' vs a second 'b'.)"""
    vocab = ["-", " ", "a", "b"]
    for seed in range(30):
        lp = peaky_log_probs(40, 4, seed)
        g = greedy_decode(lp, vocab, 0, frame_seconds=0.02)
        b = beam_search(lp, vocab, 0, beam=1, frame_seconds=0.02)
        assert b == g  # text, timings and confidences


def test_beam_search_incremental_equals_whole():
    vocab = ["-", " ", "a", "b", "c"]
    lm = NGramLM.build([["ab", "c"], ["ca", "b", "ab"]], order=3)
    for seed in range(5):
        lp = random_log_probs(50, 5, seed=seed, sharp=3.0)
        whole = beam_search(lp, vocab, 0, beam=6, lm=lm, frame_seconds=0.04)
        d = BeamSearchDecoder(vocab, 0, beam=6, lm=lm, frame_seconds=0.04)
        for piece in np.array_split(lp, [7, 8, 30]):
            d.advance(piece)
        assert d.finalize() == whole


def test_word_timings_and_confidence():
    """Tokens placed at frames 2,3 ('ab'), separator at 5, 'c' at 7-8 (one run) => words with exact times."""
    vocab = ["-", " ", "a", "b", "c"]
    T = 10
    post = np.full((T, 5), 0.01)
    post[:, 0] = 0.96  # blank elsewhere
    for t, k, p in [(2, 2, 0.9), (3, 3, 0.7), (5, 1, 0.9), (7, 4, 0.8), (8, 4, 0.9)]:
        post[t] = (1 - p) / 4
        post[t, k] = p
    lp = np.log(post)
    fs = 0.04  # seconds per output frame
    for t in (greedy_decode(lp, vocab, 0, fs), beam_search(lp, vocab, 0, beam=8, frame_seconds=fs)):
        assert t.text == "ab c"
        (w1, w2) = t.words
        assert (w1.start, w1.end) == pytest.approx((2 * fs, 4 * fs), abs=1e-9)
        assert w1.confidence == pytest.approx((0.9 + 0.7) / 2, abs=1e-4)  # rounded to 4 decimals
        assert w2.start == pytest.approx(7 * fs, abs=1e-9)
        assert w2.end == pytest.approx(8 * fs, abs=1e-9)


def test_make_decoder_and_bad_input():
    vocab = ["-", " ", "a"]
    assert isinstance(make_decoder(vocab, 0), GreedyDecoder)
    assert isinstance(make_decoder(vocab, 0, beam=4), BeamSearchDecoder)
    assert make_decoder(vocab, 0, lexicon=["a"]).beam == 16
    with pytest.raises(ConfigError, match="shape"):
        greedy_decode(np.zeros((4, 2)), vocab, 0)
    with pytest.raises(ConfigError, match="blank"):
        GreedyDecoder(vocab, 3)
    with pytest.raises(ConfigError, match="beam"):
        BeamSearchDecoder(vocab, 0, beam=0)
