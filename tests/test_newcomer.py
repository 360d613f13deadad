"""A newcomer's rough edges: `-o` spelled both ways, `stream --plot` checked first,
`run` on long audio says that `stream` is for it, and timelines that show the truth."""

from __future__ import annotations

import subprocess
import sys

import click
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from hearkit.cli import main

SR = 16000


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


def test_stream_refuses_a_plot_that_is_not_an_image_before_reading_audio(make_classifier_export, tmp_path):
    """`--plot notes.txt` fails first: the audio named does not even exist, and the error is about --plot."""
    export = make_classifier_export(["a", "b", "c"])
    r = subprocess.run([sys.executable, "-m", "hearkit", "stream", str(export), str(tmp_path / "missing.wav"),
                        "--plot", str(tmp_path / "notes.txt")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--plot" in lines[0] and "notes.txt" in lines[0] and ".png" in lines[0], r.stderr
    assert r.stdout == "" and not (tmp_path / "notes.txt").exists()


@pytest.mark.parametrize("seconds, noted", [(15.0, True), (2.0, False)])
def test_run_notes_stream_for_audio_much_longer_than_the_window(make_classifier_export, tmp_path, seconds, noted):
    """A 1-s model: a 15-s sentence gets one stderr line pointing at `hearkit stream`; a 2-s clip (under 3 windows) none."""
    export = make_classifier_export(["a", "b", "c"])
    wav = tmp_path / "long.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(int(seconds * SR)) * 0.05)).astype(np.float32), SR)
    r = subprocess.run([sys.executable, "-m", "hearkit", "run", str(export), str(wav)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1  # the result, one JSON line, as before
    notes = [line for line in r.stderr.splitlines() if "hearkit stream" in line]
    assert len(notes) == (1 if noted else 0), r.stderr
    if noted:
        assert "15.00 s" in notes[0] and "heard its centre 1 s" in notes[0]


# -- timelines --------------------------------------------------------------------------
@pytest.fixture
def captured_figure(monkeypatch):
    """plot_timeline's figure, caught instead of written."""
    import hearkit.plots.detection as hc

    seen = {}

    def keep(fig, path, **kw):
        seen["fig"] = fig

    monkeypatch.setattr(hc, "save_figure", keep)
    return seen


def _timeline(captured, **kw):
    from hearkit.classify import Detection
    from hearkit.plots.detection import plot_timeline

    labels = ["_silence_", "yes", "no"]
    history = [(t, np.array([0.8, 0.1, 0.1])) for t in np.arange(0.1, 6.0, 0.1)]
    dets = [Detection("yes", 1.2, 0.9), Detection("no", 4.0, 0.7)]
    plot_timeline(history, labels, dets, "t.png", title="t", **kw)
    return captured["fig"].axes[0]  # the scores; with truth, axes[1] is the row of what was said


def test_timeline_draws_thresholds_truth_and_outcomes(captured_figure):
    ax = _timeline(captured_figure, thresholds={"yes": 0.6, "no": 0.6},
                   truth=[("yes", 1.0, 1.4), ("house", 2.0, 2.5), ("", 3.0, 3.5)], outcomes=["hit", "false alarm"])
    horizontal = [ln for ln in ax.lines if list(ln.get_ydata()) == [0.6, 0.6]]
    assert len(horizontal) == 1  # equal thresholds: one line
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "threshold 0.6" in legend and "detection: hit" in legend and "detection: false alarm" in legend
    assert any("ground truth" in t for t in legend)
    assert len(ax.patches) == 3  # one shaded span per ground-truth entry, over the scores
    said = captured_figure["fig"].axes[1]
    assert len(said.patches) == 3 and sorted(t.get_text() for t in said.texts) == ["house", "yes"]  # "" unnamed
    verticals = [ln for ln in ax.lines if list(ln.get_xdata()) in ([1.2, 1.2], [4.0, 4.0])]
    colours = sorted(ln.get_color() for ln in verticals)
    assert colours == ["black", "red"]  # the hit at 1.2 s, the false alarm at 4.0 s


def test_timeline_draws_one_threshold_line_per_label_when_they_differ(captured_figure):
    ax = _timeline(captured_figure, thresholds={"yes": 0.7, "no": 0.5})
    ys = sorted(ln.get_ydata()[0] for ln in ax.lines if list(ln.get_ydata()) in ([0.7, 0.7], [0.5, 0.5]))
    assert ys == [0.5, 0.7]
    assert not ax.patches  # no truth given: nothing shaded


def test_timeline_without_extras_is_as_before(captured_figure):
    ax = _timeline(captured_figure)
    assert len(captured_figure["fig"].axes) == 1  # no truth: no row for it
    assert not ax.patches and all(t.get_text() in ("yes", "no") for t in ax.texts)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any("threshold" in t or "detection" in t for t in legend)


def test_timeline_refuses_outcomes_that_do_not_match_the_detections(captured_figure):
    with pytest.raises(ValueError, match="outcomes"):
        _timeline(captured_figure, outcomes=["hit"])


def test_spotter_reports_the_thresholds_it_uses(scorers):
    from hearkit.classify import KeywordSpotter

    labels = ["_silence_", "_unknown_", "yes", "no"]
    kws = KeywordSpotter(scorer=scorers.energy, labels=labels, sample_rate=SR, window_samples=SR,
                         thresholds={"yes": 0.7})
    assert kws.logic.label_thresholds() == {"yes": 0.7, "no": 0.6}  # background labels cannot fire: left out


# -- the DET plot and the summary count FA/h over the same time --------------------------
def test_det_plot_labels_its_guide_lines_and_says_what_fa_per_hour_is_counted_over(monkeypatch):
    import hearkit.evaluate.detector as det

    seen = {}
    monkeypatch.setattr(det, "save_figure", lambda fig, path, **kw: seen.update(fig=fig))
    curve = det.build_curve("hey", list(range(10)), 0.13 * 3600, [0.2, 0.5, 0.8], lambda t: (int(10 * (1 - t)), 0, 1))
    src = det.StreamSources(["hey"], {"hey": []}, [None] * 30, {"hey": 0}, ["noise.wav"])
    rep = det.Streams([], [], snr_db=10.0).report([curve], src, 0.045 * 3600, 0.085 * 3600)
    streamed = det.streamed_text(rep)
    assert streamed == "7.8 min streamed (5.1 min of negatives + 2.7 min of positives)"
    det.plot_det(rep, "det.png")
    ax = seen["fig"].axes[0]
    assert streamed in ax.get_xlabel() and "FA/h" in ax.get_xlabel()
    assert {t.get_text().strip() for t in ax.texts} == {"0.5 FA/h", "1 FA/h", "2 FA/h"}
    assert det.summary_lines(rep)[0].startswith(streamed)  # the terminal says the same as the plot
    assert (det.duration_text(0.5), det.duration_text(2.3)) == ("30.0 min", "2.30 h")
