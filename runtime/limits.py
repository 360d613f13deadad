"""The limits hearkit accepts, stated once and checked at every edge.

Every number that reaches hearkit from outside (a CLI option, a Python API
argument, a model's metadata, a device profile, a manifest line) passes
:func:`check` with the name of its limit, so a value that would crash, hang or
exhaust memory further down (``--threads 100000`` segfaulted torch, an
``n_fft`` of 10**8 grew one command to 22 GB, a 10-MB transcript line asked
CTC training for 112 GB) ends in one :class:`~hearkit.errors.ConfigError`
that names what was wrong and what is allowed. The table is printed in
docs/design.md §13; change it here and there together.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

from hearkit.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """One accepted range.

    Attributes:
        kind: ``int`` or ``float``; an int limit refuses 2.5 and True.
        lo, hi: inclusive bounds.
        unit: printed after the bounds (``"Hz"``, ``"s"``, ...), may be empty.
        why: what the bound protects, for the design notes.
    """

    kind: type
    lo: float
    hi: float
    unit: str = ""
    why: str = ""

    def describe(self) -> str:
        """``"an integer from 1 to 256"`` / ``"a number from 0 to 1 s"``."""
        what = "an integer" if self.kind is int else "a number"
        unit = f" {self.unit}" if self.unit else ""
        lo, hi = (f"{int(v)}" if self.kind is int else f"{v:g}" for v in (self.lo, self.hi))
        return f"{what} from {lo} to {hi}{unit}"


HOUR = 3600.0

LIMITS: dict[str, Limit] = {
    # sessions and training
    "threads": Limit(int, 1, 256, "", "torch segfaulted at 100000 and onnxruntime hung at 2000"),
    "batch_size": Limit(int, 1, 65536, "", "memory: clips held per step"),
    "epochs": Limit(int, 1, 100000, "", "a typo of 10**9 would run for ever"),
    "seed": Limit(int, 0, 2**32 - 1, "", "numpy's seed range"),
    "lr": Limit(float, 1e-12, 10.0, "", "a learning rate beyond 10 only makes NaN weights; 1e-9 fine-tunes almost nothing"),
    "weight_decay": Limit(float, 0.0, 10.0, "", "AdamW's decoupled decay; beyond 10 it zeroes the weights each step"),
    "dropout": Limit(float, 0.0, 0.99, "", "a share of units; 1 would zero every activation"),
    "label_smoothing": Limit(float, 0.0, 0.99, "", "1 would make every target uniform"),
    "negative_weight": Limit(float, 1e-3, 1e3, "", "loss weight of background clips against keyword clips; 1 is plain cross-entropy"),
    "grad_clip": Limit(float, 1e-6, 1e6, "", "a gradient-norm bound"),
    "mixup": Limit(float, 0.0, 100.0, "", "Beta(a, a) parameter; 0 is off"),
    "probability": Limit(float, 0.0, 1.0, "", "a share of clips or utterances"),
    "count": Limit(int, 0, 10**7, "", "clips, windows, masks, runs: anything counted; a typo of 10**12 would never end"),
    "repeat": Limit(int, 1, 100000, "runs", "timed runs of a benchmark"),
    "tolerance": Limit(float, 0.0, 1e6, "", "a pass/fail bound of verify (error, agreement, accuracy drop)"),
    # front-end (FrontendConfig, from options, configs and model metadata)
    "sample_rate": Limit(int, 1000, 192000, "Hz", "a rate of 1e12 asked the resampler for terabytes"),
    "n_fft": Limit(int, 16, 16384, "samples", "an n_fft of 1e8 grew one command to 22 GB"),
    "win_length": Limit(int, 1, 16384, "samples", "at most n_fft"),
    "hop_length": Limit(int, 1, 16384, "samples", "a hop beyond the largest n_fft skips audio"),
    "n_mels": Limit(int, 1, 512, "bands", "the filterbank is n_mels x (n_fft / 2 + 1)"),
    "hz": Limit(float, 0.0, 96000.0, "Hz", "a frequency: mel edges, filter cut-offs (half of the highest sample rate)"),
    "eps": Limit(float, 1e-12, 1.0, "", "the floor added before ln"),
    "input_scale": Limit(float, 1e-3, 1e6, "", "samples times this feed the speech embedding: 1 ([-1, 1]) or 32768 (int16)"),
    # models' windows and streaming
    "window_s": Limit(float, 0.01, 30.0, "s", "the classifier window is held in memory per stream"),
    "hop_s": Limit(float, 0.001, 30.0, "s", "time between decisions, at most the longest window"),
    "window_samples": Limit(int, 16, 30 * 192000, "samples", "window_s at the highest rate"),
    "hop_samples": Limit(int, 1, 30 * 192000, "samples", "hop_s at the highest rate"),
    "labels": Limit(int, 1, 10000, "labels", "classes of one classifier; also --top"),
    "vocab": Limit(int, 2, 100000, "symbols", "CTC outputs: the blank and at least one symbol"),
    "subsampling": Limit(int, 1, 64, "frames", "feature frames per CTC output frame"),
    # detection
    "threshold": Limit(float, 0.0, 1.0, "", "a posterior"),
    "label_threshold": Limit(float, 0.0, 1e9, "", "an API threshold: a posterior, or above 1 (inf too) for a label that never fires"),
    "smoothing_s": Limit(float, 0.0, 10.0, "s", "posterior smoothing as time"),
    "smoothing": Limit(int, 1, 100, "decisions", "decisions averaged; each is kept per stream"),
    "refractory_s": Limit(float, 0.0, 60.0, "s", "quiet time after a detection"),
    "fa_per_hour": Limit(float, 0.001, 1000.0, "per hour", "0 cannot be measured on finite negatives"),
    "snr_db": Limit(float, -30.0, 100.0, "dB", "-30 dB is noise only, 100 dB is clean"),
    # data
    "duration_s": Limit(float, 0.0, 24 * HOUR, "s", "a manifest duration; one day is the longest file hearkit reads"),
    "seconds": Limit(float, 0.001, 24 * HOUR, "s", "lengths asked for on the command line"),
    "transcript_chars": Limit(int, 0, 4096, "characters", "a 10-MB transcript asked CTC training for 112 GB"),
    "text_line_bytes": Limit(int, 0, 1 << 20, "bytes", "one line of a manifest, list, lexicon or profile"),
    "beam": Limit(int, 1, 1024, "", "decoding cost grows with the beam"),
    "lm_weight": Limit(float, -100.0, 100.0, "", "LM weight and word bonus of beam search, in log10 units"),
    "hours": Limit(float, 0.001, 1000.0, "h", "audio to generate"),
    "minutes": Limit(float, 0.01, 1440.0, "min", "audio streamed by a soak; one day at most"),
}


def check(name: str, value, what: str | None = None, lo: float | None = None, hi: float | None = None):
    """``value`` as the limit's kind, or a ConfigError that names it and the range.

    Args:
        name: a key of :data:`LIMITS`.
        value: the number to check (int, float, numpy scalar or a numeric string).
        what: how the user knows the value: ``"--threads"``, ``"threads"``,
            ``"model.onnx: metadata window"`` (Default: ``name``).
        lo, hi: a narrower range where one use needs it (a batch of at least 2 for
            batch norm), inside the table's (Default: None, the table's bounds).

    Returns:
        ``int`` or ``float``, per the limit.

    Raises:
        ConfigError: not a number, not finite, not an integer where one is
            needed, or outside the range.
    """
    limit = LIMITS[name]
    if lo is not None or hi is not None:
        assert (lo is None or lo >= limit.lo) and (hi is None or hi <= limit.hi), f"{name}: {lo}..{hi} widens the table"
        limit = replace(limit, lo=limit.lo if lo is None else lo, hi=limit.hi if hi is None else hi)
    what = what or name
    got = f"got {value!r}"
    if isinstance(value, str):
        try:
            value = float(value) if limit.kind is float else int(value.strip())
        except ValueError:
            raise ConfigError(f"{what} must be {limit.describe()}, {got}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what} must be {limit.describe()}, {got}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be {limit.describe()}, {got}")
    if limit.kind is int:
        if value != int(value):
            raise ConfigError(f"{what} must be {limit.describe()}, {got}")
        value = int(value)
    else:
        value = float(value)
    if not limit.lo <= value <= limit.hi:
        raise ConfigError(f"{what} must be {limit.describe()}, {got}")
    return value


def check_threshold(value, what: str = "threshold") -> float:
    """A Python API's detection threshold: a posterior in [0, 1], or above 1 (``inf`` included) to mute a label.

    NaN, ``-inf``, negatives and non-numbers are refused as :func:`check` refuses them.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    return check("label_threshold", value, what)


def check_optional(name: str, value, what: str | None = None, lo: float | None = None, hi: float | None = None):
    """:func:`check`, letting ``None`` (the default) through."""
    return None if value is None else check(name, value, what, lo, hi)
