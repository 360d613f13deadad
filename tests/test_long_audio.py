"""Long audio: every command on a 20-minute file in bounded memory, and the block paths equal the whole-file ones.

The memory tests run each command in a fresh interpreter and read its peak RSS
(VmHWM, reported by the child at exit: on Linux ``ru_maxrss`` of a child also counts
the parent's pages at fork, so it would report pytest's size). Before the block
paths, the 20-minute file cost ``features`` 1.73 GB, ``show`` 3.20 GB and ``run``
240 MB (measured; 10 GB, 18.5 GB and 1.1 GB for two hours); after, 72-128 MB, the
same for a two-hour file. Each bound below is that measured peak plus a margin of
about 60-100 % (other library versions, allocator noise) and well under the old
figures, so a command that reads the whole file again fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000
LONG_MINUTES = 20
PEAK_SNIPPET = """
import atexit, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("PEAK_KB " + line.split()[1] + "\\n")
atexit.register(_peak)
from hearkit.cli import main
main(sys.argv[1:], prog_name="hearkit")
"""

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="peak RSS is read from /proc (Linux); skipping the long-audio tests")


def _speechish(n: int, seed: int) -> np.ndarray:
    """Tone bursts over noise, float32: something for a spectrogram and a model to chew on."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    env = (np.sin(2 * np.pi * 0.7 * t + seed) > 0.3).astype(np.float32)
    return (0.2 * env * (np.sin(2 * np.pi * (300 + 50 * (seed % 7)) * t) + 0.3 * rng.standard_normal(n))).astype(np.float32)


def write_long(path: Path, minutes: float, sample_rate: int = SR) -> Path:
    """A int16 WAV of ``minutes``, written a minute at a time (the test's own memory stays small)."""
    with sf.SoundFile(path, "w", sample_rate, 1, "PCM_16") as f:
        left = int(minutes * 60 * sample_rate)
        i = 0
        while left > 0:
            n = min(left, 60 * sample_rate)
            f.write(_speechish(n, i))
            left -= n
            i += 1
    return path


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> Path:
    """A 20-minute 16 kHz int16 WAV (38 MB), generated."""
    return write_long(tmp_path_factory.mktemp("long") / "long.wav", LONG_MINUTES)


@pytest.fixture(scope="module")
def kws_export(make_classifier_export) -> Path:
    return make_classifier_export(["a", "b", "c"])


@pytest.fixture(scope="module")
def ctc_export(untrained_ctc_export) -> Path:
    return untrained_ctc_export


