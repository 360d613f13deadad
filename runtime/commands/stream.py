"""``hearkit stream``: spot keywords in a file or in raw PCM on stdin, one JSON line per detection."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from hearkit.commands.options import DEVICE_HELP, Limited, device_profile
from hearkit.errors import AudioError, ConfigError, EmptyAudioError
from hearkit.limits import check

PCM_BYTES = 2  # raw stdin samples are 16-bit little-endian
PLOT_SUFFIXES = (".png", ".pdf", ".svg")  # what `stream --plot` writes (matplotlib picks the format by suffix)


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
    profile = device_profile(device)
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
