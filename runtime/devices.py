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
    [session]      providers (list), threads (int >= 1), spinning (bool),
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

Example:
    >>> p = load_profile("raspberry-pi-5")
    >>> sess = p.session("bundle/pipeline.int8.onnx")
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has no tomllib; the runtime's deps keep it optional
    tomllib = None

from hearkit.errors import ConfigError

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
PREFERS = ("int8", "fp32", "fp16")
QUANT_FORMATS = ("qdq",)
QUANT_TYPES = ("int8", "uint8")
CALIBRATIONS = ("minmax", "entropy", "percentile")
FRONTEND_BACKENDS = ("conv-dft", "stft")
FRONTEND_PRECISIONS = ("fp32",)  # docs/design.md §4: int8 gave ±inf, fp16 errors up to 0.9
ORT_PLATFORMS = ("arm", "amd64")
TRT_SHAPES = ("fixed", "profile")
MB = 1 << 20  # bytes per MiB

# Files a model variant may have in an export or bundle directory, by preference.
VARIANT_FILES = {
    "int8": ("pipeline.int8.onnx", "pipeline.int8.ort"),
    "fp32": ("pipeline.onnx", "pipeline.ort"),
    "fp16": ("pipeline.fp16.onnx", "pipeline.fp16.ort"),
}


class DeviceWarning(UserWarning):
    """A device profile asked for something this machine cannot give (provider missing, CPU fallback)."""


@dataclass(frozen=True)
class QuantRecipe:
    """Static quantization settings handed to the export's quantizer (docs/design.md §5).

    Attributes:
        format: ``qdq`` (QuantizeLinear/DequantizeLinear pairs; the fast int8 path of ORT's
            CPU provider and what TensorRT consumes).
        activation_type: ``int8`` | ``uint8``.
        weight_type: ``int8`` | ``uint8``.
        per_channel: per-output-channel weight scales.
        reduce_range: 7-bit weights (x86 AVX2 without VNNI saturation workaround).
        symmetric_activations: zero point 0 for activations (TensorRT needs it).
        symmetric_weights: zero point 0 for weights.
        calibration: ``minmax`` | ``entropy`` | ``percentile``.
    """

    format: str = "qdq"
    activation_type: str = "int8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    symmetric_activations: bool = False
    symmetric_weights: bool = True
    calibration: str = "minmax"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


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

    def variant_files(self) -> tuple[str, ...]:
        """Model file names to look for in a bundle, preferred variant first, then the others."""
        order = [self.prefer] + [v for v in ("int8", "fp32", "fp16") if v != self.prefer]
        return tuple(name for v in order for name in VARIANT_FILES[v])

    def provider_list(self, model_path: str | os.PathLike | None = None, available: list[str] | None = None) -> list:
        """The ``providers`` argument for ``InferenceSession``: names with their options.

        Providers this onnxruntime lacks are dropped with one :class:`DeviceWarning`
        each (once per process); CPU is always last.

        Args:
            model_path: the model, read for its input name and window length when
                TensorRT needs shape profiles (Default: None, no profile shapes).
            available: override of ``onnxruntime.get_available_providers()`` (tests).
        """
        if available is None:
            import onnxruntime as ort

            available = ort.get_available_providers()
        out: list = []
        for p in self.providers:
            if p not in available:
                if p != "CPUExecutionProvider":
                    _warn_once(
                        ("missing", self.name, p),
                        f"device profile '{self.name}' asks for {p}, but this onnxruntime does not have it "
                        f"(available: {', '.join(available)}); running without it. "
                        + _INSTALL_HINT.get(p, ""),
                    )
                continue
            if p == "TensorrtExecutionProvider":
                out.append((p, self._tensorrt_options(model_path)))
            elif p == "CUDAExecutionProvider":
                out.append((p, {"device_id": 0}))
            else:
                out.append(p)
        if "CPUExecutionProvider" not in out:
            out.append("CPUExecutionProvider")
        return out

    def _tensorrt_options(self, model_path) -> dict:
        t = self.tensorrt or TensorRTOptions()
        cache = os.path.expanduser(t.cache_dir)
        opts: dict = {
            "trt_fp16_enable": bool(self.fp16),
            "trt_int8_enable": bool(t.int8),
            "trt_max_workspace_size": int(t.max_workspace_mb) * MB,
            "trt_engine_cache_enable": bool(t.engine_cache),
            "trt_timing_cache_enable": bool(t.timing_cache),
        }
        if t.engine_cache or t.timing_cache:
            os.makedirs(cache, exist_ok=True)
            opts["trt_engine_cache_path"] = cache
            opts["trt_timing_cache_path"] = cache
        if model_path is not None:
            opts.update(trt_shape_profile(model_path, t))
        return opts

    def session(
        self,
        path: str | os.PathLike,
        spinning: bool | None = None,
        threads: int | None = None,
        warn_fallback: bool = True,
    ):
        """An ``InferenceSession`` for ``path`` configured by this profile.

        Warns once (:class:`DeviceWarning`) when a provider is missing, when
        onnxruntime registered fewer providers than asked (e.g. TensorRT failed to
        start), and when nodes fall back to the CPU provider.

        Args:
            path: model file (.onnx or .ort).
            spinning: override the profile's spinning (``hearkit stream`` passes False).
            threads: override the profile's intra-op threads.
            warn_fallback: check node placement (needs onnxruntime >= 1.23; skipped before).
        """
        from hearkit.metadata import make_session

        providers = self.provider_list(path)
        names = [p if isinstance(p, str) else p[0] for p in providers]
        accel = [n for n in names if n != "CPUExecutionProvider"]
        config = {"session.record_ep_graph_assignment_info": "1"} if accel and warn_fallback else None
        sess = make_session(
            path,
            threads=self.threads if threads is None else threads,
            spinning=self.spinning if spinning is None else spinning,
            providers=providers,
            optimization=self.graph_optimization,
            config=config,
        )
        got = sess.get_providers()
        for n in accel:
            if n not in got:
                _warn_once(
                    ("failed", self.name, n),
                    f"device profile '{self.name}': {n} is installed but did not start for {os.fspath(path)} "
                    f"(registered: {', '.join(got)}); everything runs on the remaining providers. "
                    "Call onnxruntime.set_default_logger_severity(0) before loading to see onnxruntime's reason.",
                )
        if accel and warn_fallback:
            _check_fallback(sess, self.name, accel, os.fspath(path))
        return sess


