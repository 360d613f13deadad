"""The tasks a model can be, and what the torch-free runtime does with each: one registry.

A model file names its task in its metadata (``hearkit.task``, docs/design.md §3). A
:class:`RuntimeTask` says, for that task:

- which runtime class runs an exported pipeline (``hearkit.Classifier``, ``hearkit.Transcriber``),
  ``hearkit run``'s runner, or what to use instead when it has none;
- ``hearkit eval``'s evaluator, the options only it reads, and the report it prints;
- what ``hearkit package`` writes into the C header for firmware (its constants and name array);
- how long a quantization calibration clip is when the model has no window of its own;
- whether it spots keywords in a stream (``hearkit bench`` then measures the spotter).

The export side (``hearkit.export.task.Task``) adds how to export and verify a task and takes
the rest from here (:attr:`Task.runtime`). The metadata schema lists the task names a file may
record (``hearkit.metadata.TASKS``). Adding a task is one entry there, one here and one ``Task``
subclass in ``hearkit.export``. This module sits beside the evaluators (layer 5, docs/design.md
§12) and imports the task code it names inside small functions, so ``import hearkit.tasks`` stays
cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hearkit.errors import ModelError
from hearkit.metadata import TASKS as METADATA_TASKS


@dataclass(frozen=True)
class CHeader:
    """What a task adds to a bundle's ``hearkit_model.h``: ``#define`` lines and one array of names.

    Attributes:
        defines: ``(macro, value, comment)`` in order; the comment may be "".
        array: the C name of the string array (``hearkit_labels``).
        size: the macro that sizes it.
        names: its strings.
    """

    defines: tuple[tuple[str, int, str], ...]
    array: str
    size: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class RuntimeTask:
    """One task as the runtime sees it (see the module docstring).

    Attributes:
        name: the metadata's ``hearkit.task``.
        runner: ``() -> class`` that runs an exported pipeline of the task (``model, **kwargs``).
        evaluator: ``() -> function(model, **options) -> report`` of ``hearkit eval``.
        report_lines: ``function(report) -> lines`` that ``hearkit eval`` prints.
        c_header: ``function(ModelInfo) -> CHeader``.
        run_files: ``() -> function(model, paths, top, device, note) -> iterator of dicts`` of
            ``hearkit run`` (one JSON line per file; ``note`` takes a line for stderr), or None.
        run_instead: what ``hearkit run`` says to use when ``run_files`` is None.
        eval_options: ``hearkit eval`` options that only this task reads.
        calibration_seconds: length of a calibration clip when the model has no window
            (Default: None, the model's window).
        calibration_stream: calibration clips are the files back to back, cut into windows
            (``hearkit.audio.load_stream_windows``), not each file's centre (Default: False).
        spots_keywords: the model can run as a streaming keyword spotter.
    """

    name: str
    runner: Callable[[], type]
    evaluator: Callable[[], Callable[..., dict]]
    report_lines: Callable[[dict], list[str]]
    c_header: Callable[[object], CHeader]
    run_files: Callable[[], Callable[..., Iterator[dict]]] | None = None
    run_instead: str = ""
    eval_options: tuple[str, ...] = ()
    calibration_seconds: float | None = None
    calibration_stream: bool = False
    spots_keywords: bool = False


# -- classify ------------------------------------------------------------------------------
def _classifier():
    from hearkit.classify import Classifier

    return Classifier


def _eval_classify():
    from hearkit.evaluate.classify import eval_classify

    return eval_classify


def _classify_files():
    from hearkit.classify import classify_files

    return classify_files


def _classify_report(rep: dict) -> list[str]:
    lines = [f"{rep['model']} on {rep['data']} ({rep['split']}, {rep['clips']} clips): accuracy {100 * rep['accuracy']:.2f} %",
             f"{'label':<16} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    lines += [f"{lab:<16} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} {r['support']:>8d}"
              for lab, r in rep["per_class"].items()]
    return lines


# -- ctc -----------------------------------------------------------------------------------
def _transcriber():
    from hearkit.transcribe import Transcriber

    return Transcriber


def _eval_ctc():
    from hearkit.evaluate.ctc import eval_ctc

    return eval_ctc


def _ctc_report(rep: dict) -> list[str]:
    return [f"{rep['model']} on {rep['manifest']} ({rep['utterances']} utterances, {rep['decoder']}): "
            f"WER {100 * rep['wer']:.2f} % ({rep['word_errors']}/{rep['words']} words), "
            f"CER {100 * rep['cer']:.2f} %, RTF {rep['rtf']:.4f}"]


def _classify_header(info) -> CHeader:
    return CHeader((("HEARKIT_WINDOW_SAMPLES", int(info.window_samples or 0), "samples per decision"),
                    ("HEARKIT_NUM_LABELS", len(info.labels), "")),
                   "hearkit_labels", "HEARKIT_NUM_LABELS", tuple(info.labels))


def _ctc_header(info) -> CHeader:
    return CHeader((("HEARKIT_SUBSAMPLING", int(info.subsampling or 1), "feature frames per output frame"),
                    ("HEARKIT_VOCAB_SIZE", len(info.vocab), ""),
                    ("HEARKIT_BLANK_ID", int(info.blank), "")),
                   "hearkit_vocab", "HEARKIT_VOCAB_SIZE", tuple(info.vocab))


TASKS: dict[str, RuntimeTask] = {t.name: t for t in (
    RuntimeTask("classify", runner=_classifier, evaluator=_eval_classify, report_lines=_classify_report,
                c_header=_classify_header, run_files=_classify_files, spots_keywords=True),
    RuntimeTask("ctc", runner=_transcriber, evaluator=_eval_ctc, report_lines=_ctc_report, c_header=_ctc_header,
                run_instead="`hearkit transcribe MODEL AUDIO`", eval_options=("beam", "lexicon", "lm"),
                calibration_seconds=3.0, calibration_stream=True),
)}
assert set(TASKS) < set(METADATA_TASKS), "every runtime task is a task the metadata schema knows"


def get_task(name, where: object = "<model>") -> RuntimeTask:
    """The runtime task ``name``; ModelError naming ``where`` and the tasks hearkit runs otherwise."""
    if name not in TASKS:
        raise ModelError(f"{where}: task {name!r} has no runtime; hearkit runs {sorted(TASKS)}")
    return TASKS[name]
