"""``hearkit.artifacts``: file names, export folders, bundles and ``resolve``; torch-free.

The model files here are a few bytes each: ``resolve`` chooses and verifies files
by name and sha256, it never parses them, so no ONNX graph is needed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hearkit import artifacts as art
from hearkit.errors import ConfigError, ModelError


def _export(folder: Path, variants=("fp32", "int8")) -> Path:
    """A folder with the graphs an export writes for ``variants`` (dummy bytes, one distinct payload per file)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / art.file_name(art.FRONTEND)).write_bytes(b"frontend")
    for v in variants:
        for stem in (art.MODEL, art.PIPELINE):
            (folder / art.file_name(stem, v)).write_bytes(f"{stem} {v}".encode())
    return folder


def _bundle(folder: Path, variants=("fp32", "int8"), kinds=("onnx", "ort")) -> Path:
    """A bundle: pipelines of ``variants`` in ``kinds`` plus a manifest listing each with sha256 and size."""
    folder.mkdir(parents=True)
    for v in variants:
        for k in kinds:
            (folder / art.file_name(art.PIPELINE, v, k)).write_bytes(f"pipeline {v} {k}".encode())
    files = {p.name: {"sha256": art.sha256_file(p), "bytes": p.stat().st_size} for p in sorted(folder.iterdir())}
    art.write_manifest(folder, {"format": art.BUNDLE_FORMAT, "schema": art.BUNDLE_SCHEMA, "files": files})
    return folder


# -- names -------------------------------------------------------------------------


def test_file_names_round_trip():
    assert art.file_name(art.PIPELINE) == "pipeline.onnx"
    assert art.file_name(art.PIPELINE, art.INT8) == "pipeline.int8.onnx"
    assert art.file_name(art.MODEL, "fp16", art.ORT) == "model.fp16.ort"
    assert art.file_name(art.MODEL, "qdq-u8u8") == "model.qdq-u8u8.onnx"  # a recipe name as the variant tag
    for stem in art.STEMS:
        for v in (*art.VARIANTS, "qdq-symmetric"):
            for k in art.KINDS:
                assert art.parse_name(art.file_name(stem, v, k)) == (stem, v, k)
    assert art.as_kind("pipeline.int8.onnx", art.ORT) == "pipeline.int8.ort"
    assert art.EXPORT_SUMMARY == "export.json"
    assert art.MANIFEST == "manifest.json"
    assert art.variant_files("int8") == {"model": "model.int8.onnx", "pipeline": "pipeline.int8.onnx"}
    for not_ours in ("report.json", "pipeline_old.onnx", "pipeline.a.b.onnx", "net.onnx", "pipeline..onnx"):
        assert art.parse_name(not_ours) is None, not_ours


@pytest.mark.parametrize("args", [("net",), ("pipeline", "int8", "pt"), ("pipeline", "a.b"), ("pipeline", "")])
def test_file_name_refuses_what_is_not_a_hearkit_name(args):
    with pytest.raises(ConfigError, match="must be"):
        art.file_name(*args)


def test_variant_order_is_prefer_then_fixed():
    assert art.variant_order("int8") == ("int8", "fp32", "fp16")
    assert art.variant_order("fp32") == ("fp32", "int8", "fp16")
    assert art.variant_order("fp16") == ("fp16", "int8", "fp32")
    with pytest.raises(ModelError, match=r"prefer must be one of \['int8', 'fp32', 'fp16'\], got 'int4'"):
        art.variant_order("int4")
    assert art.candidates("fp32", "ort", (art.PIPELINE, art.MODEL)) == [
        "pipeline.ort", "pipeline.int8.ort", "pipeline.fp16.ort", "model.ort", "model.int8.ort", "model.fp16.ort"]


# -- resolve ----------------------------------------------------------------------


def test_resolve_a_file_is_the_file(tmp_path):
    f = tmp_path / "anything.onnx"
    f.write_bytes(b"x")
    assert art.resolve(f) == f
    assert art.resolve(f, prefer="fp16", kind="ort") == f  # a file outside a bundle is taken as given
    with pytest.raises(ModelError, match="no such model file, export folder or bundle"):
        art.resolve(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="prefer must be one of"):
        art.resolve(f, prefer="best")


