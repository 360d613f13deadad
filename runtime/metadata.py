"""What travels inside every exported model (docs/design.md §3), and how the runtime reads it.

Every ONNX file hearkit writes carries ``metadata_props`` under the ``hearkit.``
prefix. The runtime rebuilds its objects from these alone (no labels file beside
the model, no Python-side feature transform) and fails with a message naming the
missing or invalid key.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from hearkit.errors import ConfigError, ModelError
from hearkit.frontend import FrontendConfig, frontend_from_json
from hearkit.limits import check

SCHEMA_VERSION = 1
PREFIX = "hearkit."

# keys, without the prefix
K_SCHEMA = "schema_version"      # int, SCHEMA_VERSION
K_TASK = "task"                  # "classify" | "ctc" | "frontend"
K_FRONTEND = "frontend"          # FrontendConfig JSON
K_INPUT = "input"                # "waveform" | "logmel"
K_LABELS = "labels"              # JSON list of class names (classify)
K_VOCAB = "vocab"                # JSON list, one entry per output index (ctc)
K_BLANK = "blank"                # int, index of the CTC blank (ctc)
K_WINDOW = "window_samples"      # int, samples per classification window (classify)
K_SUBSAMPLING = "subsampling"    # int, feature frames per output frame (ctc)
K_QUANT = "quantization"         # JSON object: recipe name and settings, or {"format": "fp32"}
K_CKPT_SHA = "checkpoint_sha256" # hex sha256 of the checkpoint the model came from
K_METRICS = "metrics"            # JSON object of training metrics
K_MODEL = "model"                # JSON object: architecture name and hyper-parameters
K_VERSION = "hearkit_version"    # version of hearkit that wrote the file
K_DETECTOR = "detector"          # JSON object (classify, optional): calibrated spotting settings, see DETECTOR_KEYS
DETECTOR_KEYS = ("thresholds", "hop_seconds", "smoothing", "refractory_seconds", "calibration")

TASKS = ("classify", "ctc", "frontend")
METADATA_VALUE_CHARS = 1 << 20  # longest metadata value parsed: 10000 labels of 100 characters fit
INPUTS = ("waveform", "logmel")


@dataclass(frozen=True)
class ModelInfo:
    """The model metadata, parsed and validated."""

    task: str
    input: str
    frontend: FrontendConfig
    schema_version: int = SCHEMA_VERSION
    labels: tuple[str, ...] = ()
    vocab: tuple[str, ...] = ()
    blank: int | None = None
    window_samples: int | None = None
    subsampling: int | None = None
    quantization: dict = field(default_factory=dict)
    checkpoint_sha256: str | None = None
    metrics: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    detector: dict = field(default_factory=dict)
    source: str = "<model>"

    def to_props(self) -> dict[str, str]:
        """The ``hearkit.*`` string map to store as ONNX metadata_props."""
        props = {
            K_SCHEMA: str(self.schema_version),
            K_TASK: self.task,
            K_INPUT: self.input,
            K_FRONTEND: self.frontend.to_json(),
            K_QUANT: json.dumps(self.quantization or {"format": "fp32"}, sort_keys=True),
            K_METRICS: json.dumps(self.metrics, sort_keys=True),
            K_MODEL: json.dumps(self.model, sort_keys=True),
        }
        if self.task == "classify":
            props[K_LABELS] = json.dumps(list(self.labels))
            if self.window_samples is not None:
                props[K_WINDOW] = str(int(self.window_samples))
            if self.detector:
                props[K_DETECTOR] = json.dumps(self.detector, sort_keys=True)
        if self.task == "ctc":
            props[K_VOCAB] = json.dumps(list(self.vocab))
            props[K_BLANK] = str(int(self.blank))
            props[K_SUBSAMPLING] = str(int(self.subsampling or 1))
        if self.checkpoint_sha256:
            props[K_CKPT_SHA] = self.checkpoint_sha256
        try:
            from importlib.metadata import version

            props[K_VERSION] = version("hearkit")
        except Exception:
            props[K_VERSION] = "unknown"
        return {PREFIX + k: v for k, v in props.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "<model>") -> "ModelInfo":
        """Parse a metadata map; raise ``ModelError`` naming the bad key."""
        p = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}

        def need(key):
            if key not in p:
                raise ModelError(f"{source}: metadata key '{PREFIX}{key}' is missing (not a hearkit export?)")
            return p[key]

        def as_json(key, kind, default=None):
            if key not in p:
                if default is not None:
                    return default
                need(key)
            if len(p[key]) > METADATA_VALUE_CHARS:  # a label list is kilobytes; more is not a hearkit export
                raise ModelError(f"{source}: metadata key '{PREFIX}{key}' holds {len(p[key])} characters; "
                                 f"at most {METADATA_VALUE_CHARS} are read")
            try:
                v = json.loads(p[key])
            except ValueError as e:  # not JSON, or an integer of thousands of digits (Python's 4300-digit limit)
                raise ModelError(f"{source}: metadata key '{PREFIX}{key}' is not valid JSON ({e})") from e
            except RecursionError as e:  # "[[[[..." nested deeper than the parser's stack
                raise ModelError(f"{source}: metadata key '{PREFIX}{key}' is nested too deeply to be hearkit metadata") from e
            if not isinstance(v, kind):
                raise ModelError(f"{source}: metadata key '{PREFIX}{key}' must be a JSON {kind.__name__}")
            return v

        def as_int(key, required=True, limit=None):
            if key not in p and not required:
                return None
            try:
                v = int(need(key))
            except ValueError as e:
                raise ModelError(f"{source}: metadata key '{PREFIX}{key}' must be an integer, got {p[key][:80]!r}") from e
            if limit is not None:
                v = _checked(limit, v, f"{source}: metadata {key}")
            return v

        def names(key, limit):
            """A list of distinct non-empty strings (labels, vocabulary), at most the limit's count."""
            items = as_json(key, list)
            what = f"{source}: metadata {key}"
            _checked(limit, len(items), f"{what} count")
            if not all(isinstance(x, str) and x for x in items):
                bad = next(x for x in items if not (isinstance(x, str) and x))
                raise ModelError(f"{what} must be a list of non-empty strings, got {bad!r}")
            dup = sorted({x for x in items if items.count(x) > 1}) if len(set(items)) != len(items) else []
            if dup:
                raise ModelError(f"{what} lists {dup[:5]} more than once; each output needs its own name")
            return items

        version = as_int(K_SCHEMA)
        if version < 1:
            raise ModelError(f"{source}: metadata key '{PREFIX}{K_SCHEMA}' must be 1..{SCHEMA_VERSION}, got {version}")
        if version > SCHEMA_VERSION:
            raise ModelError(
                f"{source}: metadata schema {version} is newer than this hearkit understands ({SCHEMA_VERSION}); upgrade hearkit"
            )
        task = need(K_TASK)
        if task not in TASKS:
            raise ModelError(f"{source}: metadata key '{PREFIX}{K_TASK}' must be one of {list(TASKS)}, got {task!r}")
        inp = need(K_INPUT)
        if inp not in INPUTS:
            raise ModelError(f"{source}: metadata key '{PREFIX}{K_INPUT}' must be one of {list(INPUTS)}, got {inp!r}")
        fe_json = need(K_FRONTEND)
        if len(fe_json) > METADATA_VALUE_CHARS:
            raise ModelError(f"{source}: metadata frontend holds {len(fe_json)} characters; at most {METADATA_VALUE_CHARS} are read")
        try:
            fe = frontend_from_json(fe_json)
        except (ConfigError, RecursionError) as e:
            # the model is at fault, not the audio it is given: name the file and the key
            reason = str(e).removeprefix("invalid front-end config: ") if isinstance(e, ConfigError) else "nested too deeply"
            raise ModelError(f"{source}: metadata frontend: {reason}") from e
        kw: dict = {}
        if task == "classify":
            labels = names(K_LABELS, "labels")
            kw["labels"] = tuple(labels)
            kw["window_samples"] = as_int(K_WINDOW, required=False, limit="window_samples")
            if kw["window_samples"] is not None and kw["window_samples"] < fe.n_fft:
                raise ModelError(f"{source}: metadata {K_WINDOW} ({kw['window_samples']}) is shorter than the "
                                 f"front-end's n_fft ({fe.n_fft}): not one frame would fit")
            kw["detector"] = _detector(as_json(K_DETECTOR, dict, default={}) if K_DETECTOR in p else {}, labels, source)
        elif task == "ctc":
            vocab = names(K_VOCAB, "vocab")
            blank = as_int(K_BLANK)
            if not 0 <= blank < len(vocab):
                raise ModelError(f"{source}: metadata key '{PREFIX}{K_BLANK}' = {blank} is outside the vocabulary (0..{len(vocab) - 1})")
            kw.update(vocab=tuple(vocab), blank=blank, subsampling=as_int(K_SUBSAMPLING, required=False, limit="subsampling") or 1)
        return cls(
            task=task,
            input=inp,
            frontend=fe,
            schema_version=version,
            quantization=as_json(K_QUANT, dict, default={}),
            checkpoint_sha256=p.get(K_CKPT_SHA),
            metrics=as_json(K_METRICS, dict, default={}),
            model=as_json(K_MODEL, dict, default={}),
            source=source,
            **kw,
        )


