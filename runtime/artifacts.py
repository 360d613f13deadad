"""Every on-disk contract of hearkit in one place: file names, export folders, bundles, and finding the model to run.

Nothing else spells a file name (STYLE: one owner per on-disk contract). The
names are built from three parts:

    <stem>[.<variant>].<kind>      stem: frontend | model | pipeline | mel | embedding
                                   variant: fp32 (no tag) | int8 | fp16 | a recipe name
                                   kind: onnx | ort (ORT format, for minimal builds)

An **export folder** (``hearkit export``) holds ``frontend.onnx``, ``model.onnx``,
``pipeline.onnx``, quantized ``model.<variant>.onnx`` / ``pipeline.<variant>.onnx``
pairs (a model on the speech embedding adds ``mel.onnx`` and ``embedding.onnx``, its
front-end in two parts for streaming) and ``export.json`` (what was written, the checks against torch, the
calibration); ``hearkit verify`` adds ``report.json`` and ``report.md`` (and, for
CTC, ``verify_transcripts.tsv``).

A **bundle** (``hearkit package``) holds the export's graphs (the int8 pair made
with the device's recipe), their ``.ort`` copies, the operators config, the C
sources, a ``README.md`` and ``manifest.json``, which lists every file with its
sha256 and size. The runtime never runs a bundled model whose bytes
differ from the manifest: a damaged copy or a hand edit is refused with a message
naming the file.

Torch-free and onnxruntime-free: the standard library and ``hearkit.errors`` only,
so device code can check a bundle before anything heavy loads.

Example:
    >>> file_name(PIPELINE, "int8")
    'pipeline.int8.onnx'
    >>> path = resolve("bundles/kws-pi5")                        # verified pipeline.int8.onnx
    >>> path = resolve("bundles/kws-pi5", prefer="fp32", kind="ort")
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from hearkit.errors import ConfigError, ModelError
from hearkit.files import LOCK_NAME, write_json

# -- file names ------------------------------------------------------------------

INT8, FP32, FP16 = "int8", "fp32", "fp16"  # fp32 files carry no tag (``pipeline.onnx``)
VARIANTS = (INT8, FP32, FP16)  # also the order `resolve` tries them in after `prefer`
ONNX, ORT = "onnx", "ort"
KINDS = (ONNX, ORT)
FRONTEND, MODEL, PIPELINE = "frontend", "model", "pipeline"
MEL, EMBEDDING = "mel", "embedding"  # the speech-embedding front-end in two parts, for streaming
STEMS = (FRONTEND, MODEL, PIPELINE, MEL, EMBEDDING)
# waveform -> log-mel (or vectors), log-mel -> outputs, waveform -> outputs; waveform -> mel frames,
# mel frames -> vectors


def file_name(stem: str, variant: str = FP32, kind: str = ONNX) -> str:
    """The file name of one graph: ``pipeline.onnx`` for fp32, ``pipeline.int8.onnx``, ``model.fp16.ort``, ...

    Args:
        stem: ``frontend`` | ``model`` | ``pipeline`` | ``mel`` | ``embedding``.
        variant: ``fp32`` (no tag) or the tag of a quantized variant: ``int8``, ``fp16``
            or a recipe name such as ``qdq-u8u8`` (Default: fp32).
        kind: ``onnx`` | ``ort`` (Default: onnx).

    Raises:
        ConfigError: an unknown stem or kind, or a variant tag that cannot be part of a file name.
    """
    if stem not in STEMS:
        raise ConfigError(f"stem must be one of {list(STEMS)}, got {stem!r}")
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if not isinstance(variant, str) or not variant or any(c in variant for c in "./\\"):
        raise ConfigError(f"variant must be {list(VARIANTS)} or a recipe name without '.', '/' or '\\', got {variant!r}")
    return f"{stem}.{kind}" if variant == FP32 else f"{stem}.{variant}.{kind}"


def parse_name(name: str) -> tuple[str, str, str] | None:
    """``(stem, variant, kind)`` of a name :func:`file_name` spells, or None for any other file.

    Example:
        >>> parse_name("model.int8.ort")
        ('model', 'int8', 'ort')
    """
    parts = name.split(".")
    if len(parts) == 2:
        parts.insert(1, FP32)
    if len(parts) != 3 or parts[0] not in STEMS or parts[2] not in KINDS or not parts[1]:
        return None
    return parts[0], parts[1], parts[2]


def as_kind(name: str, kind: str) -> str:
    """The same graph in another kind: ``as_kind("pipeline.int8.onnx", "ort") == "pipeline.int8.ort"``.

    Raises:
        ConfigError: ``name`` is not one :func:`file_name` spells, or ``kind`` is unknown.
    """
    parsed = parse_name(name)
    if parsed is None:
        raise ConfigError(f"{name!r} is not a hearkit model file name (<stem>[.<variant>].<kind>, stems {list(STEMS)})")
    return file_name(parsed[0], parsed[1], kind)


def variant_order(prefer: str = INT8) -> tuple[str, ...]:
    """``prefer`` first, then the other variants in the fixed order int8, fp32, fp16.

    Raises:
        ModelError: ``prefer`` is not one of them.
    """
    if prefer not in VARIANTS:
        raise ModelError(f"prefer must be one of {list(VARIANTS)}, got {prefer!r}")
    return (prefer,) + tuple(v for v in VARIANTS if v != prefer)


def candidates(prefer: str = INT8, kind: str = ONNX, stems: Sequence[str] = (PIPELINE,)) -> list[str]:
    """The file names :func:`resolve` looks for in a folder, in order: each stem's variants by :func:`variant_order`.

    Args:
        prefer: variant tried first (Default: int8).
        kind: ``onnx`` | ``ort`` (Default: onnx).
        stems: stems in order (Default: pipeline only, the waveform-input models).
    """
    if kind not in KINDS:
        raise ModelError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    return [file_name(s, v, kind) for s in stems for v in variant_order(prefer)]


# -- export folders ------------------------------------------------------------------

EXPORT_SUMMARY = "export.json"  # beside the graphs: what an export folder holds and where it came from
REPORT_JSON, REPORT_MD = "report.json", "report.md"  # written by `hearkit verify`
VERIFY_TRANSCRIPTS = "verify_transcripts.tsv"  # CTC verify: reference and every variant's hypothesis per utterance
PARITY_REPORTS = (REPORT_JSON, "parity.json")  # copied into a bundle when present, first found wins
EXPORT_GRAPHS = tuple(file_name(s) for s in (FRONTEND, MODEL, PIPELINE))  # the fp32 graphs every export holds
# fp32 graphs an export of a model on the speech embedding adds: its front-end cut after the mel
# frames, so a stream computes each mel frame once (StreamingScorer); bundles carry them too
STREAM_GRAPHS = (file_name(MEL), file_name(EMBEDDING))


def variant_files(variant: str, kind: str = ONNX) -> dict[str, str]:
    """``{"model": ..., "pipeline": ...}``: the pair of files of one quantized variant (as recorded in ``export.json``)."""
    return {MODEL: file_name(MODEL, variant, kind), PIPELINE: file_name(PIPELINE, variant, kind)}


def list_variants(folder: str | os.PathLike) -> list[tuple[str, Path, Path | None]]:
    """``(variant, pipeline, network)`` of every ``.onnx`` pipeline in an export folder, fp32 first, then by name.

    ``network`` is the matching ``model*.onnx`` or None when it is absent.
    """
    d = Path(folder)
    found = []
    for p in d.glob(f"{PIPELINE}*.{ONNX}"):
        parsed = parse_name(p.name)
        if parsed is None or parsed[0] != PIPELINE:
            continue
        net = d / file_name(MODEL, parsed[1])
        found.append((parsed[1], p, net if net.is_file() else None))
    return sorted(found, key=lambda t: (t[0] != FP32, t[1].name))


def check_export(folder: str | os.PathLike) -> Path:
    """``folder`` as a Path when it holds the fp32 graphs of an export.

    Raises:
        ModelError: naming the first graph that is missing.
    """
    d = Path(folder)
    for need in (file_name(PIPELINE), file_name(MODEL), file_name(FRONTEND)):
        if not (d / need).is_file():
            raise ModelError(f"{d}: not an export folder (no {need}); make one with `hearkit export`")
    return d


def summary_path(folder: str | os.PathLike) -> Path:
    """Where the ``export.json`` of an export folder is."""
    return Path(folder) / EXPORT_SUMMARY


def read_export(folder: str | os.PathLike) -> dict:
    """The parsed ``export.json`` of an export folder.

    Raises:
        ModelError: it is missing or not valid JSON.
    """
    p = summary_path(folder)
    if not p.is_file():
        raise ModelError(f"{folder}: no {EXPORT_SUMMARY} here; is this a directory written by `hearkit export`?")
    try:
        return json.loads(p.read_text())
    except ValueError as e:  # not JSON (a UnicodeDecodeError is one), or a 4300-digit integer
        raise ModelError(f"{p}: not valid JSON ({e})") from e
    except RecursionError as e:
        raise ModelError(f"{p}: not an export summary (JSON nested too deeply)") from e


def write_export(folder: str | os.PathLike, summary: dict) -> Path:
    """Write ``export.json`` (2-space indented JSON) atomically; return its path.

    The JSON goes to a temporary file in the same folder, which then replaces
    ``export.json`` in one step: a failure or a kill while writing leaves the
    previous summary (or none) in place, never a truncated one.
    """
    return _write_json_atomic(summary_path(folder), summary)


def _write_json_atomic(path: Path, data) -> Path:
    return write_json(path, data)  # hearkit.files: temporary file + fsync + rename, the temporary removed on failure


def export_checkpoint(folder: str | os.PathLike, summary: dict) -> Path | None:
    """The checkpoint an export came from, found from any working directory; None when it is nowhere.

    ``export.json`` records the checkpoint's absolute path (``checkpoint``) and its path
    relative to the export folder (``checkpoint_relative``, so a run folder moved or
    copied as a whole still finds it). An older export's relative ``checkpoint`` is
    tried against the working directory, then against the export folder.
    """
    d = Path(folder)
    tries = []
    rec = summary.get("checkpoint")
    if isinstance(rec, str) and rec:
        tries.append(Path(rec))
        if not Path(rec).is_absolute():
            tries.append(d / rec)
    rel = summary.get("checkpoint_relative")
    if isinstance(rel, str) and rel:
        tries.append(d / rel)
    for t in tries:
        if t.is_file():
            return t
    return None


# -- bundles ------------------------------------------------------------------------

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "hearkit-bundle"
BUNDLE_SCHEMA = 1
BUNDLE_README = "README.md"  # the commands to run the bundle, written by `hearkit package`
OPS_CONFIG = "required_operators_and_types.config"  # typed operators of the .ort models, for minimal builds
C_HEADER, C_SOURCE = "hearkit_model.h", "hearkit_model.c"  # the preferred model's ORT bytes for firmware


class BundleError(ModelError):
    """A bundle whose manifest is missing or invalid, or whose files do not match it."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_bundle(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding a ``manifest.json``."""
    p = Path(path)
    return p.is_dir() and (p / MANIFEST).is_file()


