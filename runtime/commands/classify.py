"""``hearkit run``, ``hearkit stream`` and ``hearkit eval``: torch-free use of exported models.

``run`` and ``eval`` dispatch on the model's metadata task through the task registry
(``hearkit.tasks``): what each task runs, evaluates and prints is declared there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hearkit.commands.options import Limited
import numpy as np

from hearkit.errors import AudioError, ConfigError, EmptyAudioError, ModelError
from hearkit.limits import check

PCM_BYTES = 2  # raw stdin samples are 16-bit little-endian
PLOT_SUFFIXES = (".png", ".pdf", ".svg")  # what `stream --plot` writes (matplotlib picks the format by suffix)
DEVICE_HELP = ("Device profile (see `hearkit devices`) or path to a profile.toml: its execution providers, "
               "threads and optimisation level, and its preferred variant from a folder or bundle.")


def _task(model, device=None) -> tuple[str, Path]:
    """(metadata task, model file) of MODEL: the device's preferred variant (Default: int8) of a folder or bundle.

    Pipelines (waveform in) come first; a folder without any falls back to the
    network alone (``model*.onnx``, log-mel in), which the runners also take.
    """
    from hearkit.artifacts import MODEL, PIPELINE
    from hearkit.metadata import read_model_info
    from hearkit.sessions import model_file

    path = model_file(model, device, stems=(PIPELINE, MODEL))
    return read_model_info(path).task, path


def _profile(device):
    """The loaded profile, or None; an unknown name is one line listing the known ones (exit 2)."""
    if device is None:
        return None
    from hearkit.devices import load_profile

    return load_profile(device)


# -- run -----------------------------------------------------------------------------
@click.command("run")
@click.argument("model", type=click.Path(exists=True))
@click.argument("audio", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=Limited("labels"), default=3, show_default=True, help="Best labels listed per file.")
@click.option("--device", "-d", default=None, help=DEVICE_HELP)
def run(model, audio, top, device):
    """Run MODEL (a .onnx file, an export folder or a bundle) on AUDIO files: one JSON line per file.

    Any format libsndfile reads; audio is resampled to the model's rate."""
    from hearkit.tasks import get_task

    profile = _profile(device)
    task, path = _task(model, profile)
    t = get_task(task, path)
    if t.run_files is None:
        raise ModelError(f"{path}: `hearkit run` does nothing with a {task} model; use {t.run_instead}")
    for line in t.run_files()(path, list(audio), top=top, device=profile, note=lambda m: click.echo(m, err=True)):
        click.echo(json.dumps(line))


# -- stream --------------------------------------------------------------------------
class PcmReader:
    """float32 chunks from raw 16-bit little-endian PCM on a binary stream, counting what arrived.

    ``bytes_read`` is every byte read; ``ignored`` the trailing byte of an odd count (half a sample).
    """

    def __init__(self, stream, samples: int):
        self.stream, self.samples = stream, samples
        self.bytes_read = 0
        self.ignored = 0

    def __iter__(self):
        carry = b""
        while True:
            data = self.stream.read(self.samples * PCM_BYTES)
            if not data:
                break
            self.bytes_read += len(data)
            data = carry + data
            n = len(data) // PCM_BYTES * PCM_BYTES
            carry = data[n:]
            if n:
                yield np.frombuffer(data[:n], dtype="<i2").astype(np.float32) / 32768.0
        self.ignored = len(carry)


def _stdin_reader(samples: int) -> PcmReader:
    """A ``PcmReader`` on standard input; a closed standard input is one line (exit 2), not a traceback."""
    buf = getattr(sys.stdin, "buffer", None) if sys.stdin is not None else None
    if buf is None:
        raise AudioError("-", "standard input is closed; pipe raw 16-bit mono PCM into `hearkit stream MODEL -`")
    return PcmReader(_ClosedAsError(buf), samples)


class _ClosedAsError:
    """A binary stream whose read errors (a closed or invalid descriptor) become one AudioError naming stdin."""

    def __init__(self, raw):
        self.raw = raw

    def read(self, n: int) -> bytes:
        try:
            return self.raw.read(n)
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise AudioError("-", f"standard input cannot be read ({reason}); pipe raw 16-bit mono PCM into it") from e


