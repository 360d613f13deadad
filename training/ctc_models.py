"""CTC encoders: log-mel (batch, frames, n_mels) -> log_probs (batch, frames // subsampling, vocab).

Two families:

``ctc-conv-s|m|l`` (the default): QuartzNet-like stacks of 1-D time-channel
separable convolutions (depthwise conv over time, pointwise conv over
channels, BatchNorm, ReLU, residual per block) after a strided separable front
(stride 2 or 4). Only Conv/BN/ReLU/Add, so the dynamo exporter handles a
dynamic time axis and ORT quantizes it statically (docs/design.md §5).

``ctc-crnn``: what most tutorials teach: a 2-D conv front over
(time, mel), a bidirectional GRU or LSTM, and a linear layer. Exported with the
TorchScript exporter (``dynamo=False``), because the dynamo exporter fails on,
or silently bakes in the example length of, RNNs (docs/design.md §6). GRU cannot be
quantized by ORT at all and LSTM only dynamically.

Trade-offs, measured here (torch 2.13 CPU, onnxruntime 1.32, 1 thread, 10 s of
audio, machine shared and loaded, so absolute times are inflated; compare
within a row):

| | ctc-conv-s | ctc-crnn (GRU) | ctc-crnn (LSTM) |
| --- | --- | --- | --- |
| parameters | 0.65 M | 1.13 M | 1.50 M |
| dynamo export, dynamic time | works | ConversionError | ConversionError |
| exporter used | dynamo | TorchScript | TorchScript |
| int8 | static QDQ, all convs | none for GRU (MatMul only) | DynamicQuantizeLSTM |
| RTF torch eager | 0.018 | 0.036 | 0.033 |
| RTF ONNX fp32 | 0.0087 | 0.016 | 0.018 |
| RTF ONNX int8 | 0.0048 | 0.015 | 0.0055 |
| receptive field | 3.95 s, i.e. ±1.98 s (finite: chunks with 2 s overlap equal the whole file) | whole utterance (bidirectional) | same |
| streaming | chunks with overlap | needs the whole chunk twice (both directions) | same |

The conv model is smaller, about 2x (fp32) to 3x (int8, GRU) faster, exports
with the default exporter and quantizes statically; the bidirectional RNN sees
the whole chunk, which can help long-range context but makes chunked results
depend on the chunk borders.

Input features are normalised by a BatchNorm without affine parameters: its
running mean/variance are fixed at training time and fold into the graph
(docs/design.md §4: no per-utterance normalisation).
"""

from __future__ import annotations

import torch
from torch import nn

from hearkit.errors import ConfigError

# name -> constructor kwargs. Channels/kernels follow QuartzNet 5x? scaled down for edge CPUs.
PRESETS: dict[str, dict] = {
    # ~0.66M params, 20 ms output frames
    "ctc-conv-s": dict(arch="conv", channels=(160, 160, 192, 192, 192), kernels=(11, 13, 17, 21, 25), repeats=2,
                       front_channels=160, front_kernel=11, stride=2, end_channels=256, end_kernel=29),
    # ~1.7M params
    "ctc-conv-m": dict(arch="conv", channels=(256, 256, 256, 256, 256), kernels=(11, 13, 17, 21, 25), repeats=3,
                       front_channels=256, front_kernel=11, stride=2, end_channels=384, end_kernel=29),
    # ~4.1M params
    "ctc-conv-l": dict(arch="conv", channels=(256, 320, 384, 384, 448), kernels=(13, 15, 17, 21, 25), repeats=3,
                       front_channels=256, front_kernel=11, stride=2, end_channels=512, end_kernel=29),
    # ~1.1M params; 2-D conv front (time stride 2), 2-layer BiGRU
    "ctc-crnn": dict(arch="crnn", conv_channels=32, hidden=160, layers=2, rnn="gru", stride=2),
}
DROPOUT = 0.1  # between conv blocks / RNN layers while training


