"""The CLI edge: OS, decoding and value errors from user input end in one line and exit code 2."""

from __future__ import annotations

import errno

import click
import pytest
from click.testing import CliRunner

from hearkit.cli import main


@pytest.fixture()
def boom():
    """A throwaway command that raises what the test gives it."""
    holder = {}

    @click.command("boom-test")
    def cmd():
        raise holder["exc"]

    main.add_command(cmd)
    yield holder
    main.commands.pop("boom-test", None)


@pytest.mark.parametrize("exc, want", [
    (OSError(errno.ENOSPC, "No space left on device", "out/feats.npy"), "out/feats.npy: No space left on device"),
    (PermissionError(errno.EACCES, "Permission denied", "/etc/x"), "/etc/x: Permission denied"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "not UTF-8 (invalid start byte at byte 0)"),
    (ValueError("could not convert string to float: 'x'\nsecond line"),
     " boom-test: ValueError: could not convert string to float: 'x' second line (--verbose shows where)"),
])
def test_os_and_decode_errors_are_one_line(boom, exc, want):
    boom["exc"] = exc
    r = CliRunner().invoke(main, ["boom-test"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and want in lines[0] and "Traceback" not in r.output


def test_verbose_shows_the_traceback(boom):
    boom["exc"] = OSError(errno.ENOSPC, "No space left on device", "out/feats.npy")
    r = CliRunner().invoke(main, ["--verbose", "boom-test"])
    assert r.exit_code == 1 and isinstance(r.exception, OSError)