def _checked(limit: str, value, what: str):
    """``hearkit.limits.check`` with the refusal as a ModelError: the model file is at fault."""
    try:
        return check(limit, value, what)
    except ConfigError as e:
        raise ModelError(str(e)) from e


def _detector(d: dict, labels: list[str], source: str) -> dict:
    """Validate the calibrated spotting settings of a classifier (``hearkit calibrate`` writes them)."""
    key = f"{source}: metadata key '{PREFIX}{K_DETECTOR}'"
    unknown = sorted(set(d) - set(DETECTOR_KEYS))
    if unknown:
        raise ModelError(f"{key} has unknown fields {unknown}; allowed: {list(DETECTOR_KEYS)}")
    th = d.get("thresholds", {})
    if not isinstance(th, dict) or not all(k in labels for k in th):
        raise ModelError(f"{key}: 'thresholds' must map model labels {labels} to numbers")
    for k, v in th.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
            raise ModelError(f"{key}: threshold of {k!r} must be a number in [0, 1], got {v!r}")
    checks = {"hop_seconds": (float, 1e-3, 10.0), "smoothing": (int, 1, 100), "refractory_seconds": (float, 0.0, 60.0)}
    for name, (kind, lo, hi) in checks.items():
        if name in d:
            v = d[name]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and v != int(v)) or not lo <= v <= hi:
                raise ModelError(f"{key}: {name!r} must be a {kind.__name__} in [{lo:g}, {hi:g}], got {v!r}")
    return d