def load_manifest(bundle: str | os.PathLike) -> dict:
    """The parsed ``manifest.json`` of a bundle folder, checked for the keys the runtime reads.

    Raises:
        BundleError: no manifest, not JSON, another format, a newer schema, or a bad file entry.
    """
    p = Path(bundle) / MANIFEST
    if not p.is_file():
        raise BundleError(f"{bundle}: not a hearkit bundle (no {MANIFEST}); make one with `hearkit package`")
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:  # not JSON, not UTF-8, or a 4300-digit integer
        raise BundleError(f"{p}: not valid JSON ({e})") from e
    except RecursionError as e:  # "[[[[..." nested deeper than the parser's stack
        raise BundleError(f"{p}: not a bundle manifest (JSON nested too deeply)") from e
    if not isinstance(m, dict) or m.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{p}: 'format' must be {BUNDLE_FORMAT!r}")
    if not isinstance(m.get("schema"), int) or m["schema"] > BUNDLE_SCHEMA:
        raise BundleError(f"{p}: bundle schema {m.get('schema')!r} is not one this hearkit reads (<= {BUNDLE_SCHEMA}); upgrade hearkit")
    files = m.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{p}: 'files' must map file names to {{sha256, bytes}}")
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("bytes"), int):
            raise BundleError(f"{p}: entry for {name!r} needs 'sha256' (hex) and 'bytes' (int)")
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{p}: file name {name!r} must be relative to the bundle and stay inside it")
    return m


