"""The hostile-input harness: run hearkit as a user would, with input chosen to break it.

Each case asserts three things (see ``refused``): the exit code, a single line on
stderr without a traceback that names the file or option at fault, and that no
file the user owned changed (``unchanged``). Inputs are generated in the tests
(numpy, soundfile, sox); none is committed.

The CLI runs in-process through click's runner (fast enough for hundreds of
cases); ``hearkit_subprocess`` runs the real console script where only a separate
process can show the fault (a segfault, a hang, a signal).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from hearkit.cli import main
from hearkit.errors import HearkitError


@dataclass
class Outcome:
    """What one run of the CLI left: exit code, stdout, stderr and an uncaught exception if any."""

    code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}\nexception: {self.exception!r}"


def run_cli(*args, cwd: Path | None = None, stdin: str | None = None) -> Outcome:
    """``hearkit ARGS`` in-process; an exception that escapes the CLI is kept, not raised."""
    args = [str(a) for a in args]
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        r = CliRunner().invoke(main, args, input=stdin, catch_exceptions=True)
    finally:
        os.chdir(old)
    exc = r.exception if r.exception is not None and not isinstance(r.exception, SystemExit) else None
    return Outcome(r.exit_code, r.stdout, r.stderr, exc)


def run_subprocess(*args, cwd: Path | None = None, timeout: float = 120) -> Outcome:
    """``python -m hearkit ARGS`` in a child process (segfaults and hangs show here, not in-process)."""
    try:
        p = subprocess.run([sys.executable, "-m", "hearkit", *map(str, args)], cwd=cwd, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hearkit {' '.join(map(str, args))} hung: no exit within {timeout} s ({e})")
    return Outcome(p.returncode, p.stdout, p.stderr)


def refused(out: Outcome, *names: str, code: int = 2) -> str:
    """Assert a clean refusal: exit ``code``, one stderr line starting "Error:", naming each of ``names``.

    Returns:
        The error line, for further checks.
    """
    assert out.exception is None, f"uncaught {out.exception!r}\n{out}"
    assert out.code == code, str(out)
    assert "Traceback" not in out.stderr, str(out)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1, f"want one error line, got {len(lines)}\n{out}"
    line = lines[0]
    assert line.startswith("Error: "), str(out)
    for name in names:
        assert str(name) in line, f"error line does not name {name!r}: {line}"
    return line


def api_refused(fn, *args, names: tuple[str, ...] = (), **kwargs) -> str:
    """Assert that a Python API call raises a HearkitError (one line) naming each of ``names``."""
    with pytest.raises(HearkitError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg.strip(), f"want one line, got {msg!r}"
    for name in names:
        assert str(name) in msg, f"error does not name {name!r}: {msg}"
    return msg


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``roots`` (files or folders): path -> (size, sha256)."""
    snap = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        for p in files:
            data = p.read_bytes()
            snap[str(p)] = (len(data), hashlib.sha256(data).hexdigest())
    return snap


@contextlib.contextmanager
def unchanged(*roots: Path):
    """Assert that no file under ``roots`` was changed, added or removed inside the block."""
    before = snapshot(*roots)
    yield
    after = snapshot(*roots)
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not changed and before.keys() == after.keys(), (
        f"user files touched: changed {changed}, removed {sorted(before.keys() - after.keys())}, "
        f"added {sorted(after.keys() - before.keys())}"
    )


class Hostile:
    """The harness as one fixture: ``hostile.cli(...)``, ``hostile.refused(out, ...)``, ..."""

    cli = staticmethod(run_cli)
    subprocess = staticmethod(run_subprocess)
    refused = staticmethod(refused)
    api_refused = staticmethod(api_refused)
    snapshot = staticmethod(snapshot)
    unchanged = staticmethod(unchanged)


@pytest.fixture
def hostile() -> Hostile:
    return Hostile()
