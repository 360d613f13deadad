"""``hearkit package``: turn an export folder into a bundle for one device (docs/design.md §1, §6).

A bundle holds, for the device profile chosen:

- the export's models under the export's file names (``frontend.onnx``,
  ``model.onnx``, ``pipeline.onnx``, ``model.int8.onnx``, ``pipeline.int8.onnx``, ...),
  where the int8 variant is made with the *device's* quantization recipe: reused
  from the export when a variant there has the same settings, otherwise quantized
  again from ``model.onnx`` with features of real audio through the exported
  front-end (calibration data from ``--data`` or the export's record of it);
- ORT-format copies (``.ort``) made with ``--optimization_style Fixed`` for the
  device's platform, and the typed required-operators config generated from
  those optimised graphs (a config from the raw ``.onnx`` misses fused and
  quantized kernels, docs/design.md §6), for onnxruntime minimal builds;
- ``hearkit_model.h`` / ``hearkit_model.c``: the preferred model's ORT bytes,
  the labels or vocabulary and the front-end constants, for firmware builds;
- ``manifest.json``: hearkit version, device, every file with sha256 and size,
  the model metadata and the parity report when the export has one;
- ``README.md`` with the exact commands to run it.

Every file name comes from ``hearkit.artifacts``. ``hearkit export --device`` takes the
device's recipe from :func:`device_recipe` and makes its int8 variant in the exporter's
one quantize loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hearkit import artifacts
from hearkit.embedding import is_embedding
from hearkit.artifacts import (
    BUNDLE_FORMAT,
    BUNDLE_README,
    BUNDLE_SCHEMA,
    C_HEADER,
    C_SOURCE,
    INT8,
    MANIFEST,
    MODEL,
    OPS_CONFIG,
    PIPELINE,
    BundleError,
    file_name,
    load_manifest,
    sha256_file,
)
from hearkit.devices import DeviceProfile, QuantRecipe, load_profile
from hearkit.errors import ConfigError, ModelError
from hearkit.files import contains, entries, write_json, writing
from hearkit.metadata import ModelInfo, read_model_info
from hearkit.tasks import TASKS, get_task

DEFAULT_CALIBRATION_CLIPS = 200  # clips of real audio for a device recipe the export lacks
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


def _log_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def device_recipe(profile: DeviceProfile) -> QuantRecipe:
    """The export's recipe for a profile: a registered one with the same settings, else the profile's named after the device."""
    from hearkit.export.quantize import RECIPES

    want = profile.quantization.to_dict()
    for r in RECIPES.values():
        if r.to_dict() == want:
            return r
    return dataclasses.replace(profile.quantization, name=f"device-{profile.name}", why=f"device profile {profile.name}")


def find_variant(export_dir: Path, recipe: QuantRecipe) -> tuple[Path | None, Path] | None:
    """(model, pipeline) files of the export quantized with exactly ``recipe``'s settings, or None."""
    for variant, pipe, model in artifacts.list_variants(export_dir):
        if variant == artifacts.FP32:
            continue
        try:
            info = read_model_info(pipe)
        except ModelError:
            continue
        if recipe.matches(info.quantization):
            return model, pipe
    return None


def calibration_files(data: str | os.PathLike, clips: int) -> list[Path]:
    """Audio files for calibration: deterministic, spread evenly over the sorted list.

    ``data`` is a NeMo JSONL manifest (as the CTC export records it) or a folder:
    a dataset hearkit can index (speech commands, FSDD, UrbanSound8K, ...) gives its
    training split, the speaker/fold split training used, so calibration never sees
    evaluation audio; any other folder gives all its audio files except those named
    in a ``validation_list.txt`` / ``testing_list.txt`` at its top.
    """
    root = Path(data)
    if root.is_file():
        from hearkit.manifest import read_manifest

        files = sorted(Path(u.audio) for u in read_manifest(root))
    elif root.is_dir() and (train := _train_split(root)):
        files = train
    elif root.is_dir():
        held_out: set[str] = set()
        for lst in ("validation_list.txt", "testing_list.txt"):
            f = root / lst
            if f.is_file():
                held_out |= {line.strip() for line in f.read_text().splitlines() if line.strip()}
        files = sorted(
            p for p in root.rglob("*")
            if p.suffix.lower() in AUDIO_SUFFIXES and p.relative_to(root).as_posix() not in held_out
        )
    else:
        raise ConfigError(f"calibration data {root} does not exist; pass --data DIR (audio folder or JSONL manifest)")
    if not files:
        raise ConfigError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {root} for calibration")
    idx = np.unique(np.linspace(0, len(files) - 1, min(clips, len(files))).round().astype(int))
    return [files[i] for i in idx]


