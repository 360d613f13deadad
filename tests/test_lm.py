"""Word n-gram LM (hearkit.lm): normalisation, Kneser-Ney distributions sum to 1, ARPA round trip, CLI."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from click.testing import CliRunner

from hearkit.cli import main
from hearkit.errors import ConfigError
from hearkit.lm import BOS, DEFAULT_ALPHABET, EOS, UNK, NGramLM
from hearkit.text import normalize_words

SUM_TOL = 1e-6  # per the spec; ARPA stores 7 decimals of log10 (relative error ~1.2e-7 per term)

CORPUS = """The prisoners were kept in the old jail.
the jail was old and the prisoners were many
Printing, in the only sense with which we are at present concerned, differs from most if not from all the arts.
the old printers' types were cast by hand
yes no yes yes no
go left go right stop
the king's printer was old
"""


def corpus_sentences():
    return [normalize_words(line) for line in CORPUS.splitlines() if line.strip()]


def all_words(lm):
    return [w for w in lm.vocab if w != BOS]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_sums_to_one(order, tmp_path):
    lm = NGramLM.build(corpus_sentences(), order=order)
    path = tmp_path / "lm.arpa"
    lm.save(path)
    loaded = NGramLM.load(path)
    words = all_words(lm)
    assert UNK in words and EOS in words
    for model in (lm, loaded):
        ctxs = model.contexts()
        assert len(ctxs) > 1 or order == 1
        for ctx in ctxs:
            total = sum(10.0 ** model.log10_prob(ctx, w) for w in words)
            assert total == pytest.approx(1.0, abs=SUM_TOL), ctx
        # an unseen context backs off to a proper distribution too
        total = sum(10.0 ** model.log10_prob(("never", "seen"), w) for w in words)
        assert total == pytest.approx(1.0, abs=SUM_TOL)


def test_arpa_round_trip(tmp_path):
    lm = NGramLM.build(corpus_sentences(), order=3)
    p = tmp_path / "lm.arpa"
    lm.save(p)
    text = p.read_text()
    assert text.startswith("\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    back = NGramLM.load(p)
    assert back.order == 3
    for k in (1, 2, 3):
        assert set(back.tables[k]) == set(lm.tables[k])
        for g, (lp, bow) in lm.tables[k].items():
            assert back.tables[k][g][0] == pytest.approx(lp, abs=1e-7)  # 7 decimals written
            assert back.tables[k][g][1] == pytest.approx(bow, abs=1e-7)
    s = "the old jail was old".split()
    assert back.score(s) == pytest.approx(lm.score(s), abs=1e-5)
    # a second save is byte-identical (sorted, fixed format)
    back.save(tmp_path / "again.arpa")
    assert (tmp_path / "again.arpa").read_text() == text


def test_scores_behave():
    lm = NGramLM.build(corpus_sentences(), order=3)
    # sentence score is the sum of the word scores, </s> included
    s = ["the", "old", "jail"]
    expect = lm.log10_prob((BOS,), "the") + lm.log10_prob((BOS, "the"), "old") + lm.log10_prob(("the", "old"), "jail")
    expect += lm.log10_prob(("old", "jail"), EOS)
    assert lm.score(s) == pytest.approx(expect, abs=1e-12)
    # seen word order beats the reverse; unknown words get <unk>'s probability, which is > 0
    assert lm.score(["the", "old", "jail"]) > lm.score(["jail", "old", "the"])
    assert lm.log10_prob((), "zebra") == lm.log10_prob((), UNK) > -99
    assert lm.log10_prob((), BOS) == -99.0
    assert 1.0 < lm.perplexity(corpus_sentences()) < len(lm.vocab)


def test_kneser_ney_continuation_counts():
    """'francisco' follows only 'san' (many times); KN gives it a low unigram probability despite its count."""
    sents = [["san", "francisco"]] * 10 + [["the", "cat"], ["a", "cat"], ["my", "cat"], ["cat"]]
    lm = NGramLM.build(sents, order=2)
    assert lm.log10_prob((), "cat") > lm.log10_prob((), "francisco")
    assert lm.log10_prob(("san",), "francisco") > math.log10(0.8)


def test_normalize_words_reports_dropped():
    dropped = Counter()
    words = normalize_words("Well-known: it's 42 debtors' rooms!", dropped)
    assert words == ["well", "known", "it's", "debtors'", "rooms"]
    assert dropped == {":": 1, "4": 1, "2": 1, "!": 1}


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="no such"):
        NGramLM.load(tmp_path / "missing.arpa")
    bad = tmp_path / "bad.arpa"
    bad.write_text("hello\n")
    with pytest.raises(ConfigError, match="not an ARPA"):
        NGramLM.load(bad)
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\n\\end\\\n")
    with pytest.raises(ConfigError, match="declares 2"):
        NGramLM.load(bad)
    with pytest.raises(ConfigError, match="no words"):
        NGramLM.build([[], []])
    with pytest.raises(ConfigError, match="order"):
        NGramLM.build([["a"]], order=9)


def test_cli_lm_build_and_score(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(CORPUS)
    out = tmp_path / "lm.arpa"
    r = CliRunner().invoke(main, ["lm", "build", str(text), "-o", str(out), "--order", "2"])
    assert r.exit_code == 0, r.output
    assert "2-grams" in r.output and "removed" in r.output  # the comma and full stop are reported
    lm = NGramLM.load(out)
    assert lm.order == 2 and "prisoners" in lm.vocab
    r = CliRunner().invoke(main, ["lm", "score", str(out), "the", "old", "jail"])
    assert r.exit_code == 0 and "perplexity" in r.output
    assert CliRunner().invoke(main, ["lm", "--help"]).exit_code == 0
    r = CliRunner().invoke(main, ["lm", "build", str(tmp_path / "none.txt"), "-o", str(out)])
    assert r.exit_code == 2


def test_lm_and_manifest_normalise_text_alike(tmp_path):
    """The LM must hold the words the model emits: a manifest's text, as read (accents folded, ’ -> ')."""
    import json

    from hearkit.manifest import read_manifest

    line = "Café — don’t"
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio_filepath": "a.flac", "duration": 1.0, "text": line}) + "\n",
                                      encoding="utf-8")
    read = read_manifest(tmp_path / "m.jsonl").utterances[0].text
    assert read == "cafe don't"
    lm, dropped = NGramLM.build_from_text([line], order=1)
    assert lm.vocab - {BOS, EOS, UNK} == set(read.split()) == {"cafe", "don't"}
    assert not dropped  # nothing of it lies outside the alphabet once normalised


def test_lm_alphabet_is_the_model_vocabulary_without_blank():
    from hearkit.text import BLANK_ID, VOCAB

    assert DEFAULT_ALPHABET == frozenset(VOCAB) - {VOCAB[BLANK_ID]}
    assert len(VOCAB) == len(DEFAULT_ALPHABET) + 1  # no token twice
