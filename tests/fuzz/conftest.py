"""The fuzzing harness: hypothesis profiles, a per-example hang guard, the outcome rule and the count.

Every fuzz target states one property: hearkit gives either a correct result or a
``HearkitError`` with a one-line message, never another exception, never a hang.
``fuzz.call(target, fn, ...)`` runs one call under that rule; the test then checks
that a result it returned is correct.

Profiles (``HEARKIT_FUZZ`` picks one; docs/design.md §16):

    ci    (default) a few examples per target, derandomized: the same inputs every run,
          so ``make test`` stays well under a minute and never flakes on a new seed
    long  ``make fuzz``: enough examples that all targets together try >= 10,000 inputs,
          fresh random ones each run

Deadlines are off (``deadline=None``): a loaded 2-core machine makes timings
meaningless. Hangs are caught instead by ``signal.setitimer`` around each call
(``HANG_SECONDS``), which raises ``Hang`` inside the stuck call. A call stuck inside C
code (onnxruntime, libsndfile, soxr) is interrupted only when it returns to Python; the
subprocess runner of tests/hostile is the guard for those. Memory is bounded the same way:
each call runs with ``RLIMIT_AS`` at the current size plus ``MEMORY_HEADROOM``.

atheris is not used: it installs here (3.0.0 wheel), but its coverage feedback sees
only Python lines, while the bytes of audio files and ONNX models are parsed in C and
C++ (libsndfile, onnxruntime) that are not built with libFuzzer instrumentation; its
``atheris.Fuzz()`` loop also owns the process and exits on the first finding, so it
cannot run as a marked pytest test. hypothesis' structure-aware strategies (header
fields, JSON types, chunk lists) reach the same code with shrinking and a count.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from hearkit.errors import HearkitError

PROFILE = os.environ.get("HEARKIT_FUZZ", "ci")
# Discovery: HEARKIT_FUZZ_COLLECT=DIR records each distinct failure (exception type and the last
# hearkit line it passed, or the wrong answer's name) instead of failing, copies the first input
# file that showed it into DIR, and lists them all at the end; for finding every bug in one run.
COLLECT = os.environ.get("HEARKIT_FUZZ_COLLECT")
# Memory: each call may grow the address space by this much; beyond it an allocation fails with
# MemoryError, which the rule counts as a crash (a hostile input must not exhaust memory, and a
# fuzz run must not make the kernel kill processes on a shared machine)
MEMORY_HEADROOM = 2 << 30  # bytes
HANG_SECONDS = 20.0  # per call; the slowest honest call here (open a model, classify) takes < 1 s alone

_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
# max_examples is the budget of a weight-1.0 target; each test module scales it with its own
# ``budget(weight)`` (test modules cannot import this file under --import-mode=importlib)
settings.register_profile("ci", max_examples=12, derandomize=True, database=None, **_common)
# the long run keeps the inputs that failed (outside the checkout) and replays them first next time
LONG_DB = Path(os.environ.get("HEARKIT_FUZZ_DB", Path.home() / ".cache" / "hearkit" / "fuzz-examples"))
settings.register_profile("long", max_examples=800, database=DirectoryBasedExampleDatabase(LONG_DB), **_common)
if PROFILE not in ("ci", "long"):
    raise pytest.UsageError(f"HEARKIT_FUZZ must be 'ci' or 'long', got {PROFILE!r}")
settings.load_profile(PROFILE)


# Known failures: exceptions that another change (not merged yet when these tests were written)
# is fixing. A call that raises one of them counts as "known" instead of failing the property, so
# the fuzz targets stay free of xfails; each entry has a strict-xfail reproducer of the same name
# in test_fuzz_regressions.py. When that reproducer starts passing, delete the entry here too.
@dataclass(frozen=True)
class Known:
    name: str  # the reproducer: test_fuzz_regressions.py::test_<name>
    exc: type | tuple[type, ...]
    message: str = ""  # regex searched in str(exception)
    where: str = ""  # "file.py:function" of the innermost hearkit frame, where it was raised or let through


KNOWN_FAILURES: list[Known] = [
    # none open: every finding so far is fixed and guarded in test_fuzz_regressions.py
]

# Known wrong answers (a result returned where a refusal is due), checked by name in the targets
# through ``fuzz.wrong(name, condition, detail)``; same reproducer rule as above.
KNOWN_WRONG: set[str] = set(
    # none open (see KNOWN_FAILURES)
)


def _address_space() -> int:
    """This process's virtual memory size in bytes (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


class Hang(BaseException):
    """Raised by the timer inside a call that ran past HANG_SECONDS (a BaseException, so ``except Exception`` in hearkit cannot swallow it)."""


def _alarm(signum, frame):
    raise Hang("no return in time")


