"""Weak answers, one test per class, several inputs each.

1. tracebacks that escaped the one-line handler; 2. silence where the user needs a word (stdin);
3. errors inside a benchmark table with exit 0; 4. checkpoint fields trusted until late (export
validates first, and a failed export leaves nothing loadable); 5. messages that sent the user the
wrong way; 6. Python API arguments. Each refusal: exit 2, one ``Error:`` line naming the file or
option, no traceback, no partial output.
"""

from __future__ import annotations

import errno
import math
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearkit import files
from hearkit.errors import ConfigError, HearkitError

torch = pytest.importorskip("torch", reason="the checkpoints behind these cases need hearkit[train]")
onnx = pytest.importorskip("onnx", reason="the exports behind these cases need hearkit[train]")

SR = 16000


def _wav(path: Path, seconds: float = 1.0, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32), SR)
    return path


@pytest.fixture(scope="module")
def env(untrained_classifier, tmp_path_factory):
    """A good checkpoint (and its dict), its fp32 export and a clip."""
    from hearkit.export.exporter import export_classifier
    from hearkit.training.checkpoint import load_checkpoint

    root = tmp_path_factory.mktemp("weak")
    export = root / "export"
    export_classifier(untrained_classifier, export, quantize=(), log=lambda m: None)
    ckpt = {k: v for k, v in load_checkpoint(untrained_classifier).items() if k not in ("format", "version")}
    return dict(root=root, ckpt_path=untrained_classifier, ckpt=ckpt, export=export, clip=_wav(root / "clip.wav"))


def _variant(env, tmp_path, name: str, **changes) -> Path:
    from hearkit.training.checkpoint import save_checkpoint

    d = tmp_path / "run"
    d.mkdir(exist_ok=True)
    return save_checkpoint({**env["ckpt"], **changes}, d / f"{name}.pt")


def _logmel_model(env, tmp_path, n_mels: int) -> Path:
    """The export's log-mel network with metadata promising ``n_mels`` bands it does not take."""
    import dataclasses

    from hearkit.metadata import ModelInfo

    m = onnx.load(os.fspath(env["export"] / "model.onnx"))
    info = ModelInfo.from_props({p.key: p.value for p in m.metadata_props})
    info = dataclasses.replace(info, frontend=dataclasses.replace(info.frontend, n_mels=n_mels))
    del m.metadata_props[:]
    for k, v in info.to_props().items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    p = tmp_path / f"logmel{n_mels}.onnx"
    onnx.save(m, os.fspath(p))
    return p


def _subprocess(args, stdin=None, close_stdin=False):
    p = subprocess.run([sys.executable, "-m", "hearkit", *map(str, args)], input=stdin, capture_output=True,
                       timeout=120, preexec_fn=(lambda: os.close(0)) if close_stdin else None,
                       stdin=None if (stdin is not None or close_stdin) else subprocess.DEVNULL)
    from types import SimpleNamespace

    return SimpleNamespace(code=p.returncode, stdout=p.stdout.decode(), stderr=p.stderr.decode(), exception=None)


# -- 1. tracebacks that escaped the handler --------------------------------------------------


def test_class1_escaping_tracebacks_end_in_one_line(hostile, env, tmp_path, monkeypatch):
    # standard input closed
    hostile.refused(_subprocess(["stream", env["export"], "-"], close_stdin=True), "standard input")
    # log-mel models whose bands differ from their metadata, given to run and stream
    for bands in (20, 64):
        m = _logmel_model(env, tmp_path, bands)
        hostile.refused(hostile.cli("run", m, env["clip"]), str(m))
    # checkpoint tensors that do not fit the recorded architecture
    sd = env["ckpt"]["state_dict"]
    conv = next(k for k, v in sd.items() if v.ndim == 4)
    cases = {"conv": {**sd, conv: torch.zeros(3, 3, 3, 3)}, "missing": {k: v for k, v in sd.items() if k != conv},
             "extra": {**sd, "nonsense.weight": torch.zeros(2)}}
    for name, state in cases.items():
        ck = _variant(env, tmp_path, name, state_dict=state)
        out = tmp_path / f"out-{name}"
        hostile.refused(hostile.cli("export", ck, "--quantize", "none", "-o", out), str(ck), "architecture")
        assert not out.exists()
    # a full disk during data concat: libsndfile's "System error." on the third file
    words = _words(tmp_path)
    real, calls = sf.write, []

    def full(path, *a, **kw):
        calls.append(path)
        if len(calls) >= 3:
            Path(path).write_bytes(b"fLaC")  # a partial file
            raise sf.LibsndfileError(2, "Error opening file: ")
        return real(path, *a, **kw)

    monkeypatch.setattr(sf, "write", full)
    out = tmp_path / "concat"
    hostile.refused(hostile.cli("-q", "data", "concat", "--words", words, "--hours", "0.01", "-o", out), "concat")
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))


