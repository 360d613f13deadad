"""Packaging promises (docs/design.md §2): the wheel holds every module, and the runtime needs no torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> import prefix, as mapped by pyproject's package-dir
FOLDERS = {"runtime": "hearkit", "training": "hearkit.training", "export": "hearkit.export"}


def source_modules() -> set[str]:
    mods = set()
    for folder, prefix in FOLDERS.items():
        for py in (ROOT / folder).rglob("*.py"):
            rel = py.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            mods.add(".".join([prefix, *parts]))
    return mods


def runtime_modules() -> list[str]:
    return sorted(m for m in source_modules() if not m.startswith(("hearkit.training", "hearkit.export")))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-isolation: build with the venv's setuptools rather than fetching one
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (whl,) = out.glob("hearkit-*.whl")
    return whl


def test_wheel_holds_every_module(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    in_wheel = set()
    for n in names:
        if n.endswith(".py"):
            parts = n[:-3].split("/")
            in_wheel.add(".".join(p for p in parts if p != "__init__"))
    missing = sorted(source_modules() - in_wheel)
    assert not missing, f"modules in the source tree but not in the wheel (add them to pyproject packages): {missing}"


def test_wheel_holds_device_profiles(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    profiles = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "devices").glob("*/profile.toml"))
    for p in profiles:
        assert "hearkit/devices_data/" + p.split("/", 1)[1] in names, f"{p} is not in the wheel"


def test_runtime_imports_without_torch():
    """Every runtime module and the whole CLI help load with torch and onnx made unimportable."""
    code = textwrap.dedent(
        f"""
        import sys, importlib
        sys.modules["torch"] = None          # any `import torch` now raises ImportError
        sys.modules["onnx"] = None
        sys.modules["torchaudio"] = None
        for m in {runtime_modules()!r}:
            importlib.import_module(m)
        import hearkit
        from click.testing import CliRunner
        from hearkit.cli import main
        r = CliRunner().invoke(main, ["--help"])
        assert r.exit_code == 0, (r.output, repr(r.exception))
        for name in main.list_commands(None):
            r = CliRunner().invoke(main, [name, "--help"])
            assert r.exit_code == 0, (name, r.output, r.exception)
        assert "torch" not in {{k for k, v in sys.modules.items() if v is not None}}
        print("ok", len({runtime_modules()!r}))
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok")