def conv_out_len(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    """Frames after a stride-``stride`` conv with 'same' padding and odd kernel: ceil(T / stride)."""
    return torch.div(lengths + stride - 1, stride, rounding_mode="floor")


class SeparableConv(nn.Module):
    """Depthwise conv over time + pointwise conv + BatchNorm. (batch, c_in, T) -> (batch, c_out, T / stride)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        if kernel % 2 == 0:
            raise ConfigError(f"conv kernel sizes must be odd (for 'same' padding), got {kernel}")
        self.depthwise = nn.Conv1d(c_in, c_in, kernel, stride=stride, padding=kernel // 2, groups=c_in, bias=False)
        self.pointwise = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(x)))


class ConvBlock(nn.Module):
    """QuartzNet block: ``repeats`` separable convs, residual (1x1 conv + BN) added before the last ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, repeats: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(SeparableConv(c_in if i == 0 else c_out, c_out, kernel) for i in range(repeats))
        self.residual = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        res = self.residual(x)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1:
                x = x + res
            x = self.drop(self.act(x))
        return x


class ConvCTC(nn.Module):
    """1-D separable conv CTC encoder.

    Args:
        n_mels: input feature bands.
        vocab_size: outputs per frame, the blank included.
        channels: output channels of each block.
        kernels: depthwise kernel size (odd) of each block.
        repeats: separable convs per block.
        front_channels, front_kernel: the strided front.
        stride: time subsampling of the front: 2 (one stride-2 conv) or 4 (two).
        end_channels, end_kernel: the final separable conv before the 1x1 classifier.
        dropout: dropout after each ReLU (training only).
    """

    def __init__(self, n_mels: int, vocab_size: int, channels=(160,) * 5, kernels=(11, 13, 17, 21, 25), repeats: int = 2,
                 front_channels: int = 160, front_kernel: int = 11, stride: int = 2, end_channels: int = 256,
                 end_kernel: int = 29, dropout: float = DROPOUT, arch: str = "conv"):
        super().__init__()
        if stride not in (2, 4):
            raise ConfigError(f"ctc-conv stride must be 2 or 4, got {stride}")
        if len(channels) != len(kernels):
            raise ConfigError(f"channels ({len(channels)}) and kernels ({len(kernels)}) need one entry per block")
        self.subsampling = stride
        self.input_norm = nn.BatchNorm1d(n_mels, affine=False)
        front = [SeparableConv(n_mels, front_channels, front_kernel, stride=2), nn.ReLU()]
        if stride == 4:
            front += [SeparableConv(front_channels, front_channels, front_kernel, stride=2), nn.ReLU()]
        self.front = nn.Sequential(*front)
        blocks, c = [], front_channels
        for ch, k in zip(channels, kernels):
            blocks.append(ConvBlock(c, ch, k, repeats, dropout))
            c = ch
        self.blocks = nn.Sequential(*blocks)
        self.end = nn.Sequential(
            SeparableConv(c, end_channels, end_kernel), nn.ReLU(),
            nn.Conv1d(end_channels, end_channels, 1, bias=False), nn.BatchNorm1d(end_channels), nn.ReLU(),
        )
        self.classifier = nn.Conv1d(end_channels, vocab_size, 1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        out = conv_out_len(lengths, 2)
        return conv_out_len(out, 2) if self.subsampling == 4 else out

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mels) log-mel -> (batch, ceil(frames / subsampling), vocab) log-probs."""
        x = self.input_norm(feats.transpose(1, 2))
        x = self.end(self.blocks(self.front(x)))
        return torch.log_softmax(self.classifier(x).transpose(1, 2), dim=-1)


class CRNNCTC(nn.Module):
    """2-D conv front + bidirectional GRU/LSTM + linear.

    Args:
        n_mels: input feature bands.
        vocab_size: outputs per frame, the blank included.
        conv_channels: channels of the two 3x3 convs (each halves the mel axis).
        hidden: RNN hidden size per direction.
        layers: RNN layers.
        rnn: ``gru`` | ``lstm``.
        stride: time subsampling, 2 or 4 (first conv, or both convs, stride 2 in time).
        dropout: between RNN layers (training only).
    """

    def __init__(self, n_mels: int, vocab_size: int, conv_channels: int = 32, hidden: int = 160, layers: int = 2,
                 rnn: str = "gru", stride: int = 2, dropout: float = DROPOUT, arch: str = "crnn"):
        super().__init__()
        if rnn not in ("gru", "lstm"):
            raise ConfigError(f"ctc-crnn rnn must be 'gru' or 'lstm', got {rnn!r}")
        if stride not in (2, 4):
            raise ConfigError(f"ctc-crnn stride must be 2 or 4, got {stride}")
        self.subsampling = stride
        self.input_norm = nn.BatchNorm1d(n_mels, affine=False)
        c = conv_channels
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=(2, 2), padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=(stride // 2, 2), padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
        )
        freq = conv_out_len(conv_out_len(torch.tensor(n_mels), 2), 2).item()
        cls = nn.GRU if rnn == "gru" else nn.LSTM
        self.rnn = cls(c * freq, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                       dropout=dropout if layers > 1 else 0.0)
        self.classifier = nn.Linear(2 * hidden, vocab_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        out = conv_out_len(lengths, 2)
        return conv_out_len(out, 2) if self.subsampling == 4 else out

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mels) -> (batch, ceil(frames / subsampling), vocab) log-probs.

        The RNN runs over padded frames too (no packing): packing does not
        export, and batch-1 inference (the runtime's case) has no padding.
        """
        x = self.input_norm(feats.transpose(1, 2)).unsqueeze(1)  # (B, 1, mels, T)
        x = self.conv(x.transpose(2, 3))  # (B, C, T', F')
        b, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)
        x, _ = self.rnn(x)
        return torch.log_softmax(self.classifier(x), dim=-1)


