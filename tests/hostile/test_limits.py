"""The limits table itself, and click's usage errors as one line."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from hearkit.errors import ConfigError
from hearkit.limits import LIMITS, check, check_optional

BAD = [True, "abc", "", None, [], math.nan, math.inf, -math.inf, "nan", "1e999"]


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_each_limit_takes_its_bounds_and_refuses_beyond(name):
    lim = LIMITS[name]
    assert check(name, lim.lo) == lim.lo and check(name, lim.hi) == lim.hi
    step = 1 if lim.kind is int else max(abs(lim.hi), 1) * 1e-6
    for v in (lim.lo - step, lim.hi + step, lim.hi * 10 + 1):
        with pytest.raises(ConfigError, match=re.escape(f"{name} must be {lim.describe()}, got")):
            check(name, v)


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_non_numbers_are_refused_with_the_range(value):
    with pytest.raises(ConfigError, match=r"--threads must be an integer from 1 to 256, got"):
        check("threads", value, "--threads")


def test_kinds_and_numpy_scalars():
    assert check("threads", np.int64(4)) == 4 and type(check("threads", np.int64(4))) is int
    assert check("threads", 4.0) == 4
    with pytest.raises(ConfigError):
        check("threads", 2.5)
    assert check("threshold", np.float32(0.5)) == pytest.approx(0.5, abs=1e-7)
    assert check("threshold", "0.25") == pytest.approx(0.25, abs=1e-12)
    assert check_optional("threads", None) is None


USAGE = [
    (["nosuch"], "hearkit"),
    (["run"], "hearkit run"),
    (["run", "--no-such-option", "a", "b"], "hearkit run"),
    (["verify", "/nonexistent-folder"], "hearkit verify"),
    (["data"] + ["nosuch"], "hearkit data"),
    (["train", "classify"], "hearkit train classify"),
]


@pytest.mark.parametrize("args,cmd", USAGE, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_usage_errors_are_one_line_naming_the_command(hostile, args, cmd):
    line = hostile.refused(hostile.subprocess(*args, timeout=60), cmd)
    assert f"(see {cmd} --help)" in line