def read_props(path: str | os.PathLike) -> dict[str, str]:
    """The metadata map of an ONNX or ORT-format model, read with onnxruntime (no onnx package)."""
    import onnxruntime as ort

    p = checked_model_path(path)
    try:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(p, opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise load_error(p, e) from e
    return dict(sess.get_modelmeta().custom_metadata_map)


def checked_model_path(path: str | os.PathLike) -> str:
    """``path`` as a string, or a ModelError when it is missing or not a regular file (a FIFO would block the reader)."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise ModelError(f"{p}: no such model file")
    if not os.path.isfile(p):
        raise ModelError(f"{p}: not a regular file (a model is a .onnx or .ort file)")
    return p


def load_error(path: str, e: Exception) -> ModelError:
    """The one-line error for a file onnxruntime refused; a torch checkpoint is told to be exported first."""
    import zipfile

    if zipfile.is_zipfile(path):  # torch.save writes a zip archive holding data.pkl; checked without torch
        with zipfile.ZipFile(path) as z:
            if any(n.endswith("data.pkl") for n in z.namelist()):
                return ModelError(f"{path}: a PyTorch checkpoint, not an ONNX model; export it first: "
                                  f"hearkit export {path} -o OUT_DIR")
    return ModelError(f"{path}: not a model onnxruntime can load ({str(e).splitlines()[0][:200]})")


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """Parse and validate the hearkit metadata of a model file."""
    return ModelInfo.from_props(read_props(path), source=os.fspath(path))
