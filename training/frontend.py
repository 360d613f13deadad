"""The log-mel front-end as a torch module, for training (docs/design.md §4).

Computes exactly ``hearkit.frontend.logmel`` of the same ``FrontendConfig``:
the window and mel filterbank are the numpy ones, registered as buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from hearkit.frontend import DB_FLOOR, FrontendConfig, mel_filterbank, window


class LogMel(nn.Module):
    """Waveform (batch, samples) float32 -> log-mel (batch, frames, n_mels).

    Args:
        cfg: the front-end configuration (Default: ``FrontendConfig()``).
    """

    def __init__(self, cfg: FrontendConfig | None = None):
        super().__init__()
        self.cfg = cfg or FrontendConfig()
        self.register_buffer("window", torch.tensor(window(self.cfg), dtype=torch.float32), persistent=False)
        self.register_buffer("fb", torch.tensor(mel_filterbank(self.cfg).T, dtype=torch.float32), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        squeeze = waveform.dim() == 1
        if squeeze:
            waveform = waveform.unsqueeze(0)
        spec = torch.stft(
            waveform,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.n_fft,  # the window is already padded to n_fft and centred
            window=self.window,
            center=cfg.center,
            pad_mode=cfg.pad_mode,
            onesided=True,
            return_complex=True,
        )  # (batch, bins, frames)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(power.transpose(1, 2), self.fb)  # (batch, frames, n_mels)
        if cfg.log == "ln":
            out = torch.log(mel + cfg.eps)
        else:
            out = 10.0 * torch.log10(torch.clamp(mel, min=DB_FLOOR))
        return out.squeeze(0) if squeeze else out


def frontend_module(cfg) -> nn.Module:
    """The torch-side front-end of a config: ``LogMel`` for a ``FrontendConfig``, the frozen speech
    embedding (``hearkit.training.embedding.EmbeddingFrontend``, onnxruntime inside) for an
    ``EmbeddingConfig``. Both map (batch, samples) to (batch, frames, features)."""
    from hearkit.embedding import is_embedding

    if is_embedding(cfg):
        from hearkit.training.embedding import EmbeddingFrontend

        return EmbeddingFrontend(cfg)
    return LogMel(cfg)
