"""Checkpoints: atomic, self-describing, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a dict of plain types and tensors only (so ``weights_only=True``
can load it without executing pickled code):

    {
      "format": "hearkit-checkpoint", "version": 1,
      "task": "classify" | "ctc" | "distill",
      "model": {"name": "dscnn-s", **hyper_parameters},   # rebuilds the network
      "frontend": FrontendConfig.to_dict(),
      "labels": [...]            (classify)   | "vocab": [...], "blank": 0 (ctc),
      "window_samples": int      (classify),
      "state_dict": model.state_dict(),
      "optimizer": ..., "scheduler": ..., "epoch": int, "step": int,   (for --resume)
      "rng": {...},              (optional, for exact resume)
      "metrics": {"val_acc": ..., ...},
      "train_config": {...},     (the command's options, JSON-able)
    }
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from hearkit.errors import ModelError
from hearkit.files import write_bytes

FORMAT = "hearkit-checkpoint"
VERSION = 1


def save_checkpoint(ckpt: dict, path: str | os.PathLike) -> Path:
    """Write ``ckpt`` atomically: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    ckpt = {"format": FORMAT, "version": VERSION, **ckpt}
    # serialised in memory first, so a full disk is a plain OSError naming the file (torch wraps
    # write errors in RuntimeError); then hearkit.files: temporary file + fsync + rename, which
    # keeps the previous checkpoint (--resume continues from it)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    write_bytes(path, buf.getbuffer())
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a hearkit checkpoint safely (``weights_only=True``); ModelError on a foreign file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"{path}: {_load_refusal(e)}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path}: not a hearkit checkpoint (missing 'format': '{FORMAT}')")
    if ckpt.get("version", 0) > VERSION:
        raise ModelError(f"{path}: checkpoint version {ckpt['version']} is newer than this hearkit ({VERSION})")
    for key in ("task", "model", "frontend", "state_dict"):
        if key not in ckpt:
            raise ModelError(f"{path}: checkpoint lacks '{key}'")
    return ckpt


def _load_refusal(e: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to load it unsafely.

    torch's refusal of a pickle that holds other objects than tensors and plain types says to
    re-run with ``weights_only=False``: that runs whatever code the pickle names, the one thing
    a user must not do with a file they did not make. Only the object it names is kept.
    """
    import pickle
    import re

    text = str(e)
    if isinstance(e, pickle.UnpicklingError) or "weights only load failed" in text.lower():
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if m is None:  # an opcode torch's safe unpickler does not know: damaged bytes, or not a checkpoint
            return "not a torch checkpoint hearkit can load (its bytes are not a pickle of tensors and plain values)"
        what = f" (it names {m.group(1)})"
        return ("holds pickled Python objects besides tensors and plain values" + what + "; hearkit loads "
                "checkpoints without running pickled code and refuses it. A hearkit checkpoint is what "
                "`hearkit train` writes; re-save the weights as one")
    lines = [ln for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    detail = (lines or [""])[0][:200]
    return f"not a torch checkpoint hearkit can load ({type(e).__name__}: {detail})"


def check_finite_weights(ckpt: dict, path: str | os.PathLike) -> None:
    """Raise ``ModelError`` naming ``path`` and the first bad tensors when weights hold NaN or infinity.

    A run that diverged saves such a checkpoint; exported, it would print NaN scores with
    exit 0 (its torch and ONNX outputs agree: both NaN). Export and verify refuse it here.
    """
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise ModelError(f"{path}: checkpoint 'state_dict' is not a dict of tensors")
    bad = []
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()):
            n = int((~torch.isfinite(t)).sum())
            if n:
                bad.append(f"'{name}' ({n} of {t.numel()})")
    if bad:
        more = f" and {len(bad) - 3} more tensors" if len(bad) > 3 else ""
        raise ModelError(
            f"{path}: weights hold NaN or infinite values in {', '.join(bad[:3])}{more}; the training diverged "
            "(take an earlier checkpoint, or train again with a lower learning rate)"
        )
