"""Writing ONNX files the hearkit way: one self-contained file, metadata attached.

torch 2.13's exporter defaults to ``external_data=True`` (weights in a sidecar
that a copy of the ``.onnx`` alone leaves behind, docs/design.md §6); everything here
saves a single file.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from hearkit.artifacts import sha256_file  # re-exported: export modules hash through here
from hearkit.files import atomic_path

__all__ = ["get_metadata", "save_model", "set_metadata", "sha256_file"]


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> onnx.ModelProto:
    """Replace the ``hearkit.*`` metadata_props of ``model`` with ``props`` (keys with prefix)."""
    keep = [p for p in model.metadata_props if not p.key.startswith("hearkit.")]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = k, str(v)
    return model


def get_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def save_model(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Check and save ``model`` as one file (no external data), atomically."""
    path = Path(path)
    onnx.checker.check_model(model)
    # hearkit.files: temporary file + fsync + rename, removed on failure: a full disk or a kill
    # leaves the previous file (or none), never a truncated graph
    with atomic_path(path) as tmp:
        onnx.save_model(model, os.fspath(tmp), save_as_external_data=False)
    return path

