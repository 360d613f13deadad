"""Audio in: load any file libsndfile reads, downmix to mono, resample with soxr.

Every function returns float32 mono samples in [-1, 1] and raises an
``AudioError`` subclass naming the file and the reason on bad input.

One policy for every sample that comes in, from a file or from an array passed to the
Python API (docs/design.md §14), applied by ``check_waveform`` / ``ChunkChecker``:

- float samples with a peak up to ``CLIP_PEAK`` (+6 dBFS) are float-DSP overshoot: they are
  clipped to [-1, 1] with one ``HearkitWarning`` (per file or stream); beyond it the scale is
  wrong (integer PCM stored as float, a different format) and the audio is refused;
- NaN or infinite samples are refused;
- integer PCM is scaled to [-1, 1) (unsigned as offset binary: 128 is silence in 8-bit);
- 2-D arrays are (samples, channels) and averaged to mono; a second axis longer than
  ``MAX_CHANNELS`` is refused as a (channels, samples) array.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
import stat
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from hearkit.limits import check as check_limit
from hearkit.limits import check_optional
from hearkit.errors import (
    AudioFileNotFound,
    CorruptAudioError,
    EmptyAudioError,
    HearkitWarning,
    NonFiniteAudioError,
    NotAudioError,
    OutOfRangeAudioError,
    ResampleError,
)

_TRUNCATED = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
MAX_SAMPLE_RATE = 768_000  # Hz; above this a header is more likely corrupt than real
BLOCK_SECONDS = 10.0  # default block length of iter_blocks, in seconds
# |sample| up to this (+6 dBFS, one bit of headroom) is overshoot of float DSP (a gain, a mix of two
# full-scale sources, a resampler's ringing): clipped with a warning. Beyond it the scale is wrong:
# int16 PCM stored as float peaks at hundreds to 32767, 24-bit at up to 8.4e6 (docs/design.md §14).
CLIP_PEAK = 2.0
# A 2-D array is (samples, channels). Sound cards and mic arrays deliver up to 16 or so channels;
# a second axis longer than this is a (channels, samples) array read the wrong way round.
MAX_CHANNELS = 32


# libsndfile's messages for a file it cannot open, in words for the user; the file was stat'ed as a
# regular, readable, non-empty file before, so "does not exist or is not a regular file" (what the MPEG
# reader says when random bytes start like an MPEG frame) means bytes it could not decode
_SNDFILE_MESSAGES = (
    (("format not recognised", "unknown format", "not recognised"), NotAudioError, "not an audio file libsndfile can read"),
    (("does not exist or is not a regular file",), NotAudioError,
     "not an audio file libsndfile can read (it starts like MPEG audio but holds no frame that decodes)"),
    (("sf_info struct incomplete", "bad sample rate", "samplerate", "channel count"), CorruptAudioError,
     "the header is damaged: its sample rate or channel count is 0 or impossible"),
    (("system error",), CorruptAudioError, "cannot be read (libsndfile reported a system error)"),
)


def _open_error(p: Path, e: Exception) -> AudioError:
    """The AudioError for a file libsndfile refused to open: plain words, never its internal jargon."""
    msg = str(e).lower()
    for keys, kind, reason in _SNDFILE_MESSAGES:
        if any(k in msg for k in keys):
            return kind(p, reason)
    detail = str(e).split(": ", 1)[-1].strip().rstrip(".")  # "Error opening 'x': ..." names the file itself
    return CorruptAudioError(p, f"cannot be decoded ({detail})")


@contextlib.contextmanager
def _quiet_stderr():
    """Hide what C libraries write to file descriptor 2 inside the block (libmpg123's notes on random bytes).

    The descriptor is swapped only for the duration of one open call; where it cannot be
    swapped (no descriptor 2, a sandbox) the block runs unchanged.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open(path: str | os.PathLike):
    import soundfile as sf

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioFileNotFound(p, "no such file") from None
    except OSError as e:  # a path through a file, too long a name, a symlink loop
        raise NotAudioError(p, f"cannot be read ({e.strerror or e})") from e
    if stat.S_ISDIR(st.st_mode):
        raise NotAudioError(p, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        # opening a FIFO blocks until a writer comes, a device reads forever: neither is a file of audio
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                else "a block device" if stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a special file")
        raise NotAudioError(p, f"not a regular file ({kind}); give an audio file")
    if not os.access(p, os.R_OK):
        raise NotAudioError(p, "cannot be read (permission denied)")
    if st.st_size == 0:
        raise EmptyAudioError(p, "file is empty (0 bytes)")
    try:
        with _quiet_stderr():  # libmpg123 prints "Note: Illegal Audio-MPEG-Header ..." to fd 2 on random bytes
            f = sf.SoundFile(str(p))
    except sf.LibsndfileError as e:
        raise _open_error(p, e) from e
    except Exception as e:  # soundfile raises RuntimeError on some broken headers
        raise CorruptAudioError(p, f"cannot be decoded ({e})") from e
    # libsndfile quietly shortens a truncated WAV/AIFF to the bytes present; its own
    # header log says so ("data : 32000 (should be 15978)"), which is the cheapest check.
    m = _TRUNCATED.search(f.extra_info or "")
    if m:
        f.close()
        raise CorruptAudioError(p, f"truncated: header promises {m.group(2)} bytes of {m.group(1)}, file holds {m.group(3)}")
    if not 0 < f.samplerate <= MAX_SAMPLE_RATE:
        rate = f.samplerate
        f.close()
        raise CorruptAudioError(p, f"header sample rate {rate} Hz is outside 1..{MAX_SAMPLE_RATE} Hz (a damaged header)")
    return f


def _validate(x, source: object, warn: bool, max_channels: int | None, note: str = "") -> tuple[np.ndarray, bool]:
    """The checks of ``check_waveform``; returns (mono float32, whether samples were clipped)."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise NotAudioError(source, f"samples must be real numbers (float or integer PCM), got dtype {x.dtype}")
    if x.ndim == 2:
        ch = x.shape[1]
        if max_channels is not None and ch > max_channels:
            if x.shape[0] <= max_channels:
                raise NotAudioError(
                    source, f"shape {x.shape} looks like (channels, samples); arrays are (samples, channels) "
                    f"with at most {max_channels} channels: pass x.T")
            raise NotAudioError(source, f"shape {x.shape}: {ch} channels, at most {max_channels} are taken")
        if ch == 0:
            raise EmptyAudioError(source, f"audio has zero channels (shape {x.shape})")
    elif x.ndim == 0:
        raise NotAudioError(source, f"got a single number ({x.dtype} scalar, shape ()), not samples; pass a 1-D array of samples")
    elif x.ndim != 1:
        raise NotAudioError(source, f"expected 1-D samples or (samples, channels), got shape {x.shape}")
    if x.size == 0:
        raise EmptyAudioError(source, "audio has zero samples")
    clipped = False
    if x.dtype.kind == "i":
        x = x.astype(np.float32) / float(2 ** (8 * x.dtype.itemsize - 1))
    elif x.dtype.kind == "u":
        # unsigned PCM is offset binary (8-bit WAV: 128 is silence)
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        x = (x.astype(np.float64) - half).astype(np.float32) / np.float32(half)
    else:
        # max and min instead of isfinite(abs(x)): no temporary of the block's size in the common case
        hi, lo = x.max(), x.min()
        if not (np.isfinite(hi) and np.isfinite(lo)):
            bad = int((~np.isfinite(x)).sum())
            raise NonFiniteAudioError(source, f"{bad} of {x.size} samples are NaN or infinite")
        peak = float(max(hi, -lo))
        if peak > CLIP_PEAK:
            raise OutOfRangeAudioError(
                source, f"samples reach {peak:.4g}, far outside [-1, 1] (peaks up to {CLIP_PEAK:g} are clipped with "
                "a warning): integer PCM stored as float, or another scale; write it as float in [-1, 1] or as integer PCM")
        x = x.astype(np.float32, copy=False)
        if peak > 1.0:
            over = int((np.abs(x) > 1.0).sum())
            if over:
                x = np.clip(x, -1.0, 1.0)
                clipped = True
                if warn:
                    warnings.warn(f"{source}: {over} of {x.size} samples outside [-1, 1] (peak {peak:.3g}) "
                                  f"clipped to [-1, 1]{note}", HearkitWarning, stacklevel=3)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    return np.ascontiguousarray(x, dtype=np.float32), clipped


def downmix(x, source: object = "<stream chunk>", max_channels: int = MAX_CHANNELS) -> np.ndarray:
    """The channel rule of ``check_waveform`` alone: 1-D as is, (samples, channels) averaged, (channels, samples) refused.

    For numeric front-ends that take any float values (no range or finiteness policy here).
    """
    x = np.asarray(x)
    if x.ndim <= 1 or x.size == 0:
        return x.reshape(-1)
    if x.ndim > 2:
        raise NotAudioError(source, f"expected 1-D samples or (samples, channels), got shape {x.shape}")
    if x.shape[1] > max_channels:
        raise NotAudioError(source, f"shape {x.shape} looks like (channels, samples); arrays are (samples, channels) "
                            f"with at most {max_channels} channels: pass x.T")
    return x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]


def check_waveform(
    x: np.ndarray, source: object = "<array>", *, warn: bool = True, max_channels: int | None = MAX_CHANNELS
) -> np.ndarray:
    """Validate a waveform array and return it as float32 mono (docs/design.md §14).

    Args:
        x: samples, 1-D or (samples, channels); float in [-1, 1] or integer PCM.
        source: the file or argument named in errors and warnings (Default: ``"<array>"``).
        warn: give a ``HearkitWarning`` when samples are clipped (Default: True).
        max_channels: most channels of a 2-D array; longer second axes are refused as
            (channels, samples); None for data whose layout is known, such as a file's
            (Default: ``MAX_CHANNELS``).

    Returns:
        (samples,) float32 in [-1, 1], channels averaged.

    Raises:
        EmptyAudioError: no samples.
        NonFiniteAudioError: NaN or infinite samples.
        OutOfRangeAudioError: float samples beyond ``CLIP_PEAK``.
        NotAudioError: a dtype that is not numbers, or a shape that is not audio.
    """
    return _validate(x, source, warn, max_channels)[0]


class ChunkChecker:
    """``check_waveform`` for the chunks of one stream: empty chunks pass, the clip warning comes once.

    Args:
        source: what errors and the warning name (Default: ``"<stream chunk>"``).
        max_channels: as for ``check_waveform``.
    """

    def __init__(self, source: object = "<stream chunk>", max_channels: int | None = MAX_CHANNELS):
        self.source, self.max_channels = source, max_channels
        self.warned = False

    def __call__(self, chunk) -> np.ndarray:
        """(samples,) float32 mono of one chunk; a chunk of zero samples gives an empty array."""
        x = np.asarray(chunk)
        if x.size == 0 and x.ndim <= 2 and x.dtype.kind in "fiu":
            return np.zeros(0, np.float32)
        y, clipped = _validate(x, self.source, not self.warned, self.max_channels,
                               "; later clipping in this stream is not reported")
        self.warned |= clipped
        return y

    def reset(self) -> None:
        """A new stream: its first clipping is reported again."""
        self.warned = False


def _rate(value, what: str) -> int:
    """A sample rate argument as an int: NaN, inf, a fraction, a bool or a word is a ConfigError naming ``what``
    (``hearkit.limits.check``); the range of a file's rate (1..MAX_SAMPLE_RATE) is checked where it is used."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value == int(value):
        return int(value)
    return check_limit("sample_rate", value, what)  # raises: not a whole number


def resample(x: np.ndarray, orig_sr: int, target_sr: int, source: object = "<array>") -> np.ndarray:
    """Resample mono float32 audio with soxr (high quality). A no-op when the rates match."""
    orig_sr, target_sr = _rate(orig_sr, "orig_sr"), _rate(target_sr, "target_sr")
    if int(orig_sr) == int(target_sr):
        return x
    for name, sr in (("source", orig_sr), ("target", target_sr)):
        if not (0 < sr <= MAX_SAMPLE_RATE):
            raise ResampleError(source, f"{name} sample rate {sr} Hz is outside 1..{MAX_SAMPLE_RATE} Hz")
    import soxr

    try:
        y = soxr.resample(x, int(orig_sr), int(target_sr), quality="HQ")
    except Exception as e:
        raise ResampleError(source, f"cannot resample {orig_sr} Hz to {target_sr} Hz ({e})") from e
    if len(x) and not len(y):  # one sample at 44.1 kHz is none at 16 kHz
        raise EmptyAudioError(source, f"{len(x)} sample(s) at {orig_sr} Hz are too short to resample to {target_sr} Hz")
    y = np.ascontiguousarray(y, dtype=np.float32)
    # the anti-alias filter rings past full scale next to a clipped or square edge (found by
    # tests/fuzz: 1.23 from samples within [-1, 1]); what leaves here stays in [-1, 1] (docs/design.md §14)
    return np.clip(y, -1.0, 1.0, out=y)


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 mono, resampled to ``sample_rate`` when given.

    Args:
        path: any format libsndfile reads (WAV 8/16/24/32-bit int and float, FLAC, OGG, MP3).
        sample_rate: target rate in Hz; ``None`` keeps the file's rate.

    Returns:
        ``(samples, rate)``: samples of shape (n,), float32 in [-1, 1].
    """
    sample_rate = check_optional("sample_rate", sample_rate, "sample_rate")
    with _open(path) as f:
        sr = f.samplerate
        if f.frames == 0:
            raise EmptyAudioError(path, "audio has zero samples")
        try:
            data = f.read(dtype="float32", always_2d=True)
        except Exception as e:
            raise CorruptAudioError(path, f"truncated or corrupt ({e})") from e
    if data.shape[0] == 0:
        raise CorruptAudioError(path, f"header promises {f.frames} samples but none could be read")
    x = check_waveform(data, path, max_channels=None)
    if sample_rate is not None:
        x = resample(x, sr, sample_rate, path)
        sr = int(sample_rate)
    return x, sr


def audio_info(path: str | os.PathLike) -> dict:
    """Sample rate, channels, frames and duration of a file, without reading the samples."""
    with _open(path) as f:
        return {
            "sample_rate": f.samplerate,
            "channels": f.channels,
            "frames": f.frames,
            "duration": f.frames / f.samplerate if f.samplerate else 0.0,
            "format": f.format,
            "subtype": f.subtype,
        }


def iter_blocks(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    block_seconds: float = BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """Stream a long file as float32 mono blocks with bounded memory.

    Blocks are ``block_seconds`` long at the output rate (the last may be
    shorter). Resampling is streamed with a stateful soxr resampler, so the
    concatenated blocks equal ``load_audio`` up to the resampler's filter edges.
    """
    sample_rate = check_optional("sample_rate", sample_rate, "sample_rate")
    block_seconds = check_limit("seconds", block_seconds, "block_seconds")
    import soxr

    with _open(path) as f:
        sr = f.samplerate
        if f.frames == 0:
            raise EmptyAudioError(path, "audio has zero samples")
        out_sr = sr if sample_rate is None else int(sample_rate)
        rs = None
        if out_sr != sr:
            for name, r in (("source", sr), ("target", out_sr)):
                if not (0 < r <= MAX_SAMPLE_RATE):
                    raise ResampleError(path, f"{name} sample rate {r} Hz is outside 1..{MAX_SAMPLE_RATE} Hz")
            rs = soxr.ResampleStream(sr, out_sr, 1, dtype="float32", quality="HQ")
        block_in = max(1, int(round(block_seconds * sr)))
        check = ChunkChecker(path, max_channels=None)  # one clip warning per file, not per block
        produced = 0
        while True:
            try:
                data = f.read(block_in, dtype="float32", always_2d=True)
            except Exception as e:
                raise CorruptAudioError(path, f"truncated or corrupt ({e})") from e
            last = data.shape[0] < block_in
            x = check(data)
            if rs is not None:  # clipped as in resample(): the filter rings past full scale
                x = np.clip(rs.resample_chunk(x, last=last), -1.0, 1.0)
            if x.size:
                produced += x.size
                yield np.ascontiguousarray(x, dtype=np.float32)
            if last:
                break
        if produced == 0:
            raise EmptyAudioError(path, "audio has zero samples")


# -- long files: read a span, or re-cut blocks into frame-aligned segments ----------------
WHOLE_FILE_SECONDS = 60.0  # files up to this long are read whole by the commands (results as always)
SPAN_MARGIN_SECONDS = 0.1  # source audio read beyond a span's ends, so the resampler's edges fall outside it


def resampled_length(frames: int, orig_sr: int, target_sr: int) -> int:
    """Samples ``resample`` (soxr) returns for ``frames`` samples: ``frames * target / orig`` rounded, half up."""
    if int(orig_sr) == int(target_sr):
        return int(frames)
    return (2 * int(frames) * int(target_sr) + int(orig_sr)) // (2 * int(orig_sr))


def load_span(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    start: int = 0,
    frames: int | None = None,
) -> np.ndarray:
    """Samples ``start`` to ``start + frames`` of a file at ``sample_rate``, reading only that part.

    Equals ``load_audio(path, sample_rate)[0][start : start + frames]``: exactly for a
    file up to ``WHOLE_FILE_SECONDS`` long (read whole, as ``load_audio`` does) or without
    resampling; within float32 rounding (about 1e-6) otherwise, because the source is read
    from a point where the input and output sample grids meet, ``SPAN_MARGIN_SECONDS``
    before the span (and as far after it), and the margins are dropped after resampling.

    Args:
        path: any format libsndfile reads.
        sample_rate: rate of the result in Hz (Default: None = the file's rate).
        start: first sample, at the output rate (Default: 0).
        frames: samples wanted (Default: None = to the end); fewer come back at the file's end.

    Returns:
        float32 mono samples, shape (<= frames,).
    """
    start = max(0, int(start))
    with _open(path) as f:
        sr, total = f.samplerate, f.frames
        if total == 0:
            raise EmptyAudioError(path, "audio has zero samples")
        whole = total <= WHOLE_FILE_SECONDS * sr
        if not whole:
            data, src0, stop, out_sr = _read_span(f, path, sample_rate, start, frames)
    if whole:
        x = load_audio(path, sample_rate)[0]
        return x[start:] if frames is None else x[start : start + int(frames)]
    if data is None:
        return np.zeros(0, np.float32)
    x = check_waveform(data, path)
    if out_sr == sr:
        return np.ascontiguousarray(x[start - src0 : stop - src0])
    y = resample(x, sr, out_sr, path)
    o0 = src0 * out_sr // sr  # exact: src0 is on both grids
    return np.ascontiguousarray(y[start - o0 : stop - o0])


def _read_span(f, path, sample_rate: int | None, start: int, frames: int | None):
    """Read what ``load_span`` needs from an open file.

    Returns:
        ``(samples (n, channels) or None when the span is empty, index of their first
        sample in the file, the span's end at the output rate, the output rate)``.
    """
    import math

    sr, total = f.samplerate, f.frames
    out_sr = sr if sample_rate is None else int(sample_rate)
    if out_sr != sr:
        for name, r in (("source", sr), ("target", out_sr)):
            if not (0 < r <= MAX_SAMPLE_RATE):
                raise ResampleError(path, f"{name} sample rate {r} Hz is outside 1..{MAX_SAMPLE_RATE} Hz")
    out_total = resampled_length(total, sr, out_sr)
    stop = out_total if frames is None else min(out_total, start + int(frames))
    if stop <= start:
        return None, 0, stop, out_sr
    margin = 0 if out_sr == sr else SPAN_MARGIN_SECONDS
    step = sr // math.gcd(sr, out_sr)  # source samples between points where both grids meet
    src0 = max(0, math.floor((start / out_sr - margin) * sr)) // step * step
    src1 = min(total, math.ceil((stop / out_sr + margin) * sr))
    try:
        f.seek(src0)
        data = f.read(src1 - src0, dtype="float32", always_2d=True)
    except Exception as e:
        raise CorruptAudioError(path, f"truncated or corrupt ({e})") from e
    if data.shape[0] == 0:
        raise CorruptAudioError(path, f"header promises {total} samples but none could be read from {src0}")
    return data, src0, stop, out_sr


def load_centre(path: str | os.PathLike, sample_rate: int, samples: int) -> np.ndarray:
    """What a fixed-window classifier keeps of a file: its centre ``samples`` (or all of a shorter file).

    ``fit_window(load_centre(p, sr, n), n)`` equals ``fit_window(load_audio(p, sr)[0], n)``
    (exactly for files up to ``WHOLE_FILE_SECONDS``; see ``load_span``), but a two-hour
    file costs one window of memory, not two hours of it.
    """
    sample_rate = check_limit("sample_rate", sample_rate, "sample_rate")
    samples = check_limit("window_samples", samples, "samples")
    info = audio_info(path)
    if info["frames"] <= WHOLE_FILE_SECONDS * info["sample_rate"]:
        return load_audio(path, sample_rate)[0]
    total = resampled_length(info["frames"], info["sample_rate"], sample_rate)
    if total <= samples:
        return load_audio(path, sample_rate)[0]
    return load_span(path, sample_rate, (total - samples) // 2, samples)


def frame_segments(
    blocks: Iterable[np.ndarray],
    n_fft: int,
    hop: int,
    center: bool = False,
    pad_mode: str = "reflect",
) -> Iterator[np.ndarray]:
    """Re-cut a stream of blocks into segments whose frames are, in order, the stream's frames.

    A front-end with ``center=False`` run on each segment gives the frames that the
    front-end with ``center`` gives on the whole stream: consecutive segments overlap
    by ``n_fft - hop`` samples, and with ``center`` the stream is padded at both ends
    (``reflect`` or ``constant`` zeros, as ``np.pad``) first. Memory is one block plus
    ``n_fft`` samples, so a feature extractor or a picture can walk a file of any length.

    Args:
        blocks: float32 mono blocks, e.g. ``iter_blocks(path, rate)``.
        n_fft: frame length in samples; hop: samples between frames.
        center: pad ``n_fft // 2`` samples at both ends (Default: False).
        pad_mode: ``reflect`` | ``constant`` (Default: reflect).

    Yields:
        float32 segments of at least ``n_fft`` samples.

    Raises:
        ConfigError: ``reflect`` padding of a stream of ``n_fft // 2`` samples or fewer.
    """
    from hearkit.errors import ConfigError

    pad = n_fft // 2 if center else 0
    buf = np.zeros(0, np.float32)
    head: list[np.ndarray] = []  # the first samples, until there are enough to reflect
    tail = np.zeros(0, np.float32)  # the stream's last pad + 1 samples, for the right-hand pad
    started = not center

    def cut(buf: np.ndarray):
        n = 0 if buf.size < n_fft else 1 + (buf.size - n_fft) // hop
        return (buf[: (n - 1) * hop + n_fft] if n else None), buf[n * hop :]

    for x in blocks:
        x = np.asarray(x, np.float32).reshape(-1)
        if center:
            tail = np.concatenate([tail, x])[-(pad + 1) :]
        if not started:
            head.append(x)
            x = np.concatenate(head)
            if pad_mode == "reflect" and x.size <= pad:
                continue
            left = x[1 : pad + 1][::-1] if pad_mode == "reflect" else np.zeros(pad, np.float32)
            x, head, started = np.concatenate([left, x]), [], True
        seg, buf = cut(np.concatenate([buf, x]))
        if seg is not None:
            yield seg
    if not started:
        n = sum(h.size for h in head)
        raise ConfigError(f"reflect padding needs more than n_fft//2 = {pad} samples, got {n}")
    if center:
        right = tail[:-1][::-1][:pad] if pad_mode == "reflect" else np.zeros(pad, np.float32)
        buf = np.concatenate([buf, right])
    seg, _ = cut(buf)
    if seg is not None:
        yield seg


def fit_window(x: np.ndarray, window_samples: int, offset: int | None = None) -> np.ndarray:
    """Pad with zeros on both sides, centred, or crop to exactly ``window_samples``: how training,
    export and the runtime see a clip of another length.

    Args:
        x: (..., samples).
        window_samples: output length in samples.
        offset: crop start for clips longer than the window (Default: None = centred; training
            draws it to shift clips).
    """
    n = x.shape[-1]
    if n == window_samples:
        return x
    if n < window_samples:
        left = (window_samples - n) // 2
        return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(left, window_samples - n - left)])
    start = (n - window_samples) // 2 if offset is None else int(np.clip(offset, 0, n - window_samples))
    return x[..., start : start + window_samples]


def snr_gain(signal_power, noise_power, snr_db):
    """The gain that puts noise of mean square ``noise_power`` ``snr_db`` dB below a signal of mean
    square ``signal_power``: ``sqrt(Ps / (Pn 10^(snr/10)))`` (numpy; the callers floor the powers)."""
    return np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))


def load_stream_windows(paths, sample_rate: int, window_samples: int) -> np.ndarray:
    """(n, window_samples) float32: the files back to back, cut into consecutive windows (the last
    partial one dropped; audio shorter than one window is padded with zeros to one). The calibration
    windows of a model that takes audio of any length (CTC): every utterance's sound counts, not
    only a centre."""
    audio = np.concatenate([load_audio(p, sample_rate)[0] for p in paths])
    if len(audio) < window_samples:
        audio = np.pad(audio, (0, window_samples - len(audio)))
    k = len(audio) // window_samples
    return audio[: k * window_samples].reshape(k, window_samples).astype(np.float32)


def load_centre_windows(paths, sample_rate: int, window_samples: int) -> np.ndarray:
    """(n, window_samples) float32: each file's centre window (resampled, padded or cropped as
    :func:`fit_window` does), read without the rest of the file; an unreadable file fails loudly."""
    return np.stack([fit_window(load_centre(p, sample_rate, window_samples), window_samples)
                     for p in paths]).astype(np.float32)
