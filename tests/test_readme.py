"""The README's Quick start works for a newcomer: after `make demo`, its activation step puts
`hearkit` on PATH in a clean shell, every `hearkit` command it lists exists, and the files those
commands read are ones the demo writes.

Fast on purpose: each command's `--help` in bash whose PATH holds nothing until the README's own
activation line runs, so `hearkit` is found only through it and PATH is then the venv's `bin`
alone. `make demo` itself is the demo's tests' job.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def quick_start() -> list[str]:
    """The command lines of the Quick start's code block (4-space indented), comments stripped."""
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    lines = [line[4:] for line in section.splitlines() if line.startswith("    ")]
    return [line.split("  #", 1)[0].strip() for line in lines if line.strip()]


def after_demo() -> list[str]:
    cmds = quick_start()
    assert "make demo" in cmds, cmds
    return cmds[cmds.index("make demo") + 1:]


def hearkit_commands() -> list[list[str]]:
    return [shlex.split(c) for c in after_demo() if c.startswith("hearkit ")]


def test_quick_start_lists_three_hearkit_commands_after_the_demo_and_activates_first():
    cmds = after_demo()
    assert len(hearkit_commands()) >= 3, cmds
    first = next(i for i, c in enumerate(cmds) if c.startswith("hearkit "))
    assert any(c.startswith(("source .venv/bin/activate", ". .venv/bin/activate")) for c in cmds[:first]), \
        f"no activation before {cmds[first]!r}: `hearkit` is not on PATH after `make demo` alone"


def _subcommand(argv: list[str]) -> list[str]:
    """The command path of a hearkit command line: the words before the first option or argument path."""
    from hearkit.cli import main

    import click

    path, group = [], main
    for word in argv[1:]:
        if not isinstance(group, click.Group):
            break
        cmd = group.get_command(click.Context(group), word)
        assert cmd is not None, f"`{' '.join(argv)}`: hearkit has no command {word!r}"
        path.append(word)
        group = cmd
    return path


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "activate").is_file(), reason="no .venv: `make` creates it")
@pytest.mark.parametrize("argv", hearkit_commands(), ids=lambda a: " ".join(a[:2]))
def test_each_command_runs_after_activation_in_a_clean_shell(argv):
    """`--help` of the command in a clean bash (no PATH at all) after the README's activation line."""
    activate = next(c for c in after_demo() if "activate" in c)
    sub = _subcommand(argv)
    script = (f"cd {shlex.quote(str(ROOT))} && {activate} && [ \"$(command -v hearkit)\" = \"$PWD/.venv/bin/hearkit\" ] "
              f"&& hearkit {' '.join(sub)} --help")
    env = {"PATH": "/nonexistent", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    r = subprocess.run(["/bin/bash", "--noprofile", "--norc", "-c", script], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith(f"Usage: hearkit {' '.join(sub)}".rstrip()), r.stdout[:200]
    # and the options the README gives are options of that command
    help_text = r.stdout
    for word in argv[1 + len(sub):]:
        if word.startswith("-"):
            assert re.search(rf"(^|[\s,]){re.escape(word.split('=')[0])}[\s,=]", help_text), \
                f"`{' '.join(argv)}`: {word} is not in `hearkit {' '.join(sub)} --help`"


def test_paths_the_commands_read_are_what_the_demo_writes():
    """runs/demo/... in the Quick start names files `hearkit demo` writes (its folder's entries, its sentence,
    its synthesized keyword set with validation voices v110-v134)."""
    from hearkit.workbench.demo import DEMO_ENTRIES
    from hearkit.recipes.demo import TRAIN_VOICES, VAL_VOICES

    seen = 0
    for argv in hearkit_commands():
        for word in argv:
            if word.startswith("runs/demo/"):
                seen += 1
                rel = word.removeprefix("runs/demo/").split("/")
                assert rel[0] in DEMO_ENTRIES, word
                m = re.fullmatch(r"v(\d{3})_nohash_0\.flac", rel[-1])
                if rel[0] == "keywords" and m:
                    assert TRAIN_VOICES <= int(m.group(1)) < TRAIN_VOICES + VAL_VOICES, f"{word}: not a validation voice"
    assert seen >= 3


def test_every_make_target_the_readme_names_exists():
    """`make wheel` (how a device gets hearkit: no index has it) and the rest are targets of the Makefile."""
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"^\s{4}make ([a-z][a-z-]*)", README.read_text(), re.M))
    assert {"demo", "test", "wheel"} <= named, named
    assert named <= targets, sorted(named - targets)
    assert "pip install hearkit " not in README.read_text()  # not on an index: the wheel or a checkout
