"""Soak: an hour of audio through KeywordSpotter and Transcriber grows RSS by at most 2 MB.

The fast tests stream 30 s (it runs, reports a row per interval, and counts what the
engines did); the slow one streams 5 minutes in a fresh process, as ``hearkit bench
soak`` does on a device, and asserts the growth target, ``SOAK_GROWTH_MB`` = 2 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from hearkit.cli import main
from hearkit.evaluate.bench import SOAK_GROWTH_MB, rss_mb, soak, soak_audio

SR = 16000


@pytest.fixture(scope="module")
def kws_export(make_classifier_export):
    return make_classifier_export(["a", "b", "c"])


@pytest.fixture(scope="module")
def ctc_export(untrained_ctc_export):
    return untrained_ctc_export


def test_soak_audio_is_speech_like_seeded_and_exact_in_length():
    a = list(soak_audio(SR, 12.34, seed=1))
    b = np.concatenate(list(soak_audio(SR, 12.34, seed=1)))
    x = np.concatenate(a)
    assert x.size == round(12.34 * SR) and x.dtype == np.float32
    np.testing.assert_array_equal(x, b)  # seeded: the same audio twice
    assert max(p.size for p in a) <= 1.2 * SR + 1  # short pieces: the generator's memory stays small
    assert np.abs(x).max() <= 1.0 and 0.02 < np.sqrt(np.mean(x**2)) < 0.3  # loud bursts, quiet gaps
    assert not np.array_equal(x, np.concatenate(list(soak_audio(SR, 12.34, seed=2))))


def test_soak_reports_a_row_per_interval(kws_export, ctc_export):
    seen = []
    rep = soak(kws_export, ctc_export, minutes=0.5, every_seconds=5, on_report=seen.append)
    assert rep["audio_seconds"] == pytest.approx(30.0, abs=1e-9)  # 30 s exactly: 300 chunks of 0.1 s
    assert [r["audio_s"] for r in rep["rows"]] == pytest.approx([5, 10, 15, 20, 25, 30], abs=1e-9)
    assert seen == rep["rows"]
    assert all(r["rss_mb"] > 10 for r in rep["rows"])  # a process with onnxruntime loaded is far above 10 MB
    assert rep["growth_mb"] == pytest.approx(rep["rows"][-1]["rss_mb"] - rep["rows"][0]["rss_mb"], abs=1e-9)
    assert rep["within_target"] == (rep["growth_mb"] <= SOAK_GROWTH_MB)
    assert rep["spotter"] == str(kws_export) and rep["transcriber"] == str(ctc_export)
    assert rep["cpu_s"] > 0 and rep["words"] >= 0 and rep["detections"] >= 0
    json.dumps(rep)  # the report is JSON as it is (the CLI prints it)


def test_soak_takes_engines_and_files(scorers, tmp_path):
    import soundfile as sf

    from hearkit.classify import KeywordSpotter

    kws = KeywordSpotter(scorer=scorers.energy, labels=["_silence_", "_unknown_", "yes", "no"],
                         sample_rate=SR, window_samples=SR)
    clip = tmp_path / "c.wav"
    sf.write(clip, np.concatenate(list(soak_audio(SR, 3.0))), SR)
    rep = soak(kws, minutes=0.2, every_seconds=4, audio=[clip])  # 12 s: the 3-s file four times
    assert rep["audio_seconds"] == pytest.approx(12.0, abs=1e-9)
    assert len(rep["rows"]) == 3 and rep["spotter"] == "KeywordSpotter" and rep["transcriber"] is None
    assert rep["detections"] >= 4  # energy scorer: the file's bursts fire 'yes' at least once per round


def test_soak_refuses_no_engine_and_bad_lengths(kws_export):
    from hearkit.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a keyword model, a transcriber model, or both"):
        soak()
    for kw, name in (({"minutes": 0}, "minutes"), ({"every_seconds": float("nan")}, "every_seconds"),
                     ({"chunk_seconds": -1}, "chunk_seconds")):
        with pytest.raises(ConfigError, match=f"{name} must be a positive number"):
            soak(kws_export, **kw)


def test_bench_soak_command_prints_rows_and_the_growth(kws_export, ctc_export):
    r = CliRunner().invoke(main, ["bench", "soak", str(kws_export), "--transcriber", str(ctc_export),
                                  "--minutes", "0.25", "--every", "5"])
    assert r.exit_code == 0, (r.output, r.exception)
    rows = [line for line in r.stderr.splitlines() if " min  RSS " in line]
    assert len(rows) == 3  # 15 s, a row every 5 s
    assert "soak: 0.25 min of audio" in r.stdout and "target of 2 MB" in r.stdout
    r = CliRunner().invoke(main, ["bench", "soak"])
    assert r.exit_code == 2 and "give a keyword MODEL, --transcriber MODEL, or both" in r.stderr


def test_rss_mb_is_this_process():
    before = rss_mb()
    x = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
    assert rss_mb() - before == pytest.approx(64, abs=8)  # tolerance: the allocator and page rounding
    del x


@pytest.mark.slow
def test_five_minutes_of_soak_grow_rss_by_at_most_2_mb(kws_export, ctc_export):
    """Five minutes in a fresh process (as on a device): RSS after minute 5 minus after minute 1 <= 2 MB."""
    r = subprocess.run([sys.executable, "-m", "hearkit", "bench", "soak", str(kws_export), "--transcriber",
                        str(ctc_export), "--minutes", "5", "--json"], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert len(rep["rows"]) == 5
    assert rep["growth_mb"] <= SOAK_GROWTH_MB, r.stderr  # tolerance: the target itself, 2 MB over the run
