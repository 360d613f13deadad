"""Clips as a torch Dataset: decoded once, cached in memory, fitted to the model's window.

The sets hearkit trains on are small (a few thousand clips: Speech Commands
4,454 s of audio is ~285 MB as float32), so every clip is decoded and resampled
once and epochs then cost only the network. Augmentation runs batched on the
training side (``hearkit.training.augment``), not here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from hearkit.audio import fit_window, load_audio
from hearkit.datasets import Example
from hearkit.errors import AudioError, ConfigError
from hearkit.progress import Progress

BAD_FILE_POLICIES = ("skip", "fail")


def load_clips(
    examples: Sequence[Example], sample_rate: int, on_bad_file: str = "fail", progress: bool = False
) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]]:
    """Decode clips at ``sample_rate``.

    Args:
        examples: the clips to read.
        sample_rate: model rate in Hz.
        on_bad_file: ``fail`` raises the first ``AudioError`` (it names the file);
            ``skip`` leaves the file out and reports it on stderr (Default: fail).
        progress: show progress on stderr (a bar on a terminal, a line per 10 % otherwise).

    Returns:
        ``(clips, kept, bad)``: the decoded clips, the indices into ``examples``
        they came from, and ``(path, reason)`` for each skipped file.
    """
    if on_bad_file not in BAD_FILE_POLICIES:
        raise ConfigError(f"on_bad_file must be one of {list(BAD_FILE_POLICIES)}, got {on_bad_file!r}")
    # a bar on a terminal, a line per 10 % in a log (hearkit.progress)
    bar = Progress(len(examples), "loading clips", unit="clip") if progress else None
    clips, kept, bad = [], [], []
    for i, e in enumerate(examples):
        if bar is not None:
            bar.update(1)
        try:
            x, _ = load_audio(e.path, sample_rate)
        except AudioError as err:
            if on_bad_file == "fail":
                raise AudioError(err.source, f"{err.reason} (use --on-bad-file skip to leave such files out)") from err
            bad.append((e.path, err.reason))
            print(f"hearkit: skipping unreadable clip {e.path}: {err.reason}", file=sys.stderr)
            continue
        clips.append(x)
        kept.append(i)
    if bar is not None:
        bar.close()
    if examples and not clips:
        # nothing left to train or validate on: name the clips, not the checkpoint that never came
        shown = "; ".join(f"{path}: {reason}" for path, reason in bad[:3])
        more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ConfigError(f"every one of the {len(bad)} clips is unreadable, nothing is left to learn from: {shown}{more}")
    return clips, kept, bad


class ClipDataset(Dataset):
    """Labelled clips at the model rate, each fitted to the window.

    Items are ``(waveform (window,) float32 tensor, label index)``. Training sets
    take a random crop from clips longer than the window (``random_crop``);
    evaluation takes the centre.

    Args:
        examples: clips of one split.
        labels: the label list (an example's label index is its position here).
        sample_rate: model rate in Hz.
        window_samples: samples per clip fed to the model.
        on_bad_file: ``skip`` | ``fail`` (Default: fail).
        random_crop: random crop of long clips instead of the centre (Default: False).
        seed: seed of the crop positions.
        progress: progress on stderr while decoding.
    """

    def __init__(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        sample_rate: int,
        window_samples: int,
        on_bad_file: str = "fail",
        random_crop: bool = False,
        seed: int = 0,
        progress: bool = False,
    ):
        if window_samples <= 0:
            raise ConfigError(f"window must be at least one sample, got {window_samples}")
        labels = list(labels)
        unknown = sorted({e.label for e in examples} - set(labels))
        if unknown:
            raise ConfigError(f"examples have labels {unknown} that are not in the label list {labels}")
        clips, kept, bad = load_clips(examples, sample_rate, on_bad_file, progress)
        self.examples = [examples[i] for i in kept]
        self.targets = torch.tensor([labels.index(e.label) for e in self.examples], dtype=torch.long)
        self.clips = clips
        self.bad_files = bad
        self.labels = labels
        self.sample_rate = sample_rate
        self.window = int(window_samples)
        self.random_crop = random_crop
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        x = self.clips[i]
        offset = None
        if self.random_crop and x.shape[0] > self.window:
            offset = int(self._rng.integers(0, x.shape[0] - self.window + 1))
        return torch.from_numpy(np.ascontiguousarray(fit_window(x, self.window, offset))), int(self.targets[i])
