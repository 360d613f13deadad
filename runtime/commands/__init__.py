"""The commands a device runs (run, stream, eval, transcribe, bench, devices, lm), one module each.

Imported lazily by ``hearkit.cli``. Torch-free even inside functions, and none imports the
training side (``hearkit.training``, ``hearkit.export``, ``hearkit.recipes``,
``hearkit.workbench``): import-linter holds both (docs/design.md §12). The commands that make
a model are ``hearkit.workbench``.
"""
