"""The hearkit error family.

User input (files, configs, models) gets these exceptions; ``assert`` guards
internal invariants only. The CLI turns every ``HearkitError`` into one line on
stderr and exit code 2, without a traceback.
"""

from __future__ import annotations


class HearkitError(Exception):
    """Base class of every error hearkit raises for bad input."""


class HearkitWarning(UserWarning):
    """Base class of the warnings hearkit gives people (the CLI shows these even when it hides third-party ones)."""


class ConfigError(HearkitError, ValueError):
    """An invalid configuration value (front-end, training, device profile)."""


class AudioError(HearkitError):
    """Audio that cannot be used. The message names the file and the reason."""

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class AudioFileNotFound(AudioError, FileNotFoundError):
    """The path does not exist."""


class NotAudioError(AudioError):
    """The file exists but libsndfile does not recognise it as audio."""


class CorruptAudioError(AudioError):
    """The file starts like audio but is truncated or damaged."""


class EmptyAudioError(AudioError):
    """The audio has zero samples."""


class NonFiniteAudioError(AudioError):
    """The audio holds NaN or infinite samples."""


class ResampleError(AudioError):
    """The audio's sample rate cannot be converted to the one needed."""


class OutOfRangeAudioError(AudioError):
    """Float samples far outside [-1, 1]: integer PCM stored as float, or a file of another scale."""


class ModelError(HearkitError):
    """A model file that hearkit cannot use (missing or invalid metadata, wrong shapes)."""


def check_finite(values, source: object, what: str):
    """Return ``values`` (a numpy array) if every one is finite, else raise ``ModelError`` naming ``source``.

    Every model output (scores, posteriors, log-probs) passes here before it is reported,
    so a broken model ends in one line instead of NaN printed with exit 0.

    Args:
        values: the model's output.
        source: the model file, named first in the message.
        what: what the values are, e.g. ``"scores"`` or ``"log-probs"``.
    """
    import numpy as np

    v = np.asarray(values)
    if v.dtype.kind in "fc" and not np.isfinite(v).all():
        nan, inf = int(np.isnan(v).sum()), int(np.isinf(v).sum())
        kind = " and ".join(k for k, n in (("NaN", nan), ("infinite", inf)) if n)
        raise ModelError(
            f"{source}: produced {kind} {what} ({nan + inf} of {v.size} values); the model is broken "
            "(NaN or infinite weights, or an overflow inside it): re-export it from a good checkpoint"
        )
    return v


class MissingDependencyError(HearkitError, ImportError):
    """An optional dependency is not installed; the message gives the install command."""


def require(module: str, extra: str):
    """Import an optional module or raise ``MissingDependencyError`` with the pip command.

    Args:
        module: the module to import, e.g. ``"torch"``.
        extra: the hearkit extra that installs it, e.g. ``"train"``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{module} is needed for this command but is not installed: "
            f'pip install "hearkit[{extra}]"'
        ) from e


def run_session(session, outputs, feeds: dict, source: object) -> list:
    """``session.run(outputs, feeds)``, with onnxruntime's refusal as one ``ModelError`` naming ``source``.

    onnxruntime raises its own exception types (``InvalidArgument``, ``Fail``, ``RuntimeException``)
    over several lines when a model cannot take what it is fed: a log-mel model whose metadata
    promises other mel bands than its input takes, an output that cannot be computed. Every
    session call of the runtime passes here, so such a model ends in one line, not a traceback.
    """
    try:
        return session.run(outputs, feeds)
    except (HearkitError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:
        shapes = ", ".join(f"{k} {tuple(getattr(v, 'shape', ()))}" for k, v in feeds.items())
        detail = " ".join(str(e).split()).removeprefix("[ONNXRuntimeError] : ")
        raise ModelError(f"{source}: onnxruntime could not run the model on {shapes} ({detail[:300]}); "
                         "the graph does not match its hearkit metadata: re-export it") from e
