"""Training threads: every command that trains takes --threads, 1 by default, set before torch works.

torch's default (all cores) made `train classify --epochs 2` take 104 s wall against 15 s with one
thread on a loaded 2-core machine (docs/results.md, "Training threads").
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from hearkit.cli import main

pytest.importorskip("torch")

TRAINING_COMMANDS = (["train", "classify"], ["train", "ctc"], ["demo"])


@pytest.mark.parametrize("cmd", TRAINING_COMMANDS, ids=" ".join)
def test_every_training_command_takes_threads_defaulting_to_one(cmd):
    group = main
    for name in cmd[:-1]:
        group = group.get_command(None, name)
    command = group.get_command(None, cmd[-1])
    (opt,) = [p for p in command.params if "--threads" in getattr(p, "opts", ())]
    assert opt.default == 1
    r = CliRunner().invoke(main, [*cmd, "--help"])
    assert r.exit_code == 0 and "--threads" in r.output and "[default: 1]" in r.output.split("--threads", 1)[1][:300]


def test_api_defaults_are_one_thread():
    from hearkit.recipes.demo import DemoConfig
    from hearkit.recipes.wakeword_demo import WakewordDemoConfig
    from hearkit.training.train_classify import TrainConfig
    from hearkit.training.train_ctc import CTCTrainConfig

    assert TrainConfig(data="d", out="o").num_threads == 1
    assert CTCTrainConfig(train_manifest="t", val_manifest="v", out="o").num_threads == 1
    assert DemoConfig().threads == WakewordDemoConfig().threads == 1


def test_set_threads_sizes_both_pools_first_and_tolerates_a_second_call():
    """In a fresh process: both pools get N; after torch has worked, a second call sets intra-op and does not raise."""
    code = textwrap.dedent(
        """
        import torch
        from hearkit.training.loop import set_threads
        set_threads(1)
        print(torch.get_num_threads(), torch.get_num_interop_threads())
        torch.randn(64, 64) @ torch.randn(64, 64)
        set_threads(2)
        print(torch.get_num_threads(), torch.get_num_interop_threads())
        set_threads(None)   # torch's choice: left as it is
        print(torch.get_num_threads())
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["1 1", "2 1", "2"]


@pytest.mark.parametrize("extra, expected", [([], 1), (["--threads", "2"], 2)])
def test_demo_passes_threads_to_training_and_sets_torch_first(monkeypatch, tmp_path, extra, expected):
    """`hearkit demo` sizes torch's pools before the recipe runs, and the recipe gets the count for its training."""
    import torch

    import hearkit.recipes.demo as demo

    seen = {}

    def fake_run_demo(cfg):
        seen["cfg_threads"], seen["torch_threads"] = cfg.threads, torch.get_num_threads()
        raise SystemExit(0)

    prev = torch.get_num_threads()
    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    try:
        CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "d"), *extra])
    finally:
        torch.set_num_threads(prev)
    assert seen == {"cfg_threads": expected, "torch_threads": expected}


def test_train_classify_passes_threads(monkeypatch, tmp_path):
    import torch

    import hearkit.training.train_classify as tc

    seen = []

    def fake_train(cfg, log=None):
        seen.append((cfg.num_threads, torch.get_num_threads()))
        raise SystemExit(0)

    prev = torch.get_num_threads()
    monkeypatch.setattr(tc, "train_classifier", fake_train)
    (tmp_path / "data").mkdir()
    try:
        CliRunner().invoke(main, ["train", "classify", "--data", str(tmp_path / "data"), "--threads", "3",
                                  "-o", str(tmp_path / "r")])
    finally:
        torch.set_num_threads(prev)
    assert seen == [(3, 3)]
