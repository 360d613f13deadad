"""``hearkit package``: an export folder -> a verified bundle for one device (needs hearkit[train] for quantization)."""

from __future__ import annotations

import click

from hearkit.commands.options import Limited, out_option


@click.command("package")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--device", "-d", default=None, help="Device profile name (see `hearkit devices`) or path to a profile.toml. Required unless --verify.")
@out_option("bundle_dir", type=click.Path(file_okay=False), default=None, help="Bundle folder to write: new or empty (a bundle hearkit wrote is replaced only with --force).")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Calibration audio (folder or JSONL manifest), used only when the export has no int8 variant with the device's recipe (Default: the data the export recorded).")
@click.option("--calibration-clips", type=Limited("count", lo=1), default=200, show_default=True, help="Clips for that calibration.")
@click.option("--no-ort", is_flag=True, help="Skip the ORT-format models, operators config and C sources.")
@click.option("--force", is_flag=True, help="Replace the bundle already in BUNDLE_DIR (only the files its manifest lists; other files are kept).")
@click.option("--verify", is_flag=True, help="Instead of packaging, check every file of the bundle OUT_DIR against its manifest.json.")
def package(out_dir, device, bundle_dir, data, calibration_clips, no_ort, force, verify):
    """Package the export in OUT_DIR for a device into BUNDLE_DIR.

    \b
    Example:
      hearkit package out/kws --device raspberry-pi-5 -o bundles/kws-pi5
      hearkit package --verify bundles/kws-pi5
      hearkit run bundles/kws-pi5 clip.wav
    """
    if verify:
        from hearkit.artifacts import MANIFEST, verify_bundle

        m = verify_bundle(out_dir)
        click.echo(f"{out_dir}: {len(m['files'])} files match {MANIFEST} (device {m.get('device')}, hearkit {m.get('hearkit_version')})")
        return
    if device is None or bundle_dir is None:
        raise click.UsageError("give --device NAME and -o BUNDLE_DIR (or --verify to check a bundle)")
    from hearkit.errors import require

    require("onnx", "train")
    from hearkit.export.package import package as make_bundle

    m = make_bundle(out_dir, bundle_dir, device, data=data, calibration_clips=calibration_clips, ort=not no_ort, c_source=not no_ort, force=force)
    total = sum(f["bytes"] for f in m["files"].values())
    click.echo(f"{bundle_dir}: {len(m['files'])} files, {total / 1e6:.2f} MB, runs {m['preferred']} on {m['device']}")