def _words(tmp_path: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from conftest import make_tones

    return make_tones(tmp_path / "words", clip_seconds=0.5, speakers=4, val_speakers=1)


# -- 2. silence where the user needs a word -------------------------------------------------


@pytest.mark.parametrize("data,code", [(b"", 2), (b"\x01", 2), (b"\x00" * 3201, 0)], ids=["0-bytes", "1-byte", "odd"])
def test_class2_stdin_without_audio_says_so(hostile, env, data, code):
    out = _subprocess(["stream", env["export"], "-"], stdin=data)
    if code:
        line = hostile.refused(out, "no audio arrived on standard input")
        assert f"{len(data)} byte" in line or "no bytes" in line
    else:
        assert out.code == 0, out
        assert "last 1 byte was ignored" in out.stderr


# -- 3. errors inside a benchmark table -----------------------------------------------------


def test_class3_bench_that_cannot_measure_exits_nonzero(hostile, env, tmp_path):
    bad = {"random.wav": os.urandom(3000), "empty.wav": b"", "text.wav": b"not audio\n" * 30}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        hostile.refused(hostile.cli("bench", env["export"], "--clip", tmp_path / name, "--repeat", "1",
                                    "--no-spotter"), name)
    m = _logmel_model(env, tmp_path, 64)
    hostile.refused(hostile.cli("bench", m, "--clip", env["clip"], "--repeat", "1", "--no-spotter"), str(m))


# -- 4. checkpoint fields checked before anything is written ---------------------------------


@pytest.mark.parametrize("case", ["window-7", "window-1e12", "window-word", "labels-2", "labels-4", "labels-dup"])
def test_class4_export_checks_every_field_before_writing(hostile, env, tmp_path, case):
    changes = {"window-7": {"window_samples": 7}, "window-1e12": {"window_samples": 10**12},
               "window-word": {"window_samples": "one second"}, "labels-2": {"labels": ["a", "b"]},
               "labels-4": {"labels": ["a", "b", "c", "d"]}, "labels-dup": {"labels": ["a", "a", "b"]}}[case]
    ck = _variant(env, tmp_path, case, **changes)
    out = tmp_path / "out"
    hostile.refused(hostile.cli("export", ck, "--quantize", "int8", "-o", out), str(ck))
    assert not out.exists()


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
def test_class4_a_failed_export_leaves_nothing_loadable(hostile, env, tmp_path, monkeypatch, err):
    from hearkit import artifacts

    def fail(*a, **kw):
        raise OSError(err, os.strerror(err) + "; nothing was written (the previous file, if any, is kept)",
                      str(tmp_path / "out" / "export.json"))

    monkeypatch.setattr(artifacts, "write_export", fail)
    out = tmp_path / "out"
    line = hostile.refused(hostile.cli("-q", "export", env["ckpt_path"], "--quantize", "fp16", "-o", out), "export.json")
    assert "nothing was written" not in line and "removed" in line, line
    assert not out.exists() or not list(out.glob("*.onnx")), list(out.iterdir())


# -- 5. messages that send the user the wrong way --------------------------------------------


def _wav_header(path: Path, sr: int, ch: int, bits: int = 16) -> Path:
    data = b"\x00\x00" * 100
    fmt = struct.pack("<HHIIHH", 1, ch, sr, sr * ch * bits // 8, ch * bits // 8, bits)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
                     + b"data" + struct.pack("<I", len(data)) + data)
    return path


def test_class5_messages_point_the_right_way(hostile, env, tmp_path, untrained_ctc_export, capfd):
    # headers with a rate or channel count of 0, and random bytes that look like MPEG or ID3
    rng = np.random.default_rng(0)
    audio = [_wav_header(tmp_path / "sr0.wav", 0, 1), _wav_header(tmp_path / "ch0.wav", SR, 0),
             _wav_header(tmp_path / "both0.wav", 0, 0)]
    for i, head in enumerate([b"\xff\xfb", b"ID3\x03\x00\x00\x00\x00\x00\x00", b"\xff\xf3", b"\xff\xfb"]):
        p = tmp_path / f"mpeg{i}.bin"
        p.write_bytes(head + rng.integers(0, 256, 300 + 700 * i, dtype=np.uint8).tobytes())
        audio.append(p)
    capfd.readouterr()
    for p in audio:
        line = hostile.refused(hostile.cli("run", env["export"], p), str(p))
        assert "SF_INFO" not in line and "regular file" not in line and "does not exist" not in line, line
    assert "Note:" not in capfd.readouterr().err  # libmpg123's notes stay out of stderr
    # a CTC model given a classification folder
    words = _words(tmp_path)
    for opt in ("--data", "--manifest"):
        hostile.refused(hostile.cli("eval", untrained_ctc_export, opt, words), str(words), "--manifest")
    # refused pickles never quote torch's weights_only=False advice
    import collections
    import datetime

    bad = {"datetime": {"format": "hearkit-checkpoint", "x": datetime.datetime(2020, 1, 1)},
           "counter": {"x": collections.Counter("ab")}}
    for name, obj in bad.items():
        p = tmp_path / f"{name}.pt"
        torch.save(obj, p)
        line = hostile.refused(hostile.cli("export", p, "-o", tmp_path / f"o-{name}"), str(p))
        assert "weights_only" not in line, line
    p = tmp_path / "plain.pt"
    p.write_bytes(pickle.dumps({"a": __import__("fractions").Fraction(1, 2)}))
    assert "weights_only" not in hostile.refused(hostile.cli("export", p, "-o", tmp_path / "o-plain"), str(p))
    # training where every clip is unreadable names them
    bad_words = tmp_path / "bad-words"
    for i, lab in enumerate(["yes", "no"]):
        for k in range(3):
            f = bad_words / lab / f"{k:08x}_nohash_{i}.wav"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(os.urandom(200))
    line = hostile.refused(hostile.cli("-q", "train", "classify", "--data", bad_words, "--epochs", "1",
                                       "--on-bad-file", "skip", "-o", tmp_path / "run"), "unreadable", str(bad_words))
    assert "best.pt" not in line


# -- 6. Python API arguments ------------------------------------------------------------------


def test_class6_api_arguments_are_checked_like_options(hostile, env):
    import hearkit
    from hearkit.classify import Classifier, KeywordSpotter

    clf = Classifier(env["export"])
    x = np.zeros(SR, np.float32)
    for sr in (math.nan, math.inf, 0, -16000, 1.5e12, "fast", True, 16000.5):
        hostile.api_refused(clf.classify, x, sample_rate=sr, names=("sample_rate",))
        hostile.api_refused(clf.logits, [x], sample_rate=sr, names=("sample_rate",))
        hostile.api_refused(hearkit.load_audio, env["clip"], sr, names=("sample_rate",))
        hostile.api_refused(lambda: list(hearkit.iter_blocks(env["clip"], sr)), names=("sample_rate",))
    for bs in (0, -1, 1.5, math.nan, "many", 10**9):
        msg = hostile.api_refused(clf.logits, [x], batch_size=bs, names=("batch_size",))
        assert "from 1 to" in msg
        hostile.api_refused(clf.classify_batch, [x], batch_size=bs, names=("batch_size",))
    for arr in (np.array(0.5), np.float32(0.5), x, str(env["clip"])):
        with pytest.raises(ConfigError, match="list of clips"):
            clf.logits(arr)
    with pytest.raises(HearkitError, match="single number"):
        clf.classify(np.array(0.5))
    with pytest.raises(HearkitError, match="single number"):
        KeywordSpotter(env["export"]).accept_waveform(np.array(0.5))
    for rate in (math.nan, "x", 16000.5):
        hostile.api_refused(hearkit.resample, x, rate, SR, names=("orig_sr",))
    for block in (0, math.nan, -1):
        hostile.api_refused(lambda: list(hearkit.iter_blocks(env["clip"], SR, block)), names=("block_seconds",))