def _train_split(root: Path) -> list[Path]:
    """Training files of a dataset folder hearkit can index; empty when it cannot."""
    from hearkit.datasets import index_dataset

    try:
        idx = index_dataset(root)
    except Exception:  # not a dataset layout hearkit knows: fall back to a plain audio folder
        return []
    return sorted(Path(e.path) for e in idx.split("train"))


def calibration_waveforms(info: ModelInfo, files: list[Path]) -> np.ndarray:
    """(n, samples) float32 windows: each file's centre in the model's window (classifiers), or the files back to
    back in the task's calibration windows (CTC), as the export calibrated it."""
    from hearkit.audio import load_centre_windows, load_stream_windows

    sr = info.frontend.sample_rate
    task = get_task(info.task)
    window = int(info.window_samples or round(task.calibration_seconds * sr))
    return (load_stream_windows if task.calibration_stream else load_centre_windows)(files, sr, window)


def _calibration_source(export_dir: Path, data) -> str:
    if data:
        return os.fspath(data)
    if artifacts.summary_path(export_dir).is_file():
        s = artifacts.read_export(export_dir)
        d = (s.get("calibration") or {}).get("data") or (s.get("train_config") or {}).get("data")
        if d and Path(d).exists():
            return d
    raise ConfigError(
        f"the device recipe needs calibration audio and {export_dir} records none that exists here; pass --data DIR"
    )


def quantize_for_device(export_dir: Path, out_dir: Path, recipe, data=None, clips: int = DEFAULT_CALIBRATION_CLIPS, log=_log_default):
    """Write ``model.int8.onnx`` and ``pipeline.int8.onnx`` in ``out_dir`` with ``recipe``; return the recipe metadata."""
    import onnx

    from hearkit.export.pipeline import save_variant
    from hearkit.export.quantize import compute_features, quantize_network, recipe_metadata

    net_file, fe_file = file_name(MODEL), file_name(artifacts.FRONTEND)
    base = read_model_info(export_dir / file_name(PIPELINE))
    src = _calibration_source(export_dir, data)
    files = calibration_files(src, clips)
    log(f"package: calibrating recipe {recipe.name} on {len(files)} clips from {src}")
    feats = compute_features(export_dir / fe_file, calibration_waveforms(base, files))
    qmeta = recipe_metadata(recipe, len(files))
    qnet = quantize_network(export_dir / net_file, out_dir / file_name(MODEL, INT8), recipe, feats)
    out_name = onnx.load(os.fspath(export_dir / net_file), load_external_data=False).graph.output[0].name
    fe = onnx.load(os.fspath(export_dir / fe_file))
    # the network file's metadata is the pipeline's with a log-mel input, as the exporter writes them
    save_variant(out_dir, fe, qnet, lambda **kw: dataclasses.replace(base, **kw), qmeta, INT8, out_name)
    return qmeta


def convert_to_ort(bundle: Path, names: list[str], target_platform: str, log=_log_default) -> list[str]:
    """ORT-format copies of ``names`` (Fixed optimisation for the platform) plus the typed operators config.

    Runs onnxruntime's own converter in a subprocess (its command line is the
    documented interface, docs/design.md §6). Returns the files written.
    """
    with tempfile.TemporaryDirectory(prefix="hearkit-ort-") as tmp:
        t = Path(tmp)
        for n in names:
            shutil.copy2(bundle / n, t / n)
        cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort",
               "--optimization_style", "Fixed", "--enable_type_reduction",
               "--target_platform", target_platform, str(t)]
        log(f"package: ORT format ({target_platform}, Fixed): {' '.join(names)}")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise ModelError(f"ORT-format conversion failed: {(r.stderr or r.stdout).strip().splitlines()[-1][:300]}")
        written = []
        for n in names:
            ort_name = artifacts.as_kind(n, artifacts.ORT)
            if not (t / ort_name).is_file():
                raise ModelError(f"ORT-format conversion wrote no {ort_name}")
            shutil.copy2(t / ort_name, bundle / ort_name)
            written.append(ort_name)
        cfg = t / OPS_CONFIG
        if not cfg.is_file():
            raise ModelError(f"ORT-format conversion wrote no {OPS_CONFIG}")
        # the generated header names the temporary folder; name the bundle files instead
        (bundle / OPS_CONFIG).write_text(cfg.read_text().replace(str(t) + os.sep, ""))
        written.append(OPS_CONFIG)
    return written