def test_resolve_an_export_folder_follows_prefer(tmp_path):
    d = _export(tmp_path / "e", ("fp32", "int8"))
    assert art.resolve(d) == d / "pipeline.int8.onnx"
    assert art.resolve(d, prefer="fp32") == d / "pipeline.onnx"
    assert art.resolve(d, prefer="fp16") == d / "pipeline.int8.onnx"  # fp16 absent: int8 is next in the fixed order
    only16 = _export(tmp_path / "f", ("fp16",))
    assert art.resolve(only16) == only16 / "pipeline.fp16.onnx"
    with pytest.raises(ModelError, match=r"no model in this folder \(looked for pipeline\.int8\.ort, pipeline\.ort"):
        art.resolve(d, kind="ort")
    # the network alone is found only when asked for (hearkit run does)
    net = tmp_path / "n"
    net.mkdir()
    (net / "model.onnx").write_bytes(b"net")
    with pytest.raises(ModelError, match="looked for pipeline.int8.onnx, pipeline.onnx, pipeline.fp16.onnx"):
        art.resolve(net)
    assert art.resolve(net, stems=(art.PIPELINE, art.MODEL)) == net / "model.onnx"


def test_resolve_a_bundle_verifies_and_refuses_a_tampered_file(tmp_path):
    b = _bundle(tmp_path / "b")
    assert art.resolve(b) == b / "pipeline.int8.onnx"
    assert art.resolve(b, prefer="fp32", kind="ort") == b / "pipeline.ort"
    assert art.resolve(b / "pipeline.onnx") == b / "pipeline.onnx"
    # same size, one byte flipped: only the sha256 can tell
    victim = b / "pipeline.int8.onnx"
    data = bytearray(victim.read_bytes())
    data[0] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(art.BundleError, match=r"pipeline\.int8\.onnx: sha256 .* does not match manifest\.json"):
        art.resolve(b)
    with pytest.raises(art.BundleError, match=r"pipeline\.int8\.onnx: sha256"):
        art.resolve(victim)
    assert art.resolve(b, prefer="fp32") == b / "pipeline.onnx"  # untouched files still run
    # a longer file is caught by its size before hashing
    victim.write_bytes(bytes(data) + b"!")
    with pytest.raises(art.BundleError, match="bytes, but manifest.json says"):
        art.resolve(b)
    # a file the manifest does not list is never run, and a listed one that is gone is named
    (b / "pipeline.fp16.onnx").write_bytes(b"unlisted")
    with pytest.raises(art.BundleError, match="not listed"):
        art.resolve(b / "pipeline.fp16.onnx")
    (b / "pipeline.ort").unlink()
    with pytest.raises(art.BundleError, match="missing from the bundle"):
        art.resolve(b, prefer="fp32", kind="ort")
    with pytest.raises(art.BundleError, match="the bundle has none of"):
        art.resolve(_bundle(tmp_path / "c", ("int8",), ("onnx",)), kind="ort")


def test_manifest_checks(tmp_path):
    b = _bundle(tmp_path / "b")
    assert set(art.verify_bundle(b)["files"]) == {p.name for p in b.iterdir() if p.name != art.MANIFEST}
    assert art.is_bundle(b) and not art.is_bundle(tmp_path) and not art.is_bundle(b / "pipeline.onnx")
    bad = {"format": art.BUNDLE_FORMAT, "schema": art.BUNDLE_SCHEMA, "files": {"../x.onnx": {"sha256": "0", "bytes": 1}}}
    (b / art.MANIFEST).write_text(json.dumps(bad))
    with pytest.raises(art.BundleError, match="stay inside it"):
        art.load_manifest(b)
    (b / art.MANIFEST).write_text(json.dumps({**bad, "schema": art.BUNDLE_SCHEMA + 1}))
    with pytest.raises(art.BundleError, match="upgrade hearkit"):
        art.load_manifest(b)
    (b / art.MANIFEST).write_text('{"name": "a web app"}')
    with pytest.raises(art.BundleError, match="'format' must be 'hearkit-bundle'"):
        art.resolve(b)