def open_model(
    path: str | os.PathLike,
    device: str | os.PathLike | DeviceProfile | None = None,
    *,
    prefer: str = "int8",
    threads: int | None = None,
    spinning: bool | None = None,
    providers: list | None = None,
):
    """The model file to run and its ``InferenceSession``, configured by a device profile when one is given.

    The one place where the runtime classes (``Classifier``, ``KeywordSpotter``,
    ``Transcriber``) turn "a path and maybe a device" into a session, so a
    profile's choices apply the same way everywhere.

    Args:
        path: a model file, an export folder or a bundle (``hearkit.bundle.resolve_model``:
            a bundled file's sha256 is checked against the manifest first).
        device: profile name, ``profile.toml`` path or ``DeviceProfile`` (Default: None:
            CPU provider, hearkit's session defaults). Its ``prefer`` picks the variant
            in a folder; its providers (in order), threads, optimisation level and
            spinning configure the session, with a warning once per missing provider.
        prefer: variant taken first from a folder when no device is given (Default: int8).
        threads: intra-op threads (Default: the profile's, or 1 without one).
        spinning: override spinning; periodic streaming passes False (docs/design.md §6)
            (Default: the profile's, or on without one).
        providers: execution providers when no device is given (Default: CPU).

    Returns:
        (model path, session).

    Raises:
        ConfigError: unknown device (the message lists the known ones), or both
            ``device`` and ``providers`` given.
        ModelError: nothing to run at ``path`` (``BundleError`` for a file that differs from its manifest).
    """
    from hearkit.bundle import resolve_model
    from hearkit.metadata import make_session

    profile = None if device is None else load_profile(device)
    if profile is not None and providers is not None:
        raise ConfigError(f"give a device profile or explicit providers, not both (profile '{profile.name}' lists its own providers)")
    file = resolve_model(path, prefer=prefer, device=profile)
    if profile is not None:
        return file, profile.session(file, spinning=spinning, threads=threads)
    sess = make_session(
        file,
        threads=1 if threads is None else threads,
        spinning=True if spinning is None else spinning,
        providers=providers,
    )
    return file, sess


