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


def test_ctc_calibration_windows_are_cut_one_way_by_export_and_package(tmp_path):
    """export's CTC calibration and package's re-quantization take the same windows: the utterances back to
    back in the task's 3-s windows (package once took each file's centre 4 s)."""
    pytest.importorskip("onnx", reason="export needs hearkit[train]")
    import json
    from types import SimpleNamespace

    import numpy as np
    import soundfile as sf

    from hearkit.audio import load_stream_windows
    from hearkit.export.ctc import calibration_windows
    from hearkit.export.package import calibration_waveforms

    rng = np.random.default_rng(0)
    files = []
    for i, seconds in enumerate((2.5, 1.0, 4.0)):
        files.append(tmp_path / f"u{i}.wav")
        sf.write(files[-1], (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="FLOAT")
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"audio_filepath": str(f), "duration": 1.0, "text": "a"}) + "\n"
                                             for f in files))
    exported, n = calibration_windows(tmp_path / "m.jsonl", 16000)
    packaged = calibration_waveforms(SimpleNamespace(task="ctc", window_samples=None,
                                                     frontend=SimpleNamespace(sample_rate=16000)), files)
    assert n == 3 and exported.shape == (2, 48000)  # 7.5 s: two whole 3-s windows, the last half window dropped
    np.testing.assert_array_equal(exported, packaged)  # exactly: the same reads, the same cut
    assert load_stream_windows(files[1:2], 16000, 48000).shape == (1, 48000)  # 1 s padded to one window