def _check_stdin_audio(reader: PcmReader) -> None:
    """No sample at all on standard input is an error (exit 2): a pipeline whose source died must not look fine.

    An odd trailing byte after real audio is half a sample: dropped with a warning.
    """
    if reader.bytes_read < PCM_BYTES:
        got = "no bytes" if reader.bytes_read == 0 else f"{reader.bytes_read} byte, less than one 16-bit sample"
        raise EmptyAudioError("-", f"no audio arrived on standard input ({got}); "
                                   "pipe raw 16-bit little-endian mono PCM at the model's rate")
    if reader.ignored:
        click.echo(f"warning: -: standard input ended in the middle of a sample; its last {reader.ignored} byte "
                   "was ignored", err=True)


@click.command("stream")
@click.argument("model", type=click.Path(exists=True))
@click.argument("audio", type=click.Path(allow_dash=True))
@click.option("--hop", "hop_seconds", type=Limited("hop_s"), default=None,
              help="Seconds between decisions (Default: the model's calibrated hop, else 0.1).")
@click.option("--threshold", "thresholds", multiple=True, metavar="[LABEL=]VALUE",
              help="Smoothed-posterior threshold, for all keywords or one label (repeatable). "
                   "Default: the model's calibrated thresholds (`hearkit calibrate`), else 0.6.")
@click.option("--smoothing", type=Limited("smoothing"), default=None,
              help="Decisions averaged (Default: the model's calibrated value, else 3).")
@click.option("--refractory", "refractory_seconds", type=Limited("refractory_s"), default=None,
              help="Seconds after a detection during which nothing else fires (Default: calibrated, else 1.0).")
@click.option("--chunk", "chunk_seconds", type=Limited("seconds"), default=0.1, show_default=True,
              help="Seconds of audio read per step.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of the scores over time, the thresholds and the detections.")
@click.option("--device", "-d", default=None, help=DEVICE_HELP + " Spinning stays off (periodic runs).")
def stream(model, audio, hop_seconds, thresholds, smoothing, refractory_seconds, chunk_seconds, plot, device):
    """Spot keywords in AUDIO (a file, or `-` for raw 16-bit mono PCM at the model's rate on stdin).

    Prints one JSON line per detection: {"label", "time" (s), "score"}."""
    from hearkit.audio import iter_blocks
    from hearkit.classify import KeywordSpotter

    if plot is not None and Path(plot).suffix.lower() not in PLOT_SUFFIXES:  # before any scoring, not after it
        raise click.BadParameter(f"{plot!r} must end in {', '.join(PLOT_SUFFIXES[:-1])} or {PLOT_SUFFIXES[-1]}",
                                 param_hint="'--plot'")
    profile = _profile(device)
    th: dict[str, float] = {}
    default = None
    for t in thresholds:
        label, _, value = t.rpartition("=")
        try:
            float(value)
        except ValueError as e:
            raise ConfigError(f"--threshold {t!r}: expected VALUE or LABEL=VALUE with a number") from e
        v = check("threshold", value, f"--threshold {t!r}")  # a posterior: NaN, inf or 1.5 never fires
        if label:
            th[label] = v
        else:
            default = v
    from hearkit.classify import DEFAULT_THRESHOLD

    kws = KeywordSpotter(model, hop_seconds=hop_seconds, thresholds=th or default, smoothing=smoothing,
                         refractory_seconds=refractory_seconds, record=plot is not None,
                         default_threshold=DEFAULT_THRESHOLD if default is None else default, device=profile)
    sr = kws.sample_rate
    n = max(1, int(round(chunk_seconds * sr)))
    reader = _stdin_reader(n) if audio == "-" else None
    chunks = reader if reader is not None else iter_blocks(audio, sr, block_seconds=chunk_seconds)
    found = []
    for chunk in chunks:
        for d in kws.accept_waveform(chunk):
            found.append(d)
            click.echo(json.dumps(d.to_dict()))
    if reader is not None:
        _check_stdin_audio(reader)
    for d in kws.flush():  # the stream ended: score its last moments too
        found.append(d)
        click.echo(json.dumps(d.to_dict()))
    if plot:
        from hearkit.plots.detection import plot_timeline

        plot_timeline(kws.history, kws.labels, found, plot, title=f"{Path(str(audio)).name}: {len(found)} detections",
                      thresholds=kws.logic.label_thresholds())
        click.echo(f"wrote {plot}", err=True)


