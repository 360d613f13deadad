"""``hearkit devices``: list the device profiles, or show one with the reason for each choice."""

from __future__ import annotations

import json

import click


@click.command("devices")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def devices(name, as_json):
    """List the device profiles (one line each), or show NAME's settings and why.

    NAME is a shipped profile (see the list) or a path to a profile.toml; pass it
    to --device of package, bench, run, stream and transcribe.
    """
    from dataclasses import asdict

    from hearkit.devices import load_all_profiles, load_profile

    if name is None:
        profiles = load_all_profiles()
        if as_json:
            click.echo(json.dumps({p.name: asdict(p) for p in profiles}, indent=2))
            return
        for p in profiles:
            click.echo(p.summary())
        return
    p = load_profile(name)
    if as_json:
        click.echo(json.dumps(asdict(p), indent=2))
        return
    click.echo(f"{p.name}: {p.description} ({p.arch}, {p.cpu})")
    click.echo(f"  from {p.source}")
    rows = [
        ("session.providers", ", ".join(p.providers)),
        ("session.threads", p.threads),
        ("session.spinning", p.spinning),
        ("session.graph_optimization", p.graph_optimization),
        ("session.prefer", p.prefer),
        ("session.fp16", p.fp16),
        *((f"quantization.{k}", v) for k, v in p.quantization.to_dict().items()),
        ("frontend.backend", p.frontend_backend),
        ("frontend.precision", p.frontend_precision),
        ("package.ort_target_platform", p.ort_target_platform),
    ]
    if p.tensorrt is not None:
        rows += [(f"tensorrt.{k}", v) for k, v in asdict(p.tensorrt).items()]
    for key, value in rows:
        click.echo(f"  {key:<34} {str(value):<30} {p.why.get(key, '')}")