_INSTALL_HINT = {
    "TensorrtExecutionProvider": "On a Jetson install NVIDIA's onnxruntime-gpu for your JetPack (devices/setup.sh jetson-orin, in a hearkit checkout).",
    "CUDAExecutionProvider": "On a Jetson install NVIDIA's onnxruntime-gpu for your JetPack (devices/setup.sh jetson-orin, in a hearkit checkout); on a PC, onnxruntime-gpu.",
}
_WARNED: set = set()


def _warn_once(key: tuple, message: str) -> None:
    """Emit a DeviceWarning the first time ``key`` is seen in this process."""
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, DeviceWarning, stacklevel=3)


def _check_fallback(sess, profile: str, accel: list[str], path: str) -> None:
    """Warn once when nodes were assigned to the CPU provider although accelerators were asked for."""
    get = getattr(sess, "get_provider_graph_assignment_info", None)
    if get is None:  # onnxruntime < 1.23 cannot tell; ORT's own log still says it
        return
    try:
        info = get()
    except Exception:  # recording was not enabled or the build lacks it
        return
    on_cpu: list[str] = []
    total = 0
    for sub in info:
        nodes = list(sub.get_nodes()) if hasattr(sub, "get_nodes") else []
        total += len(nodes)
        if getattr(sub, "ep_name", "") == "CPUExecutionProvider":
            on_cpu += [getattr(n, "op_type", "?") for n in nodes]
    if on_cpu:
        ops = sorted(set(on_cpu))
        _warn_once(
            ("fallback", profile, path),
            f"device profile '{profile}': {len(on_cpu)} of {total} nodes of {path} run on CPUExecutionProvider, "
            f"not on {' / '.join(accel)} (op types: {', '.join(ops[:12])}{' ...' if len(ops) > 12 else ''}).",
        )


def trt_shape_profile(model_path: str | os.PathLike, t: TensorRTOptions) -> dict:
    """TensorRT ``trt_profile_{min,opt,max}_shapes`` for a hearkit waveform model.

    ``fixed`` uses the model's window (``hearkit.window_samples``) for all three;
    ``profile`` uses the seconds of ``t`` at the model's sample rate. Models whose
    input is not a (batch, samples) waveform get no profile (TensorRT then
    infers shapes itself).
    """
    from hearkit.metadata import read_model_info

    import onnxruntime as ort

    info = read_model_info(model_path)
    if info.input != "waveform":
        return {}
    sess = ort.InferenceSession(os.fspath(model_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if len(inp.shape) != 2:
        return {}
    sr = info.frontend.sample_rate
    if t.shapes == "fixed" and info.window_samples:
        lo = opt = hi = int(info.window_samples)
    else:
        lo, opt, hi = (max(1, round(s * sr)) for s in (t.min_seconds, t.opt_seconds, t.max_seconds))
    name = inp.name
    return {
        "trt_profile_min_shapes": f"{name}:1x{lo}",
        "trt_profile_opt_shapes": f"{name}:1x{opt}",
        "trt_profile_max_shapes": f"{name}:1x{hi}",
    }


# -- loading -------------------------------------------------------------------

_SESSION_KEYS = ("providers", "threads", "spinning", "graph_optimization", "prefer", "fp16")
_QUANT_KEYS = tuple(QuantRecipe.__dataclass_fields__)
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
    if tomllib is None:  # pragma: no cover
        raise ConfigError("device profiles need Python >= 3.11 (tomllib)")
    s = os.fspath(name_or_path)
    p = Path(s)
    if p.is_dir():
        p = p / "profile.toml"
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise ConfigError(f"{p}: no such device profile file")
        text, source = p.read_text(encoding="utf-8"), str(p)
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
    if threads < 1:
        fail(f"session.threads must be >= 1, got {threads}")

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

