"""``hearkit features`` and ``hearkit export-frontend``: the front-end from the command line."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hearkit.commands.options import config_from_options, frontend_options

FEATURE_BACKENDS = ("numpy", "torch", "onnx-conv", "onnx-stft")
GRAPH_BACKENDS = ("onnx-conv", "onnx-stft")


@click.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .npy, float32 (frames, n_mels).")
@click.option("--backend", type=click.Choice(FEATURE_BACKENDS), default="numpy", show_default=True, help="numpy works everywhere; torch and onnx-* need hearkit[train] (the ONNX graph is built on the fly).")
@click.option("--force", is_flag=True, help="Replace OUTPUT when it exists.")
@frontend_options
def features(audio: Path, output: Path, backend: str, force: bool, **kw):
    """Compute log-mel features of AUDIO and save them as a .npy array (frames, n_mels).

    The audio is downmixed to mono and resampled to --sample-rate first.
    """
    import numpy as np

    from hearkit.audio import load_audio
    from hearkit.export.features import compute_features
    from hearkit.files import atomic_path, check_output_file

    cfg = config_from_options(kw)
    check_output_file(output, force)
    x, _ = load_audio(audio, cfg.sample_rate)
    t0 = time.perf_counter()
    y = compute_features(x, cfg, backend)
    dt = time.perf_counter() - t0
    with atomic_path(output) as tmp:  # a full disk or a kill leaves the old file or none, never half an array
        np.save(tmp, y.astype(np.float32))
    dur = len(x) / cfg.sample_rate
    click.echo(
        f"{output}: {y.shape[0]} frames x {y.shape[1]} mels from {dur:.2f} s ({backend}, "
        f"{dt * 1e3:.1f} ms, RTF {dt / max(dur, 1e-9):.4f})",
        err=True,
    )


@click.command("export-frontend")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .onnx file.")
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