def peak_mb(*args: str, timeout: float = 120) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``hearkit ARGS`` in a fresh interpreter; (its peak RSS in MiB, the completed process)."""
    r = subprocess.run([sys.executable, "-c", PEAK_SNIPPET, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    kb = [int(line.split()[1]) for line in r.stderr.splitlines() if line.startswith("PEAK_KB ")]
    assert kb, r.stderr[-2000:]
    return kb[-1] / 1024, r


# -- peak RSS per command, in a subprocess -------------------------------------------------
def test_features_memory_is_bounded(long_wav, tmp_path):
    out = tmp_path / "f.npy"
    mb, _ = peak_mb("features", long_wav, "-o", out)
    assert mb < 200, f"features peaked at {mb:.0f} MB (bound 200 MB; 1.73 GB before, 75 MB after)"
    y = np.load(out, mmap_mode="r")
    # frames of a 20-minute file, no centring: 1 + (n - 512) // 160
    assert y.shape == (1 + (LONG_MINUTES * 60 * SR - 512) // 160, 40)


def test_show_memory_is_bounded(long_wav, tmp_path):
    out = tmp_path / "s.png"
    mb, _ = peak_mb("show", long_wav, "-o", out)
    assert mb < 250, f"show peaked at {mb:.0f} MB (bound 250 MB; 3.20 GB before, 128 MB after)"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_memory_is_bounded(long_wav, kws_export):
    mb, r = peak_mb("run", kws_export, long_wav)
    assert mb < 150, f"run peaked at {mb:.0f} MB (bound 150 MB; 240 MB before, 72 MB after)"
    assert json.loads(r.stdout.splitlines()[0])["label"] in ("a", "b", "c")
    assert "heard its centre" in r.stderr  # the note that the rest of the file was not classified


def test_stream_memory_is_bounded(long_wav, kws_export):
    # a 0.5-s hop: five times fewer model runs than the default keeps the test to seconds;
    # the audio is still read in 0.1-s blocks, which is what memory depends on
    mb, _ = peak_mb("stream", kws_export, long_wav, "--hop", "0.5")
    assert mb < 150, f"stream peaked at {mb:.0f} MB (bound 150 MB; 75 MB before and after)"


def test_detector_eval_streams_a_long_negative_file(long_wav, kws_export, tmp_path):
    # the negatives are streamed in blocks: a 20-minute negative file is not held whole (77 MB as float32)
    pos = tmp_path / "pos" / "a"
    pos.mkdir(parents=True)
    t = np.arange(16000) / 16000
    sf.write(pos / "a1.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    neg = tmp_path / "neg"
    neg.mkdir()
    (neg / "long.wav").symlink_to(long_wav)
    mb, r = peak_mb("eval", kws_export, "--positives", tmp_path / "pos", "--negatives", neg, "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["negative_hours"] == pytest.approx(LONG_MINUTES / 60, abs=1e-3)  # all of it, hours
    assert mb < 150, f"eval peaked at {mb:.0f} MB (bound 150 MB, as stream)"


def test_transcribe_memory_is_bounded(long_wav, ctc_export):
    mb, r = peak_mb("transcribe", ctc_export, long_wav, "--json")
    assert mb < 200, f"transcribe peaked at {mb:.0f} MB (bound 200 MB; 100 MB before and after)"
    assert json.loads(r.stdout.splitlines()[-1])["duration"] == pytest.approx(LONG_MINUTES * 60, abs=1e-3)


# -- the block paths give what the whole-file paths give -----------------------------------
@pytest.fixture(scope="module")
def minute_plus(tmp_path_factory) -> dict[int, Path]:
    """70-s files (just over WHOLE_FILE_SECONDS, so the block paths run) at 16 and 44.1 kHz, float WAV."""
    from hearkit.audio import WHOLE_FILE_SECONDS

    tmp = tmp_path_factory.mktemp("minute_plus")
    out = {}
    for sr in (16000, 44100):
        n = int((WHOLE_FILE_SECONDS + 10) * sr)
        sf.write(tmp / f"m{sr}.wav", _speechish(n, 3), sr, subtype="FLOAT")
        out[sr] = tmp / f"m{sr}.wav"
    return out


@pytest.mark.parametrize("sr", [16000, 44100])
@pytest.mark.parametrize("start,frames", [(0, 16000), (123_457, 16000), (-5000, 16000), (7, None)])
def test_load_span_equals_a_slice_of_load_audio(minute_plus, sr, start, frames):
    from hearkit.audio import load_audio, load_span

    whole = load_audio(minute_plus[sr], SR)[0]
    start = start % whole.size
    ref = whole[start:] if frames is None else whole[start : start + frames]
    got = load_span(minute_plus[sr], SR, start, frames)
    assert got.shape == ref.shape
    # tolerance: exact without resampling; the span's resampler sees the same samples within
    # SPAN_MARGIN_SECONDS, so only float32 rounding differs (measured <= 2e-7)
    np.testing.assert_allclose(got, ref, rtol=0, atol=0 if sr == SR else 1e-6)


def test_load_centre_keeps_what_fit_window_keeps(minute_plus, tmp_path):
    from hearkit.audio import load_audio, load_centre
    from hearkit.audio import fit_window

    short = tmp_path / "short.wav"
    sf.write(short, _speechish(3 * SR, 1), SR)
    for path, atol in ((minute_plus[16000], 0), (minute_plus[44100], 1e-6), (short, 0)):
        ref = fit_window(load_audio(path, SR)[0], SR)
        np.testing.assert_allclose(fit_window(load_centre(path, SR, SR), SR), ref, rtol=0, atol=atol)
    assert load_centre(short, SR, SR).size == 3 * SR  # a short file comes back whole, as load_audio gives it


@pytest.mark.parametrize("center,pad_mode,n_fft,hop", [(False, "reflect", 512, 160), (True, "reflect", 512, 160),
                                                       (True, "constant", 400, 300), (False, "reflect", 256, 256)])
def test_frame_segments_give_the_whole_stream_frames(signals, center, pad_mode, n_fft, hop):
    from hearkit.audio import frame_segments
    from hearkit.frontend import FrontendConfig, logmel

    cfg = FrontendConfig(n_fft=n_fft, hop_length=hop, center=center, pad_mode=pad_mode)
    x = signals.chirp(5 * SR + 77, SR)
    blocks = np.split(x, [300, 301, 9000, 33333, 50000])  # odd sizes, a 1-sample block, blocks shorter than n_fft
    y = np.concatenate([logmel(s, cfg.replace(center=False))
                        for s in frame_segments(blocks, n_fft, hop, center, pad_mode)])
    ref = logmel(x, cfg)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5)  # same frames; only BLAS row blocking may differ


def test_frame_segments_refuse_reflecting_a_stream_too_short():
    from hearkit.audio import frame_segments
    from hearkit.errors import ConfigError

    with pytest.raises(ConfigError, match="reflect padding needs more than n_fft//2 = 256 samples, got 200"):
        list(frame_segments([np.zeros(100, np.float32)] * 2, 512, 160, center=True))


def _features(audio, out, *opts):
    from click.testing import CliRunner

    from hearkit.cli import main

    r = CliRunner().invoke(main, ["features", str(audio), "-o", str(out), *opts])
    assert r.exit_code == 0, (r.output, r.exception)
    return np.load(out)


@pytest.mark.parametrize("opts", [(), ("--center",), ("--center", "--n-fft", "400", "--hop-length", "300", "--n-mels", "24"),
                                  ("--sample-rate", "8000")])
def test_features_of_a_long_file_equal_the_whole_file_features(minute_plus, tmp_path, opts):
    from hearkit.audio import load_audio
    from hearkit.export.features import compute_features

    path = minute_plus[44100]
    y = _features(path, tmp_path / "f.npy", *opts)
    cfg = _cfg(opts)
    ref = compute_features(load_audio(path, cfg.sample_rate)[0], cfg, "numpy")
    assert y.shape == ref.shape
    # tolerance: the streamed resampler (iter_blocks) against the whole-file one; log-mel of
    # noisy tones moves by far less than 1e-3 for 1e-6 changes of the samples
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-3)


def _cfg(opts):
    """The FrontendConfig the features command builds from ``opts``."""
    from hearkit.frontend import FrontendConfig

    kw = {"center": "--center" in opts}
    for opt, key in (("--sample-rate", "sample_rate"), ("--n-fft", "n_fft"), ("--hop-length", "hop_length"),
                     ("--n-mels", "n_mels")):
        if opt in opts:
            kw[key] = int(opts[opts.index(opt) + 1])
    return FrontendConfig(**kw)


def test_features_onnx_backend_of_a_long_file(minute_plus, tmp_path):
    pytest.importorskip("onnx", reason="the onnx-conv backend builds a graph (hearkit[train])")
    from hearkit.audio import load_audio
    from hearkit.export.features import compute_features
    from hearkit.frontend import FrontendConfig

    y = _features(minute_plus[16000], tmp_path / "f.npy", "--backend", "onnx-conv", "--center")
    ref = compute_features(load_audio(minute_plus[16000], SR)[0], FrontendConfig(center=True), "onnx-conv")
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-3)  # fp32 graph run on segments vs. the whole array


def test_features_of_a_short_file_are_the_bytes_np_save_writes(tmp_path, signals):
    import io

    from hearkit.audio import load_audio
    from hearkit.export.features import compute_features
    from hearkit.frontend import FrontendConfig

    clip = tmp_path / "c.wav"
    sf.write(clip, signals.chirp(SR + 123, SR), SR)
    _features(clip, tmp_path / "f.npy")
    buf = io.BytesIO()
    np.save(buf, compute_features(load_audio(clip, SR)[0], FrontendConfig(), "numpy").astype(np.float32))
    assert (tmp_path / "f.npy").read_bytes() == buf.getvalue()


def test_summary_columns_pool_the_frames(signals):
    from hearkit.plots.clip import summarise
    from hearkit.frontend import FrontendConfig, power_spectrogram

    cfg = FrontendConfig(center=True)
    x = signals.chirp(20 * SR + 5, SR)
    frames = cfg.num_frames(x.size)
    s = summarise(np.split(x, [7000, 160_000]), cfg, frames, columns=50)
    p = power_spectrogram(x, cfg)
    per = s.frames_per_column
    assert per == -(-frames // 50) and s.frames == frames and s.samples == x.size
    assert len(s.power) == -(-frames // per) <= 50
    ref = np.stack([p[i : i + per].mean(axis=0) for i in range(0, frames, per)])
    np.testing.assert_allclose(s.power, ref, rtol=1e-9, atol=1e-12)  # float64 sums in another order
    spc = per * cfg.hop_length
    lo = np.array([x[i : i + spc].min() for i in range(0, x.size, spc)])
    hi = np.array([x[i : i + spc].max() for i in range(0, x.size, spc)])
    np.testing.assert_array_equal(s.low, lo)
    np.testing.assert_array_equal(s.high, hi)


def test_show_of_a_long_file_draws_columns(minute_plus, tmp_path):
    from click.testing import CliRunner

    from hearkit.cli import main

    out = tmp_path / "s.png"
    r = CliRunner().invoke(main, ["show", str(minute_plus[44100]), "-o", str(out)])
    assert r.exit_code == 0, (r.output, r.exception)
    head = out.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") > 800


def test_classifier_on_a_long_file_equals_its_centre(minute_plus, kws_export):
    from hearkit.audio import load_audio
    from hearkit.audio import fit_window
    from hearkit.classify import Classifier

    clf = Classifier(kws_export)
    for path in minute_plus.values():
        a = clf.logits([path])
        b = clf.logits([fit_window(load_audio(path, clf.sample_rate)[0], clf.window_samples)])
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)  # exact at 16 kHz; resampled spans differ by ~1e-7


def _manifest(tmp_path, audio: Path, seconds: float) -> Path:
    m = tmp_path / "manifest.jsonl"
    m.write_text(json.dumps({"audio_filepath": str(audio), "duration": seconds, "text": "a b"}) + "\n")
    return m


def test_eval_ctc_memory_is_bounded(long_wav, ctc_export, tmp_path):
    mb, r = peak_mb("eval", ctc_export, "--manifest", _manifest(tmp_path, long_wav, LONG_MINUTES * 60), "--json")
    assert mb < 180, f"eval (CTC) peaked at {mb:.0f} MB (bound 180 MB; 239 MB before, 101 MB after)"
    assert json.loads(r.stdout)["audio_seconds"] == pytest.approx(LONG_MINUTES * 60, abs=0.01)


def test_eval_ctc_of_a_long_utterance_equals_transcribing_it_whole(minute_plus, ctc_export, tmp_path):
    from hearkit.asr_metrics import error_counts
    from hearkit.audio import load_audio
    from hearkit.evaluate.ctc import eval_ctc
    from hearkit.transcribe import Transcriber

    path = minute_plus[16000]
    rep = eval_ctc(ctc_export, manifest=_manifest(tmp_path, path, 70.0))
    tr = Transcriber(ctc_export)
    want = error_counts(["a b"], [tr.transcribe(load_audio(path, tr.sample_rate)[0]).text])
    assert rep["audio_seconds"] == pytest.approx(70.0, abs=0.01)
    # streamed from disk, the transcript is the whole array's: the same edits against "a b"
    assert (rep["word_errors"], rep["char_errors"]) == (want["word_errors"], want["char_errors"])
