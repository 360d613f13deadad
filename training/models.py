"""Compact mel-CNN classifiers for keywords and sounds.

Every model takes log-mel features ``(batch, frames, n_mels)`` float32 and returns
logits ``(batch, n_labels)``. They are built from the few ops that export cleanly
with the dynamo exporter and quantize statically in onnxruntime (Conv,
BatchNormalization, Relu, MaxPool, ReduceMean/GlobalAveragePool, Reshape, Gemm):

- the first layer is a ``BatchNorm`` over the single input plane: it learns the
  feature mean/variance at training time and exports as a constant affine map,
  which is how docs/design.md §4 wants normalisation constants folded into the graph;
- the last pooling averages over time (and frequency), so any clip length works
  and the batch and frame axes stay dynamic in ONNX.

Architectures (``MODELS``):

- ``dscnn-s`` / ``dscnn-m`` / ``dscnn-l``: depthwise-separable CNN of
  Zhang et al., "Hello Edge: Keyword Spotting on Microcontrollers" (2017),
  with the paper's S/M/L widths and depths (64×4, 172×4, 276×5).
- ``bcresnet-1`` … ``bcresnet-8``: broadcasted residual learning, Kim et al.,
  "Broadcasted Residual Learning for Efficient Keyword Spotting" (2021);
  τ is the width multiplier (BC-ResNet-τ). Swish is replaced by ReLU so the
  graph stays within ops every int8 backend fuses (Conv+Relu).
- ``cnn4``: the classic teaching model, four conv-BN-ReLU-maxpool blocks,
  global average pooling and a linear classifier; ``cnn4-s`` is the same with
  16/24/40/64 channels (36K parameters, under the 40K keyword budget).
- ``emb-dnn``: a head on the frozen speech embedding (``hearkit.embedding``): its input is the
  embedding's 96-d vectors every 80 ms, not log-mel, and the trainer caches them (docs/design.md §17).
- ``student-dnn``: the same head on a ``Student`` distilled from that embedding (``hearkit train
  distill``, docs/design.md §18): log-mel in, so it exports, quantizes and streams as every log-mel model.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from hearkit.embedding import EMBEDDING_DIM, EMBEDDING_FRAMES, EMBEDDING_STRIDE
from hearkit.errors import ConfigError

# Hello Edge DS-CNN sizes: (channels, number of depthwise-separable layers).
DSCNN_SIZES = {"s": (64, 4), "m": (172, 4), "l": (276, 5)}
DSCNN_FIRST_KERNEL = (10, 4)  # (time frames, mel bands), as Hello Edge's 10×4 first conv
BCRESNET_SUBBANDS = 5  # SubSpectralNorm sub-bands (the paper's choice for 40 mel bands)
CNN4_CHANNELS = (16, 32, 64, 128)
# cnn4-s: the same blocks narrowed to stay under 40K parameters, a keyword model a microcontroller can hold
# (36.4K at 12 labels); plain convolutions train ~4x faster per step on CPU than the
# depthwise models of the same size, which is what made 90 % on Speech Commands
# reachable in a 2-core training budget.
CNN4_S_CHANNELS = (16, 24, 40, 64)


class LogMelClassifier(nn.Module):
    """Base class: stores the hyper-parameters needed to rebuild the model from a checkpoint."""

    name: str = ""

    def __init__(self):
        super().__init__()
        self.hparams: dict = {}

    def config(self) -> dict:
        """``{"name": ..., **hyper_parameters}``, the checkpoint's ``model`` entry."""
        return {"name": self.name, **self.hparams}


