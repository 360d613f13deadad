"""Device profiles: how to quantize for, package for and run on one kind of board (docs/design.md §5, §6).

A profile is ``devices/<name>/profile.toml`` (installed as ``hearkit.devices_data``),
or any ``profile.toml`` path a user passes to ``--device``. It fixes the
execution providers in order, threads, spinning, graph optimisation level, the
model variant to prefer, the quantization recipe, the front-end backend, the
ORT-format target platform and, for TensorRT, engine shapes and caches. Every
choice carries one line of why in the ``[why]`` table; loading fails when one
is missing, so a profile cannot silently grow unexplained settings.

Schema (all keys required unless marked optional)::

    name, description, arch ("aarch64" | "x86_64"), cpu            top level
    [session]      providers (list), threads (int 1..256), spinning (bool),
                   graph_optimization ("all" | "extended" | "basic" | "none"),
                   prefer ("int8" | "fp32" | "fp16"), fp16 (bool)
    [quantization] format ("qdq"), activation_type / weight_type ("int8" | "uint8"),
                   per_channel, reduce_range, symmetric_activations,
                   symmetric_weights (bool), calibration ("minmax" | "entropy" | "percentile")
    [frontend]     backend ("conv-dft" | "stft"), precision ("fp32")
    [package]      ort_target_platform ("arm" | "amd64")
    [tensorrt]     optional; shapes ("fixed" | "profile"), min/opt/max_seconds,
                   int8, engine_cache, timing_cache (bool), cache_dir, max_workspace_mb
    [why]          "section.key" = "one line" for every key of the sections above

Sessions made from a profile (provider lists, TensorRT options, warnings) are
``hearkit.sessions``; this module is the schema only and imports no onnxruntime.

Example:
    >>> p = load_profile("raspberry-pi-5")
    >>> p.prefer, p.quantization.activation_type
    ('int8', 'int8')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import tomllib

from hearkit.artifacts import VARIANTS
from hearkit.errors import ConfigError
from hearkit.limits import check
from hearkit.text import read_text

PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
    "XnnpackExecutionProvider",
    "OpenVINOExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
)
ARCHES = ("aarch64", "x86_64")
OPTIMIZATIONS = ("all", "extended", "basic", "none")
PREFERS = VARIANTS  # the model variants a profile may prefer (hearkit.artifacts)
QUANT_FORMATS = ("qdq",)
QUANT_TYPES = ("int8", "uint8")
CALIBRATIONS = ("minmax", "entropy", "percentile")
FRONTEND_BACKENDS = ("conv-dft", "stft")
FRONTEND_PRECISIONS = ("fp32",)  # docs/design.md §4: int8 gave ±inf, fp16 errors up to 0.9
ORT_PLATFORMS = ("arm", "amd64")
TRT_SHAPES = ("fixed", "profile")
MB = 1 << 20  # bytes per MiB


@dataclass(frozen=True)
class QuantRecipe:
    """How to quantize a network graph (docs/design.md §5): a profile's ``[quantization]`` and the export's recipes.

    The settings (``format`` ... ``calibration``) are what a profile fixes and what
    decides whether two recipes make the same model; ``op_types`` and ``float_stem``
    are export choices a profile leaves at their defaults, ``name`` and ``why`` label it.

    Attributes:
        format: ``qdq`` (QuantizeLinear/DequantizeLinear pairs; the fast int8 path of ORT's
            CPU provider and what TensorRT consumes, the only format a profile takes) |
            ``qoperator`` (QLinearConv etc.) | ``fp16`` (half-precision weights and math).
        activation_type: ``int8`` | ``uint8`` (static recipes; None for fp16).
        weight_type: ``int8`` | ``uint8`` (static recipes; None for fp16).
        per_channel: one scale per output channel of conv/linear weights.
        reduce_range: 7-bit weights, avoiding the saturation of U8S8 on AVX2 without VNNI.
        symmetric_activations: zero point 0 for activations (TensorRT needs it).
        symmetric_weights: zero point 0 for weights.
        calibration: ``minmax`` | ``entropy`` | ``percentile``.
        op_types: ONNX op types to quantize; others stay fp32 (Default: None = onnxruntime's
            full list, which also quantizes Add, pooling, Reshape... between convolutions).
        float_stem: keep a one-input-channel convolution (the stem over the log-mel plane), its
            Relu and the ops before it in fp32 (Default: True). onnxruntime's fast int8 conv
            kernels need input channels in multiples of 4; a 1-channel int8 conv falls back to a
            generic im2col path, measured 87-92 us vs 33-36 us fp32 for the DS-CNN-S stem.
        name: registry key of the export's recipes, also written to the model metadata
            (Default: "" for a profile's settings; ``hearkit.export.package.device_recipe`` names it).
        why: the hardware reason, one line (Default: "").
    """

    # the keys of a profile's [quantization] table, in the order models record them
    SETTINGS: ClassVar[tuple[str, ...]] = (
        "format", "activation_type", "weight_type", "per_channel", "reduce_range",
        "symmetric_activations", "symmetric_weights", "calibration",
    )

    format: str = "qdq"
    activation_type: str | None = "int8"
    weight_type: str | None = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    symmetric_activations: bool = False
    symmetric_weights: bool = True
    calibration: str = "minmax"
    op_types: tuple[str, ...] | None = None
    float_stem: bool = True
    name: str = ""
    why: str = ""

    def to_dict(self) -> dict:
        """The settings only (:attr:`SETTINGS`), as a profile's ``[quantization]`` table holds them."""
        return {k: getattr(self, k) for k in self.SETTINGS}

    def matches(self, quantization: Mapping) -> bool:
        """True when a model's ``hearkit.quantization`` metadata records these settings (empty: False)."""
        return bool(quantization) and all(quantization.get(k) == getattr(self, k) for k in self.SETTINGS)

    @property
    def static(self) -> bool:
        """Calibrated int8 (``qdq`` / ``qoperator``), as opposed to ``fp16``."""
        return self.format in ("qdq", "qoperator")


@dataclass(frozen=True)
class TensorRTOptions:
    """TensorRT execution-provider settings.

    Attributes:
        shapes: ``fixed`` (min = opt = max = the model's window) or ``profile``
            (min/opt/max seconds of waveform). Without either, TensorRT rebuilds
            the engine whenever the audio length changes (docs/design.md §5).
        min_seconds, opt_seconds, max_seconds: the profile, in seconds of audio.
        int8: ``trt_int8_enable`` (only with a symmetric QDQ model).
        engine_cache, timing_cache: keep built engines / layer timings on disk.
        cache_dir: where (``~`` expanded).
        max_workspace_mb: TensorRT builder workspace, in MiB.
    """

    shapes: str = "profile"
    min_seconds: float = 0.5
    opt_seconds: float = 1.0
    max_seconds: float = 30.0
    int8: bool = False
    engine_cache: bool = True
    timing_cache: bool = True
    cache_dir: str = "~/.cache/hearkit/tensorrt"
    max_workspace_mb: int = 1024


@dataclass(frozen=True)
class DeviceProfile:
    """One device profile, validated. Build with :func:`load_profile`.

    Attributes:
        name: profile name (folder name for the shipped ones).
        description: one line for ``hearkit devices``.
        arch: ``aarch64`` | ``x86_64``.
        cpu: CPU model; also the ``-cpu`` of the arm64 emulator for the Pi profiles.
        providers: onnxruntime execution providers, in order of preference.
        threads: intra-op threads.
        spinning: let idle ORT threads spin (off for periodic streaming, docs/design.md §6).
        graph_optimization: session optimisation level ``all`` | ``extended`` | ``basic`` | ``none``.
        prefer: model variant to run from a bundle: ``int8`` | ``fp32`` | ``fp16``.
        fp16: run in half precision where the provider can (TensorRT ``trt_fp16_enable``).
        quantization: the recipe the export/package step quantizes with.
        frontend_backend: ``conv-dft`` | ``stft``.
        frontend_precision: ``fp32`` (always, docs/design.md §4).
        ort_target_platform: ``arm`` | ``amd64`` for ORT-format conversion.
        tensorrt: TensorRT options, or None when TensorRT is not among the providers.
        why: ``"section.key" -> reason``, one per choice.
        source: the TOML file it came from.
    """

    name: str
    description: str
    arch: str
    cpu: str
    providers: tuple[str, ...]
    threads: int
    spinning: bool
    graph_optimization: str
    prefer: str
    fp16: bool
    quantization: QuantRecipe
    frontend_backend: str
    frontend_precision: str
    ort_target_platform: str
    tensorrt: TensorRTOptions | None = None
    why: dict = field(default_factory=dict, compare=False)
    source: str = "<profile>"

    def summary(self) -> str:
        """One line: name, providers, threads, preferred model and int8 recipe."""
        q = self.quantization
        prov = ">".join(p.replace("ExecutionProvider", "") for p in self.providers)
        recipe = f"{q.format.upper()} {'S' if q.activation_type == 'int8' else 'U'}8{'S' if q.weight_type == 'int8' else 'U'}8"
        recipe += " per-channel" if q.per_channel else " per-tensor"
        if q.reduce_range:
            recipe += " reduce-range"
        if q.symmetric_activations:
            recipe += " symmetric"
        extra = " (fp16 where the provider can)" if self.fp16 else ""
        return (
            f"{self.name:<15} {self.description}. providers {prov}, {self.threads} thread(s), "
            f"runs {self.prefer}{extra}, int8 recipe {recipe}"
        )


# -- loading -------------------------------------------------------------------

_SESSION_KEYS = ("providers", "threads", "spinning", "graph_optimization", "prefer", "fp16")
_QUANT_KEYS = QuantRecipe.SETTINGS
_FRONTEND_KEYS = ("backend", "precision")
_PACKAGE_KEYS = ("ort_target_platform",)
_TRT_KEYS = tuple(TensorRTOptions.__dataclass_fields__)


def _profiles_root():
    """The folder of shipped profiles (an importlib.resources Traversable)."""
    from importlib.resources import files

    return files("hearkit.devices_data")


def list_profiles() -> list[str]:
    """Names of the shipped profiles, sorted."""
    root = _profiles_root()
    return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "profile.toml").is_file())


