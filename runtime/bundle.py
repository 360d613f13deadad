"""Device bundles written by ``hearkit package``: find the model to run and verify it first.

A bundle is a folder with ``manifest.json`` listing every file with its sha256
and size (written by ``hearkit.export.package``). The runtime never runs a
bundled model whose bytes differ from the manifest: a damaged copy or a hand
edit is refused with a message naming the file. Torch-free.

Example:
    >>> path = resolve_model("bundles/kws-pi5")              # verified pipeline.int8.onnx
    >>> path = resolve_model("bundles/kws-pi5", prefer="fp32", kind="ort")
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hearkit.errors import ModelError

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "hearkit-bundle"
BUNDLE_SCHEMA = 1
VARIANTS = ("int8", "fp32", "fp16")
KINDS = ("onnx", "ort")


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
    """The parsed ``manifest.json`` of a bundle folder, checked for the keys the runtime reads."""
    p = Path(bundle) / MANIFEST
    if not p.is_file():
        raise BundleError(f"{bundle}: not a hearkit bundle (no {MANIFEST}); make one with `hearkit package`")
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{p}: not valid JSON ({e})") from e
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


def verify_bundle(bundle: str | os.PathLike) -> dict:
    """Check every file of a bundle against its manifest; return the manifest.

    Raises:
        BundleError: naming the first file that is missing or differs.
    """
    m = load_manifest(bundle)
    for name in sorted(m["files"]):
        verify_file(bundle, name, m)
    return m


def variant_order(prefer: str) -> tuple[str, ...]:
    """``prefer`` first, then the other variants in hearkit's default order."""
    if prefer not in VARIANTS:
        raise ModelError(f"prefer must be one of {list(VARIANTS)}, got {prefer!r}")
    return (prefer,) + tuple(v for v in VARIANTS if v != prefer)


def model_name(variant: str, kind: str = "onnx", stem: str = "pipeline") -> str:
    """``pipeline.onnx`` for fp32, ``pipeline.int8.onnx`` / ``pipeline.fp16.ort`` otherwise."""
    return f"{stem}.{kind}" if variant == "fp32" else f"{stem}.{variant}.{kind}"


def resolve_model(
    path_or_bundle: str | os.PathLike,
    prefer: str = "int8",
    kind: str = "onnx",
    device=None,
) -> Path:
    """The model file to run from a file, an export folder or a verified bundle.

    Args:
        path_or_bundle: a model file (verified when it sits in a bundle), a bundle
            folder (``manifest.json``), or an export folder written by ``hearkit export``.
        prefer: variant tried first: ``int8`` | ``fp32`` | ``fp16`` (Default: int8);
            the others follow when it is absent.
        kind: ``onnx`` | ``ort`` (ORT format, for minimal builds) (Default: onnx).
        device: a device name or ``DeviceProfile``; its ``prefer`` replaces ``prefer``.

    Returns:
        the model path. Inside a bundle the file's sha256 was checked against the manifest.

    Raises:
        BundleError: the chosen bundled file does not match the manifest (message names it).
        ModelError: nothing to run at that path.
    """
    if kind not in KINDS:
        raise ModelError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if device is not None:
        from hearkit.devices import load_profile

        prefer = load_profile(device).prefer
    p = Path(path_or_bundle)
    if p.is_file():
        if is_bundle(p.parent):
            return verify_file(p.parent, p.name)
        return p
    if not p.exists():
        raise ModelError(f"{p}: no such model file, export folder or bundle")
    names = [model_name(v, kind) for v in variant_order(prefer)]
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
