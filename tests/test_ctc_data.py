"""Speech data for CTC: manifest reading, text normalisation with reported drops, speaker-disjoint concat."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from hearkit.asr_metrics import edit_distance, wer_cer
from hearkit.errors import ConfigError
from hearkit.manifest import ManifestError, read_dataset, read_librispeech, read_manifest
from hearkit.text import VOCAB, encode, normalize_text

SR = 16000


def _tone(seconds: float, freq: float, seed: int = 0) -> np.ndarray:
    """A tone burst in the middle of a clip with low noise around it (a stand-in for a spoken word)."""
    n = int(seconds * SR)
    x = 0.001 * np.random.default_rng(seed).standard_normal(n)
    a, b = n // 4, 3 * n // 4
    x[a:b] += 0.4 * np.sin(2 * np.pi * freq * np.arange(b - a) / SR)
    return x.astype(np.float32)


def test_normalize_counts_every_dropped_character():
    dropped = Counter()
    out = normalize_text("  Hello, World!  Café—it’s 42_x-ray ", dropped)
    assert out == "hello world cafe it's x ray"  # dashes separate words; ’ is an apostrophe
    assert dropped == Counter({",": 1, "!": 1, "4": 1, "2": 1})
    assert set(out) <= set(VOCAB[1:])


def test_encode_rejects_unnormalised_text():
    assert encode("ab c") == [VOCAB.index("a"), VOCAB.index("b"), VOCAB.index(" "), VOCAB.index("c")]
    with pytest.raises(ConfigError, match="outside the alphabet"):
        encode("A!")


def test_read_manifest_relative_paths_and_report(tmp_path):
    (tmp_path / "sub").mkdir()
    lines = [
        {"audio_filepath": "sub/a.flac", "duration": 1.5, "text": "Hello there!"},
        {"audio_filepath": str(tmp_path / "b.flac"), "duration": 2.0, "text": "it's 2 late"},
    ]
    p = tmp_path / "m.jsonl"
    p.write_text("\n".join(json.dumps(d) for d in lines) + "\n\n")
    m = read_manifest(p)
    assert [u.audio for u in m] == [str(tmp_path / "sub" / "a.flac"), str(tmp_path / "b.flac")]
    assert [u.text for u in m] == ["hello there", "it's late"]
    assert m.dropped == Counter({"!": 1, "2": 1})
    assert "2 characters outside the alphabet" in m.report()
    assert m.hours == pytest.approx(3.5 / 3600, abs=1e-12)  # exact sum of the durations
    p.write_text('{"audio_filepath": "a.flac"}\n')
    with pytest.raises(ManifestError, match="'audio_filepath' and 'text'"):
        read_manifest(p)


def test_read_librispeech_layout(tmp_path):
    d = tmp_path / "19" / "198"
    d.mkdir(parents=True)
    (d / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER 1\n")
    m = read_librispeech(tmp_path)
    assert [u.text for u in m] == ["northanger abbey", "chapter"]
    assert m.utterances[0].audio == str(d / "19-198-0000.flac")
    assert m.dropped == Counter({"1": 1})
    assert len(read_dataset(tmp_path)) == 2


def test_wer_cer_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    wer, cer = wer_cer(["yes no yes", "go"], ["yes yes", "go"])
    assert wer == pytest.approx(1 / 4, abs=1e-12)  # one deletion over four reference words
    assert cer == pytest.approx(3 / 12, abs=1e-12)  # "no " deleted from 10 + 2 characters


@pytest.fixture()
def word_tree(tmp_path):
    """A small Speech-Commands + FSDD-like tree: speakers aaaaaaaa, bbbbbbbb (train), cccccccc (val), a
    conflicting speaker dddddddd (one clip listed as val, one not), unknown words, silence, FSDD speakers."""
    sc = tmp_path / "sc"
    spk = {"aaaaaaaa": "train", "bbbbbbbb": "train", "cccccccc": "val", "dddddddd": "mixed"}
    val_list = []
    for w, f in (("yes", 500.0), ("no", 700.0)):
        (sc / w).mkdir(parents=True)
        for s, split in spk.items():
            for n in range(2):
                rel = f"{w}/{s}_nohash_{n}.flac"
                sf.write(sc / rel, _tone(1.0, f, seed=n), SR)
                if split == "val" or (split == "mixed" and w == "yes" and n == 0):
                    val_list.append(rel)
    (sc / "_unknown_").mkdir()
    for s in spk:
        sf.write(sc / "_unknown_" / f"marvin_{s}_nohash_0.flac", _tone(1.0, 900.0), SR)
    (sc / "_silence_").mkdir()
    sf.write(sc / "_silence_" / "1.flac", 0.01 * np.random.default_rng(0).standard_normal(SR).astype(np.float32), SR)
    (sc / "validation_list.txt").write_text("\n".join(val_list) + "\n")
    (sc / "testing_list.txt").write_text("")
    fsdd = tmp_path / "fsdd"
    for d, word in ((3, "three"), (7, "seven")):
        (fsdd / word).mkdir(parents=True)
        for s in ("jackson", "theo"):
            for n in range(2):
                sf.write(fsdd / word / f"{d}_{s}_{n}.flac", _tone(0.5, 300.0 + 50 * d, seed=n), SR)
    (fsdd / "validation_list.txt").write_text("three/3_theo_0.flac\nthree/3_theo_1.flac\nseven/7_theo_0.flac\nseven/7_theo_1.flac\n")
    return sc, fsdd


def test_scan_words_assigns_each_speaker_one_split(word_tree):
    from hearkit.training.ctc_data import scan_words

    sc, fsdd = word_tree
    c = scan_words([sc, fsdd])
    train, val = c.speakers("train"), c.speakers("val")
    assert set(train) == {"sc/aaaaaaaa", "sc/bbbbbbbb", "fsdd/jackson"}
    # the conflicting speaker is held out entirely; its train-listed clips are counted, not moved
    assert set(val) == {"sc/cccccccc", "sc/dddddddd", "fsdd/theo"}
    assert not set(train) & set(val)
    # dddddddd: 4 of its 5 clips are not in the validation list; cccccccc's unknown-word clip is not either
    assert sum(v for k, v in c.skipped.items() if "listed as train" in k) == 5
    words = {cl.word for cl in c.clips}
    assert words == {"yes", "no", "marvin", "three", "seven"}  # _unknown_ word from the file name, _silence_ not a word
    assert len(c.noise["train"]) == 1


def test_concat_one_speaker_per_utterance_and_disjoint_splits(word_tree, tmp_path):
    from hearkit.training.ctc_data import build_concat

    sc, fsdd = word_tree
    s_tr = build_concat([sc, fsdd], tmp_path / "tr", split="train", hours=60 / 3600, min_words=2, max_words=3, seed=0)
    s_va = build_concat([sc, fsdd], tmp_path / "va", split="val", hours=20 / 3600, min_words=2, max_words=3, seed=0)
    assert not set(s_tr["speakers"]) & set(s_va["speakers"])
    m = read_manifest(tmp_path / "tr" / "manifest.jsonl")
    assert m.hours >= 60 / 3600
    assert not m.dropped
    for u in m:
        assert 2 <= len(u.text.split()) <= 3
        assert u.speaker in s_tr["speakers"]
        x, sr = sf.read(u.audio)
        assert sr == SR and abs(len(x) / SR - u.duration) < 1e-3  # manifest duration = file length (rounded to ms)
        if u.speaker.startswith("fsdd/"):
            assert set(u.text.split()) <= {"three", "seven"}
    # same arguments, same files
    s_tr2 = build_concat([sc, fsdd], tmp_path / "tr2", split="train", hours=60 / 3600, min_words=2, max_words=3, seed=0)
    assert s_tr2["utterances"] == s_tr["utterances"]
    assert (tmp_path / "tr" / "manifest.jsonl").read_text().replace("tr/", "") == \
        (tmp_path / "tr2" / "manifest.jsonl").read_text().replace("tr2/", "")
    with pytest.raises(ConfigError, match="min-words"):
        build_concat([sc], tmp_path / "x", min_words=4, max_words=2)


def test_concat_on_real_data_keeps_speakers_apart(shared_data, tmp_path):
    from hearkit.training.ctc_data import build_concat

    roots = [shared_data / "speech_commands", shared_data / "fsdd"]
    tr = build_concat(roots, tmp_path / "tr", split="train", hours=0.01, seed=0)
    va = build_concat(roots, tmp_path / "va", split="val", hours=0.01, seed=0)
    assert tr["utterances"] > 0 and va["utterances"] > 0
    assert not set(tr["speakers"]) & set(va["speakers"])
    val_lists = (shared_data / "speech_commands" / "validation_list.txt").read_text()
    for s in tr["speakers"]:
        assert s.split("/")[1] not in val_lists  # no train speaker has any validation clip
    assert "fsdd/theo" not in tr["speakers"]


def test_data_cli_help_and_concat(word_tree, tmp_path):
    from click.testing import CliRunner

    from hearkit.cli import main

    r = CliRunner().invoke(main, ["data", "concat", "--help"])
    assert r.exit_code == 0 and "--min-words" in r.output
    sc, fsdd = word_tree
    r = CliRunner().invoke(main, ["data", "concat", "--words", str(sc), str(fsdd), "--hours", "0.003", "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "manifest.jsonl").is_file()
    r = CliRunner().invoke(main, ["data", "concat", "--words", str(sc), "--min-words", "3", "--max-words", "2", "-o", str(tmp_path / "p")])
    assert r.exit_code == 2 and "min-words" in r.output


def test_synth_espeak(tmp_path):
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (Debian package espeak-ng)")
    from hearkit.recipes.sentences import build_synth

    t = tmp_path / "t.txt"
    t.write_text("Hello world.\n\nTurn on 2 lights!\n")
    s = build_synth(t, tmp_path / "o", voices=("en-us", "en-gb"), variants=("", "f2"), per_sentence=2, seed=0)
    assert s["utterances"] == 4
    assert s["dropped_characters"] == {".": 1, "2": 1, "!": 1}
    m = read_manifest(tmp_path / "o" / "manifest.jsonl")
    assert [u.text for u in m][::2] == ["hello world", "turn on lights"]
    for u in m:
        x, sr = sf.read(u.audio)
        assert sr == SR and len(x) > 0.3 * SR and np.abs(x).max() > 0.01  # real speech, not silence
