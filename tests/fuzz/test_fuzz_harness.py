"""The fuzz harness itself: the outcome rule catches what it claims to (conftest.py's ``Fuzz``)."""

from __future__ import annotations

import resource
import signal
import time

import numpy as np
import pytest

from hearkit.errors import ConfigError, HearkitError

pytestmark = pytest.mark.fuzz


@pytest.fixture
def strict(fuzz):
    """A fresh harness with short limits and no collect mode, whatever the environment says."""
    return type(fuzz)(hang_seconds=0.3, memory_headroom=1 << 30, collect=None)


def boom(exc):
    raise exc


def test_one_line_hearkit_error_is_a_refusal(strict):
    result, err = strict.call("t", boom, ConfigError("threads must be an integer from 1 to 256, got 0"))
    assert result is None and isinstance(err, ConfigError) and strict.refusals["t"] == 1
    assert strict.call("t", lambda: 42) == (42, None)


@pytest.mark.parametrize("exc", [ValueError("x"), TypeError("y"), RecursionError("z"), KeyError("k")])
def test_other_exceptions_fail(strict, exc):
    with pytest.raises(AssertionError, match="not a HearkitError"):
        strict.call("t", boom, exc)


def test_multi_line_hearkit_error_fails(strict):
    with pytest.raises(AssertionError, match="one non-empty line"):
        strict.call("t", boom, HearkitError("first\nsecond"))


def test_a_hang_fails_within_the_timer(strict):
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="hung"):
        strict.call("t", time.sleep, 30)
    assert time.monotonic() - t0 < 10  # the 0.3-s timer fired, not the 30-s sleep's end; 10 s for a loaded machine
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_memory_beyond_the_headroom_fails(strict):
    before = resource.getrlimit(resource.RLIMIT_AS)
    with pytest.raises(AssertionError, match="MemoryError"):
        strict.call("t", np.empty, 4 << 30, np.uint8)  # 4 GiB of address space > 1 GiB headroom; np.empty touches none
    assert resource.getrlimit(resource.RLIMIT_AS) == before


def test_a_wrong_answer_fails_unless_known(strict):
    assert strict.wrong("anything", False, "fine") is False
    with pytest.raises(AssertionError, match="wrong answer"):
        strict.wrong("not_a_known_name", True, "detail")
