"""Fuzz: mutated text inputs: JSONL manifests, LibriSpeech transcripts, lexicons, ARPA files, LM text, normalisation.

Records are generated with the right keys and wrong values (numbers as strings,
NaN, Infinity, negative, lists, nulls, huge integers, NUL bytes, any Unicode),
serialised, then mutated as bytes (flips, truncation, non-UTF-8, CR and NUL,
deep nesting). Every reader refuses with a one-line ``HearkitError`` or returns
a right result: utterance texts are normalised to the CTC alphabet, durations are
finite and inside ``limits.duration_s``, no non-blank line is lost, an ARPA model
holds no NaN, and a model built from text has context distributions summing to 1.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearkit.ctc import Lexicon
from hearkit.limits import LIMITS
from hearkit.lm import EOS, NGramLM
from hearkit.manifest import read_dataset, read_librispeech, read_manifest
from hearkit.text import ALPHABET, decode_ids, encode, normalize_text

pytestmark = pytest.mark.fuzz


def budget(weight: float):
    """The active profile's max_examples times ``weight`` (see conftest.py)."""
    return settings(max_examples=max(3, round(settings.default.max_examples * weight)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
texts = st.text(max_size=40) | st.sampled_from(["HELLO WORLD", "café — don’t", "a\x00b", "\u202e", "ǅ", "ﬁ", "İ"])
durations = st.floats() | st.sampled_from([-1.0, 0.0, 1e300, 86401.0]) | json_values | st.sampled_from(["1.5", "nan", "abc"])
record = st.fixed_dictionaries(
    {},
    optional={"audio_filepath": st.sampled_from(["a.flac", "/abs/a.wav", "", "../x.wav", "a\x00.wav"]) | json_values,
              "text": texts | json_values, "duration": durations, "speaker": json_values},
)
byte_ops = st.lists(st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 4000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 4000)),
    st.tuples(st.just("insert"), st.integers(0, 4000),
              st.sampled_from([b"\xff", b"\xc3", b"\r", b"\x00", b"\n\n", b"\xef\xbb\xbf", b"[" * 5000, b"1" * 5000])
              | st.binary(min_size=1, max_size=6)),
), max_size=3)


def mutate(raw: bytes, ops) -> bytes:
    for op in ops:
        if op[0] == "flip" and raw:
            b = bytearray(raw)
            b[op[1] % len(b)] ^= op[2]
            raw = bytes(b)
        elif op[0] == "truncate":
            raw = raw[: op[1]]
        elif op[0] == "insert":
            i = op[1] % (len(raw) + 1)
            raw = raw[:i] + op[2] + raw[i:]
    return raw


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_text")


def nonblank_lines(raw: bytes) -> int:
    # what read_manifest and read_librispeech iterate (hearkit.text.text_lines): lines split at b"\n"
    # only, a leading BOM dropped, each stripped (a lone "\r" or "\x0c" does not end a line there)
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    return sum(1 for ln in raw.split(b"\n") if ln.decode("utf-8").strip())


def check_manifest(fuzz, m, raw: bytes, what: str) -> None:
    """Texts normalised, durations finite and inside limits.duration_s, one utterance per non-blank line."""
    lim = LIMITS["duration_s"]
    for u in m.utterances:
        assert normalize_text(u.text) == u.text and set(u.text) <= set(ALPHABET), (what, u)
        d = u.duration
        fuzz.wrong("manifest_duration_unchecked", d is not None and not (math.isfinite(d) and lim.lo <= d <= lim.hi),
                   f"{what}: duration {d!r} accepted; limits.duration_s is {lim}")
    n = nonblank_lines(raw)
    fuzz.wrong("manifest_lines_lost", len(m.utterances) != n, f"{what}: {n} non-blank lines, {len(m.utterances)} utterances")


@budget(2.0)
@given(records=st.lists(record, min_size=1, max_size=5), ops=byte_ops)
def test_mutated_jsonl_manifest(fuzz, workdir, records, ops):
    target = "text: JSONL manifests"
    fuzz.example(target)
    raw = mutate("\n".join(json.dumps(r) for r in records).encode() + b"\n", ops)
    path = workdir / "manifest.jsonl"
    path.write_bytes(raw)
    for fn in (read_manifest, read_dataset):
        m, _ = fuzz.call(target, fn, path)
        if m is not None:
            check_manifest(fuzz, m, raw, fn.__name__)


