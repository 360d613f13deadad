"""The ``hearkit`` command itself: ``python -m hearkit``, and what reaches stderr (default, ``--verbose``, ``--quiet``)."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hearkit.cli import NORMAL, VERBOSE, main, output_level
from hearkit.errors import HearkitWarning

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000


def test_python_m_hearkit_is_the_cli():
    """`python -m hearkit` (and so `torchrun -m hearkit train ...`) runs the same group as `hearkit`."""
    for argv in (["--help"], ["train", "classify", "--help"]):
        r = subprocess.run([sys.executable, "-m", "hearkit", *argv], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Usage: hearkit"), r.stdout[:200]


def _emit():
    """One of each: a library's FutureWarning, hearkit's own warning, a library log record at WARNING."""
    warnings.warn("a library's deprecation", FutureWarning, stacklevel=1)
    warnings.warn("a device note", HearkitWarning, stacklevel=1)
    logging.getLogger("torch.onnx._internal.exporter").warning("torchvision is not installed")


def test_output_level_hides_third_party_by_default_and_restores(caplog):
    filters, fmt, disable = list(warnings.filters), warnings.formatwarning, logging.root.manager.disable
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        with output_level(NORMAL):
            _emit()
        hidden = ([str(w.message) for w in seen], [r.getMessage() for r in caplog.records])
        seen.clear()
        caplog.clear()
        with output_level(VERBOSE):
            _emit()
        shown = ([str(w.message) for w in seen], [r.getMessage() for r in caplog.records])
    assert hidden == (["a device note"], [])
    assert shown == (["a library's deprecation", "a device note"], ["torchvision is not installed"])
    # nothing leaks past the command (CliRunner tests share the process)
    assert warnings.formatwarning is fmt and logging.root.manager.disable == disable
    assert warnings.filters == filters


def test_quiet_leaves_results_only(tmp_path, signals):
    wav = tmp_path / "x.wav"
    sf.write(wav, signals.noise(SAMPLE_RATE), SAMPLE_RATE)
    r = CliRunner().invoke(main, ["features", str(wav), "-o", str(tmp_path / "a.npy")])
    assert r.exit_code == 0 and "frames" in r.stderr  # the summary line goes to stderr
    r = CliRunner().invoke(main, ["--quiet", "features", str(wav), "-o", str(tmp_path / "b.npy")])
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    r = CliRunner().invoke(main, ["--quiet", "features", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "c.npy")])
    assert r.exit_code == 2 and "missing.wav" in r.stderr  # errors still show


def test_verbose_and_quiet_exclude_each_other():
    r = CliRunner().invoke(main, ["--verbose", "--quiet", "devices"])
    assert r.exit_code == 2 and "exclude each other" in r.output


# What an int8 export printed before the CLI filtered it: the calibrator's progress (routed
# through hearkit's logger), and third-party lines (versions decide which appear).
CALIBRATOR = "Collecting tensor data"
THIRD_PARTY = ("torchvision is not installed", "Removing initializer", "is deprecated")


@pytest.fixture(scope="module")
def calibration_set(tmp_path_factory) -> Path:
    """A folder-per-label set of tones (labels a, b, c) to calibrate on."""
    tmp = tmp_path_factory.mktemp("chatter")
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for i, label in enumerate("abc" * 3):
        (tmp / label).mkdir(exist_ok=True)
        tone = 0.3 * np.sin(2 * np.pi * 200 * (i + 1) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(tmp / label / f"{i}.wav", tone.astype(np.float32), SAMPLE_RATE)
    return tmp


def _export(ckpt: Path, data: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    # a fresh process: torch's exporter and onnxruntime's C++ logger write to the real stderr
    r = subprocess.run([sys.executable, "-m", "hearkit", *flags, "export", str(ckpt), "-o", str(out), "--data", str(data),
                        "--calibration-clips", "6"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "pipeline.int8.onnx").is_file()
    return r


def test_export_hides_chatter_unless_verbose(untrained_classifier, calibration_set, tmp_path):
    pytest.importorskip("onnx", reason="export needs hearkit[train] (onnx)")
    ckpt, data = untrained_classifier, calibration_set
    default = _export(ckpt, data, tmp_path / "default").stderr
    verbose = _export(ckpt, data, tmp_path / "verbose", "--verbose").stderr
    assert CALIBRATOR in verbose and CALIBRATOR not in default
    seen = [m for m in THIRD_PARTY if m in verbose]
    assert seen, f"none of {THIRD_PARTY} in the verbose export: update the markers\n{verbose[-3000:]}"
    assert not [m for m in THIRD_PARTY if m in default], default[-3000:]
    assert "export: wrote" in default  # hearkit's own progress stays