def _c_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=True)  # a JSON string literal is a valid C string literal for ASCII


def write_c_sources(bundle: Path, model_file: str, info: ModelInfo, device: str) -> list[str]:
    """``hearkit_model.h`` / ``.c``: model bytes, labels or vocabulary, front-end constants."""
    data = (bundle / model_file).read_bytes()
    fe = info.frontend
    ident = "HEARKIT"
    h = [
        "/* Generated by `hearkit package`: do not edit. Model, labels and front-end of one bundle. */",
        f"#ifndef {ident}_MODEL_H",
        f"#define {ident}_MODEL_H",
        "#include <stddef.h>",
        "",
        f"#define HEARKIT_DEVICE {_c_string(device)}",
        f"#define HEARKIT_MODEL_FILE {_c_string(model_file)}",
        f"#define HEARKIT_TASK {_c_string(info.task)}",
        f"#define HEARKIT_INPUT {_c_string(info.input)}  /* waveform: float32 (batch, samples) in [-1, 1] */",
        "/* front-end (the graph computes it; these document what the input must be) */",
        f"#define HEARKIT_SAMPLE_RATE {fe.sample_rate}  /* Hz */",
    ]
    if is_embedding(fe):  # the frozen speech embedding (docs/design.md §17): a vector per hop, no mel settings to match
        h += [
            f"#define HEARKIT_FRONTEND {_c_string(fe.kind)}  /* {fe.source.get('package', '')} {fe.source.get('version', '')} */",
            f"#define HEARKIT_FEATURE_SPAN {fe.n_fft}  /* samples one feature vector sees */",
            f"#define HEARKIT_HOP_LENGTH {fe.hop_length}  /* samples between feature vectors */",
            f"#define HEARKIT_FEATURE_SIZE {fe.n_mels}",
            f"#define HEARKIT_INPUT_SCALE {fe.input_scale!r}f  /* applied inside the graph */",
        ]
    else:
        h += [
            f"#define HEARKIT_N_FFT {fe.n_fft}  /* samples */",
            f"#define HEARKIT_WIN_LENGTH {fe.win_length}  /* samples */",
            f"#define HEARKIT_HOP_LENGTH {fe.hop_length}  /* samples */",
            f"#define HEARKIT_N_MELS {fe.n_mels}",
            f"#define HEARKIT_F_MIN {fe.f_min!r}f  /* Hz */",
            f"#define HEARKIT_F_MAX {fe.f_max!r}f  /* Hz */",
            f"#define HEARKIT_CENTER {int(fe.center)}",
            f"#define HEARKIT_WINDOW {_c_string(fe.window)}",
            f"#define HEARKIT_MEL_SCALE {_c_string(fe.mel_scale)}",
            f"#define HEARKIT_LOG {_c_string(fe.log)}",
        ]
    c = [
        "/* Generated by `hearkit package`: do not edit. */",
        f'#include "{C_HEADER}"',
        "",
    ]
    if info.task in TASKS:  # the task's constants and its array of names (labels, vocabulary)
        th = TASKS[info.task].c_header(info)
        h += [f"#define {name} {value}" + (f"  /* {note} */" if note else "") for name, value, note in th.defines]
        h += [f"extern const char *const {th.array}[{th.size}];"]
        c += [f"const char *const {th.array}[{th.size}] = {{"]
        c += [f"    {_c_string(x)}," for x in th.names] + ["};", ""]
    h += [
        "",
        "/* ORT-format model bytes, 16-byte aligned (flatbuffers reads them in place). */",
        f"#define HEARKIT_MODEL_SIZE {len(data)}u",
        "extern const unsigned char hearkit_model[HEARKIT_MODEL_SIZE];",
        "",
        f"#endif /* {ident}_MODEL_H */",
        "",
    ]
    c += [
        "#if defined(__GNUC__) || defined(__clang__)",
        "__attribute__((aligned(16)))",
        "#elif defined(_MSC_VER)",
        "__declspec(align(16))",
        "#endif",
        "const unsigned char hearkit_model[HEARKIT_MODEL_SIZE] = {",
    ]
    for i in range(0, len(data), 16):
        c.append("    " + ", ".join(f"0x{b:02x}" for b in data[i : i + 16]) + ",")
    c += ["};", ""]
    (bundle / C_HEADER).write_text("\n".join(h))
    (bundle / C_SOURCE).write_text("\n".join(c))
    return [C_HEADER, C_SOURCE]


