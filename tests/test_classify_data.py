"""Dataset indexing (torch-free) and the cached clip dataset with bad-file handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearkit.datasets import SPLITS, detect_format, hash_split, index_dataset, noise_files, speaker_from_name
from hearkit.errors import AudioError, ConfigError

SR = 16000


def _write(path: Path, seconds: float = 0.25, freq: float = 440.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR)


# -- real data ------------------------------------------------------------------------
def test_speech_commands_counts_and_speakers(shared_data):
    idx = index_dataset(shared_data / "speech_commands")
    assert idx.format == "speech-commands"
    assert len(idx.labels) == 12 and idx.labels[:2] == ("_silence_", "_unknown_")
    assert len(idx.split("train")) == 3949 and len(idx.split("val")) == 505 and idx.split("test") == []
    speakers = {s: {e.speaker for e in idx.split(s) if e.speaker} for s in ("train", "val")}
    assert len(speakers["train"]) == 190 and len(speakers["val"]) == 25
    assert not speakers["train"] & speakers["val"]
    # per-label counts from the data README
    assert idx.counts()["train"]["yes"] == 342 and idx.counts()["val"]["_silence_"] == 32
    # deterministic ordering
    assert [e.path for e in idx.examples] == sorted(e.path for e in idx.examples)
    assert index_dataset(shared_data / "speech_commands").examples == idx.examples


def test_fsdd_counts_and_speakers(shared_data):
    idx = index_dataset(shared_data / "fsdd")
    assert len(idx.labels) == 10
    assert len(idx.split("train")) == 2000 and len(idx.split("val")) == 500
    assert {e.speaker for e in idx.split("val")} == {"theo"}
    assert {e.speaker for e in idx.split("train")} == {"jackson", "nicolas", "yweweler", "lucas"}


def test_urbansound_folds(shared_data):
    idx = index_dataset(shared_data / "urbansound8k", val_fold=2)
    assert idx.format == "urbansound8k" and len(idx.labels) == 10 and idx.labels[0] == "air_conditioner"
    assert len(idx.split("train")) == 873 and len(idx.split("val")) == 159
    assert {e.fold for e in idx.split("val")} == {2}
    with pytest.raises(ConfigError, match="fold 7 is not in the metadata"):
        index_dataset(shared_data / "urbansound8k", val_fold=7)


# -- synthetic layouts ---------------------------------------------------------------------
def test_speech_commands_hash_split_keeps_speakers_apart(tmp_path):
    """No lists: the split is a hash of the speaker, so a speaker's clips share one split."""
    for spk in [f"{i:08x}" for i in range(40)]:
        for word in ("yes", "no"):
            for n in range(2):
                _write(tmp_path / word / f"{spk}_nohash_{n}.wav")
    _write(tmp_path / "_background_noise_" / "noise.wav", 1.0)
    (tmp_path / "testing_list.txt").write_text("")  # empty list = no lists
    idx = index_dataset(tmp_path)
    assert idx.format == "speech-commands" and idx.labels == ("no", "yes")
    assert len(idx.noise_files) == 1 and all("_background_noise_" not in e.path for e in idx.examples)
    by_spk = {}
    for e in idx.examples:
        by_spk.setdefault(e.speaker, set()).add(e.split)
    assert all(len(s) == 1 for s in by_spk.values())
    assert {e.split for e in idx.examples} == set(SPLITS)  # 40 speakers at 10/10 % hit all three
    assert noise_files(tmp_path) == list(idx.noise_files)


def test_keywords_map_other_words_to_unknown(tmp_path):
    for word in ("yes", "no", "cat", "dog"):
        _write(tmp_path / word / "abcd1234_nohash_0.wav")
    (tmp_path / "validation_list.txt").write_text("yes/abcd1234_nohash_0.wav\n")
    idx = index_dataset(tmp_path, keywords=["yes", "no"])
    assert idx.labels == ("_unknown_", "no", "yes")
    assert sum(e.label == "_unknown_" for e in idx.examples) == 2
    assert [e.label for e in idx.split("val")] == ["yes"]
    with pytest.raises(ConfigError, match="have no folder"):
        index_dataset(tmp_path, keywords=["yes", "up"])


def test_folders_format_split_by_file_hash(tmp_path):
    for label in ("a", "b"):
        for n in range(30):
            _write(tmp_path / label / f"clip{n}.wav")
    assert detect_format(tmp_path) == "folders"
    idx = index_dataset(tmp_path)
    assert idx.format == "folders" and all(e.speaker is None for e in idx.examples)
    assert idx.split("train") and idx.split("val")
    assert [e.split for e in index_dataset(tmp_path).examples] == [e.split for e in idx.examples]


def test_speaker_names_and_hash():
    assert speaker_from_name("backward_0c540988_nohash_0.flac") == "0c540988"
    assert speaker_from_name("yes/0c540988_nohash_3.wav") == "0c540988"
    assert speaker_from_name("7_jackson_12.flac") == "jackson"
    assert speaker_from_name("1024.flac") is None
    assert hash_split("0c540988") == hash_split("0c540988")
    shares = [hash_split(f"spk{i}") for i in range(2000)]
    assert 0.07 < shares.count("val") / 2000 < 0.13  # 10 % by default; binomial sd ~0.7 %


def test_detect_format_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        index_dataset(tmp_path / "nope")
    with pytest.raises(ConfigError, match="cannot tell the dataset layout"):
        detect_format(tmp_path)
    _write(tmp_path / "only" / "x.wav")
    with pytest.raises(ConfigError, match="at least 2"):
        index_dataset(tmp_path, "folders")


# -- cached clip dataset ---------------------------------------------------------------------
def _bad_tree(tmp_path):
    for label, f in (("a", 300.0), ("b", 3000.0)):
        for n in range(3):
            _write(tmp_path / label / f"s{n}_nohash_0.wav", 0.5 + 0.5 * n, f)
    (tmp_path / "b" / "broken_nohash_0.wav").write_bytes(b"RIFF\x00\x00not really audio")
    (tmp_path / "validation_list.txt").write_text("a/s0_nohash_0.wav\n")
    return index_dataset(tmp_path)


def test_clip_dataset_bad_files(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from hearkit.audio import fit_window
    from hearkit.training.data import ClipDataset

    idx = _bad_tree(tmp_path)
    train = idx.split("train")
    with pytest.raises(AudioError, match="broken_nohash_0.wav.*--on-bad-file skip"):
        ClipDataset(train, idx.labels, SR, SR, on_bad_file="fail")
    ds = ClipDataset(train, idx.labels, SR, SR, on_bad_file="skip")
    assert len(ds) == len(train) - 1
    assert [Path(p).name for p, _ in ds.bad_files] == ["broken_nohash_0.wav"]
    assert "broken_nohash_0.wav" in capsys.readouterr().err  # reported, never silent
    x, y = ds[0]
    assert x.shape == (SR,) and x.dtype == torch.float32 and 0 <= y < 2
    # pad centres, crop centres
    assert np.array_equal(fit_window(np.ones(4, np.float32), 8), [0, 0, 1, 1, 1, 1, 0, 0])
    assert np.array_equal(fit_window(np.arange(10, dtype=np.float32), 4), [3, 4, 5, 6])
