"""Offline speech synthesis with every engine the Debian archive offers, as many distinct speakers.

Engines (Debian packages, nothing downloaded at run time):

- ``espeak-ng``: a formant synthesiser with many accents and voice variants; rate, pitch and
  word gaps are its own options. Robotic, but the widest spread of voices.
- ``flite``: CMU's voices ``kal``, ``kal16``, ``awb``, ``rms``, ``slt`` (diphone and clustergen);
  rate through ``duration_stretch``.
- ``festival`` (``text2wave``) with the festvox voices installed (``kal_diphone``, ``ked_diphone``,
  ``cmu_us_slt_arctic_hts``); rate through ``Duration_Stretch`` (the HTS voice ignores it).
- ``piper``: neural (VITS) voices the user gives as files (the ``.onnx`` with its ``.onnx.json``
  beside it, as Piper ships them), run by the ``piper-tts`` package (extra ``hearkit[piper]``).
  Every speaker of a multi-speaker voice is a voice of its own; each rendition draws its
  length, noise and noise-w scales (``PIPER_*_RANGE``). Nothing is downloaded.

A handful of engine voices becomes many speakers by ``warp``: resampling the synthesized
audio by a factor moves formants and pitch together, as a longer or shorter vocal tract
does (the waveform counterpart of the trainer's VTLP), and changes the rate with them.

Every synthesised clip is float32 mono at the rate asked for, with its leading and
trailing silence cut. This module is the one caller of the engines: the wake-word sets,
the demo's keyword set and ``hearkit data synth``'s sentences all speak through ``speak``.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hearkit.errors import HearkitError, MissingDependencyError

DEBIAN_ENGINES = ("espeak-ng", "flite", "festival")  # found installed; piper runs the voice files it is given
ENGINES = (*DEBIAN_ENGINES, "piper")
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029", "en-gb-x-gbcwmd",
                  "en-us-nyc")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie",
                   "Denis", "Gene", "Henrique", "Jacky", "Lee", "Mario", "Michael", "Mr serious", "Storm", "Tweaky",
                   "anika", "belinda", "boris", "david", "edward", "iven", "john", "kaukovalta", "linda", "max",
                   "michel", "norbert", "paul", "quincy", "rob", "steph", "travis", "victor", "zac")
FLITE_VOICES = ("kal16", "awb", "rms", "slt", "kal")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
DEBIAN_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite",
                   "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"}
ESPEAK_WPM = 170              # espeak-ng's speaking rate at Voice.rate 1, words per minute
WARP_RANGE = (0.88, 1.14)      # resampling factor: about +-2 semitones of pitch, +-13 % formants
RATE_RANGE = (0.8, 1.25)       # speaking-rate factor where the engine sets it
# default share of the speakers by engine (random_voices), renormalised over the engines in use: with
# every engine, espeak-ng 40 % and 20 % each of flite, festival and piper
SHARE = {"espeak-ng": 0.5, "flite": 0.25, "festival": 0.25, "piper": 0.25}
SYNTH_TIMEOUT_S = 60           # one engine call
TRIM_THRESHOLD = 1e-3          # a clip with no |sample| above this is silent
TRIM_KEEP = 320                # samples of margin kept at each end (20 ms at 16 kHz)
# trim_mode="level": cut only samples below TRIM_THRESHOLD, keeping this many samples of the engine's
# rate (18 ms at espeak's 22.05 kHz). The demo's keyword set and `hearkit data synth` were
# measured with this simpler trim, which keeps the breaths that trim_mode="extent" cuts.
LEVEL_TRIM_KEEP = 400
TRIM_MODES = ("extent", "level")
# Piper: each rendition draws these around the voices' own defaults (length 1.0, noise 0.667, noise_w 0.8).
# length_scale stretches every phoneme (> 1 slower; Voice.rate is its inverse): about RATE_RANGE's spread.
# noise_scale is the generator's noise (timbre, intonation): below 0.4 flat, above 0.9 slurred.
# noise_w_scale is the noise of the phoneme durations (rhythm): 0.5 even, 1.0 loose.
PIPER_LENGTH_RANGE = (0.8, 1.3)
PIPER_NOISE_RANGE = (0.4, 0.9)
PIPER_NOISE_W_RANGE = (0.5, 1.0)
PIPER_EXTRA = "piper"          # hearkit[piper] installs piper-tts


class SynthError(HearkitError):
    """A synthesiser is missing or failed; the message gives the Debian package."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Attributes:
        engine: one of ``ENGINES``.
        name: the engine's voice (espeak ``accent+variant``, flite ``slt``, festival ``kal_diphone``).
        rate: speaking-rate factor, > 1 faster (Default: 1; engines that cannot set it ignore it).
        pitch: espeak pitch 0..99 (Default: 50; other engines keep their own).
        warp: resampling factor applied after synthesis; > 1 raises formants and pitch
            and shortens the clip (Default: 1).
        gap_ms: extra pause between words, espeak only (Default: 0).
        speaker: speaker id of a multi-speaker Piper voice (Default: 0).
        noise: Piper's noise_scale (Default: 0.667, Piper's own).
        noise_w: Piper's noise_w_scale (Default: 0.8, Piper's own).

    For ``piper``, ``name`` is the path of the voice's ``.onnx`` and ``rate`` is 1 / length_scale.
    """

    engine: str
    name: str
    rate: float = 1.0
    pitch: int = 50
    warp: float = 1.0
    gap_ms: int = 0
    speaker: int = 0
    noise: float = 0.667
    noise_w: float = 0.8

    @property
    def key(self) -> str:
        """A short name for file names: engine, voice, and the rounded settings (no ``_``: file names use it)."""
        if self.engine == "piper":
            base = re.sub(r"[^A-Za-z0-9]+", "-", Path(self.name).name.removesuffix(".onnx")).strip("-")
            return (f"piper-{base}-s{self.speaker}-r{self.rate:.2f}-n{self.noise:.2f}-nw{self.noise_w:.2f}"
                    f"-w{self.warp:.3f}")
        base = re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-")
        return f"{self.engine.split('-')[0]}-{base}-r{self.rate:.2f}-p{self.pitch}-w{self.warp:.3f}-g{self.gap_ms}"


def engine_binary(engine: str) -> str:
    """Path of the engine's program; ``SynthError`` with the Debian package when it is missing."""
    if engine not in DEBIAN_ENGINES:
        raise SynthError(f"unknown engine {engine!r}; allowed: {list(DEBIAN_ENGINES)}")
    exe = shutil.which({"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}[engine])
    if not exe:
        raise SynthError(f"{engine} is not installed: apt-get install {DEBIAN_PACKAGES[engine]}")
    return exe


def parse_engines(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Engine names from ``"espeak-ng,piper"`` (or a sequence); ``SynthError`` naming the allowed ones.

    ``None`` or empty gives ``()``: the default (see ``available_voices``).
    """
    names = [e.strip() for e in (spec.split(",") if isinstance(spec, str) else spec or ()) if e.strip()]
    if bad := [e for e in names if e not in ENGINES]:
        raise SynthError(f"unknown engine {', '.join(map(repr, bad))}; allowed: {', '.join(ENGINES)}")
    return tuple(dict.fromkeys(names))


def available_voices(engines: Sequence[str] | None = None,
                     piper_voices: Sequence[str | os.PathLike] = ()) -> dict[str, tuple[str, ...]]:
    """The engine voices to speak with, by engine.

    Args:
        engines: the engines wanted; each must be installed (``SynthError`` with the Debian
            package otherwise), and ``piper`` needs ``piper_voices`` (Default: every installed
            Debian engine, plus piper when ``piper_voices`` are given).
        piper_voices: Piper voice files (``.onnx``, its ``.onnx.json`` beside it); each speaker
            of each becomes a voice named ``PATH#SPEAKER`` (see ``piper_speakers``).
    """
    if engines is not None:
        engines = parse_engines(engines)
    if piper_voices and engines and "piper" not in engines:
        raise SynthError(f"--piper-voice given but the engines {','.join(engines)} leave piper out: add piper to --engines")
    if engines and "piper" in engines and not piper_voices:
        raise SynthError("the piper engine needs a voice: give --piper-voice PATH.onnx (its .onnx.json beside it)")
    out: dict[str, tuple[str, ...]] = {}
    want = lambda e: e in engines if engines else True  # noqa: E731
    if want("espeak-ng") and (shutil.which("espeak-ng") or engines):
        engine_binary("espeak-ng")
        out["espeak-ng"] = tuple(f"{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS)
    if want("flite") and (shutil.which("flite") or engines):
        r = subprocess.run([engine_binary("flite"), "-lv"], capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S)
        have = set(r.stdout.replace("Voices available:", "").split())
        if voices := tuple(v for v in FLITE_VOICES if v in have):
            out["flite"] = voices
        elif engines:
            raise SynthError(f"flite has none of the voices {list(FLITE_VOICES)}: apt-get install {DEBIAN_PACKAGES['flite']}")
    if want("festival") and (shutil.which("text2wave") or engines):
        engine_binary("festival")
        have = {p.name for p in FESTIVAL_VOICE_DIR.glob("*/*") if p.is_dir()}
        if voices := tuple(v for v in FESTIVAL_VOICES if v in have):
            out["festival"] = voices
        elif engines:
            raise SynthError(f"festival has none of the voices {list(FESTIVAL_VOICES)}: "
                             f"apt-get install {DEBIAN_PACKAGES['festival']}")
    if piper_voices:
        out["piper"] = tuple(f"{path}#{sid}" for p in piper_voices for path, sid in piper_speakers(p))
    return out


def _require_piper():
    try:
        import piper  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f'piper-tts is needed for Piper voices but is not installed: pip install "hearkit[{PIPER_EXTRA}]"') from e


def piper_speakers(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(absolute path, speaker id) of every speaker of one Piper voice; ``SynthError`` for a missing file.

    Reads ``num_speakers`` from the ``.onnx.json`` beside the ``.onnx``. Needs piper-tts
    (``MissingDependencyError`` naming the extra), checked here so that no set starts without it.
    """
    import json

    p = Path(path)
    if not p.is_file():
        raise SynthError(f"--piper-voice {path}: no such file (give the voice's .onnx, its .onnx.json beside it)")
    cfg = Path(f"{p}.json")
    if not cfg.is_file():
        raise SynthError(f"--piper-voice {path}: its config {cfg.name} is missing (Piper voices are the .onnx "
                         "and the .onnx.json beside it)")
    try:
        info = json.loads(cfg.read_text(encoding="utf-8"))
        n = int(info.get("num_speakers", 1))
        sr = int(info["audio"]["sample_rate"])
    except (ValueError, KeyError, TypeError) as e:
        raise SynthError(f"--piper-voice {path}: {cfg.name} is not a Piper voice config ({e})") from e
    if n < 1 or sr <= 0:
        raise SynthError(f"--piper-voice {path}: {cfg.name} gives {n} speakers at {sr} Hz")
    _require_piper()
    return [(os.path.abspath(p), sid) for sid in range(n)]  # not resolve(): the .onnx.json beside a link is its own


_PIPER_LOCK = threading.Lock()
_PIPER_CACHE: dict[str, object] = {}


def _piper_voice(path: str):
    """The loaded ``PiperVoice`` of a voice file, once per process.

    Its onnxruntime session runs one thread: the set builder runs ``workers`` renditions
    at once, as it does with the Debian engines' processes (onnxruntime's ``run`` is thread-safe).
    """
    with _PIPER_LOCK:
        if path not in _PIPER_CACHE:
            import json

            _require_piper()
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig

            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            try:
                config = PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text(encoding="utf-8")))
                session = onnxruntime.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # a damaged file: onnxruntime and the config raise many kinds
                raise SynthError(f"piper voice {path} does not load: {str(e).strip()[:200]}") from e
            _PIPER_CACHE[path] = PiperVoice(config=config, session=session)
        return _PIPER_CACHE[path]


def _ipa(ascii_phonemes: str, espeak_voice: str) -> str:
    """espeak-ng's ASCII phonemes (``s'Ev@n``) as the IPA that Piper's voices were trained on (one espeak call)."""
    exe = engine_binary("espeak-ng")
    r = subprocess.run([exe, "-q", "--ipa", "-v", espeak_voice, f"[[{ascii_phonemes}]]"], capture_output=True,
                       text=True, timeout=SYNTH_TIMEOUT_S)
    if r.returncode != 0:
        raise SynthError(f"espeak-ng --ipa failed: {r.stderr.strip()[:200]}")
    return " ".join(r.stdout.split())


def _piper_speak(text: str, voice: Voice, phonemes: bool) -> tuple[np.ndarray, int]:
    """One Piper rendition of ``text`` (or of espeak ASCII ``phonemes``): float32 audio at the voice's own rate."""
    from piper.config import SynthesisConfig

    pv = _piper_voice(voice.name)
    if phonemes:
        ipa = _ipa(text, pv.config.espeak_voice)
        text = "[[" + "".join(c for c in ipa if c in pv.config.phoneme_id_map) + "]]"
    syn = SynthesisConfig(speaker_id=voice.speaker if pv.config.num_speakers > 1 else None,
                          length_scale=1.0 / voice.rate, noise_scale=voice.noise, noise_w_scale=voice.noise_w,
                          normalize_audio=True)
    try:
        chunks = [c.audio_float_array for c in pv.synthesize(text, syn)]
    except Exception as e:  # onnxruntime or the phonemizer on odd input
        raise SynthError(f"piper voice {Path(voice.name).name} failed on {text!r}: {str(e).strip()[:200]}") from e
    x = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return x, int(pv.config.sample_rate)


def _run(cmd: list[str], engine: str, stdin: str | None = None) -> None:
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise SynthError(f"{engine} did not finish in {SYNTH_TIMEOUT_S} s") from e
    if r.returncode != 0:
        raise SynthError(f"{engine} failed: {(r.stderr or r.stdout).strip()[:200]}")


def speak(text: str, voice: Voice, sample_rate: int = 16000, phonemes: bool = False,
          trim_mode: str = "extent") -> np.ndarray:
    """Synthesise ``text`` (or, with ``phonemes``, an espeak phoneme string) as float32 mono at ``sample_rate``.

    Args:
        text: what to say.
        voice: the speaker (engine, voice, rate, pitch, warp, word gaps).
        sample_rate: rate of the result in Hz (Default: 16000).
        phonemes: ``text`` is an espeak phoneme string (espeak-ng, and piper through espeak's IPA; Default: False).
        trim_mode: ``"extent"`` cuts the audio quieter than the utterance (``trim``, Default);
            ``"level"`` cuts only near-silent samples (``trim_level``), as the demo and
            ``hearkit data synth`` were measured with.

    Returns:
        float32 (samples,) at ``sample_rate``.
    """
    import soundfile as sf

    if phonemes and voice.engine not in ("espeak-ng", "piper"):
        raise SynthError("phoneme input needs espeak-ng or piper")
    if trim_mode not in TRIM_MODES:
        raise SynthError(f"trim_mode must be one of {list(TRIM_MODES)}, got {trim_mode!r}")
    if voice.engine == "piper":
        x, sr = _piper_speak(text, voice, phonemes)
        return _finish(x, sr, text, voice, sample_rate, trim_mode)
    exe = engine_binary(voice.engine)
    with tempfile.TemporaryDirectory(prefix="hearkit-tts-") as tmp:
        wav = os.path.join(tmp, "out.wav")
        if voice.engine == "espeak-ng":
            words_per_min = int(round(ESPEAK_WPM * voice.rate))
            say = f"[[{text}]]" if phonemes else text
            _run([exe, "-w", wav, "-v", voice.name, "-s", str(words_per_min), "-p", str(int(voice.pitch)),
                  "-g", str(max(0, int(voice.gap_ms) // 10)), say], voice.engine)
        elif voice.engine == "flite":
            _run([exe, "-voice", voice.name, "--setf", f"duration_stretch={1 / voice.rate:.3f}", "-t", text, "-o", wav],
                 voice.engine)
        elif voice.engine == "festival":
            _run([exe, "-eval", f"(voice_{voice.name})", "-eval", f"(Parameter.set 'Duration_Stretch {1 / voice.rate:.3f})",
                  "-o", wav], voice.engine, stdin=text)
        else:
            raise SynthError(f"unknown engine {voice.engine!r}; allowed: {list(ENGINES)}")
        x, sr = sf.read(wav, dtype="float32", always_2d=True)
    return _finish(x.mean(axis=1), sr, text, voice, sample_rate, trim_mode)


def _finish(x: np.ndarray, sr: int, text: str, voice: Voice, sample_rate: int, trim_mode: str) -> np.ndarray:
    """Every engine's clip alike: trimmed, then warped and resampled to ``sample_rate``."""
    from hearkit.audio import resample

    x = trim_level(x) if trim_mode == "level" else trim(x, sr)
    if x.size == 0:
        raise SynthError(f"{voice.engine} voice {voice.name} produced no audio for {text!r}")
    # warp: play the clip `warp` times faster, i.e. read it as if sampled at sr * warp
    return resample(x, int(round(sr * voice.warp)), sample_rate)


def trim(x: np.ndarray, sample_rate: int, keep: int = TRIM_KEEP) -> np.ndarray:
    """Cut the leading/trailing audio quieter than the utterance (``utterance_extent``), keeping ``keep`` samples of margin.

    Engines end clips with breaths and low-level tails (flite's up to 0.5 s) that are no part of the word.
    """
    from hearkit.evaluate.detector import utterance_extent

    if not np.any(np.abs(x) > TRIM_THRESHOLD):
        return x[:0]
    a, b = utterance_extent(x, sample_rate)
    return x[max(0, a - keep) : b + keep]


def trim_level(x: np.ndarray, threshold: float = TRIM_THRESHOLD, keep: int = LEVEL_TRIM_KEEP) -> np.ndarray:
    """Cut leading/trailing samples below ``threshold``, keeping ``keep`` samples of margin (all kept if none is above)."""
    idx = np.flatnonzero(np.abs(x) > threshold)
    if idx.size == 0:
        return x
    return x[max(0, idx[0] - keep) : idx[-1] + keep]


def espeak_voices(n: int, seed: int = 0, accents: Sequence[str] = ESPEAK_ACCENTS,
                  variants: Sequence[str] = ESPEAK_VARIANTS, words_per_min: tuple[int, int] = (120, 210),
                  pitch: tuple[int, int] = (20, 80)) -> list[Voice]:
    """``n`` espeak-ng speakers: accent x variant x speed x pitch, reproducible from ``seed`` (no warp, no gaps).

    The demo's keyword set draws its speakers here; a seed gives the same speakers as the
    demo's figures were measured with, as long as ``accents`` and ``variants`` are the same.

    Args:
        n: speakers wanted (repeats possible).
        seed: seed of a ``random.Random`` (Default: 0).
        accents: espeak-ng voices to draw from (Default: ``ESPEAK_ACCENTS``).
        variants: voice variants to draw from (Default: ``ESPEAK_VARIANTS``).
        words_per_min: inclusive range of the speaking rate in words per minute (Default: 120..210).
        pitch: inclusive range of espeak's pitch, 0..99 (Default: 20..80).
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        # draw order accent, variant, rate, pitch: changing it changes every seed's speakers
        name = f"{rng.choice(accents)}+{rng.choice(variants)}"
        wpm = rng.randint(*words_per_min)
        out.append(Voice(engine="espeak-ng", name=name, rate=wpm / ESPEAK_WPM, pitch=rng.randint(*pitch)))
    return out


def random_voices(n: int, seed: int = 0, engines: dict[str, tuple[str, ...]] | None = None,
                  share: dict[str, float] | None = None) -> list[Voice]:
    """``n`` distinct speakers drawn over the installed engines, reproducible from ``seed``.

    Args:
        n: speakers wanted.
        seed: random seed (Default: 0).
        engines: engine voices to draw from (Default: ``available_voices()``).
        share: fraction of speakers per engine (Default: ``SHARE``, renormalised over the
            engines present). The few natural-sounding diphone and clustergen voices get many
            warps and rates each; espeak brings accents; each Piper speaker gets many length,
            noise and warp settings.
    """
    engines = available_voices() if engines is None else engines
    if not engines:
        raise SynthError("no speech synthesiser is installed: apt-get install " + " ".join(DEBIAN_PACKAGES.values()))
    share = share or SHARE
    weights = np.array([share.get(e, 0.0) for e in engines])
    if weights.sum() <= 0:
        weights = np.ones(len(engines))
    rng = random.Random(seed)
    names = list(engines)
    out, seen = [], set()
    while len(out) < n:
        e = rng.choices(names, weights=list(weights))[0]
        if e == "piper":  # draw order path#speaker, length, noise, noise_w, warp
            path, _, sid = rng.choice(engines[e]).rpartition("#")
            v = Voice(engine=e, name=path, speaker=int(sid), rate=round(1 / rng.uniform(*PIPER_LENGTH_RANGE), 3),
                      noise=round(rng.uniform(*PIPER_NOISE_RANGE), 3), noise_w=round(rng.uniform(*PIPER_NOISE_W_RANGE), 3),
                      warp=round(rng.uniform(*WARP_RANGE), 3))
            if v.key not in seen:
                seen.add(v.key)
                out.append(v)
            continue
        v = Voice(
            engine=e,
            name=rng.choice(engines[e]),
            rate=round(rng.uniform(*RATE_RANGE), 2),
            pitch=rng.randint(20, 80) if e == "espeak-ng" else 50,
            warp=round(rng.uniform(*WARP_RANGE), 3),
            gap_ms=rng.choice((0, 0, 50, 120)) if e == "espeak-ng" else 0,
        )
        if v.key not in seen:
            seen.add(v.key)
            out.append(v)
    return out


def _clause(text: str) -> str:
    """One clause for espeak: punctuation inside would split its phoneme output into several lines."""
    return " ".join(re.sub(r"[^\w' ]+", " ", text).split()) or "_"


def phonemes(texts: list[str], accent: str = "en-us") -> list[str]:
    """espeak-ng's phoneme strings (its ``-x`` ASCII notation) of each text, in one call."""
    if not texts:
        return []
    exe = engine_binary("espeak-ng")
    r = subprocess.run([exe, "-q", "-x", "-v", accent, "--stdin"], input="".join(_clause(t) + ".\n" for t in texts),
                       capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S * 5)
    if r.returncode != 0:
        raise SynthError(f"espeak-ng -x failed: {r.stderr.strip()[:200]}")
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    if len(lines) != len(texts):
        raise SynthError(f"espeak-ng -x gave {len(lines)} lines for {len(texts)} texts")
    return lines