def _readme(name: str, profile: DeviceProfile, info: ModelInfo, models: dict, preferred: str) -> str:
    run = {"classify": "hearkit run {b} clip.wav", "ctc": "hearkit transcribe {b} speech.wav"}.get(info.task, "hearkit run {b} clip.wav")
    lines = [
        f"# hearkit bundle: {info.task} model for {profile.name}",
        "",
        f"{profile.description}. Made by `hearkit package` with the `{profile.name}` profile",
        f"(int8 recipe: {models.get(file_name(PIPELINE, INT8), {}).get('quantization', {}).get('recipe', 'none')}).",
        "",
        "## Run it",
        "",
        "```sh",
        f'pip install "hearkit"     # or, in a hearkit checkout: devices/setup.sh {profile.name}',
        "hearkit package --verify " + name + f"     # every file against {MANIFEST}",
        run.format(b=name) + f"     # runs {preferred} after checking its sha256",
        f"hearkit bench {name} --device {profile.name}",
        "```",
        "",
        "From Python: `hearkit.artifacts.resolve(\"" + name + "\", prefer=\"" + profile.prefer + "\")` gives the",
        f"verified path of the model this profile runs; a file whose sha256 differs from {MANIFEST} is refused.",
        "",
        "## Files",
        "",
        "| file | what |",
        "| --- | --- |",
    ]
    for n, m in sorted(models.items()):
        lines.append(f"| `{n}` | {m['what']} |")
    lines += [
        f"| `{OPS_CONFIG}` | typed operator list of the `.ort` models, for `--include_ops_by_config` of an onnxruntime minimal build |",
        f"| `{C_HEADER}`, `{C_SOURCE}` | `{artifacts.as_kind(preferred, artifacts.ORT)}` as a byte array, labels/vocabulary, front-end constants |",
        f"| `{MANIFEST}` | sha256 and size of every file, model metadata, parity report |",
        "",
        "Input: float32 waveform (batch, samples) at "
        f"{info.frontend.sample_rate} Hz in [-1, 1]; the log-mel front-end is inside the graph.",
        "",
    ]
    return "\n".join(lines)


def package(
    export_dir: str | os.PathLike,
    bundle_dir: str | os.PathLike,
    device: str | DeviceProfile,
    data: str | os.PathLike | None = None,
    calibration_clips: int = DEFAULT_CALIBRATION_CLIPS,
    ort: bool = True,
    c_source: bool = True,
    force: bool = False,
    log=_log_default,
) -> dict:
    """Write a bundle for ``device`` from an export folder; return its manifest.

    Args:
        export_dir: folder written by ``hearkit export`` (``frontend.onnx``, ``model.onnx``,
            ``pipeline.onnx`` and maybe quantized variants).
        bundle_dir: output folder: new or empty, or a bundle hearkit wrote when ``force``
            (then only the files its manifest lists are replaced; other files are kept).
        device: profile name, profile path or ``DeviceProfile``.
        data: calibration audio, used only when the export lacks a variant with the
            device's recipe (Default: the data folder the export recorded).
        calibration_clips: clips for that calibration (Default: 200).
        ort: write ``.ort`` files and the operators config (Default: True).
        c_source: write the C header and source (Default: True; needs ``ort``).
        force: replace a bundle already in ``bundle_dir`` (Default: False).
        log: progress callable (Default: stderr).
    """
    t0 = time.perf_counter()
    profile = load_profile(device)
    src = Path(export_dir)
    artifacts.check_export(src)
    final = Path(bundle_dir)
    check_bundle_output(final, src, force)  # before the lock creates the folder: a file there is refused as it is
    with writing(final):  # a second `hearkit package` into the same folder fails at once, naming the pid
        old = check_bundle_output(final, src, force)
        # Everything is written into a fresh sibling folder first and moved into place at the
        # end, so a failure or a kill leaves the previous bundle (or nothing) behind.
        for stale in final.parent.glob(f".{final.name}.hearkit-tmp-*"):  # a killed run's, ours under the lock
            shutil.rmtree(stale, ignore_errors=True)
        out = Path(tempfile.mkdtemp(prefix=f".{final.name}.hearkit-tmp-", dir=final.parent))
        umask = os.umask(0)
        os.umask(umask)
        out.chmod(0o777 & ~umask)  # mkdtemp makes it private; the bundle gets the mode a mkdir would give
        try:
            manifest = _write_bundle(src, out, final.name, profile, data, calibration_clips, ort, c_source, log)
            kept = _move_into_place(out, final, old, manifest)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    if kept:
        log(f"package: kept {len(kept)} file(s) in {final} that hearkit did not write: {', '.join(kept[:5])}"
            + (" ..." if len(kept) > 5 else ""))
    log(f"package: wrote {len(manifest['files'])} files to {final} for {profile.name} in {time.perf_counter() - t0:.1f} s")
    return manifest


