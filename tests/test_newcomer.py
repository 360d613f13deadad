"""A newcomer's rough edges (issue 20): `-o` spelled both ways."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from hearkit.cli import main


def _commands(group=main, path=()):
    """(path, command) of every command under the CLI, lazy ones and sub-groups included."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def _out_params():
    return [(" ".join(path), p) for path, cmd in _commands() for p in cmd.params if "-o" in getattr(p, "opts", ())]


def test_every_o_option_takes_out_and_output_with_out_documented():
    found = _out_params()
    assert len(found) >= 13, [name for name, _ in found]  # train x2, data x4, export, package, demo, show, lm, ...
    for name, p in found:
        assert {"-o", "--out", "--output"} <= set(p.opts), (name, p.opts)
        record = p.get_help_record(click.Context(main))
        assert record[0].startswith("-o, --out ") and "--output" not in record[0], (name, record)


@pytest.mark.parametrize("spelling", ["-o", "--out", "--output"])
def test_lm_build_writes_with_each_spelling(tmp_path, spelling):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("yes no yes\nno up down\n")
    out = tmp_path / "lm.arpa"
    r = CliRunner().invoke(main, ["lm", "build", str(corpus), spelling, str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("\\data\\")
