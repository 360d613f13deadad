"""Audio in: load any file libsndfile reads, downmix to mono, resample with soxr.

Every function returns float32 mono samples in [-1, 1] and raises an
``AudioError`` subclass naming the file and the reason on bad input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from hearkit.errors import (
    AudioFileNotFound,
    CorruptAudioError,
    EmptyAudioError,
    NonFiniteAudioError,
    NotAudioError,
    ResampleError,
)

_TRUNCATED = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
MAX_SAMPLE_RATE = 768_000  # Hz; above this a header is more likely corrupt than real
BLOCK_SECONDS = 10.0  # default block length of iter_blocks, in seconds


def _open(path: str | os.PathLike):
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioFileNotFound(p, "no such file")
    if p.is_dir():
        raise NotAudioError(p, "is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise EmptyAudioError(p, "file is empty (0 bytes)")
    try:
        f = sf.SoundFile(str(p))
    except sf.LibsndfileError as e:
        msg = str(e).lower()
        if "format not recognised" in msg or "unknown format" in msg or "not recognised" in msg:
            raise NotAudioError(p, "not an audio file libsndfile can read") from e
        raise CorruptAudioError(p, f"cannot be decoded ({e})") from e
    except Exception as e:  # soundfile raises RuntimeError on some broken headers
        raise CorruptAudioError(p, f"cannot be decoded ({e})") from e
    # libsndfile quietly shortens a truncated WAV/AIFF to the bytes present; its own
    # header log says so ("data : 32000 (should be 15978)"), which is the cheapest check.
    m = _TRUNCATED.search(f.extra_info or "")
    if m:
        f.close()
        raise CorruptAudioError(p, f"truncated: header promises {m.group(2)} bytes of {m.group(1)}, file holds {m.group(3)}")
    return f


def check_waveform(x: np.ndarray, source: object = "<array>") -> np.ndarray:
    """Validate a waveform array: non-empty, finite, 1-D or (samples, channels).

    Returns the input as float32 mono (channels averaged).
    """
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise NotAudioError(source, f"samples must be numbers, got dtype {x.dtype}")
    if x.dtype.kind in "iu":
        # integer PCM: scale to [-1, 1)
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise NotAudioError(source, f"expected 1-D samples or (samples, channels), got shape {x.shape}")
    if x.size == 0:
        raise EmptyAudioError(source, "audio has zero samples")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise NonFiniteAudioError(source, f"{bad} of {x.size} samples are NaN or infinite")
    return x


def resample(x: np.ndarray, orig_sr: int, target_sr: int, source: object = "<array>") -> np.ndarray:
    """Resample mono float32 audio with soxr (high quality). A no-op when the rates match."""
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
    return np.ascontiguousarray(y, dtype=np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 mono, resampled to ``sample_rate`` when given.

    Args:
        path: any format libsndfile reads (WAV 8/16/24/32-bit int and float, FLAC, OGG, MP3).
        sample_rate: target rate in Hz; ``None`` keeps the file's rate.

    Returns:
        ``(samples, rate)``: samples of shape (n,), float32 in [-1, 1].
    """
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
    x = check_waveform(data, path)
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
        produced = 0
        while True:
            try:
                data = f.read(block_in, dtype="float32", always_2d=True)
            except Exception as e:
                raise CorruptAudioError(path, f"truncated or corrupt ({e})") from e
            last = data.shape[0] < block_in
            if data.shape[0]:
                x = check_waveform(data, path)
            else:
                x = np.zeros(0, np.float32)
            if rs is not None:
                x = rs.resample_chunk(x, last=last)
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