@dataclass
class Fuzz:
    """Counts and the outcome rule, shared by every target of the session."""

    examples: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    known: Counter = field(default_factory=Counter)
    found: dict = field(default_factory=dict)  # signature -> [count, first detail] (COLLECT mode)
    hang_seconds: float = HANG_SECONDS
    memory_headroom: int = MEMORY_HEADROOM
    collect: str | None = COLLECT

    def _collect(self, sig: str, detail: str, args=()) -> None:
        if sig not in self.found:
            saved = []
            for a in args:
                if isinstance(a, Path) and a.is_file():
                    dst = Path(self.collect) / f"{len(self.found):03d}{''.join(a.suffixes)}"
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(a, dst)
                    saved.append(str(dst))
                elif isinstance(a, Path) and a.is_dir() and (a / "manifest.json").is_file():
                    dst = Path(self.collect) / f"{len(self.found):03d}.manifest.json"
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(a / "manifest.json", dst)
                    saved.append(str(dst))
            self.found[sig] = [0, detail[-3000:] + (f"\n  input saved: {saved}" if saved else "")]
        self.found[sig][0] += 1

    def example(self, target: str) -> None:
        """Count one input tried by ``target``."""
        self.examples[target] += 1

    def call(self, target: str, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` under the rule; returns ``(result, None)``, ``(None, HearkitError)`` or ``(None, "known")``.

        Raises:
            AssertionError: ``fn`` raised anything else, a multi-line HearkitError, or hung.
        """
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, self.hang_seconds)
        limits = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + self.memory_headroom, limits[1]))
        try:
            return fn(*args, **kwargs), None
        except HearkitError as e:
            msg = str(e)
            assert msg.strip() and "\n" not in msg, f"{target}: a HearkitError must be one non-empty line, got {msg!r}"
            self.refusals[target] += 1
            return None, e
        except Hang as e:
            raise AssertionError(f"{target}: {fn.__qualname__} hung ({e}: {self.hang_seconds:g} s)") from None
        except Exception as e:
            tb = "".join(traceback.format_exception(e))
            frames = [f for f in traceback.extract_tb(e.__traceback__) if re.search(r"/(hearkit|runtime)/", f.filename)]
            where = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "outside hearkit"
            for k in KNOWN_FAILURES:
                if isinstance(e, k.exc) and re.search(k.message, str(e)) and k.where == where:
                    self.known[k.name] += 1
                    return None, "known"
            if self.collect:
                line = f"{where}:{frames[-1].lineno}" if frames else where
                self._collect(f"{target}: {type(e).__name__} at {line}", f"{e!r}\n{tb}", args)
                return None, "known"
            raise AssertionError(f"{target}: {fn.__qualname__} raised {type(e).__name__} (not a HearkitError):\n{tb}") from e
        finally:
            resource.setrlimit(resource.RLIMIT_AS, limits)
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def wrong(self, name: str, condition: bool, detail: str) -> bool:
        """Assert ``not condition`` (a wrong answer), unless ``name`` is a known wrong answer; True when it was one."""
        if not condition:
            return False
        if name in KNOWN_WRONG:
            self.known[name] += 1
            return True
        if self.collect:
            self._collect(f"wrong answer {name}", detail)
            return True
        raise AssertionError(f"wrong answer ({name}): {detail}")


_FUZZ = Fuzz()


@pytest.fixture(scope="session")
def fuzz() -> Fuzz:
    """The session's ``Fuzz``: ``call(target, fn, ...)``, ``example(target)``, ``wrong(name, cond, detail)``."""
    return _FUZZ


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _FUZZ.examples:
        return
    tr = terminalreporter
    total = sum(_FUZZ.examples.values())
    tr.section(f"fuzz: {total} examples tried (profile {PROFILE})")
    for target, n in sorted(_FUZZ.examples.items()):
        tr.write_line(f"  {target:<28} {n:>6} examples, {_FUZZ.refusals[target]:>6} HearkitError refusals")
    for name, n in sorted(_FUZZ.known.items()):
        tr.write_line(f"  known failure {name}: hit {n} times (test_fuzz_regressions.py::test_{name})")
    for sig, (n, detail) in sorted(_FUZZ.found.items()):
        tr.write_line(f"FOUND {sig}: {n} times; first: {detail}")
    tr.write_line(f"fuzz total: {total} examples")


# -- models the targets run: built once per session ------------------------------------------

SR = 16000


@pytest.fixture(scope="session")
def clf_export(make_classifier_export) -> Path:
    """An untrained cnn4-s export folder, labels _silence_/go/stop, 1-s window, n_fft 400 (streamable)."""
    from hearkit.frontend import FrontendConfig

    return make_classifier_export(["_silence_", "go", "stop"], frontend=FrontendConfig(n_fft=400, hop_length=160), seed=1)


@pytest.fixture(scope="session")
def ctc_model(tmp_path_factory) -> Path:
    """The stand-in CTC ``pipeline.onnx`` of tests/test_transcribe.py (waveform -> framing Conv -> log power ->
    stride-2 Conv -> LogSoftmax: gibberish but deterministic transcripts, a receptive field far shorter than
    any overlap used here), blank less often so that transcripts hold words to compare."""
    pytest.importorskip("onnx", reason="onnx builds the stand-in model (pip install 'hearkit[train]')")
    import importlib.util

    # test modules cannot import each other under importlib mode: load it by path
    spec = importlib.util.spec_from_file_location("_hk_fuzz_test_transcribe",
                                                  Path(__file__).parent.parent / "test_transcribe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_ctc_model(tmp_path_factory.mktemp("fuzz_ctc") / "pipeline.onnx", blank_bias=2.0)