def load_profile(name_or_path: str | os.PathLike | DeviceProfile) -> DeviceProfile:
    """A shipped profile by name, or a ``profile.toml`` file / folder holding one.

    Raises:
        ConfigError: unknown name (the message lists the known ones) or an invalid profile.
    """
    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    s = os.fspath(name_or_path)
    p = Path(s)
    if p.is_dir():
        p = p / "profile.toml"
    if p.suffix == ".toml" or p.is_file():
        text, source = read_text(p, "device profile"), str(p)  # not UTF-8, a FIFO: one line naming it
    else:
        known = list_profiles()
        if s not in known:
            raise ConfigError(f"unknown device '{s}'; known devices: {', '.join(known)} (or a path to a profile.toml)")
        res = _profiles_root() / s / "profile.toml"
        text, source = res.read_text(encoding="utf-8"), f"hearkit.devices_data/{s}/profile.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML ({e})") from e
    return profile_from_dict(data, source=source)


def load_all_profiles() -> list[DeviceProfile]:
    """Every shipped profile, loaded and validated."""
    return [load_profile(n) for n in list_profiles()]


def profile_from_dict(d: dict, source: str = "<profile>") -> DeviceProfile:
    """Validate a parsed profile; raise ``ConfigError`` naming the file, key and what is allowed."""

    def fail(msg):
        raise ConfigError(f"{source}: {msg}")

    def table(name, optional=False):
        if name not in d:
            if optional:
                return None
            fail(f"missing table [{name}]")
        if not isinstance(d[name], dict):
            fail(f"[{name}] must be a table")
        return d[name]

    def keys(tab, name, allowed, required=True):
        unknown = sorted(set(tab) - set(allowed))
        if unknown:
            fail(f"unknown key(s) {unknown} in [{name}]; allowed: {list(allowed)}")
        if required:
            missing = [k for k in allowed if k not in tab]
            if missing:
                fail(f"[{name}] is missing {missing}")

    def typed(tab, sect, key, kind, choices=None):
        v = tab[key]
        ok = isinstance(v, kind) and not (kind in (int, float) and isinstance(v, bool))
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            v, ok = float(v), True
        if not ok:
            fail(f"{sect}.{key} must be a {getattr(kind, '__name__', kind)}, got {v!r}")
        if choices is not None and v not in choices:
            fail(f"{sect}.{key} must be one of {list(choices)}, got {v!r}")
        return v

    top = ("name", "description", "arch", "cpu")
    allowed_top = set(top) | {"session", "quantization", "frontend", "package", "tensorrt", "why"}
    unknown = sorted(set(d) - allowed_top)
    if unknown:
        fail(f"unknown top-level key(s) {unknown}; allowed: {sorted(allowed_top)}")
    for k in top:
        if k not in d:
            fail(f"missing top-level key '{k}'")
        typed(d, "<top>", k, str, ARCHES if k == "arch" else None)

    s = table("session")
    keys(s, "session", _SESSION_KEYS)
    providers = s["providers"]
    if not isinstance(providers, list) or not providers or not all(isinstance(p, str) for p in providers):
        fail("session.providers must be a non-empty list of provider names")
    for p in providers:
        if p not in PROVIDERS:
            fail(f"session.providers: unknown provider {p!r}; known: {list(PROVIDERS)}")
    if len(set(providers)) != len(providers):
        fail("session.providers lists a provider twice")
    threads = typed(s, "session", "threads", int)
    try:  # a profile with threads = 100000 hung onnxruntime
        threads = check("threads", threads, "session.threads")
    except ConfigError as e:
        fail(str(e))

    q = table("quantization")
    keys(q, "quantization", _QUANT_KEYS)
    recipe = QuantRecipe(
        format=typed(q, "quantization", "format", str, QUANT_FORMATS),
        activation_type=typed(q, "quantization", "activation_type", str, QUANT_TYPES),
        weight_type=typed(q, "quantization", "weight_type", str, QUANT_TYPES),
        per_channel=typed(q, "quantization", "per_channel", bool),
        reduce_range=typed(q, "quantization", "reduce_range", bool),
        symmetric_activations=typed(q, "quantization", "symmetric_activations", bool),
        symmetric_weights=typed(q, "quantization", "symmetric_weights", bool),
        calibration=typed(q, "quantization", "calibration", str, CALIBRATIONS),
    )
    f = table("frontend")
    keys(f, "frontend", _FRONTEND_KEYS)
    pk = table("package")
    keys(pk, "package", _PACKAGE_KEYS)

    trt = None
    t = table("tensorrt", optional=True)
    if "TensorrtExecutionProvider" in providers:
        if t is None:
            fail("session.providers has TensorrtExecutionProvider but there is no [tensorrt] table")
        if recipe.activation_type != "int8" or recipe.weight_type != "int8" or not (
            recipe.symmetric_activations and recipe.symmetric_weights
        ):
            fail("TensorRT needs a symmetric signed int8 recipe: quantization.activation_type = weight_type = \"int8\", symmetric_activations = symmetric_weights = true")
    if t is not None:
        keys(t, "tensorrt", _TRT_KEYS)
        trt = TensorRTOptions(
            shapes=typed(t, "tensorrt", "shapes", str, TRT_SHAPES),
            min_seconds=typed(t, "tensorrt", "min_seconds", float),
            opt_seconds=typed(t, "tensorrt", "opt_seconds", float),
            max_seconds=typed(t, "tensorrt", "max_seconds", float),
            int8=typed(t, "tensorrt", "int8", bool),
            engine_cache=typed(t, "tensorrt", "engine_cache", bool),
            timing_cache=typed(t, "tensorrt", "timing_cache", bool),
            cache_dir=typed(t, "tensorrt", "cache_dir", str),
            max_workspace_mb=typed(t, "tensorrt", "max_workspace_mb", int),
        )
        if not 0 < trt.min_seconds <= trt.opt_seconds <= trt.max_seconds:
            fail(f"tensorrt needs 0 < min_seconds <= opt_seconds <= max_seconds, got {trt.min_seconds}, {trt.opt_seconds}, {trt.max_seconds}")
        if trt.max_workspace_mb < 1:
            fail("tensorrt.max_workspace_mb must be >= 1")

    why = table("why")
    needed = (
        [f"session.{k}" for k in _SESSION_KEYS]
        + [f"quantization.{k}" for k in _QUANT_KEYS]
        + [f"frontend.{k}" for k in _FRONTEND_KEYS]
        + [f"package.{k}" for k in _PACKAGE_KEYS]
        + ([f"tensorrt.{k}" for k in _TRT_KEYS] if trt is not None else [])
    )
    missing = [k for k in needed if not (isinstance(why.get(k), str) and why[k].strip())]
    if missing:
        fail(f"every choice needs one line of why in [why]; missing: {missing}")
    extra = sorted(set(why) - set(needed))
    if extra:
        fail(f"[why] explains keys that do not exist: {extra}")

    return DeviceProfile(
        name=d["name"],
        description=d["description"],
        arch=d["arch"],
        cpu=d["cpu"],
        providers=tuple(providers),
        threads=threads,
        spinning=typed(s, "session", "spinning", bool),
        graph_optimization=typed(s, "session", "graph_optimization", str, OPTIMIZATIONS),
        prefer=typed(s, "session", "prefer", str, PREFERS),
        fp16=typed(s, "session", "fp16", bool),
        quantization=recipe,
        frontend_backend=typed(f, "frontend", "backend", str, FRONTEND_BACKENDS),
        frontend_precision=typed(f, "frontend", "precision", str, FRONTEND_PRECISIONS),
        ort_target_platform=typed(pk, "package", "ort_target_platform", str, ORT_PLATFORMS),
        tensorrt=trt,
        why=dict(why),
        source=source,
    )