def write_manifest(bundle: str | os.PathLike, manifest: dict) -> Path:
    """Write ``manifest.json`` into a bundle folder atomically (as :func:`write_export`); return its path."""
    return _write_json_atomic(Path(bundle) / MANIFEST, manifest)


def verify_file(bundle: str | os.PathLike, name: str, manifest: dict | None = None) -> Path:
    """Check one bundled file against the manifest; return its path.

    Raises:
        BundleError: the file is not listed, is missing, or its size or sha256 differs.
    """
    m = manifest if manifest is not None else load_manifest(bundle)
    entry = m["files"].get(name)
    path = Path(bundle) / name
    if entry is None:
        raise BundleError(f"{path}: not listed in {Path(bundle) / MANIFEST}; refusing to run an unverified file")
    if not path.is_file():
        raise BundleError(f"{path}: listed in {MANIFEST} but missing from the bundle")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise BundleError(
            f"{path}: {size} bytes, but {MANIFEST} says {entry['bytes']}; the file was modified or damaged "
            "(re-copy the bundle or re-run `hearkit package`)"
        )
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise BundleError(
            f"{path}: sha256 {digest[:16]}... does not match {MANIFEST} ({entry['sha256'][:16]}...); "
            "the file was modified or damaged (re-copy the bundle or re-run `hearkit package`)"
        )
    return path


def unlisted_files(bundle: str | os.PathLike, manifest: dict) -> list[str]:
    """Files in a bundle folder (any depth, as relative POSIX names) that its manifest does not list.

    The manifest itself and a lock file a killed ``hearkit package`` left are not counted.
    """
    root = Path(bundle)
    listed = set(manifest["files"]) | {MANIFEST, LOCK_NAME}
    return sorted(rel for p in root.rglob("*") if (p.is_file() or p.is_symlink())
                  and (rel := p.relative_to(root).as_posix()) not in listed)