# -- the zoo's helpers: the same names as hearkit.training.models -------------------------
MODELS = tuple(PRESETS)  # the preset names


def model_config(name: str, **overrides) -> dict:
    """The constructor kwargs of a preset (plus ``name``), with overrides applied: a checkpoint's ``model`` entry."""
    if name not in PRESETS:
        raise ConfigError(f"unknown CTC model {name!r}; available: {sorted(PRESETS)}")
    return {"name": name, **PRESETS[name], **overrides}


def model_from_config(cfg: dict, n_mels: int, vocab_size: int) -> nn.Module:
    """Rebuild the network a ``model_config`` (a checkpoint's ``model`` entry) describes.

    Args:
        cfg: ``{"name": ..., **constructor_kwargs}``.
        n_mels: input bands (the checkpoint's front-end ``n_mels``).
        vocab_size: outputs per frame, the blank included (``len(ckpt["vocab"])``).
    """
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k != "name"}
    arch = kw.get("arch", "conv")
    if arch == "conv":
        return ConvCTC(n_mels, vocab_size, **kw)
    if arch == "crnn":
        return CRNNCTC(n_mels, vocab_size, **kw)
    raise ConfigError(f"unknown CTC architecture {arch!r} in model config {cfg}")


def build_model(name: str | dict, n_mels: int, vocab_size: int, **overrides) -> nn.Module:
    """Build a preset: ``model_from_config(model_config(name, **overrides), n_mels, vocab_size)``.

    Args:
        name: a preset of ``PRESETS``; a config dict is accepted too (as ``model_from_config``),
            which is how callers written before ``model_from_config`` rebuild checkpoints.
        n_mels: input bands.
        vocab_size: outputs per frame, the blank included.
        **overrides: constructor kwargs that replace the preset's (e.g. ``rnn="lstm"``).
    """
    cfg = {**name, **overrides} if isinstance(name, dict) else model_config(name, **overrides)
    return model_from_config(cfg, n_mels, vocab_size)
