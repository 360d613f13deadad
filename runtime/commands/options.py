"""Click options shared by every command: the front-end configuration, numbers checked against ``hearkit.limits``,
``-o``, and the model and device options of run, stream and eval. Torch-free; the training side's options
(``--model``, ``--threads``, ``start_torch``) are ``hearkit.workbench.options``'."""

from __future__ import annotations

import math
from pathlib import Path

import click

from hearkit.errors import ConfigError
from hearkit.frontend import LOGS, MEL_NORMS, MEL_SCALES, FrontendConfig
from hearkit.limits import LIMITS, check

_D = FrontendConfig()


class Limited(click.ParamType):
    """A number checked against one limit of ``hearkit.limits.LIMITS`` (docs/design.md §13).

    Used instead of ``int``/``float``/``IntRange``/``FloatRange`` for every numeric option: click's
    float ranges let ``nan`` through (every comparison with it is false) and most had no upper
    bound, so ``--threads 100000`` reached torch. A refusal is click's one-line usage error that
    names the option and the allowed range: "Invalid value for '--threads': --threads must be an
    integer from 1 to 256, got '100000'".

    Args:
        name: the limit's key, e.g. ``"threads"``.
        lo, hi: a narrower range for this option (Default: None, the table's).
    """

    def __init__(self, name: str, lo: float | None = None, hi: float | None = None):
        self.limit_name, self.lo, self.hi = name, lo, hi
        limit = LIMITS[name]
        self.name = "integer" if limit.kind is int else "float"  # shown by click in --help metavars

    def convert(self, value, param, ctx):
        if value is None:
            return None
        what = param.opts[0] if param is not None and param.opts else self.limit_name
        try:
            return check(self.limit_name, value, what, self.lo, self.hi)
        except ConfigError as e:
            self.fail(str(e), param, ctx)

    def get_metavar(self, param, ctx=None):
        limit = LIMITS[self.limit_name]
        lo = limit.lo if self.lo is None else self.lo
        hi = limit.hi if self.hi is None else self.hi
        if limit.kind is int:
            return f"INTEGER {int(lo)}..{int(hi)}"
        return f"FLOAT {lo:g}..{hi:g}"

    def __repr__(self) -> str:
        return f"Limited({self.limit_name!r})"


class OutOption(click.Option):
    """``-o`` / ``--out`` with ``--output`` accepted too: help shows ``-o, --out``, the alias stays hidden.

    Commands spelled the long form both ways (``train -o/--out``, ``export -o/--output``); both work
    everywhere now, and one is documented.
    """

    ALIASES = ("--output",)

    def get_help_record(self, ctx):
        opts = self.opts
        self.opts = [o for o in opts if o not in self.ALIASES]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = opts


def out_option(*dest: str, **kw):
    """The ``-o/--out`` option (``--output`` a hidden alias) of every command that writes a file or folder.

    Args:
        dest: the parameter's name in the command function (Default: ``out``).
        kw: ``click.option`` arguments (``required``, ``type``, ``help``, ...).
    """
    return click.option("-o", "--out", "--output", *(dest or ("out",)), cls=OutOption, **kw)


def frontend_options(f):
    """Decorate a command with the FrontendConfig fields as options (defaults from FrontendConfig)."""
    opts = [
        click.option("--sample-rate", type=Limited("sample_rate"), default=_D.sample_rate, show_default=True, help="Model sample rate in Hz; audio is resampled to it."),
        click.option("--n-fft", type=Limited("n_fft"), default=_D.n_fft, show_default=True, help="FFT size in samples."),
        click.option("--win-length", type=Limited("win_length"), default=None, help="Window length in samples (default: n_fft)."),
        click.option("--hop-length", type=Limited("hop_length"), default=_D.hop_length, show_default=True, help="Samples between frames."),
        click.option("--n-mels", type=Limited("n_mels"), default=_D.n_mels, show_default=True, help="Mel bands."),
        click.option("--f-min", type=Limited("hz"), default=_D.f_min, show_default=True, help="Lowest mel edge in Hz."),
        click.option("--f-max", type=Limited("hz"), default=None, help="Highest mel edge in Hz (default: sample_rate/2)."),
        click.option("--mel-scale", type=click.Choice(MEL_SCALES), default=_D.mel_scale, show_default=True),
        click.option("--mel-norm", type=click.Choice(MEL_NORMS), default=_D.mel_norm, show_default=True),
        click.option("--log", "log_kind", type=click.Choice(LOGS), default=_D.log, show_default=True, help="ln = ln(mel + eps); db = 10 log10(max(mel, 1e-10))."),
        click.option("--eps", type=Limited("eps"), default=_D.eps, show_default=True, help="Floor added before ln."),
        click.option("--center/--no-center", default=_D.center, show_default=True, help="Centre frames (pad n_fft/2 each side). Streaming needs --no-center."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def config_from_options(kw: dict) -> FrontendConfig:
    """Pop the front-end options out of a command's kwargs and build the config (ConfigError on bad values)."""
    return FrontendConfig(
        sample_rate=kw.pop("sample_rate"),
        n_fft=kw.pop("n_fft"),
        win_length=kw.pop("win_length"),
        hop_length=kw.pop("hop_length"),
        n_mels=kw.pop("n_mels"),
        f_min=kw.pop("f_min"),
        f_max=kw.pop("f_max"),
        mel_scale=kw.pop("mel_scale"),
        mel_norm=kw.pop("mel_norm"),
        log=kw.pop("log_kind"),
        eps=kw.pop("eps"),
        center=kw.pop("center"),
    )


def parse_range(text: str, what: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` -> (low, high) of finite numbers; a BadParameter naming the option ``what`` otherwise."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as e:
        raise click.BadParameter(f"{what} must be LOW,HIGH (two numbers), got {text!r}") from e
    if not (math.isfinite(lo) and math.isfinite(hi)):  # float() reads "nan" and "inf"; no range is made of them
        raise click.BadParameter(f"{what} must be LOW,HIGH (two finite numbers), got {text!r}")
    if lo > hi:
        raise click.BadParameter(f"{what} must have LOW <= HIGH, got {text!r}")
    return lo, hi


# -- the model and device options of run, stream and eval -----------------------------------
DEVICE_HELP = ("Device profile (see `hearkit devices`) or path to a profile.toml: its execution providers, "
               "threads and optimisation level, and its preferred variant from a folder or bundle.")


def model_task(model, device=None) -> tuple[str, Path]:
    """(metadata task, model file) of MODEL: the device's preferred variant (Default: int8) of a folder or bundle.

    Pipelines (waveform in) come first; a folder without any falls back to the
    network alone (``model*.onnx``, log-mel in), which the runners also take.
    """
    from hearkit.artifacts import MODEL, PIPELINE
    from hearkit.metadata import read_model_info
    from hearkit.sessions import model_file

    path = model_file(model, device, stems=(PIPELINE, MODEL))
    return read_model_info(path).task, path


def device_profile(device):
    """The loaded profile, or None; an unknown name is one line listing the known ones (exit 2)."""
    if device is None:
        return None
    from hearkit.devices import load_profile

    return load_profile(device)