def check_bundle_output(out: Path, src: Path, force: bool) -> dict | None:
    """Refuse a bundle folder that packaging could damage; return the manifest of the bundle it replaces.

    ``out`` may be new or empty; it may hold a bundle hearkit wrote (recognised by its
    manifest's format, not by the file name alone) only with ``force``, and then only the
    files that manifest lists are replaced. A folder that is, or contains, the export is
    refused, even with ``force``. A folder that a killed ``hearkit package`` left half-moved
    (its journal ``.hearkit-partial.json`` lists what it was writing) counts as a bundle
    hearkit wrote: ``--force`` replaces it.

    Raises:
        ConfigError: naming the folder and what is allowed.
    """
    if contains(out, src):
        raise ConfigError(f"-o {out}: the bundle folder must not be or contain the export folder {src} "
                          "(not even with --force); choose a new folder")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out}: exists and is not a folder")
    if not entries(out):
        return None
    partial = _read_journal(out)
    if partial is not None:
        if not force:
            raise ConfigError(f"-o {out}: holds a bundle a killed `hearkit package` left unfinished; "
                              "pass --force to replace it, or choose a new folder")
        return partial
    try:
        old = load_manifest(out)
    except BundleError:
        raise ConfigError(
            f"-o {out}: the folder is not empty and is not a hearkit bundle (no {MANIFEST} written by `hearkit package`); "
            "choose an empty or new folder"
        ) from None
    if not force:
        raise ConfigError(f"-o {out}: holds a hearkit bundle already; pass --force to replace it, or choose a new folder")
    return old


JOURNAL = ".hearkit-partial.json"  # in a bundle folder while files move in: what is hearkit's if a kill stops it


def _read_journal(folder: Path) -> dict | None:
    """The ``{"files": {name: ...}}`` a killed move left in ``folder``, or None (none, or not one hearkit wrote)."""
    p = folder / JOURNAL
    if not p.is_file():
        return None
    try:
        j = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    names = j.get("files") if isinstance(j, dict) and j.get("format") == BUNDLE_FORMAT else None
    if not isinstance(names, list) or not all(isinstance(n, str) and "/" not in n and n not in ("", ".", "..") for n in names):
        return None
    return {"files": {n: {} for n in names}}


def _move_into_place(tmp: Path, final: Path, old: dict | None, new: dict) -> list[str]:
    """Move the bundle written in ``tmp`` to ``final``; return the names of files there hearkit did not write.

    ``final`` exists (its lock file is in it). A journal listing every name that is
    about to be hearkit's goes in first and the manifest comes in last, so a kill
    half-way leaves a folder that is refused without ``--force`` and replaced with it.

    Raises:
        ConfigError: a file the user put in ``final`` has the name of a new bundle file.
    """
    ours = set(old["files"]) if old else set()
    clash = sorted(n for n in new["files"] if n not in ours and n != MANIFEST and (final / n).exists())
    if clash:
        raise ConfigError(f"-o {final}: {', '.join(clash[:5])} there was not written by `hearkit package` and the new bundle "
                          "would replace it; move it away or choose a new folder")
    write_json(final / JOURNAL, {"format": BUNDLE_FORMAT, "files": sorted(ours | set(new["files"]) | {MANIFEST})})
    with contextlib.suppress(FileNotFoundError):
        (final / MANIFEST).unlink()
    for name in ours:
        p = final / name
        if (p.is_file() or p.is_symlink()) and name != JOURNAL:
            p.unlink()
    for p in sorted(tmp.iterdir()):
        if p.name != MANIFEST:
            os.replace(p, final / p.name)
    os.replace(tmp / MANIFEST, final / MANIFEST)
    (final / JOURNAL).unlink()
    return sorted(n for n in entries(final) if n != MANIFEST and n not in new["files"])


