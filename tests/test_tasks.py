"""The task interface (hearkit.export.task, hearkit.export.tasks): the registry, each task's
declarations, and how command-line values become skeleton arguments. Torch-free: these
are the declarations the CLI reads on a device without torch."""

from __future__ import annotations

import dataclasses

import pytest

from hearkit.errors import ConfigError, ModelError
from hearkit.export.task import EXPORT, VERIFY, Task
from hearkit.export.tasks import TASKS, get_task, merged_options


def test_registry_holds_every_task_under_its_name():
    assert sorted(TASKS) == ["classify", "ctc"]
    for name, t in TASKS.items():
        assert isinstance(t, Task) and t.name == name
        assert dataclasses.is_dataclass(t.thresholds) and t.thresholds.__dataclass_params__.frozen
        assert t.unit in ("clips", "utterances") and t.calibration_clips >= 1 and t.fp32_check_atol > 0
    with pytest.raises(ModelError, match=r"task is 'kws'.*supported: \['classify', 'ctc'\]"):
        get_task("kws", "best.pt", "checkpoint")


@pytest.mark.parametrize("command", [EXPORT, VERIFY])
def test_every_threshold_field_has_an_option_and_every_option_a_destination(command):
    for t in TASKS.values():
        fields = {f.name for f in dataclasses.fields(t.thresholds)}
        limits = {o.dest for o in t.options(command) if o.threshold}
        assert limits <= fields, (t.name, limits - fields)
        if command == VERIFY:
            assert limits == fields, f"{t.name}: thresholds without a flag: {fields - limits}"


def test_verify_values_become_the_task_thresholds_in_its_units():
    ctc = TASKS["ctc"]
    kw = ctc.parse_options(VERIFY, {"fp32_atol": 0.5, "quant_max_drop": 2.0, "manifest": "m.jsonl", "split": None})
    th = kw.pop("thresholds")
    assert kw == {"manifest": "m.jsonl"}
    assert th.fp32_logprob_atol == 0.5
    assert th.quant_max_cer_increase == pytest.approx(0.02, rel=1e-12)  # points -> fraction, one float multiplication
    assert th.fp32_transcript_agreement == ctc.thresholds().fp32_transcript_agreement  # not given: the default
    clf = TASKS["classify"].parse_options(VERIFY, {"quant_max_drop": 3.0, "fp32_agreement": 0.5})["thresholds"]
    assert clf.quant_max_accuracy_drop == pytest.approx(0.03, rel=1e-12) and clf.fp32_top1_agreement == 0.5


def test_an_option_the_task_does_not_read_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"--quant-agreement does not apply to ctc exports; ctc reads .*--manifest"):
        TASKS["ctc"].parse_options(VERIFY, {"quant_agreement": 0.9})
    with pytest.raises(ConfigError, match="--manifest does not apply to classify exports"):
        TASKS["classify"].parse_options(VERIFY, {"manifest": "m.jsonl"})
    with pytest.raises(ConfigError, match="--format, --split do not apply to ctc"):
        TASKS["ctc"].parse_options(VERIFY, {"format": "fsdd", "split": "test"})


def test_export_values_go_to_the_skeleton_keywords():
    assert TASKS["classify"].parse_options(EXPORT, {"data": "d", "format": None, "calibration_clips": 24}) == {
        "data": "d", "calibration_clips": 24}
    assert TASKS["ctc"].parse_options(EXPORT, {"manifest": "m", "data": None}) == {"manifest": "m"}


def test_shared_flags_are_one_option_whose_help_names_each_task_and_default():
    merged = {o.flag: h for o, h in merged_options(VERIFY)}
    assert len(merged) == len({o.flag for t in TASKS.values() for o in t.verify_options})
    assert "classify: max |fp32 logits - torch logits| (default: 0.001)" in merged["--fp32-atol"]
    assert "ctc: max |fp32 log-probs - torch log-probs| (default: 0.005)" in merged["--fp32-atol"]
    assert "(default: 1)" in merged["--quant-max-drop"] and "(default: 0.5)" in merged["--quant-max-drop"]  # points
    assert merged["--quant-agreement"].startswith("classify:") and "ctc:" not in merged["--quant-agreement"]
