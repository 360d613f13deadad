"""``hearkit lm``: build a word n-gram language model from text (pure Python) and score with it."""

from __future__ import annotations

import click

from hearkit.commands.options import out_option


@click.group("lm")
def lm():
    """Word n-gram language models (ARPA) for CTC beam search."""


@lm.command("build")
@click.argument("text", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@out_option("output", required=True, type=click.Path(dir_okay=False), help="ARPA file to write.")
@click.option("--order", type=click.IntRange(1, 6), default=3, show_default=True, help="n-gram order.")
@click.option(
    "--normalize/--no-normalize",
    default=True,
    show_default=True,
    help="Lower-case, hyphens to spaces, keep only a-z and apostrophes (the alphabet of hearkit CTC models).",
)
@click.option("--force", is_flag=True, help="Replace OUTPUT when it exists.")
def build(text, output, order, normalize, force):
    """Build an interpolated Kneser-Ney LM from TEXT files (one sentence per line)."""
    from hearkit.files import check_output_file
    from hearkit.lm import DEFAULT_ALPHABET, NGramLM
    from hearkit.text import text_lines

    check_output_file(output, force)

    def lines():
        for path in text:  # a non-UTF-8 byte is one line naming the file (hearkit.text.text_lines)
            yield from (line for _, line in text_lines(path, "text file"))

    model, dropped = NGramLM.build_from_text(lines(), order=order, alphabet=DEFAULT_ALPHABET if normalize else None)
    model.save(output)
    sizes = ", ".join(f"{len(model.tables[k])} {k}-grams" for k in range(1, model.order + 1))
    click.echo(f"wrote {output}: order {model.order}, {len(model.vocab) - 3} words, {sizes}")
    if dropped:
        shown = ", ".join(f"{c!r} x{n}" for c, n in dropped.most_common(10))
        click.echo(f"removed {sum(dropped.values())} characters outside a-z and apostrophe: {shown}", err=True)


@lm.command("score")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("sentence", nargs=-1, required=True)
def score(model, sentence):
    """Print the log10 probability and perplexity of SENTENCE under MODEL."""
    from hearkit.lm import NGramLM

    m = NGramLM.load(model)
    words = " ".join(sentence).split()
    lp = m.score(words)
    click.echo(f"log10 P = {lp:.4f}   perplexity = {10 ** (-lp / (len(words) + 1)):.2f}")