def _write_bundle(src: Path, out: Path, name: str, profile: DeviceProfile, data, calibration_clips: int, ort: bool,
                  c_source: bool, log) -> dict:
    """Write every bundle file into the empty folder ``out``; ``name`` is the bundle's final folder name."""
    info = read_model_info(src / file_name(PIPELINE))

    # fp32: copied as exported (same bytes, same names)
    for n in artifacts.EXPORT_GRAPHS:
        shutil.copy2(src / n, out / n)
    for n in artifacts.STREAM_GRAPHS:  # a speech-embedding front-end in two parts, for streaming
        if (src / n).is_file():
            shutil.copy2(src / n, out / n)
    # int8 with the device's recipe
    recipe = device_recipe(profile)
    found = find_variant(src, recipe)
    if found is not None and found[0] is not None:
        int8 = artifacts.variant_files(INT8)
        log(f"package: reusing {found[1].name} (same settings as the {profile.name} recipe {recipe.name})")
        shutil.copy2(found[0], out / int8[MODEL])
        shutil.copy2(found[1], out / int8[PIPELINE])
    else:
        quantize_for_device(src, out, recipe, data=data, clips=calibration_clips, log=log)
    # fp16 for providers that run it (TensorRT converts fp32 itself, so only copied when exported)
    fp16 = artifacts.variant_files(artifacts.FP16)
    if profile.fp16 and (src / fp16[PIPELINE]).is_file():
        for n in fp16.values():
            if (src / n).is_file():
                shutil.copy2(src / n, out / n)

    onnx_files = sorted(p.name for p in out.glob(f"*.{artifacts.ONNX}"))
    roles = {artifacts.FRONTEND: "log-mel front-end", MODEL: "network (log-mel in)", PIPELINE: "front-end + network (waveform in)",
             artifacts.MEL: "front-end, first part: mel frames (streaming)",
             artifacts.EMBEDDING: "front-end, second part: mel frames to embedding vectors (streaming)"}
    models: dict[str, dict] = {}
    for n in onnx_files:
        mi = read_model_info(out / n)
        stem, variant, _ = artifacts.parse_name(n)  # only graphs copied or written above are here
        models[n] = {"variant": variant, "task": mi.task, "input": mi.input, "quantization": mi.quantization or {"format": "fp32"},
                     "what": f"{roles[stem]}, {variant}"}
    files = list(onnx_files)
    pipelines = [n for n in onnx_files if artifacts.parse_name(n)[0] == PIPELINE]
    if ort:
        written = convert_to_ort(out, pipelines, profile.ort_target_platform, log=log)
        for n in written:
            if n.endswith(f".{artifacts.ORT}"):
                onnx_model = models[artifacts.as_kind(n, artifacts.ONNX)]
                models[n] = {**onnx_model, "what": onnx_model["what"] + ", ORT format (Fixed, " + profile.ort_target_platform + ")"}
        files += written
    preferred = file_name(PIPELINE, profile.prefer)
    if preferred not in onnx_files:
        preferred = file_name(PIPELINE, INT8) if file_name(PIPELINE, INT8) in onnx_files else file_name(PIPELINE)
    if c_source and ort:
        files += write_c_sources(out, artifacts.as_kind(preferred, artifacts.ORT), info, profile.name)
    parity = None
    for rep in artifacts.PARITY_REPORTS:
        if (src / rep).is_file():
            shutil.copy2(src / rep, out / rep)
            files.append(rep)
            try:
                parity = json.loads((src / rep).read_text())
            except json.JSONDecodeError:
                parity = None
            break
    (out / BUNDLE_README).write_text(_readme(name, profile, info, models, preferred))
    files.append(BUNDLE_README)

    from hearkit import __version__

    manifest = {
        "format": BUNDLE_FORMAT,
        "schema": BUNDLE_SCHEMA,
        "hearkit_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": profile.name,
        "profile": {
            "providers": list(profile.providers), "threads": profile.threads, "spinning": profile.spinning,
            "graph_optimization": profile.graph_optimization, "prefer": profile.prefer, "fp16": profile.fp16,
            "quantization": profile.quantization.to_dict(), "ort_target_platform": profile.ort_target_platform,
        },
        "preferred": preferred,
        "source": str(src.resolve()),
        "metadata": {k: v for k, v in info.to_props().items() if k != "hearkit.hearkit_version"},
        "models": {n: {k: v for k, v in m.items() if k != "what"} for n, m in models.items()},
        "parity": parity,
        "files": {n: {"sha256": sha256_file(out / n), "bytes": (out / n).stat().st_size} for n in sorted(set(files))},
    }
    artifacts.write_manifest(out, manifest)
    return manifest
