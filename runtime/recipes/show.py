"""``hearkit show``'s job: a clip's panels, and with ``augment`` one row per training augmentation.

The augmented rows come from ``hearkit.training.augment`` (torch), which is why this
job sits in the recipes layer; the drawing itself is ``hearkit.plots.clip``.
"""

from __future__ import annotations

from pathlib import Path

from hearkit.frontend import FrontendConfig


def show(audio_path: str | Path, out_png: str | Path, cfg: FrontendConfig, augment: bool = False,
         noise_dir: str | Path | None = None, seed: int = 0) -> Path:
    """Draw waveform / spectrogram / log-mel of a file (and of its augmentations) to a PNG.

    Args:
        audio_path: any file libsndfile reads; resampled to ``cfg.sample_rate``.
        out_png: the PNG to write.
        cfg: the front-end drawn (and used by the feature-level augmentations).
        augment: add a row per training augmentation (time shift, noise, gain, SpecAugment,
            mixup), drawn for the first ``WHOLE_FILE_SECONDS`` of a longer file; needs
            hearkit[train] (Default: False).
        noise_dir: background-noise recordings for the noise row (Default: None = generated noise).
        seed: seed of the random augmentations; also picks the noise file (Default: 0).

    Returns:
        ``out_png`` as a Path.

    Raises:
        ConfigError: ``noise_dir`` holds no audio file.
    """
    from hearkit.plots.clip import clip_title, draw_rows, show_clip

    if not augment:
        return show_clip(audio_path, out_png, cfg)  # torch-free
    import numpy as np

    from hearkit.audio import WHOLE_FILE_SECONDS, audio_info, load_span
    from hearkit.errors import require

    # augmentations are drawn for a clip: of a longer file, its first WHOLE_FILE_SECONDS
    sr = cfg.sample_rate
    x = load_span(audio_path, sr, 0, int(WHOLE_FILE_SECONDS * sr))
    duration = audio_info(audio_path)["duration"]
    title = clip_title(audio_path, x, sr)
    if duration > WHOLE_FILE_SECONDS:
        title = f"{Path(audio_path).name}  (the first {len(x) / sr:.2f} s of {duration:.2f} s, at {sr} Hz)"
    require("torch", "train")
    from hearkit.training.augment import augment_examples

    noise = None
    if noise_dir is not None:
        from hearkit.datasets import noise_files
        from hearkit.errors import ConfigError

        files = noise_files(noise_dir)
        if not files:
            raise ConfigError(f"--noise-dir {noise_dir}: no audio files in it")
        noise = load_span(files[seed % len(files)], sr, 0, len(x))  # no more than the clip needs
        noise = np.resize(noise, len(x))  # loop or cut to the clip's length
    rows = [("original", x, None)]
    for name, value in augment_examples(x, sr, noise=noise, seed=seed, frontend=cfg).items():
        if name in ("original", "logmel"):  # already the first row
            continue
        value = np.asarray(value)
        if value.ndim == 1:
            rows.append((name, value, None))
        else:  # a log-mel level augmentation (SpecAugment): only the mel panel changes
            rows.append((name, x, value))
    return draw_rows(rows, sr, cfg, out_png, title)