# -- eval ----------------------------------------------------------------------------
@click.command("eval")
@click.argument("model", type=click.Path(exists=True))
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None, help="Labelled dataset folder.")
@click.option("--format", "fmt", default=None, help="speech-commands | urbansound8k | folders (default: detected).")
@click.option("--split", default="val", show_default=True, type=click.Choice(["val", "test", "train", "all"]))
@click.option("--val-fold", type=Limited("count"), default=None, help="UrbanSound8K validation fold.")
@click.option("--test-fold", type=Limited("count"), default=None, help="UrbanSound8K test fold.")
@click.option("--manifest", type=click.Path(exists=True), default=None,
              help="CTC models: JSONL manifest, a folder with manifest.jsonl, or a LibriSpeech folder.")
@click.option("--confusion", type=click.Path(dir_okay=False), default=None, help="Write the confusion matrix as PNG.")
@click.option("--beam", type=Limited("beam"), default=None,
              help="CTC: beam width [default: 1 (greedy), 16 with --lexicon or --lm].")
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CTC: word list (one per line); only these words are emitted.")
@click.option("--lm", "lm_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CTC: ARPA n-gram LM (see `hearkit lm build`).")
@click.option("--positives", multiple=True, type=click.Path(exists=True),
              help="Keyword detector: real recordings of the phrases (a folder per phrase, or a manifest). Repeatable.")
@click.option("--negatives", multiple=True, type=click.Path(exists=True),
              help="Keyword detector: audio streamed back to back as one long stream; clips whose transcript holds a "
                   "phrase are left out and counted. Repeatable.")
@click.option("--noise", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Keyword detector: noise mixed into the positive stream (needs --snr).")
@click.option("--snr", "snr_db", type=Limited("snr_db"), default=None, help="Keyword detector: speech-to-noise ratio in dB.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Keyword detector: write the DET curves as PNG.")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True, help="Keyword detector: order of positives, gaps, noise.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def eval_(model, data, fmt, split, val_fold, test_fold, manifest, confusion, beam, lexicon, lm_path,
          positives, negatives, noise, snr_db, plot, seed, as_json):
    """Evaluate MODEL (a .onnx file or export folder) on a dataset split, or as a streaming keyword detector.

    \b
    Classification: accuracy, per-class report, confusion PNG (--data DIR).
    Keyword detector (--positives DIR --negatives DIR): the spotter streams them as a device
      would; false-reject rate at 0.5, 1 and 2 false alarms per hour with 95 % intervals,
      DET curves (--plot det.png). A hit is a detection of the right label between the
      utterance's start and 0.5 s after its end; any other detection is a false alarm.
    CTC: WER and CER on a manifest (--manifest M), greedy or with the
    transcriber's beam search, lexicon and LM.
    """
    if positives or negatives:
        return _eval_detector(model, positives, negatives, noise, snr_db, plot, seed, as_json)
    from hearkit.tasks import TASKS, get_task

    task, path = _task(model)
    t = get_task(task, path)
    given = {"beam": beam, "lexicon": lexicon, "lm": lm_path}
    if stray := [k for k, v in given.items() if v and k not in t.eval_options]:
        readers = sorted(name for name, other in TASKS.items() if stray[0] in other.eval_options)
        raise ConfigError(f"{', '.join('--' + k for k in stray)}: only for {' and '.join(readers)} models; "
                          f"{path} is a {task} model")
    kw = {k: v for k, v in given.items() if k in t.eval_options}
    rep = t.evaluator()(path, data=data, fmt=fmt, split=split, val_fold=val_fold, test_fold=test_fold,
                        manifest=manifest, confusion=confusion, **kw)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    for line in t.report_lines(rep):
        click.echo(line)
    if confusion and Path(confusion).is_file():  # a CTC evaluation draws no confusion matrix
        click.echo(f"wrote {confusion}", err=True)


def _eval_detector(model, positives, negatives, noise, snr_db, plot, seed, as_json):
    from hearkit.classify import KeywordSpotter
    from hearkit.evaluate.detector import evaluate_detector, plot_det, summary_lines

    if not positives or not negatives:
        raise click.UsageError("a detector evaluation needs both --positives and --negatives")
    if noise and snr_db is None:
        raise click.UsageError("--noise needs --snr")
    kws = KeywordSpotter(model)
    rep = evaluate_detector(kws, positives, negatives, noise=noise, snr_db=snr_db, seed=seed,
                            log=lambda m: click.echo(m, err=True))
    if plot:
        plot_det(rep, plot, title=f"{Path(str(model)).name}: DET")
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        click.echo(json.dumps(rep))
        return
    for line in summary_lines(rep):
        click.echo(line)
