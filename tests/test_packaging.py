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
def wheel_build(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("wheel")
    # --no-isolation: build with the venv's setuptools rather than fetching one
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (whl,) = out.glob("hearkit-*.whl")
    return whl, r.stdout + r.stderr


@pytest.fixture(scope="module")
def wheel(wheel_build) -> Path:
    return wheel_build[0]


def test_wheel_build_log_has_no_warnings_from_pyproject(wheel_build):
    """The install log is for the user: setuptools' warnings about pyproject.toml (a licence as a
    TOML table, a folder missing from `packages`) were ~178 lines of it. Only the
    environment's "byte-compiling is disabled" (PYTHONDONTWRITEBYTECODE) may say "warning"."""
    _, log = wheel_build
    warnings = [
        line for line in log.splitlines() if "warn" in line.lower() and "byte-compiling is disabled" not in line
    ]
    assert not warnings, "\n".join(warnings[:10])


def test_pyproject_lists_every_package_folder():
    """Every folder under a mapped package that Python could import is in `packages`, data-only ones too."""
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    for prefix, folder in conf["package-dir"].items():
        for d in (ROOT / folder).rglob("*"):
            rel = d.relative_to(ROOT / folder)
            if d.is_dir() and all(p.isidentifier() for p in rel.parts) and "__pycache__" not in rel.parts:
                name = ".".join([prefix, *rel.parts])
                if not any(name.startswith(m + ".") for m in conf["package-dir"] if m != prefix and m.startswith(prefix)):
                    assert name in listed, f"{d.relative_to(ROOT)} is importable as {name}: add it to pyproject packages"


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
