"""KeywordSpotter's streaming scorer (each log-mel frame once) equals the full-window pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SR = 16000


@pytest.fixture(scope="module")
def export(make_classifier_export):
    from hearkit.frontend import FrontendConfig

    # n_fft 400: the carry (window - frames * hop = 16000 - 98 * 160 = 320) is not n_fft - hop here
    return make_classifier_export(["_silence_", "go", "stop"], frontend=FrontendConfig(n_fft=400, hop_length=160), seed=1)


@pytest.mark.parametrize("chunk", [1, 333, 1600, 4801, 10**9])
def test_streaming_scores_equal_full_window(export, chunk):
    """Same decisions at the same times; smoothed scores within 1e-5 (the same graphs, frames cut at other places)."""
    from hearkit.classify import KeywordSpotter

    rng = np.random.default_rng(0)
    t = np.arange(6 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 1.3 < 0.4) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    full = KeywordSpotter(export, record=True, streaming=False, thresholds=0.34, refractory_seconds=0.2)
    inc = KeywordSpotter(export, record=True, thresholds=0.34, refractory_seconds=0.2)
    assert inc.streamer is not None and full.streamer is None
    d_full = full.accept_waveform(x) + full.flush()
    d_inc = [d for i in range(0, len(x), chunk) for d in inc.accept_waveform(x[i : i + chunk])] + inc.flush()
    assert [h[0] for h in inc.history] == [h[0] for h in full.history]
    np.testing.assert_allclose(np.stack([h[1] for h in inc.history]), np.stack([h[1] for h in full.history]), rtol=0, atol=1e-5)
    assert [(d.label, d.time) for d in d_inc] == [(d.label, d.time) for d in d_full]
    assert inc.samples_seen == full.samples_seen
    inc.reset()
    assert inc.samples_seen == 0
    assert [(d.label, d.time) for d in inc.accept_waveform(x) + inc.flush()] == [(d.label, d.time) for d in d_full]


def test_streaming_needs_a_folder(export, tmp_path):
    """A pipeline file streams when its network and front-end sit beside it (an export's variant, as
    ``calibrate`` opens it), with that variant's network; a lone file runs the full window."""
    import shutil

    from hearkit.classify import KeywordSpotter
    from hearkit.errors import ConfigError

    for variant in sorted(p.name for p in export.glob("pipeline*.onnx")):  # every variant the export holds
        kws = KeywordSpotter(export / variant)
        assert kws.streamer is not None and Path(kws.streamer.path).name == variant.replace("pipeline", "model")
    lone = tmp_path / "pipeline.onnx"
    shutil.copy2(export / "pipeline.onnx", lone)
    with pytest.raises(ConfigError, match="export folder or bundle"):
        KeywordSpotter(lone, streaming=True)
    assert KeywordSpotter(lone).streamer is None  # a single file: the full-window pipeline
    assert KeywordSpotter(export / "pipeline.onnx", streaming=False).streamer is None
