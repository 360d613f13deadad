"""``hearkit train``: a group whose subcommands load lazily (they need hearkit[train]).

Add a trainer by adding one line ``"name": "module:attr"`` to ``SUBCOMMANDS``.
"""

from __future__ import annotations

import click

from hearkit.cli import LazyGroup

# name -> "module:attribute"; one line per trainer.
SUBCOMMANDS: dict[str, str] = {
    "classify": "hearkit.workbench.train_classify:classify",
    "ctc": "hearkit.workbench.train_ctc:ctc",
    "distill": "hearkit.workbench.train_distill:distill",
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def train():
    """Train a model (needs hearkit[train]): `classify` for keywords and sounds, `ctc` for speech, `distill` for a
    compact student of the speech embedding."""
