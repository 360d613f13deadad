"""``hearkit show``: the pictures people use to understand a clip (drawn by ``hearkit.recipes.show``)."""

from __future__ import annotations

import click

from hearkit.commands.options import Limited, config_from_options, frontend_options, out_option


@click.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@out_option("out", type=click.Path(dir_okay=False), required=True, help="PNG file to write.")
@click.option("--augment", is_flag=True, help="Add rows for time shift, background noise, gain and SpecAugment (needs hearkit[train]).")
@click.option("--noise-dir", type=click.Path(exists=True, file_okay=False), default=None, help="Background noise recordings for --augment (default: generated noise).")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True, help="Seed of the random augmentations.")
@frontend_options
def show(audio, out, augment, noise_dir, seed, **kw):
    """Draw the waveform, the linear spectrogram and the log-mel spectrogram of AUDIO to a PNG.

    The log-mel panel is exactly what a model with the same front-end options
    sees. With --augment, each training augmentation is drawn once below.
    """
    from hearkit.recipes.show import show as draw

    cfg = config_from_options(kw)
    path = draw(audio, out, cfg, augment=augment, noise_dir=noise_dir, seed=seed)
    click.echo(f"wrote {path}")
