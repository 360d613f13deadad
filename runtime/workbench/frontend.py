"""``hearkit features`` and ``hearkit export-frontend``: the front-end from the command line."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hearkit.commands.options import config_from_options, frontend_options, out_option

FEATURE_BACKENDS = ("numpy", "torch", "onnx-conv", "onnx-stft")
GRAPH_BACKENDS = ("onnx-conv", "onnx-stft")


@click.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@out_option("output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .npy, float32 (frames, n_mels).")
@click.option("--backend", type=click.Choice(FEATURE_BACKENDS), default="numpy", show_default=True, help="numpy works everywhere; torch and onnx-* need hearkit[train] (the ONNX graph is built on the fly).")
@click.option("--force", is_flag=True, help="Replace OUTPUT when it exists.")
@frontend_options
def features(audio: Path, output: Path, backend: str, force: bool, **kw):
    """Compute log-mel features of AUDIO and save them as a .npy array (frames, n_mels).

    The audio is downmixed to mono and resampled to --sample-rate first. A file
    longer than a minute is read block by block and its features written as they
    come, so memory stays bounded for a file of any length.
    """
    from hearkit.audio import WHOLE_FILE_SECONDS, audio_info, frame_segments, iter_blocks, load_audio
    from hearkit.export.features import compute_features
    from hearkit.files import check_output_file

    cfg = config_from_options(kw)
    check_output_file(output, force)
    busy = 0.0  # seconds spent computing features, for the RTF
    samples = 0

    def timed(x, c):
        nonlocal busy
        t0 = time.perf_counter()
        y = compute_features(x, c, backend)
        busy += time.perf_counter() - t0
        return y

    if audio_info(audio)["duration"] <= WHOLE_FILE_SECONDS:
        x, _ = load_audio(audio, cfg.sample_rate)
        samples = len(x)
        chunks = iter([timed(x, cfg)])
    else:
        def counted(blocks):
            nonlocal samples
            for b in blocks:
                samples += b.size
                yield b

        segments = frame_segments(counted(iter_blocks(audio, cfg.sample_rate)), cfg.n_fft, cfg.hop_length,
                                  cfg.center, cfg.pad_mode)
        plain = cfg.replace(center=False)  # frame_segments has padded the stream's ends already
        chunks = (timed(seg, plain) for seg in segments)
    shape = write_npy(output, chunks, cfg.n_mels)
    dur = samples / cfg.sample_rate
    click.echo(
        f"{output}: {shape[0]} frames x {shape[1]} mels from {dur:.2f} s ({backend}, "
        f"{busy * 1e3:.1f} ms, RTF {busy / max(dur, 1e-9):.4f})",
        err=True,
    )


def write_npy(output: Path, chunks, columns: int) -> tuple[int, int]:
    """Write float32 rows as they come to a .npy file (the bytes ``np.save`` writes for the whole array).

    The header is written first for zero rows and rewritten at the end with the count;
    numpy reserves room in every header for the first axis to grow, so it keeps its length.

    Args:
        output: the .npy file (parent folders are made).
        chunks: arrays (rows, ``columns``), in order.
        columns: the second axis (n_mels).

    Returns:
        The shape written, ``(rows, columns)``.
    """
    import numpy as np

    from hearkit.files import atomic_open

    fmt = np.lib.format
    output.parent.mkdir(parents=True, exist_ok=True)

    def header(rows: int) -> dict:
        return {"descr": fmt.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (rows, columns)}

    rows = 0
    # a full disk, a bad block or a kill leaves the old file or none, never half an array
    with atomic_open(output, "wb") as f:
        fmt.write_array_header_1_0(f, header(0))
        data_at = f.tell()
        for y in chunks:
            y = np.ascontiguousarray(y, dtype=np.float32)
            f.write(y.tobytes())
            rows += y.shape[0]
        f.seek(0)
        fmt.write_array_header_1_0(f, header(rows))
        assert f.tell() == data_at, "numpy's header grew"  # invariant: it reserves room for the first axis
    return rows, columns


@click.command("export-frontend")
@out_option("output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .onnx file.")
@click.option("--backend", type=click.Choice(GRAPH_BACKENDS), default="onnx-conv", show_default=True, help="onnx-conv: Cooley-Tukey DFT in Conv/MatMul (fast, default); onnx-stft: the opset-17 STFT op.")
@click.option("--streaming", is_flag=True, help="Export the streaming graph (inputs waveform + cache, outputs logmel + cache_out); needs --no-center.")
@click.option("--opset", type=click.IntRange(min=17), default=17, show_default=True)
@frontend_options
def export_frontend(output: Path, backend: str, streaming: bool, opset: int, **kw):
    """Write the front-end as a single ONNX file: waveform (batch, samples) -> logmel (batch, frames, n_mels).

    The config travels in the file's hearkit.* metadata; batch and length are dynamic.
    """
    from hearkit.errors import require

    require("onnx", "train")
    from hearkit.export.frontend import build_frontend_graph, build_streaming_frontend_graph
    from hearkit.export.onnx_io import save_model, sha256_file

    cfg = config_from_options(kw)
    build = build_streaming_frontend_graph if streaming else build_frontend_graph
    model = build(cfg, backend=backend, opset=opset)
    save_model(model, output)
    kind = "streaming " if streaming else ""
    click.echo(f"{output}: {kind}{backend} front-end, {output.stat().st_size / 1024:.0f} KiB, sha256 {sha256_file(output)[:16]}", err=True)
