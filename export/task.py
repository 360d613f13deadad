"""The task interface: what the one export skeleton and the one verify skeleton ask of a task.

A task (``classify``, ``ctc``; later ones plug in the same way) is a :class:`Task`
subclass, registered by name in ``hearkit.export.tasks.TASKS``. It says

- how to rebuild the torch network from a checkpoint (:meth:`Task.load`) and the torch
  reference the waveform-in pipeline is checked against (:meth:`Task.reference`);
- what it adds to the ``hearkit.*`` metadata of every ONNX file (:meth:`Task.model_info`,
  docs/design.md §3) and to ``export.json`` (:meth:`Task.summary`);
- how its network becomes ONNX (:meth:`Task.export_network`; the CTC RNN uses the
  TorchScript exporter, docs/design.md §6) and at which lengths the graphs are
  checked against torch, with which tolerance (class attributes);
- its calibration data (:meth:`Task.calibration`) and any quantizer of its own
  (:meth:`Task.quantizer`: the CTC RNN's dynamic int8, docs/design.md §5);
- its verify thresholds (a frozen dataclass, :attr:`Task.thresholds`), its evaluator
  (:meth:`Task.evaluate`: torch vs ONNX fp32 vs quantized on the task's metric),
  its pass/fail checks (:meth:`Task.checks`) and report (:meth:`Task.report_markdown`);
- its runtime side from the runtime's task registry (:attr:`Task.runtime`, ``hearkit.tasks``):
  the runner (``hearkit.Classifier``, ``hearkit.Transcriber``), evaluator, C header fields;
- its command-line options of ``hearkit export`` and ``hearkit verify``
  (:attr:`Task.export_options`, :attr:`Task.verify_options`).

Torch-free on import, like the task modules that subclass it (torch, onnx and the
export steps load inside the methods): the CLI builds ``hearkit verify --help``
from these declarations on a device without torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hearkit import artifacts
from hearkit.errors import ConfigError, ModelError

EXPORT, VERIFY = "export", "verify"  # the two commands a task adds options to


@dataclass(frozen=True)
class CliOption:
    """One command-line option a task reads in ``hearkit export`` or ``hearkit verify``.

    Tasks that declare the same flag share one click option: the CLI merges them
    and its help gives each task's meaning and default. A shared flag therefore
    needs the same ``type`` in every task.

    Attributes:
        flag: the option as typed, e.g. ``--fp32-atol``.
        dest: where the value goes: a keyword of the export / verify skeleton (or of the
            task's ``calibration`` / ``evaluate``), or, with ``threshold``, a field of
            the task's thresholds dataclass.
        help: what it means for this task, without the default (the CLI appends it).
        type: click parameter type (Default: float).
        default: the default shown in ``--help`` (Default: None, none shown). Thresholds
            show their dataclass field's default instead.
        threshold: ``dest`` is a field of :attr:`Task.thresholds` (Default: False).
        scale: the stored value is the typed one times this (Default: 1.0; 0.01 turns
            percentage points into the fraction a thresholds field holds).
    """

    flag: str
    dest: str
    help: str
    type: Any = float
    default: Any = None
    threshold: bool = False
    scale: float = 1.0

    @property
    def param(self) -> str:
        """The click parameter name: ``--fp32-atol`` -> ``fp32_atol``."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Calibration:
    """The audio a static quantization recipe is calibrated on.

    Attributes:
        waveforms: (n, samples) float32, one shape for all (the front-end graph runs them in batches).
        count: the clips (classify) or utterances (ctc) they were taken from.
        data: the folder or manifest they came from.
    """

    waveforms: np.ndarray
    count: int
    data: str


@dataclass(frozen=True)
class Quantizer:
    """A task's own quantization of one variant, used instead of the recipe of that name.

    Attributes:
        describe: the progress line that says what it does.
        metadata: the ``hearkit.quantization`` metadata of the files it makes.
        quantize: ``(model.onnx path, output path) -> onnx.ModelProto``.
    """

    describe: str
    metadata: dict
    quantize: Callable[[Path, Path], Any]


@dataclass
class Evaluation:
    """What a task's evaluator measured for ``hearkit verify``.

    Attributes:
        fields: ``report.json`` fields that describe the data, in order (they stand before ``results``).
        results: per variant (``torch``, ``fp32``, then each quantized one): the task's metrics.
        files: extra text files to write beside the report, name -> content (Default: none).
    """

    fields: dict
    results: dict
    files: dict[str, str] = field(default_factory=dict)


class Task:
    """One kind of model hearkit exports and verifies. Subclasses set the class attributes
    and implement the methods that raise ``NotImplementedError``.

    Attributes:
        name: the ``task`` recorded in checkpoints, ONNX metadata and ``export.json``.
        output: name of the network's and the pipeline's output tensor.
        thresholds: frozen dataclass of verify's pass/fail limits; its defaults are the task's.
        unit: what calibration and evaluation count: ``clips`` | ``utterances``
            (the key of the count in ``export.json``'s ``calibration``).
        calibration_clips: default number of them for static calibration.
        fp32_check_atol: the export fails when an fp32 graph differs more than this from torch.
        checked_graphs: waveform-in graphs (stems) checked against torch. A checked front-end
            is recorded but not enforced: its parity is the front-end tests' business
            (float32 log floor, docs/design.md §4).
        check_seconds: waveform lengths (s) they are checked at.
        check_frames: frame counts the network (log-mel in) is checked at.
        data_option: the keyword that names the task's data (calibration at export,
            evaluation at verify): ``data`` | ``manifest``.
        export_options, verify_options: the options it reads in ``hearkit export`` /
            ``hearkit verify`` beyond the common ones.
    """

    name: ClassVar[str]
    output: ClassVar[str]
    thresholds: ClassVar[type]
    unit: ClassVar[str]
    calibration_clips: ClassVar[int]
    fp32_check_atol: ClassVar[float]
    checked_graphs: ClassVar[tuple[str, ...]] = (artifacts.PIPELINE,)
    check_seconds: ClassVar[tuple[float, ...]]
    check_frames: ClassVar[tuple[int, ...]]
    data_option: ClassVar[str] = "data"
    export_options: ClassVar[tuple[CliOption, ...]] = ()
    verify_options: ClassVar[tuple[CliOption, ...]] = ()

    # -- checkpoint -> torch -------------------------------------------------------
    def load(self, ckpt: dict):
        """``(network in eval mode, FrontendConfig)`` from a checkpoint dict; ModelError when it is not this task's."""
        raise NotImplementedError

    def reference(self, net, cfg):
        """The torch module a pipeline graph must equal: front-end + network (waveform (batch, samples) in)."""
        from hearkit.export.pipeline import WaveformModel

        return WaveformModel(net, cfg).eval()

    def check_lengths(self, ckpt: dict, net) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """``(waveform seconds, network frames)`` the exported graphs are checked at (Default: the class's)."""
        return self.check_seconds, self.check_frames

    # -- what travels with the files -----------------------------------------------
    def model_info(self, ckpt: dict, net) -> dict:
        """The task's own ``ModelInfo`` fields (labels and window, or vocabulary, blank and subsampling)."""
        raise NotImplementedError

    def summary(self, ckpt: dict, net) -> dict:
        """The task's own ``export.json`` fields, in order (they follow ``model`` and ``exporter``)."""
        raise NotImplementedError

    # -- export ----------------------------------------------------------------------
    def export_network(self, net, cfg, ckpt: dict, log) -> tuple[Any, str]:
        """``(onnx.ModelProto of the network, exporter name)``: log-mel (batch, frames, n_mels) in, :attr:`output` out."""
        raise NotImplementedError

    def calibration(self, ckpt: dict, checkpoint: Path, count: int, log, **options) -> Calibration:
        """Training audio for static calibration, from the task's ``export_options`` or the checkpoint's records."""
        raise NotImplementedError

    def quantizer(self, ckpt: dict, variant: str) -> Quantizer | None:
        """The task's own quantizer for ``variant`` as asked for (``int8``, a recipe name), or None for the recipe's."""
        return None

    # -- verify ----------------------------------------------------------------------
    def evaluate(self, out: Path, summary: dict, net, cfg, variants: dict, *, max_clips: int | None,
                 latency_runs: int, log, **options) -> Evaluation:
        """Run torch and every pipeline in ``variants`` on the task's evaluation data.

        Args:
            out: the export folder.
            summary: its ``export.json``.
            net, cfg: from :meth:`load`.
            variants: ``{"fp32": {"pipeline", "model", "recipe"}, "<tag>": ...}``.
            max_clips: an even subset of at most this many clips / utterances (None: all).
            latency_runs: timed runs per model (0: no timing).
            log: progress callable.
            options: the task's ``verify_options`` that are not thresholds.
        """
        raise NotImplementedError

    def checks(self, results: dict, thresholds) -> list[dict]:
        """``report.json``'s checks: each result against its threshold (``hearkit.export.verify.limit_check`` rows)."""
        raise NotImplementedError

    def report_markdown(self, report: dict) -> str:
        """``report.md``: the report for people."""
        raise NotImplementedError

    # -- runtime ---------------------------------------------------------------------
    @property
    def runtime(self):
        """This task in the runtime's registry (``hearkit.tasks``): its runner, evaluator, C header, calibration clip."""
        from hearkit.tasks import get_task

        return get_task(self.name)

    def runner(self, path, **kwargs):
        """The torch-free runtime object that runs an exported pipeline of this task (the registry's runner)."""
        return self.runtime.runner()(path, **kwargs)

    # -- command line ----------------------------------------------------------------
    def options(self, command: str) -> tuple[CliOption, ...]:
        """The options this task reads in ``command`` (``export`` | ``verify``)."""
        if command not in (EXPORT, VERIFY):
            raise ValueError(f"command must be {EXPORT!r} or {VERIFY!r}, got {command!r}")
        return self.export_options if command == EXPORT else self.verify_options

    def default_of(self, option: CliOption):
        """The default of ``option`` as typed: a thresholds field's default in the option's units."""
        if option.threshold:
            return getattr(self.thresholds(), option.dest) / option.scale
        return option.default

    def parse_options(self, command: str, given: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the ``command`` skeleton from the values typed on the command line.

        Args:
            command: ``export`` | ``verify``.
            given: click parameter name -> value, None where the option was not given.

        Returns:
            the keywords; thresholds typed in ``verify`` come as one ``thresholds`` instance
            (the task's defaults for the others).

        Raises:
            ConfigError: an option was given that this task does not read (naming the ones it does).
        """
        mine = {o.param: o for o in self.options(command)}
        extra = sorted(p for p, v in given.items() if v is not None and p not in mine)
        if extra:
            flags = ", ".join("--" + p.replace("_", "-") for p in extra)
            raise ConfigError(
                f"{flags} {'does' if len(extra) == 1 else 'do'} not apply to {self.name} exports; "
                f"{self.name} reads {', '.join(o.flag for o in self.options(command))}"
            )
        kwargs, limits = {}, {}
        for param, o in mine.items():
            if given.get(param) is None:
                continue
            if o.threshold:
                limits[o.dest] = given[param] * o.scale
            else:
                kwargs[o.dest] = given[param]
        if command == VERIFY:
            kwargs["thresholds"] = dataclasses.replace(self.thresholds(), **limits)
        return kwargs


def check_checkpoint(ckpt: dict, task: str, keys: tuple[str, ...], kind: str) -> None:
    """Raise ``ModelError`` unless ``ckpt`` is a ``task`` checkpoint that holds ``keys`` (``kind`` names it)."""
    if ckpt.get("task") != task:
        raise ModelError(f"checkpoint task is {ckpt.get('task')!r}, expected {task!r}")
    for key in keys:
        if key not in ckpt:
            raise ModelError(f"{kind} checkpoint lacks '{key}'")
