"""hearkit: an edge deployment kit for audio deep learning.

The runtime (this package) needs numpy, onnxruntime, soundfile, soxr and click,
never torch: ``import hearkit`` works on a Raspberry Pi. Training lives in
``hearkit.training`` and export in ``hearkit.export`` (extra ``hearkit[train]``).
"""

from __future__ import annotations

from hearkit.audio import iter_blocks, load_audio, resample
from hearkit.errors import AudioError, ConfigError, HearkitError, ModelError
from hearkit.frontend import FrontendConfig, StreamingFrontend, logmel

try:
    from importlib.metadata import version as _version

    __version__ = _version("hearkit")
except Exception:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0"

__all__ = [
    "AudioError",
    "ConfigError",
    "FrontendConfig",
    "HearkitError",
    "ModelError",
    "StreamingFrontend",
    "iter_blocks",
    "load_audio",
    "logmel",
    "resample",
]


def __getattr__(name):
    # Runtime classes added by later modules are resolved lazily so that
    # `import hearkit` stays cheap on a device.
    lazy = {
        "Classifier": "hearkit.classify",
        "KeywordSpotter": "hearkit.classify",
        "Transcriber": "hearkit.transcribe",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'hearkit' has no attribute {name!r}")