def verify_bundle(bundle: str | os.PathLike, extra_ok: bool = False) -> dict:
    """Check every file of a bundle against its manifest, and that it holds no other file; return the manifest.

    Args:
        bundle: the bundle folder.
        extra_ok: accept files the manifest does not list (Default: False: they are
            refused, since nobody can tell what they are or who put them there).

    Raises:
        BundleError: naming the first file that is missing or differs, or every unlisted file.
    """
    m = load_manifest(bundle)
    for name in sorted(m["files"]):
        verify_file(bundle, name, m)
    extra = [] if extra_ok else unlisted_files(bundle, m)
    if extra:
        shown = ", ".join(extra[:10]) + (f" and {len(extra) - 10} more" if len(extra) > 10 else "")
        raise BundleError(f"{bundle}: {len(extra)} file(s) not listed in {MANIFEST}: {shown}; "
                          "remove them, or re-run `hearkit package` if they belong to the bundle")
    return m


def bundle_traces(folder: str | os.PathLike) -> list[str]:
    """Names in ``folder`` that only ``hearkit package`` writes (``.ort`` models, operators config, C sources, its README).

    A folder with any of them but no ``manifest.json`` is a bundle whose check was
    removed (or lost in a copy): :func:`resolve` refuses to run it.
    """
    p = Path(folder)
    if not p.is_dir():
        return []
    found = []
    for name in sorted(os.listdir(p)):
        parsed = parse_name(name)
        if name in (OPS_CONFIG, C_HEADER, C_SOURCE) or (parsed is not None and parsed[2] == ORT):
            found.append(name)
        elif name == BUNDLE_README and (p / name).is_file():
            with open(p / name, "rb") as f:
                if f.read(64).startswith(b"# hearkit bundle"):
                    found.append(name)
    return found


def refuse_stripped_bundle(folder: str | os.PathLike) -> None:
    """Refuse a folder that looks like a bundle (:func:`bundle_traces`) but has no manifest to check it by.

    Raises:
        BundleError: naming the folder, what makes it look like a bundle and what to do.
    """
    p = Path(folder)
    if is_bundle(p):
        return
    traces = bundle_traces(p)
    if traces:
        raise BundleError(
            f"{p}: looks like a hearkit bundle ({', '.join(traces[:3])}) but has no {MANIFEST}, so its models cannot "
            f"be checked; re-copy the bundle with its {MANIFEST} or re-run `hearkit package` (to run the models "
            "unchecked, copy the .onnx files to a folder of their own)"
        )


# -- the model to run ----------------------------------------------------------------


def resolve(
    path: str | os.PathLike,
    prefer: str = INT8,
    kind: str = ONNX,
    stems: Sequence[str] = (PIPELINE,),
) -> Path:
    """The model file to run from a model file, an export folder or a bundle (verified).

    Args:
        path: a model file (checked against the manifest when it sits in a bundle),
            a bundle folder (``manifest.json``), or an export folder written by ``hearkit export``.
        prefer: the variant tried first: ``int8`` | ``fp32`` | ``fp16`` (Default: int8);
            the others follow in the fixed order int8, fp32, fp16. A device's choice is
            its profile's ``prefer`` (``hearkit.sessions.model_file`` passes it).
        kind: ``onnx`` | ``ort`` (ORT format, for minimal builds) (Default: onnx).
        stems: stems tried in order, each with every variant (Default: pipeline only;
            ``hearkit run`` adds ``model``, the log-mel-input network, as a last resort).

    Returns:
        the model path. Inside a bundle the file's sha256 was checked against the manifest.

    Raises:
        BundleError: the chosen bundled file does not match the manifest (message names it),
            or the bundle has none of the candidates.
        ModelError: nothing to run at that path, or an invalid ``prefer`` / ``kind``.
    """
    names = candidates(prefer, kind, stems)  # validates prefer and kind even for a file
    p = Path(path)
    if p.is_file():
        if is_bundle(p.parent):
            return verify_file(p.parent, p.name)
        refuse_stripped_bundle(p.parent)
        return p
    if not p.exists():
        raise ModelError(f"{p}: no such model file, export folder or bundle")
    refuse_stripped_bundle(p)
    if is_bundle(p):
        m = load_manifest(p)
        for name in names:
            if name in m["files"]:
                return verify_file(p, name, m)
        raise BundleError(f"{p}: the bundle has none of {', '.join(names)} (files: {', '.join(sorted(m['files']))})")
    for name in names:
        if (p / name).is_file():
            return p / name
    raise ModelError(f"{p}: no model in this folder (looked for {', '.join(names)})")
