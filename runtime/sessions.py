"""onnxruntime sessions configured by a device profile, and the model file a device runs (docs/design.md §5, §6).

``hearkit.devices`` says what a board wants (providers, threads, spinning,
variant); this module turns that into an ``InferenceSession``: provider lists
with their options (TensorRT engine shapes and caches, CUDA device), a warning
once per provider this onnxruntime lacks or that did not start, and a warning
when nodes fall back to the CPU. :func:`open_model` is the one place where the
runtime classes (``Classifier``, ``KeywordSpotter``, ``Transcriber``) turn "a
path and maybe a device" into (model file, session). onnxruntime is imported
inside the functions that need it.

Example:
    >>> from hearkit.devices import load_profile
    >>> p = load_profile("raspberry-pi-5")
    >>> sess = profile_session(p, model_file("bundles/kws-pi5", p))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from hearkit import artifacts
from hearkit.devices import MB, DeviceProfile, TensorRTOptions, load_profile
from hearkit.errors import ConfigError, HearkitWarning
from hearkit.limits import check, check_optional
from hearkit.metadata import checked_model_path, load_error


class DeviceWarning(HearkitWarning):
    """A device profile asked for something this machine cannot give (provider missing, CPU fallback)."""


_INSTALL_HINT = {
    "TensorrtExecutionProvider": "On a Jetson install NVIDIA's onnxruntime-gpu for your JetPack (devices/setup.sh jetson-orin, in a hearkit checkout).",
    "CUDAExecutionProvider": "On a Jetson install NVIDIA's onnxruntime-gpu for your JetPack (devices/setup.sh jetson-orin, in a hearkit checkout); on a PC, onnxruntime-gpu.",
}
_WARNED: set = set()


def model_file(
    path: str | os.PathLike,
    device: str | os.PathLike | DeviceProfile | None = None,
    *,
    prefer: str = "int8",
    kind: str = artifacts.ONNX,
    stems: Sequence[str] = (artifacts.PIPELINE,),
) -> Path:
    """The model file a device runs from a file, an export folder or a bundle (``hearkit.artifacts.resolve``).

    Args:
        path: model file, export folder or bundle (a bundled file is verified first).
        device: profile name, ``profile.toml`` path or ``DeviceProfile``; its ``prefer``
            replaces ``prefer`` (Default: None).
        prefer: variant tried first without a device (Default: int8).
        kind: ``onnx`` | ``ort`` (Default: onnx).
        stems: stems tried in order (Default: pipeline only).

    Raises:
        ConfigError: unknown device.
        ModelError: nothing to run at ``path`` (``BundleError`` for a file that differs from its manifest).
    """
    if device is not None:
        prefer = load_profile(device).prefer
    return artifacts.resolve(path, prefer=prefer, kind=kind, stems=stems)


def provider_list(
    profile: DeviceProfile,
    model_path: str | os.PathLike | None = None,
    available: list[str] | None = None,
) -> list:
    """The ``providers`` argument for ``InferenceSession``: the profile's names with their options.

    Providers this onnxruntime lacks are dropped with one :class:`DeviceWarning`
    each (once per process); CPU is always last.

    Args:
        profile: the device profile.
        model_path: the model, read for its input name and window length when
            TensorRT needs shape profiles (Default: None, no profile shapes).
        available: override of ``onnxruntime.get_available_providers()`` (tests).
    """
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    out: list = []
    for p in profile.providers:
        if p not in available:
            if p != "CPUExecutionProvider":
                _warn_once(
                    ("missing", profile.name, p),
                    f"device profile '{profile.name}' asks for {p}, but this onnxruntime does not have it "
                    f"(available: {', '.join(available)}); running without it. "
                    + _INSTALL_HINT.get(p, ""),
                )
            continue
        if p == "TensorrtExecutionProvider":
            out.append((p, tensorrt_options(profile, model_path)))
        elif p == "CUDAExecutionProvider":
            out.append((p, {"device_id": 0}))
        else:
            out.append(p)
    if "CPUExecutionProvider" not in out:
        out.append("CPUExecutionProvider")
    return out


def tensorrt_options(profile: DeviceProfile, model_path: str | os.PathLike | None = None) -> dict:
    """TensorRT execution-provider options of a profile; makes the cache folder when caching is on.

    Args:
        profile: the device profile (its ``tensorrt`` table, or TensorRT's defaults without one).
        model_path: the model, for shape profiles (:func:`trt_shape_profile`) (Default: None, none).
    """
    t = profile.tensorrt or TensorRTOptions()
    cache = os.path.expanduser(t.cache_dir)
    opts: dict = {
        "trt_fp16_enable": bool(profile.fp16),
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


def profile_session(
    profile: DeviceProfile,
    path: str | os.PathLike,
    spinning: bool | None = None,
    threads: int | None = None,
    warn_fallback: bool = True,
):
    """An ``InferenceSession`` for ``path`` configured by a device profile.

    Warns once (:class:`DeviceWarning`) when a provider is missing, when
    onnxruntime registered fewer providers than asked (e.g. TensorRT failed to
    start), and when nodes fall back to the CPU provider.

    Args:
        profile: the device profile: providers in order, threads, spinning, optimisation level.
        path: model file (.onnx or .ort).
        spinning: override the profile's spinning (``hearkit stream`` passes False).
        threads: override the profile's intra-op threads.
        warn_fallback: check node placement (needs onnxruntime >= 1.23; skipped before).
    """
    threads = check_optional("threads", threads, "threads")
    providers = provider_list(profile, path)
    names = [p if isinstance(p, str) else p[0] for p in providers]
    accel = [n for n in names if n != "CPUExecutionProvider"]
    config = {"session.record_ep_graph_assignment_info": "1"} if accel and warn_fallback else None
    sess = make_session(
        path,
        threads=profile.threads if threads is None else threads,
        spinning=profile.spinning if spinning is None else spinning,
        providers=providers,
        optimization=profile.graph_optimization,
        config=config,
    )
    got = sess.get_providers()
    for n in accel:
        if n not in got:
            _warn_once(
                ("failed", profile.name, n),
                f"device profile '{profile.name}': {n} is installed but did not start for {os.fspath(path)} "
                f"(registered: {', '.join(got)}); everything runs on the remaining providers. "
                "Call onnxruntime.set_default_logger_severity(0) before loading to see onnxruntime's reason.",
            )
    if accel and warn_fallback:
        _check_fallback(sess, profile.name, accel, os.fspath(path))
    return sess


def open_model(
    path: str | os.PathLike,
    device: str | os.PathLike | DeviceProfile | None = None,
    *,
    prefer: str = "int8",
    threads: int | None = None,
    spinning: bool | None = None,
    providers: list | None = None,
    stems: Sequence[str] = (artifacts.PIPELINE,),
):
    """The model file to run and its ``InferenceSession``, configured by a device profile when one is given.

    The one place where the runtime classes (``Classifier``, ``KeywordSpotter``,
    ``Transcriber``) turn "a path and maybe a device" into a session, so a
    profile's choices apply the same way everywhere.

    Args:
        path: a model file, an export folder or a bundle (:func:`model_file`:
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
        stems: graphs looked for in a folder, in order (Default: the waveform-in pipeline).

    Returns:
        (model path, session).

    Raises:
        ConfigError: unknown device (the message lists the known ones), or both
            ``device`` and ``providers`` given.
        ModelError: nothing to run at ``path`` (``BundleError`` for a file that differs from its manifest).
    """
    threads = check_optional("threads", threads, "threads")  # before the model is looked for: the option is at fault
    profile = None if device is None else load_profile(device)
    if profile is not None and providers is not None:
        raise ConfigError(f"give a device profile or explicit providers, not both (profile '{profile.name}' lists its own providers)")
    file = model_file(path, profile, prefer=prefer, stems=stems)
    if profile is not None:
        return file, profile_session(profile, file, spinning=spinning, threads=threads)
    sess = make_session(
        file,
        threads=1 if threads is None else threads,
        spinning=True if spinning is None else spinning,
        providers=providers,
    )
    return file, sess


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


def make_session(
    path: str | os.PathLike,
    threads: int = 1,
    spinning: bool = True,
    providers: list | None = None,
    optimization: str = "all",
    config: dict[str, str] | None = None,
):
    """An onnxruntime InferenceSession with hearkit's defaults.

    Args:
        path: model file (.onnx or .ort).
        threads: intra-op threads (Default: 1, what a small edge model wants).
        spinning: let idle threads spin. Turn off for periodic streaming: it cut
            CPU from 51 % to 3 % of a core at the same latency (docs/design.md §6).
        providers: execution providers in order (Default: CPU).
        optimization: ``all`` | ``extended`` | ``basic`` | ``none``.
        config: extra session config entries (``add_session_config_entry``),
            e.g. ``{"session.record_ep_graph_assignment_info": "1"}`` (Default: none).
    """
    # onnxruntime hung at 2000 intra-op threads; every session of hearkit passes here
    threads = check("threads", threads, "threads")
    import onnxruntime as ort

    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = levels[optimization]
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    for key, value in (config or {}).items():
        opts.add_session_config_entry(key, str(value))
    p = checked_model_path(path)
    try:
        return ort.InferenceSession(p, opts, providers=providers or ["CPUExecutionProvider"])
    except Exception as e:
        raise load_error(p, e) from e
