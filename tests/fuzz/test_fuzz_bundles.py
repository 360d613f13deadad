"""Fuzz: mutated bundle manifests through load_manifest, verify_bundle and resolve (hearkit.artifacts).

A bundle folder holds a few files and a valid ``manifest.json``; beside it lies a
file outside the bundle that no manifest may reach. Each example either rewrites
the manifest as JSON (wrong types, missing keys, names with ``..``, absolute or
empty names, NUL bytes, huge numbers, extra entries naming files outside the
bundle) or mutates its text (bytes flipped, truncated, non-UTF-8, a BOM, deep
nesting, 5000-digit numbers). The readers refuse with a one-line ``HearkitError``
or answer right: every file a verified manifest lists lies inside the bundle with
the size and sha256 it states, and ``resolve`` returns only such a file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearkit import artifacts

pytestmark = pytest.mark.fuzz
TARGET = "bundle manifests"
FILES = {"pipeline.int8.onnx": b"int8 graph bytes", "pipeline.onnx": b"fp32 graph bytes" * 3,
         "model.onnx": b"network", "README.md": b"# run me\n", "sub/extra.bin": b"\x00\x01"}
OUTSIDE = "secret.onnx"  # beside the bundle folder: never listed, never returned


def budget(weight: float):
    """The active profile's max_examples times ``weight`` (see conftest.py)."""
    return settings(max_examples=max(3, round(settings.default.max_examples * weight)))


def valid_manifest() -> dict:
    return {"format": artifacts.BUNDLE_FORMAT, "schema": artifacts.BUNDLE_SCHEMA, "device": "cpu",
            "files": {n: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for n, b in FILES.items()}}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_bundle")
    (root / OUTSIDE).write_bytes(b"outside")
    b = root / "bundle"
    for name, data in FILES.items():
        (b / name).parent.mkdir(parents=True, exist_ok=True)
        (b / name).write_bytes(data)
    return b


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
names = st.sampled_from([
    "../secret.onnx", f"{'/'.join(['..'] * 3)}/etc/passwd", "/etc/passwd", "", ".", "./pipeline.onnx",
    "sub/../pipeline.onnx", "sub", "pipeline.onnx/", "pipe\x00line.onnx", "x" * 5000, "pipeline.int8.onnx",
    "pipeline.fp16.onnx", "model.int8.ort", "\\..\\secret.onnx", "sub//extra.bin",
]) | st.text(max_size=12)
entry = st.fixed_dictionaries({}, optional={
    "sha256": st.sampled_from([hashlib.sha256(b).hexdigest() for b in FILES.values()]) | json_values,
    "bytes": st.sampled_from([len(b) for b in FILES.values()] + [-1, 0, 10**30, True]) | json_values,
}) | json_values
structured = st.one_of(
    st.tuples(st.just("top"), st.sampled_from(["format", "schema", "files", "device"]), json_values),
    st.tuples(st.just("deltop"), st.sampled_from(["format", "schema", "files"])),
    st.tuples(st.just("entry"), names, entry),
    st.tuples(st.just("delentry"), st.sampled_from(sorted(FILES))),
    st.tuples(st.just("field"), st.sampled_from(sorted(FILES)), st.sampled_from(["sha256", "bytes"]), json_values),
)
textual = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 600)),
    st.tuples(st.just("flip"), st.integers(0, 600), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 600), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("bom"),),
    st.tuples(st.just("deep"), st.sampled_from([100, 5000, 100000])),
    st.tuples(st.just("bigint"), st.sampled_from(["schema", "bytes"])),
)


def build(ops) -> bytes:
    m = valid_manifest()
    text_ops = []
    for op in ops:
        kind = op[0]
        if kind == "top":
            m[op[1]] = copy.deepcopy(op[2])
        elif kind == "deltop":
            m.pop(op[1], None)
        elif kind in ("entry", "delentry", "field"):
            if not isinstance(m.get("files"), dict):
                m["files"] = {}
            if kind == "entry":
                m["files"][op[1]] = copy.deepcopy(op[2])
            elif kind == "delentry":
                m["files"].pop(op[1], None)
            elif isinstance(m["files"].get(op[1]), dict):
                m["files"][op[1]][op[2]] = copy.deepcopy(op[3])
        else:
            text_ops.append(op)
    raw = json.dumps(m, indent=2).encode()
    for op in text_ops:
        kind = op[0]
        if kind == "truncate":
            raw = raw[: op[1]]
        elif kind == "flip" and raw:
            b = bytearray(raw)
            b[op[1] % len(b)] ^= op[2]
            raw = bytes(b)
        elif kind == "insert":
            raw = raw[: op[1]] + op[2] + raw[op[1]:]
        elif kind == "bom":
            raw = b"\xef\xbb\xbf" + raw
        elif kind == "deep":
            raw = raw.replace(b'"device": "cpu"', b'"device": ' + b"[" * op[1] + b"]" * op[1], 1)
        elif kind == "bigint":
            raw = raw.replace(b'"schema": 1' if op[1] == "schema" else b'"bytes": 7', b'"%s": %s' % (op[1].encode(), b"1" * 5000), 1)
    return raw


def listed_ok(bundle: Path, name: str, m: dict) -> bool:
    """``name`` is a file inside ``bundle`` whose size and sha256 are the manifest's."""
    p = (bundle / name)
    try:
        inside = p.resolve().is_relative_to(bundle.resolve())
    except (OSError, ValueError):
        return False
    e = m["files"].get(name)
    return (inside and p.is_file() and isinstance(e, dict) and e.get("bytes") == p.stat().st_size
            and e.get("sha256") == hashlib.sha256(p.read_bytes()).hexdigest())


@budget(3.0)
@given(ops=st.lists(structured | textual, min_size=1, max_size=5), prefer=st.sampled_from(artifacts.VARIANTS),
       kind=st.sampled_from(artifacts.KINDS))
def test_mutated_manifest_is_refused_or_verified(fuzz, bundle, ops, prefer, kind):
    fuzz.example(TARGET)
    (bundle / artifacts.MANIFEST).write_bytes(build(ops))
    outside = (bundle.parent / OUTSIDE).read_bytes()

    m, _ = fuzz.call(TARGET, artifacts.load_manifest, bundle)
    v, _ = fuzz.call(TARGET, artifacts.verify_bundle, bundle)
    if v is not None:
        bad = [n for n in v["files"] if not listed_ok(bundle, n, v)]
        fuzz.wrong("bundle_verified_wrong_file", bool(bad), f"verify_bundle passed, but {bad!r} are not verified files of the bundle")
    for target in (bundle, bundle / "pipeline.onnx"):
        p, _ = fuzz.call(TARGET, artifacts.resolve, target, prefer, kind)
        if p is not None:
            name = Path(p).relative_to(bundle).as_posix() if Path(p).is_relative_to(bundle) else str(p)
            fuzz.wrong("bundle_resolved_unverified", m is None or not listed_ok(bundle, name, m),
                       f"resolve({target.name}) returned {p}, not a verified file of the bundle")
    assert (bundle.parent / OUTSIDE).read_bytes() == outside, "a file outside the bundle changed"