# -- DS-CNN -------------------------------------------------------------------
class DSConv(nn.Module):
    """Depthwise 3×3 conv + BN + ReLU, then pointwise 1×1 conv + BN + ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.pw = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        x = torch.relu(self.bn1(self.dw(x)))
        return torch.relu(self.bn2(self.pw(x)))


class DSCNN(LogMelClassifier):
    """Hello Edge DS-CNN. Input (batch, frames, n_mels) -> logits (batch, n_labels).

    Args:
        n_labels: number of classes.
        n_mels: mel bands of the input (any; the network is fully convolutional).
        channels: feature maps of every layer (Default: 64, the S size).
        layers: depthwise-separable layers after the first conv (Default: 4).
        dropout: dropout before the classifier (Default: 0.1).
    """

    name = "dscnn"

    def __init__(self, n_labels: int, n_mels: int, channels: int = 64, layers: int = 4, dropout: float = 0.1):
        super().__init__()
        self.hparams = dict(n_labels=n_labels, n_mels=n_mels, channels=channels, layers=layers, dropout=dropout)
        kt, kf = DSCNN_FIRST_KERNEL
        self.input_norm = nn.BatchNorm2d(1)
        self.conv = nn.Conv2d(1, channels, (kt, kf), stride=2, padding=((kt - 1) // 2, (kf - 1) // 2), bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.blocks = nn.Sequential(*[DSConv(channels) for _ in range(layers)])
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, n_labels)

    def forward(self, x):  # x: (batch, frames, n_mels)
        x = self.input_norm(x.unsqueeze(1))  # (batch, 1, frames, n_mels)
        x = torch.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        x = x.mean(dim=(2, 3))  # global average over time and frequency: any length works
        return self.fc(self.dropout(x))


# -- BC-ResNet ----------------------------------------------------------------
def _subbands(freq: int, wanted: int = BCRESNET_SUBBANDS) -> int:
    """The largest number of sub-bands <= wanted that divides ``freq`` (SubSpectralNorm needs equal bands)."""
    for s in range(min(wanted, freq), 0, -1):
        if freq % s == 0:
            return s
    return 1


class SubSpectralNorm(nn.Module):
    """BatchNorm with separate statistics per frequency sub-band (Chang et al. 2021).

    Input (batch, C, F, T) with F divisible by ``subbands``.
    """

    def __init__(self, channels: int, subbands: int):
        super().__init__()
        self.subbands = subbands
        self.bn = nn.BatchNorm2d(channels * subbands)

    def forward(self, x):
        n, c, f, t = x.shape
        if self.subbands == 1:
            return self.bn(x)
        # The frequency axis is static (n_mels); only batch and time are dynamic, so
        # -1 takes the time axis and the Reshape stays valid for any length.
        y = self.bn(x.reshape(n, c * self.subbands, f // self.subbands, -1))
        return y.reshape(n, c, f, -1)


class BCBlock(nn.Module):
    """A broadcasted residual block; ``transition`` when the channel count changes.

    f2 (2-D, per frequency): depthwise 3×1 conv over frequency + SubSpectralNorm.
    f1 (1-D, over time): frequency average -> depthwise 1×3 dilated conv -> BN -> ReLU
    -> pointwise conv -> channel dropout; broadcast back over frequency.
    Output: ReLU(f2 + f1 [+ identity when not a transition]).
    """

    def __init__(self, in_ch: int, out_ch: int, freq_in: int, stride: int = 1, dilation: int = 1, dropout: float = 0.1):
        super().__init__()
        self.transition = in_ch != out_ch
        if self.transition:
            self.pre = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU())
        self.freq_dw = nn.Conv2d(out_ch, out_ch, (3, 1), stride=(stride, 1), padding=(1, 0), groups=out_ch, bias=False)
        freq_out = math.ceil(freq_in / stride)
        self.ssn = SubSpectralNorm(out_ch, _subbands(freq_out))
        self.temp_dw = nn.Conv2d(out_ch, out_ch, (1, 3), padding=(0, dilation), dilation=(1, dilation), groups=out_ch, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.pw = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.drop = nn.Dropout2d(dropout)
        self.freq_out = freq_out

    def forward(self, x):
        identity = x
        if self.transition:
            x = self.pre(x)
        f2 = self.ssn(self.freq_dw(x))
        f1 = f2.mean(dim=2, keepdim=True)  # (batch, C, 1, T): frequency average
        f1 = self.drop(self.pw(torch.relu(self.bn(self.temp_dw(f1)))))
        out = f2 + f1  # broadcast over frequency
        if not self.transition and self.freq_dw.stride[0] == 1:
            out = out + identity
        return torch.relu(out)


class BCResNet(LogMelClassifier):
    """BC-ResNet-τ. Input (batch, frames, n_mels) -> logits (batch, n_labels).

    Args:
        n_labels: number of classes.
        n_mels: mel bands (sets the frequency strides' output sizes and sub-bands).
        tau: width multiplier τ (Default: 1; 1 ≈ 9K parameters, 8 ≈ 320K).
        dropout: channel dropout in the blocks (Default: 0.1).
    """

    name = "bcresnet"
    # (channels at τ=1, blocks, frequency stride of the first block, time dilation)
    STAGES = ((8, 2, 1, 1), (12, 2, 2, 2), (16, 4, 2, 4), (20, 4, 1, 8))

    def __init__(self, n_labels: int, n_mels: int, tau: float = 1, dropout: float = 0.1):
        super().__init__()
        self.hparams = dict(n_labels=n_labels, n_mels=n_mels, tau=tau, dropout=dropout)

        def w(c):
            return max(1, int(round(c * tau)))

        self.input_norm = nn.BatchNorm2d(1)
        c0 = w(16)
        self.stem = nn.Sequential(nn.Conv2d(1, c0, 5, stride=(2, 1), padding=2, bias=False), nn.BatchNorm2d(c0), nn.ReLU())
        freq = math.ceil(n_mels / 2)
        blocks = []
        in_ch = c0
        for ch, n, stride, dil in self.STAGES:
            for i in range(n):
                b = BCBlock(in_ch, w(ch), freq, stride=stride if i == 0 else 1, dilation=dil, dropout=dropout)
                blocks.append(b)
                in_ch, freq = w(ch), b.freq_out
        self.blocks = nn.Sequential(*blocks)
        # The paper's 5×5 depthwise conv without frequency padding reduces 5 bands to 1;
        # pad enough that fewer bands (small n_mels) still give at least one.
        fpad = 0 if freq >= 5 else math.ceil((5 - freq) / 2)
        c_last = w(20)
        self.head = nn.Sequential(
            nn.Conv2d(c_last, c_last, 5, padding=(fpad, 2), groups=c_last, bias=False),
            nn.BatchNorm2d(c_last),
            nn.ReLU(),
            nn.Conv2d(c_last, w(32), 1, bias=False),
            nn.BatchNorm2d(w(32)),
            nn.ReLU(),
        )
        self.fc = nn.Linear(w(32), n_labels)

    def forward(self, x):  # x: (batch, frames, n_mels)
        x = self.input_norm(x.transpose(1, 2).unsqueeze(1))  # (batch, 1, n_mels, frames)
        x = self.blocks(self.stem(x))
        x = self.head(x).mean(dim=(2, 3))  # global average: any length works
        return self.fc(x)


# -- CNN4 ---------------------------------------------------------------------
class CNN4(LogMelClassifier):
    """Four conv3×3-BN-ReLU-maxpool2×2 blocks, global average pooling, linear classifier.

    Args:
        n_labels: number of classes.
        n_mels: mel bands (>= 16: four 2× poolings).
        channels: feature maps of the four blocks (Default: 16, 32, 64, 128).
        dropout: dropout before the classifier (Default: 0.2).
    """

    name = "cnn4"

    def __init__(self, n_labels: int, n_mels: int, channels=CNN4_CHANNELS, dropout: float = 0.2):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self.hparams = dict(n_labels=n_labels, n_mels=n_mels, channels=list(channels), dropout=dropout)
        self.input_norm = nn.BatchNorm2d(1)
        layers = []
        cin = 1
        for c in channels:
            # ceil_mode keeps odd sizes from dropping their last row, so 16 mel bands still leave 1 after 4 pools
            layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, n_labels)

    def forward(self, x):  # x: (batch, frames, n_mels)
        x = self.features(self.input_norm(x.unsqueeze(1)))
        return self.fc(self.dropout(x.mean(dim=(2, 3))))


# -- heads on the speech embedding ------------------------------------------------
class EmbeddingDNN(LogMelClassifier):
    """A head on the frozen speech embedding: the last ``frames`` 96-d vectors, flattened,
    through two LayerNorm-ReLU layers (openWakeWord's head shape; docs/design.md §17).

    Input (batch, frames, n_mels) with n_mels the embedding size; only the last ``frames``
    vectors are used, so the input must hold at least that many (the window gives exactly them).

    With ``heads`` > 1 it is an ensemble of that many such heads, each from its own initial
    weights and dropout: in training mode it returns every member's logits, (heads, batch,
    labels), so the trainer gives each its own loss; in eval mode (and exported) the log of the
    members' mean posterior, (batch, labels), whose softmax is that mean.

    Args:
        n_labels: number of classes.
        n_mels: feature size (96 for the speech embedding).
        frames: embeddings the head sees, one per 80 ms (Default: 16, 1.28 s of hops over a 2-s window).
        hidden: width of the two layers (Default: 128; 16 frames: 214K parameters at 4 labels).
        dropout: dropout after each layer (Default: 0.2).
        heads: members of the ensemble (Default: 1: one head, as openWakeWord's).
    """

    name = "emb-dnn"

    def __init__(self, n_labels: int, n_mels: int, frames: int = 16, hidden: int = 128, dropout: float = 0.2,
                 heads: int = 1):
        super().__init__()
        frames, hidden, heads = int(frames), int(hidden), int(heads)
        if frames < 1 or hidden < 1 or heads < 1:
            raise ConfigError(f"emb-dnn needs frames, hidden and heads >= 1, got {frames}, {hidden} and {heads}")
        self.hparams = dict(n_labels=n_labels, n_mels=n_mels, frames=frames, hidden=hidden, dropout=dropout)
        if heads > 1:  # a one-head config stays as it was: older checkpoints rebuild unchanged
            self.hparams["heads"] = heads
        self.frames, self.heads = frames, heads

        def body():
            return nn.Sequential(
                nn.Linear(frames * n_mels, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
            )

        self.body = body()
        self.fc = nn.Linear(hidden, n_labels)
        # the other members (names of the first kept: a one-head state_dict is unchanged)
        self.members = nn.ModuleList([nn.Sequential(body(), nn.Linear(hidden, n_labels)) for _ in range(heads - 1)])

    def forward(self, x):  # x: (batch, frames, n_mels)
        flat = x[:, -self.frames :].flatten(1)
        first = self.fc(self.body(flat))
        if self.heads == 1:
            return first
        logits = torch.stack([first, *(m(flat) for m in self.members)])  # (heads, batch, labels)
        if self.training:
            return logits
        return torch.log(torch.softmax(logits, dim=-1).mean(0))


# name -> (channels of the three stride-2 convolutions, hidden units before the 96-d output)
STUDENTS: dict[str, dict] = {
    "student-s": {"channels": (16, 32, 48), "hidden": 128},
    "student-m": {"channels": (24, 48, 64), "hidden": 192},
}


class Student(nn.Module):
    """Log-mel frames (batch, T, n_mels) -> (batch, (T - window_frames) // 8 + 1, 96): one vector per 8 frames.

    Three 3x3 convolutions of stride 2 (valid in time, padded in frequency), a depthwise
    temporal convolution over their last 8 steps, two pointwise layers. Output ``i`` sees
    frames ``8 i .. 8 i + window_frames - 1``; it is returned in the teacher's units (the
    training targets' per-dimension mean and spread are buffers).
    """

    stride_frames = EMBEDDING_STRIDE

    def __init__(self, n_mels: int = 32, channels: tuple = (16, 32, 48), hidden: int = 128, dim: int = EMBEDDING_DIM,
                 name: str = "student-s"):
        super().__init__()
        self.name, self.n_mels, self.channels, self.hidden, self.dim = name, n_mels, tuple(channels), hidden, dim
        layers, c_in, f = [nn.BatchNorm2d(1)], 1, n_mels
        for c in self.channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=(0, 1), bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            c_in, f = c, (f - 1) // 2 + 1
        self.conv = nn.Sequential(*layers)
        taps = EMBEDDING_STRIDE  # temporal taps at the stride-8 scale
        c = c_in * f
        self.temporal = nn.Sequential(nn.Conv1d(c, c, taps, groups=c, bias=False), nn.BatchNorm1d(c), nn.ReLU(),
                                      nn.Conv1d(c, hidden, 1, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                      nn.Conv1d(hidden, dim, 1))
        rf, jump = 1, 1
        for _ in self.channels:
            rf, jump = rf + 2 * jump, jump * 2
        self.window_frames = rf + (taps - 1) * jump  # 71
        self.register_buffer("out_mean", torch.zeros(dim))
        self.register_buffer("out_std", torch.ones(dim))

    def config(self) -> dict:
        return {"name": self.name, "n_mels": self.n_mels, "channels": list(self.channels), "hidden": self.hidden,
                "dim": self.dim}

    @property
    def offset_frames(self) -> int:
        """Log-mel frames to drop in front so that vector ``j`` ends where the teacher's does."""
        return EMBEDDING_FRAMES - self.window_frames

    def forward(self, logmel: torch.Tensor, units: bool = True) -> torch.Tensor:
        """The vectors in the teacher's units; ``units=False``: in units of its spread, about 0 (what the loss compares)."""
        h = self.conv(logmel.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = h.shape
        z = self.temporal(h.permute(0, 1, 3, 2).reshape(b, c * f, t)).transpose(1, 2)
        return z * self.out_std + self.out_mean if units else z


def build_student(name: str, n_mels: int = 32) -> Student:
    if name not in STUDENTS:
        raise ConfigError(f"unknown student {name!r}; available = {sorted(STUDENTS)}")
    return Student(n_mels, name=name, **STUDENTS[name])


def student_from_config(cfg: dict) -> Student:
    cfg = dict(cfg)
    return Student(cfg.pop("n_mels"), tuple(cfg.pop("channels")), cfg.pop("hidden"), cfg.pop("dim"), name=cfg.pop("name"))


class StudentDNN(LogMelClassifier):
    """A distilled student (``hearkit train distill``) with an ``emb-dnn`` head on its vectors: log-mel in.

    The student gives a 96-d vector every 8 log-mel frames from the 71 before it (the frames
    from ``offset_frames`` on: vector ``j`` ends where the speech embedding's does), and the head
    sees the last ``vectors`` of them, as ``emb-dnn`` sees the embedding's. The student is frozen by
    default (its weights are the distillation's; its BatchNorm stays in eval mode), so a trainer can
    compute its vectors once per augmented copy (``forward(vectors, vectors=True)`` then runs the
    head alone). The network needs ``frames`` log-mel frames (196 for 16 vectors): a 2-s window.

    Args:
        n_labels: number of classes.
        n_mels: log-mel bands (the student's, 32 by default).
        student: the student's ``config()`` (from the distillation checkpoint).
        vectors: student vectors the head sees (Default: 16, 1.98 s).
        hidden: the head's width (Default: 64: with student-s the int8 network is 199 KB, under the 256 KB
            a compact device allows; 128 made it 312 KB and missed as many: 50.8 against 51.8 % at 1 FA/h, three
            seeds each on 40 bands, docs/recipes/wakeword.md).
        dropout, heads: the head's (as ``emb-dnn``) (Default: 0.2, 1).
        train_student: let the student's weights train with the head (Default: False: frozen).
    """

    name = "student-dnn"

    def __init__(self, n_labels: int, n_mels: int, student: dict, vectors: int = 16, hidden: int = 64,
                 dropout: float = 0.2, heads: int = 1, train_student: bool = False):
        super().__init__()
        if not isinstance(student, dict) or student.get("n_mels") != n_mels:
            raise ConfigError(f"student-dnn needs the student's config for {n_mels} log-mel bands, got {student!r}")
        self.hparams = dict(n_labels=n_labels, n_mels=n_mels, student=dict(student), vectors=int(vectors),
                            hidden=int(hidden), dropout=dropout, heads=int(heads), train_student=bool(train_student))
        self.student = student_from_config(student)
        self.head = EmbeddingDNN(n_labels, self.student.dim, vectors, hidden, dropout, heads)
        self.train_student = bool(train_student)
        self.student.requires_grad_(self.train_student)
        self.offset = self.student.offset_frames
        self.frames = EMBEDDING_FRAMES + (int(vectors) - 1) * EMBEDDING_STRIDE  # log-mel frames of a window

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.train_student:
            self.student.eval()  # frozen: its BatchNorm statistics are the distillation's
        return self

    def vectors(self, logmel: torch.Tensor) -> torch.Tensor:
        """(batch, T, n_mels) -> the student's vectors (batch, (T - 76) // 8 + 1, 96)."""
        return self.student(logmel[:, self.offset :])

    def forward(self, x: torch.Tensor, vectors: bool = False) -> torch.Tensor:
        """Log-mel (batch, T, n_mels) -> logits; ``vectors=True``: ``x`` is already ``vectors(logmel)``."""
        return self.head(x if vectors else self.vectors(x))


# Models whose input is the speech embedding (hearkit.embedding), not log-mel: the trainer
# caches their features and the exporter checks them at their own window only.
EMBEDDING_MODELS = ("emb-dnn",)


def uses_embedding(name: str) -> bool:
    """True for a model that runs on the frozen speech embedding."""
    return name in EMBEDDING_MODELS


# Models with a distilled student inside (log-mel in): the trainer caches the frozen student's vectors.
STUDENT_MODELS = ("student-dnn",)


def uses_student(name: str) -> bool:
    """True for a model whose network starts with a distilled student (``hearkit train distill``)."""
    return name in STUDENT_MODELS


# -- registry -----------------------------------------------------------------
def _dscnn(size: str) -> Callable[..., nn.Module]:
    ch, layers = DSCNN_SIZES[size]

    def make(n_labels, n_mels, **kw):
        m = DSCNN(n_labels, n_mels, **{"channels": ch, "layers": layers, **kw})
        m.name = f"dscnn-{size}"
        return m

    return make


def _bcresnet(tau: int) -> Callable[..., nn.Module]:
    def make(n_labels, n_mels, **kw):
        m = BCResNet(n_labels, n_mels, **{"tau": tau, **kw})
        m.name = f"bcresnet-{tau}"
        return m

    return make


def _cnn4(n_labels, n_mels, **kw):
    return CNN4(n_labels, n_mels, **kw)


def _cnn4_s(n_labels, n_mels, **kw):
    m = CNN4(n_labels, n_mels, **{"channels": CNN4_S_CHANNELS, **kw})
    m.name = "cnn4-s"
    return m


MODELS: dict[str, Callable[..., nn.Module]] = {
    **{f"dscnn-{s}": _dscnn(s) for s in DSCNN_SIZES},
    **{f"bcresnet-{t}": _bcresnet(t) for t in range(1, 9)},
    "cnn4": _cnn4,
    "cnn4-s": _cnn4_s,
    "emb-dnn": EmbeddingDNN,
    "student-dnn": StudentDNN,
}


def build_model(name: str, n_labels: int, n_mels: int, **kw) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of ``MODELS`` (e.g. ``"dscnn-s"``, ``"bcresnet-3"``, ``"cnn4"``).
        n_labels: number of classes (>= 2).
        n_mels: mel bands of the input features.
        **kw: architecture hyper-parameters (e.g. ``dropout``); a checkpoint's
            ``model`` dict passes back exactly what ``model.config()`` returned.

    Returns:
        an ``nn.Module`` mapping (batch, frames, n_mels) float32 to (batch, n_labels) logits.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available models = {sorted(MODELS)}")
    if not isinstance(n_labels, int) or n_labels < 2:
        raise ConfigError(f"a classifier needs at least 2 labels, got {n_labels!r}")
    if not isinstance(n_mels, int) or n_mels < 1:
        raise ConfigError(f"n_mels must be a positive integer, got {n_mels!r}")
    if name.startswith("cnn4") and n_mels < 16:
        raise ConfigError(f"{name} pools the mel axis 4 times and needs n_mels >= 16, got {n_mels}")
    try:
        return MODELS[name](n_labels, n_mels, **kw)
    except TypeError as e:
        raise ConfigError(f"bad hyper-parameters for model {name!r}: {e}") from e


def model_config(name: str, n_labels: int, n_mels: int, **kw) -> dict:
    """A checkpoint's ``model`` entry for a registered model: ``{"name": ..., **hyper_parameters}``."""
    return build_model(name, n_labels, n_mels, **kw).config()


def model_from_config(cfg: dict) -> nn.Module:
    """Rebuild a model from a checkpoint's ``model`` dict (``{"name": ..., **hparams}``)."""
    cfg = dict(cfg)
    name = cfg.pop("name")
    return build_model(name, cfg.pop("n_labels"), cfg.pop("n_mels"), **cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
