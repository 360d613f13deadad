"""hearkit.Transcriber and `hearkit transcribe` on a stand-in CTC model built with onnx.helper.

The stand-in has the exported pipeline's contract (``waveform`` (batch, samples) ->
``log_probs`` (batch, frames, vocab), hearkit ctc metadata) and a short receptive
field: framing Conv (n_fft 400, hop 160) -> power -> log -> stride-2 Conv (subsampling 2)
-> LogSoftmax. Its transcripts are gibberish, but deterministic, which is all that
chunking, streaming and memory tests need.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hearkit.cli import main
from hearkit.ctc import greedy_decode
from hearkit.errors import ModelError
from hearkit.frontend import FrontendConfig
from hearkit.metadata import ModelInfo
from hearkit.sessions import make_session

onnx = pytest.importorskip("onnx", reason="onnx builds the stand-in model (pip install 'hearkit[train]')")

SR = 16000
N_FFT, HOP, SUB = 400, 160, 2
VOCAB = ["<blank>", " ", *"abcdefghijklmnopqrstuvwxyz", "'"]  # what the trained models emit
N_FILTERS = 12
W2_SCALE = 0.1  # logits of a few units: about half the frames blank on speech
FEATURE_CENTRE = 7.0  # log-power of speech here is around -7; centring makes the random projection vary
BLANK_BIAS = 4.0


def build_ctc_model(path, seed=0, task="ctc", blank_bias=BLANK_BIAS):
    """The stand-in CTC pipeline at ``path``; tests/test_device_option.py and tests/fuzz load it from here."""
    from onnx import TensorProto, helper

    from hearkit.export.onnx_io import save_model, set_metadata

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((N_FILTERS, 1, N_FFT)) / np.sqrt(N_FFT)).astype(np.float32)
    w2 = (rng.standard_normal((len(VOCAB), N_FILTERS, 2 * SUB)) * W2_SCALE).astype(np.float32)
    b2 = np.zeros(len(VOCAB), np.float32)
    b2[0] = blank_bias  # blank most of the time, as trained CTC models do
    inits = [
        helper.make_tensor("w1", TensorProto.FLOAT, w1.shape, w1.ravel()),
        helper.make_tensor("w2", TensorProto.FLOAT, w2.shape, w2.ravel()),
        helper.make_tensor("b2", TensorProto.FLOAT, b2.shape, b2),
        helper.make_tensor("axes1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("eps", TensorProto.FLOAT, [], [1e-6]),
        helper.make_tensor("centre", TensorProto.FLOAT, [], [FEATURE_CENTRE]),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["waveform", "axes1"], ["x3"]),
        helper.make_node("Conv", ["x3", "w1"], ["fr"], strides=[HOP], kernel_shape=[N_FFT]),
        helper.make_node("Mul", ["fr", "fr"], ["pw"]),
        helper.make_node("Add", ["pw", "eps"], ["pe"]),
        helper.make_node("Log", ["pe"], ["lf"]),
        helper.make_node("Add", ["lf", "centre"], ["feat"]),
        helper.make_node("Conv", ["feat", "w2", "b2"], ["logits"], strides=[SUB], kernel_shape=[2 * SUB], pads=[1, 1]),
        helper.make_node("Transpose", ["logits"], ["lt"], perm=[0, 2, 1]),
        helper.make_node("LogSoftmax", ["lt"], ["log_probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "stand_in_ctc",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["batch", "frames", len(VOCAB)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    fe = FrontendConfig(sample_rate=SR, n_fft=N_FFT, hop_length=HOP)
    if task == "ctc":
        info = ModelInfo(task="ctc", input="waveform", frontend=fe, vocab=tuple(VOCAB), blank=0, subsampling=SUB)
    else:
        info = ModelInfo(task="classify", input="waveform", frontend=fe, labels=("a", "b"))
    set_metadata(model, info.to_props())
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return build_ctc_model(tmp_path_factory.mktemp("ctc") / "pipeline.onnx")


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory, shared_data):
    """About 3 minutes of real speech: LJ sentences (read aloud) concatenated, written as FLAC."""
    files = sorted((shared_data / "ljspeech_amateur").glob("*.flac"))
    parts, n = [], 0
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        assert sr == SR
        parts.append(x)
        n += x.size
        if n >= 180 * SR:
            break
    x = np.concatenate(parts)
    path = tmp_path_factory.mktemp("audio") / "long.flac"
    sf.write(path, x, SR)
    return path, x


def whole_file_tokens(model_path, x):
    """Reference: one model run over the whole signal, greedy decoded."""
    sess = make_session(model_path)
    lp = sess.run(None, {"waveform": x[None, :]})[0][0]
    return lp, greedy_decode(lp, VOCAB, 0, frame_seconds=HOP * SUB / SR)


def test_chunked_equals_whole_file(model_path, long_speech):
    """Overlapping 20 s chunks (and odd 3.7 s ones) give exactly the tokens and times of one whole-file run."""
    import hearkit

    path, x = long_speech
    _, ref = whole_file_tokens(model_path, x)
    assert len(ref.words) > 50  # the stand-in emits plenty of "words" on speech
    whole = hearkit.Transcriber(model_path, chunk_seconds=10_000).transcribe(path)
    assert whole == ref
    for chunk, overlap in [(20.0, 2.0), (3.7, 0.5)]:
        got = hearkit.Transcriber(model_path, chunk_seconds=chunk, overlap_seconds=overlap).transcribe(path)
        assert got.text == ref.text
        assert got.words == ref.words  # timings and confidences too (same frames, same float32 values)
    # control: without context the chunk edges change frames, so the comparison above can fail
    no_context = hearkit.Transcriber(model_path, chunk_seconds=3.7, overlap_seconds=0.0).transcribe(path)
    assert no_context.text != ref.text
    # an array in, at another sample rate: resampled, same kind of result
    tr = hearkit.Transcriber(model_path)
    assert tr.transcribe(x).text == ref.text


def test_beam_with_lm_chunked_equals_whole(model_path, long_speech, tmp_path):
    import hearkit
    from hearkit.lm import NGramLM

    _, x = long_speech
    x = x[: 40 * SR]
    lm = NGramLM.build([["a", "tin", "nest"], ["tea", "sea", "a"], ["sit", "in", "a", "tent"]], order=2)
    kw = dict(beam=4, lm=lm, alpha=0.3)
    whole = hearkit.Transcriber(model_path, chunk_seconds=10_000, **kw).transcribe(x)
    chunked = hearkit.Transcriber(model_path, chunk_seconds=7.0, overlap_seconds=1.0, **kw).transcribe(x)
    assert chunked == whole and whole.words
    lex = ["a", "tin", "nest", "tea", "sit", "in", "tent"]
    t = hearkit.Transcriber(model_path, lexicon=lex, beam=4).transcribe(x)
    assert all(w.text in lex for w in t.words)


def test_streaming_equals_offline(model_path, long_speech):
    """accept_waveform with odd piece sizes, partial results along the way, finalize == transcribe."""
    import hearkit

    _, x = long_speech
    x = x[: 50 * SR]
    tr = hearkit.Transcriber(model_path, chunk_seconds=4.0, overlap_seconds=0.5)
    offline = tr.transcribe(x)
    rng = np.random.default_rng(0)
    i, calls, partials = 0, 0, []
    while i < x.size:
        n = int(rng.integers(1, 40_000))
        p = tr.accept_waveform(x[i : i + n], partial=calls % 5 == 0)
        assert (p is None) == (calls % 5 != 0)
        if p is not None:
            partials.append(p)
        i += n
        calls += 1
    final = tr.finalize()
    assert final == offline
    # partial results grow towards the final text
    assert len(partials) > 3
    assert len(partials[-1].words) > len(partials[1].words)
    last = partials[-1].words
    assert [w.text for w in last[:-2]] == [w.text for w in final.words[: len(last) - 2]]
    # finalize started a new stream: times restart from 0
    seg = x[20 * SR : 26 * SR]
    tr.accept_waveform(seg, partial=False)
    again = tr.finalize()
    assert again.words and again.words[-1].end <= 6.0
    assert again == tr.transcribe(seg)
    # 44.1 kHz audio is resampled in the stream, in odd pieces, as offline resamples it whole
    from hearkit.audio import resample

    hi = resample(seg, SR, 44100)
    tr.reset()
    for i in range(0, hi.size, 30_011):
        tr.accept_waveform(hi[i : i + 30_011], sample_rate=44100, partial=False)
    streamed, whole = tr.finalize(), tr.transcribe(hi, sample_rate=44100)
    assert streamed.text == whole.text and whole.words


def test_short_and_silent_input(model_path):
    import hearkit

    tr = hearkit.Transcriber(model_path)
    assert tr.transcribe(np.zeros(100, np.float32)).text == tr.transcribe(np.zeros(100, np.float32)).text
    assert tr.finalize().text == ""  # nothing was streamed


def _write_long_noise(path, seconds, seed=0):
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(int(seconds // 10)):
            f.write((0.1 * rng.standard_normal(10 * SR)).astype(np.float32))


def test_memory_is_bounded(model_path, tmp_path):
    """Python-side peak memory (tracemalloc: numpy buffers and objects) for 1 minute vs 10 minutes of audio.

    Past the first window the peak must stay flat: storing the audio or all log-probs of the
    extra 9 minutes would add ~35 MB or ~3.1 MB (27,000 frames x 29 x 4 bytes). The design's
    bound (an hour < 50 MB above 10 s) then holds with room; the hour itself is a slow test.
    """
    import hearkit

    short, long_ = tmp_path / "short.flac", tmp_path / "long.flac"
    _write_long_noise(short, 60)
    _write_long_noise(long_, 600)
    tr = hearkit.Transcriber(model_path)
    peaks = []
    for p in (short, long_):
        tracemalloc.start()
        t = tr.transcribe(p)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert t.words
    growth = peaks[1] - peaks[0]
    assert growth < 1e6, f"peak grew by {growth / 1e6:.2f} MB from 1 to 10 minutes (peaks {peaks})"


def test_cli_transcribe_json(model_path, long_speech, tmp_path):
    import hearkit

    path, x = long_speech
    clip = tmp_path / "clip.wav"
    sf.write(clip, x[: 12 * SR], SR)
    r = CliRunner().invoke(main, ["transcribe", str(model_path), str(clip), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    expect = hearkit.Transcriber(model_path).transcribe(clip)
    assert out["text"] == expect.text
    assert out["duration"] == pytest.approx(12.0, abs=1e-3)
    assert out["rtf"] > 0
    assert {"text", "start", "end", "confidence"} <= set(out["words"][0])
    r = CliRunner().invoke(main, ["transcribe", str(model_path), str(clip), str(clip)])
    assert r.exit_code == 0 and r.output.count(expect.text) == 2
    lex = tmp_path / "lex.txt"
    lex.write_text("a\nsat\n")
    r = CliRunner().invoke(main, ["transcribe", str(model_path), str(clip), "--lexicon", str(lex), "--beam", "3"])
    assert r.exit_code == 0 and set(r.output.split()) <= {"a", "sat"}
    assert CliRunner().invoke(main, ["transcribe", "--help"]).exit_code == 0
    # an export folder works too (its pipeline model is picked)
    r = CliRunner().invoke(main, ["transcribe", str(model_path.parent), str(clip)])
    assert r.exit_code == 0 and r.output.strip() == expect.text


def test_cli_eval_ctc_greedy_and_lexicon(model_path, long_speech, tmp_path):
    """`hearkit eval` on a manifest: WER/CER of what the transcriber emits, greedy or with a lexicon."""
    import hearkit
    from hearkit.asr_metrics import wer_cer

    _, x = long_speech
    for i in range(2):
        sf.write(tmp_path / f"u{i}.wav", x[i * 3 * SR : (i + 1) * 3 * SR], SR)
    refs = ["a sat", "sat a a"]
    (tmp_path / "m.jsonl").write_text("".join(
        json.dumps({"audio_filepath": f"u{i}.wav", "duration": 3.0, "text": t}) + "\n" for i, t in enumerate(refs)))
    lex = tmp_path / "lex.txt"
    lex.write_text("a\nsat\n")
    for extra, tr in (([], hearkit.Transcriber(model_path)),
                      (["--lexicon", str(lex), "--beam", "3"], hearkit.Transcriber(model_path, beam=3, lexicon=lex))):
        r = CliRunner().invoke(main, ["eval", str(model_path), "--manifest", str(tmp_path / "m.jsonl"), "--json", *extra])
        assert r.exit_code == 0, r.output
        rep = json.loads(r.stdout[r.stdout.index("{"):])
        hyps = [tr.transcribe(tmp_path / f"u{i}.wav").text for i in range(2)]
        wer, cer = wer_cer(refs, hyps)
        assert rep["utterances"] == 2 and rep["words"] == 5
        assert rep["wer"] == pytest.approx(wer, abs=1e-12) and rep["cer"] == pytest.approx(cer, abs=1e-12)
        assert rep["decoder"] == ("beam 3" if extra else "greedy")
    r = CliRunner().invoke(main, ["eval", str(model_path), "--manifest", str(tmp_path / "m.jsonl")])
    assert r.exit_code == 0 and "WER" in r.output and "CER" in r.output
    (tmp_path / "manifest.jsonl").write_text((tmp_path / "m.jsonl").read_text())  # a folder, as data concat writes
    r2 = CliRunner().invoke(main, ["eval", str(model_path), "--manifest", str(tmp_path)])
    wer_part = lambda out: out.split("WER")[1].split("RTF")[0]  # noqa: E731 - RTF varies run to run
    assert r2.exit_code == 0 and wer_part(r2.output) == wer_part(r.output)
    cls = build_ctc_model(tmp_path / "cls.onnx", task="classify")
    r = CliRunner().invoke(main, ["eval", str(cls), "--data", str(tmp_path), "--beam", "4"])
    assert r.exit_code == 2 and "only for ctc models" in r.output
    # `hearkit run` on a CTC model names what to use instead (the task registry's run_instead)
    r = CliRunner().invoke(main, ["run", str(model_path), str(tmp_path / "u0.wav")])
    assert r.exit_code == 2 and "hearkit transcribe" in r.output, r.output


def test_errors(model_path, tmp_path):
    import hearkit

    cls = build_ctc_model(tmp_path / "cls.onnx", task="classify")
    with pytest.raises(ModelError, match="CTC model"):
        hearkit.Transcriber(cls)
    r = CliRunner().invoke(main, ["transcribe", str(cls), str(cls)])
    assert r.exit_code == 2 and "CTC model" in r.output
    bad = tmp_path / "bad.txt"
    bad.write_text("Hello\n")  # upper case is not in the model's vocabulary
    r = CliRunner().invoke(main, ["transcribe", str(model_path), str(cls), "--lexicon", str(bad)])
    assert r.exit_code == 2 and "cannot emit" in r.output


def test_transcriber_is_a_package_attribute_without_torch(monkeypatch):
    """``hearkit.Transcriber`` resolves lazily with torch and onnx unimportable.

    That these modules import without torch in a fresh interpreter is
    tests/test_packaging.py's one subprocess test (every runtime module).
    """
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now raises ImportError
    monkeypatch.setitem(sys.modules, "onnx", None)
    import hearkit
    import hearkit.transcribe

    assert hearkit.Transcriber is hearkit.transcribe.Transcriber


# VmHWM is this process's own peak; ru_maxrss on Linux carries the parent's peak
# (pytest with torch loaded) across fork + exec and would hide any growth.
RSS_SCRIPT = """
import sys
import hearkit
tr = hearkit.Transcriber(sys.argv[1])
t = tr.transcribe(sys.argv[2])
hwm = [s for s in open("/proc/self/status") if s.startswith("VmHWM:")][0]
print(int(hwm.split()[1]) / 1024, len(t.words))
"""


@pytest.mark.slow
def test_one_hour_rss_within_50mb_of_ten_seconds(model_path, tmp_path):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status (VmHWM) to read a process's own peak RSS")
    """The memory bound (an hour < 50 MB above 10 s), measured as the whole process sees it (peak RSS of a fresh interpreter, onnxruntime included)."""
    short, hour = tmp_path / "short.flac", tmp_path / "hour.flac"
    _write_long_noise(short, 10)
    _write_long_noise(hour, 3600)
    rss = []
    for p in (short, hour):
        out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(model_path), str(p)], check=True, capture_output=True, text=True)
        rss.append(float(out.stdout.split()[0]))
    assert rss[1] - rss[0] < 50, f"peak RSS {rss[0]:.0f} MB for 10 s, {rss[1]:.0f} MB for 1 hour"


def test_status_line_rewrites_on_a_terminal_and_writes_sparse_lines_to_a_log():
    import io

    from hearkit.progress import StatusLine

    log = io.StringIO()  # not a terminal
    line = StatusLine(log, every_pct=10)
    for i in range(1, 1001):
        line.show(f"eval: {i}/1000", 100.0 * i / 1000)
    line.close()
    out = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    # the first update (0.1 %), then the first at or past 10 %, 20 %, ..., 100 %
    assert out == ["eval: 1/1000"] + [f"eval: {k}/1000" for k in range(100, 1001, 100)]

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    line = StatusLine(tty)
    for i in range(1, 4):
        line.show(f"x {i}", 100.0 * i / 3)
    line.close()
    assert tty.getvalue() == "\rx 1\rx 2\rx 3\n"
