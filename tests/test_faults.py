"""Faults: SIGKILL at seeded random moments of `train`, `export`, `package` and `data concat`, then again.

Each command runs as a real process and is killed part-way (a moment drawn from a seeded
generator, so a failure can be replayed). Then the same command runs again: it completes,
or says in one line what to do (``--force`` or ``--resume``) and completes with that. What
the two runs leave behind holds no half-written file: no temporary file, and every
``.onnx``, ``.json``, ``.jsonl`` and ``.pt`` there loads (docs/design.md §15).

The fast part (one moment of train, package and data concat on tiny inputs) runs in
``make test``; the slow one adds export and kills each command at several moments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearkit import files

pytest.importorskip("torch", reason="train, export and package need hearkit[train]")
pytest.importorskip("onnx", reason="export and package need hearkit[train]")

SR = 16000


def _hearkit(*args, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hearkit", *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_after(args: list, seconds: float) -> bool:
    """Run ``hearkit ARGS``, SIGKILL it after ``seconds``; True when it was still running (was killed)."""
    p = _hearkit(*args)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    killed = p.poll() is None
    if killed:
        p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    return killed


def run_again(args: list, timeout: float = 300) -> list[str]:
    """Run ``hearkit ARGS`` again; follow a one-line "pass --force" / "pass --resume" once; return the flags it took.

    Fails when a run ends in anything but exit 0 or such a line (exit 2).
    """
    taken: list[str] = []
    for _ in range(2):
        p = subprocess.run([sys.executable, "-m", "hearkit", *map(str, args), *taken], capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode == 0:
            return taken
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith("Error: ")]
        assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, (
            f"rerun of {args} + {taken}: exit {p.returncode}\n{p.stderr[-3000:]}")
        flag = next((f for f in ("--resume", "--force") if f"pass {f}" in lines[0]), None)
        assert flag is not None and flag not in taken, f"rerun says neither --force nor --resume: {lines[0]}"
        taken.append(flag)
    pytest.fail(f"rerun of {args} did not complete with {taken}")


def assert_whole(*folders: Path) -> int:
    """No temporary file under ``folders``, and every graph, JSON and checkpoint there loads; return the files checked."""
    import onnx

    from hearkit.training.checkpoint import load_checkpoint

    n = 0
    for root in folders:
        for p in Path(root).rglob("*"):
            if not p.is_file():
                continue
            assert not files.is_temp(p.name), f"temporary file left: {p}"
            assert p.name != files.LOCK_NAME, f"lock file left after a completed run: {p}"
            if p.suffix == ".onnx":
                onnx.checker.check_model(onnx.load(os.fspath(p)))
            elif p.suffix == ".json":
                json.loads(p.read_text())
            elif p.suffix == ".jsonl":
                [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
            elif p.suffix == ".pt":
                load_checkpoint(p)
            else:
                continue
            n += 1
        parent = Path(root).parent
        assert not list(parent.glob(f".{Path(root).name}.hearkit-tmp-*")), "temporary bundle folder left"
    return n


def moments(seed: int, count: int, lo: float, hi: float) -> list[float]:
    """``count`` kill moments in seconds, uniform in [lo, hi), from a seeded generator (global RNG untouched)."""
    return [round(float(t), 2) for t in np.random.default_rng(seed).uniform(lo, hi, count)]


class _Inputs(dict):
    """The inputs by name; the export is made on first use (the train and concat cases do not need it)."""

    def __missing__(self, key):
        if key != "export":
            raise KeyError(key)
        from hearkit.export.exporter import export_classifier

        export_classifier(self["ckpt"], self["root"] / "export", quantize=(), log=lambda m: None)
        self["export"] = self["root"] / "export"
        return self["export"]


@pytest.fixture(scope="module")
def inputs(untrained_classifier, tonegen, tmp_path_factory):
    """A checkpoint, its fp32 export (made when first asked for), a tone set (Speech Commands layout), calibration audio."""
    root = tmp_path_factory.mktemp("faults")
    tones = tonegen.make_tones(root / "tones", clip_seconds=0.5, speakers=6, val_speakers=2, silence=True)
    calib = root / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        sf.write(calib / f"{i}.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    return _Inputs(root=root, ckpt=Path(untrained_classifier), tones=tones, calib=calib)


def _command(name: str, inputs: dict, out: Path, ort: bool = False) -> list:
    """The command line of ``name``; ``ort``: the full variant (package: ORT files; export: an int8 variant)."""
    if name == "package":
        return ["package", inputs["export"], "--device", "x86-vnni", "--data", inputs["calib"],
                *([] if ort else ["--no-ort"]), "-o", out]
    return {
        "train": ["train", "classify", "--data", inputs["tones"], "--model", "cnn4-s", "--epochs", "3", "--batch-size", "8",
                  "--window-seconds", "0.5", "--threads", "1", "--checkpoint-every", "1", "--no-progress", "-q", "-o", out],
        "export": ["export", inputs["ckpt"], *(["--data", inputs["tones"], "--calibration-clips", "16"] if ort
                                               else ["--quantize", "none"]), "-o", out],
        "concat": ["data", "concat", "--words", inputs["tones"], "--hours", "0.01", "--min-words", "1",
                   "--max-words", "3", "-o", out],
    }[name]


# command -> (window of kill moments in seconds after start, fast-test moment); the window spans
# start-up (imports), the work and the final writes on a loaded 2-core machine
WINDOWS = {"train": (2.0, 14.0), "export": (2.0, 12.0), "package": (1.5, 10.0), "concat": (0.8, 4.0)}


def _kill_and_rerun(name: str, inputs: dict, out: Path, seconds: float, ort: bool = False) -> None:
    args = _command(name, inputs, out, ort)
    kill_after(args, seconds)
    run_again(args)
    assert assert_whole(out) >= 1
    if name == "package":
        from hearkit.artifacts import verify_bundle

        verify_bundle(out)  # every file the manifest lists, and nothing else
    if name == "concat":
        assert (out / "manifest.jsonl").is_file()


@pytest.mark.parametrize("name", ["concat", "package", "train", pytest.param("export", marks=pytest.mark.slow)])
def test_a_kill_then_the_same_command_completes(inputs, tmp_path, name):
    lo, hi = WINDOWS[name]
    (t,) = moments(zlib.crc32(name.encode()), 1, lo, hi)  # crc32: the same moment in every process
    _kill_and_rerun(name, inputs, tmp_path / "out", t)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("name", ["concat", "package", "package-ort", "train", "export", "export-int8"])
def test_kills_at_many_moments(inputs, tmp_path, name, seed):
    base = name.split("-")[0]
    lo, hi = WINDOWS[base]
    for i, t in enumerate(moments(seed, 3, lo, hi * 1.5)):
        _kill_and_rerun(base, inputs, tmp_path / f"out{i}", t, ort=name.endswith(("ort", "int8")))


def test_a_kill_of_the_rerun_too(inputs, tmp_path):
    """Killed twice (the second time while it replaces the first run's leftovers), then it still completes."""
    out = tmp_path / "words"
    args = _command("concat", inputs, out)
    kill_after(args, 1.5)
    kill_after(args + ["--force"], 1.0)
    run_again(args)
    assert assert_whole(out) >= 1
