"""The layer contract (docs/design.md §12), checked by import-linter: the tree keeps it, and a breach fails.

``lint-imports`` runs in a subprocess on the real tree, then on throwaway copies of
the package under ``tmp_path`` with one breach each, to show the check can fail:
an upward import at module level, one inside a function body, a runtime module
that imports torch inside a function, a device API module that imports matplotlib
inside a function, an export task that reaches back up to the
verify skeleton, two tasks that import each other, and a new module that no layer names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="the layer contract needs import-linter (pip install 'hearkit[dev]')")

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
# folder -> place inside the package, as pyproject's package-dir maps them
FOLDERS = {"runtime": "hearkit", "training": "hearkit/training", "export": "hearkit/export", "devices": "hearkit/devices_data"}


def lint(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    if not LINT.exists():
        pytest.skip(f"{LINT} not found (import-linter's command is installed beside the interpreter)")
    return subprocess.run([str(LINT), "--no-cache", "--no-logo"], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_tree_keeps_the_contract():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    for contract in ("layers", "torch-free runtime", "device commands", "no plots in the device API", "export layers"):
        assert f"\n{contract} KEPT" in r.stdout, (contract, r.stdout[-2000:])


@pytest.fixture
def package_copy(tmp_path) -> Path:
    """A copy of the package laid out as installed (runtime/ as hearkit/, ...) with this pyproject beside it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder, dest in FOLDERS.items():
        if folder == "devices":  # profiles are data: the package marker is enough
            (tmp_path / dest).mkdir(parents=True)
            shutil.copy(ROOT / folder / "__init__.py", tmp_path / dest / "__init__.py")
        else:
            shutil.copytree(ROOT / folder, tmp_path / dest, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_copy(root: Path) -> subprocess.CompletedProcess:
    # the copy first on sys.path, ahead of the editable install's link tree
    return lint(root, env={**os.environ, "PYTHONPATH": str(root)})


def test_the_copy_keeps_the_contract(package_copy):
    """The throwaway copy is a faithful stand-in: unchanged, it passes (so the failures below are the breaches')."""
    r = lint_copy(package_copy)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


BREACHES = {
    # (file to append to, code appended, what lint-imports must name)
    "module-level upward import": (
        "hearkit/errors.py", "\nfrom hearkit.export import bench as _upward  # noqa\n",
        ["layers BROKEN", "hearkit.errors -> hearkit.export.bench"]),
    "upward import inside a function": (
        "hearkit/frontend.py", "\n\ndef _lazy():\n    from hearkit.training import augment  # noqa\n",
        ["layers BROKEN", "hearkit.frontend -> hearkit.training.augment"]),
    "torch inside a runtime function": (
        "hearkit/classify.py", "\n\ndef _lazy_torch():\n    import torch  # noqa\n",
        ["torch-free runtime BROKEN", "hearkit.classify -> torch"]),
    "matplotlib inside a device API function": (
        "hearkit/transcribe.py", "\n\ndef _lazy_plot():\n    import matplotlib  # noqa\n",
        ["no plots in the device API BROKEN", "hearkit.transcribe -> matplotlib"]),
    "a task reaching back up to the verify skeleton": (
        "hearkit/export/classify.py", "\n\ndef _lazy_skeleton():\n    from hearkit.export import verify  # noqa\n",
        ["export layers BROKEN", "hearkit.export.classify -> hearkit.export.verify"]),
    "two tasks importing each other": (
        "hearkit/export/ctc.py", "\nfrom hearkit.export import classify as _sibling  # noqa\n",
        ["export layers BROKEN", "hearkit.export.ctc -> hearkit.export.classify"]),
    "a device command reaching the training side": (
        "hearkit/commands/run.py", "\n\ndef _lazy_train():\n    from hearkit.workbench import export  # noqa\n",
        ["device commands BROKEN", "hearkit.commands.run -> hearkit.workbench.export"]),
    "torch inside a device command": (
        "hearkit/commands/stream.py", "\n\ndef _lazy_torch():\n    import torch  # noqa\n",
        ["torch-free runtime BROKEN", "hearkit.commands.stream -> torch"]),
    "a module no layer names": (
        "hearkit/unplaced.py", '"""A new module the contract does not list."""\n',
        ["layers BROKEN", "unplaced"]),
}


@pytest.mark.parametrize("breach", list(BREACHES))
def test_a_breach_fails(package_copy, breach):
    rel, code, expected = BREACHES[breach]
    path = package_copy / rel
    with open(path, "a") as f:
        f.write(code)
    r = lint_copy(package_copy)
    assert r.returncode != 0, r.stdout[-4000:]
    for text in expected:
        assert text in r.stdout, (text, r.stdout[-4000:])


def test_one_task_registry_serves_runtime_and_export():
    """The runtime's registry (hearkit.tasks) knows every task export/ can write, and export's tasks take
    their runner from it; the metadata schema knows every task of the registry."""
    from hearkit.export.tasks import TASKS as EXPORT_TASKS
    from hearkit.metadata import TASKS as METADATA_TASKS
    from hearkit.tasks import TASKS, get_task

    assert set(EXPORT_TASKS) == set(TASKS) and set(TASKS) < set(METADATA_TASKS)
    for name, t in EXPORT_TASKS.items():
        assert t.runtime is TASKS[name]
    assert TASKS["classify"].runner().__name__ == "Classifier" and TASKS["ctc"].runner().__name__ == "Transcriber"
    from hearkit.errors import ModelError

    with pytest.raises(ModelError, match="has no runtime"):
        get_task("frontend", "frontend.onnx")