@budget(1.0)
@given(lines=st.lists(st.tuples(st.sampled_from(["1-2-0000", "1-2-0001", "../../x", "", "a b"]) | st.text(max_size=8), texts),
                      max_size=5), ops=byte_ops)
def test_mutated_librispeech_transcripts(fuzz, workdir, lines, ops):
    target = "text: LibriSpeech"
    fuzz.example(target)
    root = workdir / "libri"
    chapter = root / "1" / "2"
    chapter.mkdir(parents=True, exist_ok=True)
    raw = mutate("\n".join(f"{u} {t}" for u, t in lines).encode(), ops)
    (chapter / "1-2.trans.txt").write_bytes(raw)
    for fn in (read_librispeech, read_dataset):
        m, _ = fuzz.call(target, fn, root)
        if m is not None:
            check_manifest(fuzz, m, raw, fn.__name__)


@budget(1.0)
@given(words=st.lists(texts, max_size=6), ops=byte_ops)
def test_mutated_lexicon(fuzz, workdir, words, ops):
    target = "text: lexicons"
    fuzz.example(target)
    path = workdir / "words.txt"
    path.write_bytes(mutate("\n".join(words).encode(), ops))
    lex, _ = fuzz.call(target, Lexicon.load, path)
    if lex is not None:
        assert lex.words and all(w and not any(c.isspace() for c in w) for w in lex.words), lex.words
        assert all(w[:i] in lex.prefixes for w in lex.words for i in range(1, len(w) + 1))


ARPA_SENTENCES = ["go left", "go right now", "stop", "left left right"]


@budget(1.5)
@given(ops=byte_ops, replace=st.lists(st.tuples(st.sampled_from(["-0.3010300", "ngram 1=", "\\2-grams:", "\\data\\", "\t"]),
                                                st.sampled_from(["nan", "inf", "-inf", "1e999", "x", "ngram 9=", "\\0-grams:",
                                                                 "\\99999-grams:", "", "\\end\\", "  ", "9" * 5000])),
                                      max_size=3))
def test_mutated_arpa(fuzz, workdir, ops, replace):
    target = "text: ARPA language models"
    fuzz.example(target)
    src = workdir / "src.arpa"
    if not src.exists():
        NGramLM.build_from_text(ARPA_SENTENCES, order=3)[0].save(src)
    text = src.read_text()
    for old, new in replace:
        text = text.replace(old, new, 1)
    path = workdir / "lm.arpa"
    path.write_bytes(mutate(text.encode(), ops))
    lm, _ = fuzz.call(target, NGramLM.load, path)
    if lm is not None:
        values = [v for t in lm.tables.values() for e in t.values() for v in e]
        fuzz.wrong("arpa_nan_accepted", any(math.isnan(v) or v == math.inf for v in values),
                   "an ARPA file with NaN or +inf log-probabilities was loaded")
        score, _ = fuzz.call(target, lm.score, ["go", "left", "unknownword"])
        assert score is None or isinstance(score, float)


@budget(1.5)
@given(lines=st.lists(texts, max_size=6), order=st.integers(-1, 7))
def test_lm_from_text_is_normalised(fuzz, lines, order):
    """build_from_text: a ConfigError, or a model whose stored contexts' next-word probabilities sum to 1 within 1e-6."""
    target = "text: LM from text"
    fuzz.example(target)
    built, _ = fuzz.call(target, NGramLM.build_from_text, lines, order)
    if built is None:
        return
    lm, _dropped = built
    vocab = sorted(w for (w,) in lm.tables[1] if w != "<s>")
    for ctx in lm.contexts()[:20]:
        if ctx and ctx[-1] == EOS:
            continue
        total = sum(10 ** lm.log10_prob(ctx, w) for w in vocab)
        # the in-memory model keeps full float64 precision (only ARPA files round to 7 digits): 1e-6 is generous
        fuzz.wrong("lm_not_normalised", abs(total - 1.0) > 1e-6, f"P(. | {ctx}) sums to {total!r}")


@budget(3.0)
@given(text=st.text(max_size=80) | texts)
def test_normalize_text(fuzz, text):
    """Output in the alphabet, single spaces, idempotent; encode/decode round-trips it."""
    target = "text: normalisation"
    fuzz.example(target)
    out, _ = fuzz.call(target, normalize_text, text)
    assert set(out) <= set(ALPHABET) and "  " not in out and out == out.strip(), (text, out)
    assert normalize_text(out) == out, (text, out)
    ids, _ = fuzz.call(target, encode, out)
    assert decode_ids(ids) == out