# -- export folders ---------------------------------------------------------------


def test_list_variants_and_check_export(tmp_path):
    d = _export(tmp_path / "e", ("int8", "fp32", "qdq-u8u8"))
    (d / "pipeline.fp16.onnx").write_bytes(b"no network beside it")
    (d / "pipeline_old.onnx").write_bytes(b"not a hearkit name")
    got = [(v, p.name, n.name if n else None) for v, p, n in art.list_variants(d)]
    assert got == [("fp32", "pipeline.onnx", "model.onnx"), ("fp16", "pipeline.fp16.onnx", None),
                   ("int8", "pipeline.int8.onnx", "model.int8.onnx"), ("qdq-u8u8", "pipeline.qdq-u8u8.onnx", "model.qdq-u8u8.onnx")]
    assert art.check_export(d) == d
    (d / "model.onnx").unlink()
    with pytest.raises(ModelError, match=r"not an export folder \(no model\.onnx\); make one with `hearkit export`"):
        art.check_export(d)


def test_read_export_names_what_is_wrong(tmp_path):
    with pytest.raises(ModelError, match="no export.json here"):
        art.read_export(tmp_path)
    (tmp_path / "export.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        art.read_export(tmp_path)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != art.EXPORT_SUMMARY)


def test_write_export_is_atomic(tmp_path, monkeypatch):
    """A failure while writing (mid-JSON, or at the final rename) leaves the previous export.json and no temporary file."""
    first = {"task": "classify", "files": {"pipeline.onnx": {"bytes": 3}}}
    path = art.write_export(tmp_path, first)
    assert path == tmp_path / "export.json"
    assert path.read_text() == json.dumps(first, indent=2) + "\n"  # the bytes the exporters always wrote
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as a plain open() would make it, not mkstemp's 0600
    before = path.read_bytes()

    # json.dump streams: the keys before the bad value are already in the temporary file when it fails
    with pytest.raises(TypeError, match="not JSON serializable"):
        art.write_export(tmp_path, {"task": "classify", "checks": ["x" * 10_000], "bad": object()})
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []

    def broken_replace(src, dst):
        assert Path(src).read_text().startswith("{")  # the new summary was complete in the temporary file
        raise OSError("simulated: disk went away")

    monkeypatch.setattr(art.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        art.write_export(tmp_path, {"task": "ctc"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    assert art.read_export(tmp_path) == first
    art.write_export(tmp_path, {"task": "ctc"})
    assert art.read_export(tmp_path) == {"task": "ctc"}


# -- layers -----------------------------------------------------------------------


def test_artifacts_and_profiles_need_no_onnxruntime():
    """artifacts imports neither devices nor sessions (no circle); profiles load without onnxruntime."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["onnxruntime"] = None   # any `import onnxruntime` now raises ImportError
        import hearkit.artifacts
        loaded = {m for m in sys.modules if m.startswith("hearkit.")}
        assert not loaded & {"hearkit.devices", "hearkit.sessions"}, loaded
        import hearkit.devices, hearkit.sessions
        p = hearkit.devices.load_profile("raspberry-pi-5")
        assert p.prefer in hearkit.artifacts.VARIANTS
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_export_recipes_are_the_profile_recipe_type():
    pytest.importorskip("onnx", reason="the export's recipes need hearkit[train] (onnx)")
    from hearkit.devices import QuantRecipe, load_profile
    from hearkit.export.package import device_recipe
    from hearkit.export.quantize import RECIPES

    assert all(type(r) is QuantRecipe and r.name == k and r.why for k, r in RECIPES.items())
    avx2 = load_profile("x86-avx2")
    assert device_recipe(avx2) is RECIPES["qdq-u8s8-reduce-range"]  # same settings: the registered recipe itself
    pi4 = load_profile("raspberry-pi-4")
    r = device_recipe(pi4)
    assert r.name == "device-raspberry-pi-4" and r.to_dict() == pi4.quantization.to_dict() and r.static
    assert r.matches({"recipe": "x", **pi4.quantization.to_dict()}) and not r.matches({})
    assert list(QuantRecipe().to_dict()) == list(QuantRecipe.SETTINGS)  # a profile's [quantization] keys only
