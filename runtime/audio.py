"""Audio in: load any file libsndfile reads, downmix to mono, resample with soxr.

Every function returns float32 mono samples in [-1, 1] and raises an
``AudioError`` subclass naming the file and the reason on bad input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
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
