"""``hearkit demo``: the main job end to end on a built-in default."""

from __future__ import annotations

import click

# what `hearkit demo` writes in its folder (hearkit.recipes.demo), repeated to keep --help cheap
DEMO_ENTRIES = ("keywords", "run", "export", "sentence.flac", "timeline.png", "demo.json")


@click.command()
@click.option("-o", "--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Working folder: new, empty or an earlier demo's (it continues there); another occupied folder only with --force.")
@click.option("--force", is_flag=True, help="Work in a folder that holds other files.")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Train on these recordings (Speech Commands layout or folder-per-label) instead of a synthesized set.")
@click.option("--model", default="cnn4-s", show_default=True, help="Architecture (see `hearkit train classify --help`).")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, data, model, epochs, seed, force):
    """Synthesize keywords, train, export, quantize, verify and spot keywords — all offline.

    \b
    With no --data, espeak-ng speaks six keywords (yes no up down stop go),
    twenty other words and generated noise in 135 voices; a small CNN trains on
    them in a few minutes on 2 cores, is exported as one waveform-in ONNX
    graph, quantized to int8, verified against torch, and then listens to a
    sentence spoken by voices it never heard. Everything lands in --out.
    """
    from hearkit.errors import require

    require("torch", "train")
    from hearkit.files import output_folder
    from hearkit.recipes.demo import DemoConfig, run_demo

    # an earlier demo's folder is its own to continue (it resumes training there)
    with output_folder(out, force, allow=DEMO_ENTRIES):
        s = run_demo(DemoConfig(out=out, data=data, model=model, epochs=epochs, seed=seed))
    acc = s.get("accuracy") or {}
    click.echo("")
    click.echo("hearkit demo")
    click.echo(f"  data              {s['data']}")
    click.echo(f"  model             {s['model']}, {s['parameters']} parameters, trained in {s['train_seconds']} s")
    if acc:
        click.echo("  accuracy (val)    " + ", ".join(f"{k} {v:.1%}" for k, v in acc.items() if isinstance(v, float)))
    click.echo(f"  verify            {'passed' if s['verify_passed'] else 'FAILED'} (see {s['files']['report']})")
    click.echo(f"  sentence          {s['keywords_found']}/{s['keywords_in_sentence']} keywords found, {s['false_alarms']} false alarms")
    for d in s["detections"]:
        click.echo(f"    {d['time']:6.2f} s  {d['label']:<8} {d['score']:.2f}")
    click.echo(f"  files             {', '.join(s['files'].values())}")
    click.echo(f"  total             {s['total_seconds']} s")
