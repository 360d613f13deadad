"""hearkit calibrate: thresholds measured on negatives land in the model's metadata and the spotter uses them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000


@pytest.fixture(scope="module")
def kws(make_classifier_export, tmp_path_factory) -> tuple[Path, Path]:
    """An fp32 export of an untrained cnn4-s with two keywords, and a folder of negative audio."""
    export = make_classifier_export(["_silence_", "go", "stop"])
    tmp = tmp_path_factory.mktemp("cal")
    neg = tmp / "neg" / "left"
    neg.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    for i in range(40):  # 80 s of tones and noise
        x = 0.2 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (t % 0.7 < 0.35) + 0.05 * rng.standard_normal(t.size)
        sf.write(neg / f"n{i}.wav", x.astype(np.float32), SR)
    return export, tmp / "neg"


def test_calibrate_writes_thresholds_the_spotter_uses(kws):
    from hearkit.classify import KeywordSpotter
    from hearkit.evaluate.detector import audio_files
    from hearkit.export.thresholds import calibrate
    from hearkit.metadata import read_model_info

    export, neg = kws
    hours = 80 / 3600
    target = 2 / hours  # two false alarms in the 80 s
    res = calibrate(export, [neg], fa_per_hour=target, hop_seconds=0.2, smoothing=2, refractory_seconds=0.5)
    th = res["pipeline.onnx"]["thresholds"]
    assert set(th) == {"go", "stop"} and all(0.0 <= v <= 1.0 for v in th.values())
    for name in ("pipeline.onnx", "model.onnx"):
        det = read_model_info(export / name).detector
        assert det["thresholds"] == th and det["hop_seconds"] == 0.2 and det["smoothing"] == 2
        assert det["calibration"]["target_fa_per_hour"] == pytest.approx(target, rel=1e-12)
    spot = KeywordSpotter(export)
    assert spot.hop_samples == int(0.2 * SR) and spot.logic.smoothing == 2 and spot.logic.refractory_seconds == 0.5
    assert spot.logic.thresholds == th
    assert KeywordSpotter(export, thresholds=0.9).logic.default_threshold == 0.9  # an argument still wins
    # each label alone, at its threshold, keeps the target on the negatives it was measured on
    for label, v in th.items():
        s = KeywordSpotter(export, thresholds={label: v, **{o: 2.0 for o in th if o != label}})
        fired = [d for f in audio_files(neg) for d in s.accept_waveform(sf.read(f, dtype="float32")[0])]
        fired += s.flush()
        assert len(fired) <= 2, (label, v, fired)
    assert json.loads((export / "export.json").read_text())["calibration"]["target_fa_per_hour"] == pytest.approx(target)


def test_calibrate_refuses_what_it_cannot_do(kws, tmp_path):
    from hearkit.errors import ConfigError
    from hearkit.export.thresholds import calibrate, threshold_for_negatives

    export, neg = kws
    with pytest.raises(ConfigError, match="fa-per-hour"):
        calibrate(export, [neg], fa_per_hour=0)
    with pytest.raises(ConfigError, match="negatives"):
        calibrate(export, [], fa_per_hour=1)
    # the top range that keeps the target, never an isolated dip below it
    assert threshold_for_negatives([0.5, 9.0, 3.0, 1.0, 0.0], [0.1, 0.3, 0.5, 0.7, 0.9], 1.0) == 0.7
    assert threshold_for_negatives([5.0, 4.0], [0.2, 0.8], 1.0) == 0.8  # none keeps it: the highest


@pytest.mark.parametrize("detector, match", [
    ({"thresholds": {"nope": 0.5}}, "map model labels"),
    ({"thresholds": {"go": 1.5}}, r"in \[0, 1\]"),
    ({"thresholds": {"go": True}}, r"in \[0, 1\]"),
    ({"smoothing": 0}, "smoothing"),
    ({"hop_seconds": -1}, "hop_seconds"),
    ({"refractory_seconds": 1e9}, "refractory_seconds"),
    ({"colour": "red"}, "unknown fields"),
])
def test_hostile_detector_metadata_is_refused(detector, match):
    from hearkit.errors import ModelError
    from hearkit.frontend import FrontendConfig
    from hearkit.metadata import ModelInfo

    props = ModelInfo("classify", "waveform", FrontendConfig(), labels=("_silence_", "go"), window_samples=SR).to_props()
    props["hearkit.detector"] = json.dumps(detector)
    with pytest.raises(ModelError, match=match):
        ModelInfo.from_props(props, source="m.onnx")


def test_cli_calibrate(kws):
    from click.testing import CliRunner

    from hearkit.cli import main

    export, neg = kws
    r = CliRunner().invoke(main, ["calibrate", str(export), "--negatives", str(neg), "--fa-per-hour", "90", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    assert set(res["pipeline.onnx"]["thresholds"]) == {"go", "stop"}
    r = CliRunner().invoke(main, ["calibrate", str(export), "--negatives", str(neg), "--fa-per-hour", "0"])
    assert r.exit_code == 2 and "--fa-per-hour" in r.output


def test_cli_eval_as_a_detector(kws, tmp_path):
    from click.testing import CliRunner

    from hearkit.cli import main

    export, neg = kws
    pos = tmp_path / "pos" / "stop"
    pos.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(6):
        sf.write(pos / f"s{i}_nohash_0.wav", (0.2 * rng.standard_normal(12000)).astype(np.float32), SR)
    png = tmp_path / "det.png"
    r = CliRunner().invoke(main, ["eval", str(export), "--positives", str(tmp_path / "pos"), "--negatives", str(neg),
                                  "--noise", str(neg / "left"), "--snr", "10", "--plot", str(png), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output.strip().splitlines()[-1])
    assert set(rep["phrases"]) == {"stop"} and rep["phrases"]["stop"]["curve"]["utterances"] == 6 and rep["snr_db"] == 10
    assert [p["target_fa_per_hour"] for p in rep["phrases"]["stop"]["points"]] == [0.5, 1.0, 2.0]
    assert png.read_bytes()[:4] == b"\x89PNG"
    r = CliRunner().invoke(main, ["eval", str(export), "--positives", str(tmp_path / "pos")])
    assert r.exit_code == 2 and "--negatives" in r.output


def test_calibrate_without_positives_takes_the_score_just_above_the_highest_negative(kws, tmp_path):
    """At a target the negatives cannot resolve (0 false alarms allowed), the threshold sits just above the
    highest negative score, not at the sampled grid's next step (1.0, a threshold that never fires)."""
    import shutil

    from hearkit.classify import KeywordSpotter
    from hearkit.evaluate.detector import audio_files, negative_stream, record_stream
    from hearkit.export.thresholds import calibrate

    export, neg = kws
    mine = tmp_path / "export"
    shutil.copytree(export, mine)
    res = calibrate(mine, [neg], fa_per_hour=1.0, hop_seconds=0.2, smoothing=2, refractory_seconds=0.5)
    th = res["pipeline.onnx"]["thresholds"]
    s = record_stream(KeywordSpotter(mine, hop_seconds=0.2, smoothing=2, refractory_seconds=0.5),
                      negative_stream(audio_files(neg), SR))
    spot = KeywordSpotter(mine)
    for label, v in th.items():
        top = float(s.scores[:, spot.labels.index(label)].max())
        assert top < v <= min(1.0, top + 2e-6), (label, top, v)  # stored at 6 decimals, within 2e-6 above
