"""`hearkit show`: the PNG is written, is a real picture, and grows a row per augmentation."""

from __future__ import annotations

import pytest
import soundfile as sf
from click.testing import CliRunner

from hearkit.cli import main


def _png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.fixture
def clip(tmp_path, signals):
    p = tmp_path / "chirp.wav"
    sf.write(p, signals.chirp(16000, 16000), 16000)
    return p


def test_show_writes_png(clip, tmp_path):
    out = tmp_path / "fig.png"
    r = CliRunner().invoke(main, ["show", str(clip), "-o", str(out), "--n-mels", "64"])
    assert r.exit_code == 0, r.output
    w, h = _png_size(out)
    assert w > 800 and h > 200


def test_show_augment_adds_rows(clip, tmp_path, shared_data):
    plain, aug = tmp_path / "plain.png", tmp_path / "aug.png"
    r = CliRunner().invoke(main, ["show", str(clip), "-o", str(plain)])
    assert r.exit_code == 0, (r.output, r.exception)
    r = CliRunner().invoke(main, ["show", str(clip), "-o", str(aug), "--augment",
                                  "--noise-dir", str(shared_data / "speech_commands" / "_silence_")])
    assert r.exit_code == 0, (r.output, r.exception)
    # five augmentations (time shift, noise, gain, SpecAugment, mixup) below the original row
    assert _png_size(aug)[1] >= 5 * _png_size(plain)[1]


def test_show_bad_audio_is_one_line(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio at all " * 10)
    r = CliRunner().invoke(main, ["show", str(bad), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "not an audio file" in r.output
    assert not (tmp_path / "x.png").exists()


def test_show_rejects_bad_config(clip, tmp_path):
    r = CliRunner().invoke(main, ["show", str(clip), "-o", str(tmp_path / "x.png"), "--win-length", "1024"])
    assert r.exit_code == 2 and "win_length" in r.output
