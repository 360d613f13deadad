"""The commands that make a model: data sets, training, export, verification, packaging, the demo.

``hearkit.commands`` runs on a device with no torch (import-linter holds it: it imports
nothing of training, export, recipes or here); these commands drive the training side
(``hearkit.training``, ``hearkit.export``, ``hearkit.recipes``), each importing its library
inside the command body, and most of their paths need ``hearkit[train]``. ``hearkit.cli``
names every command as a ``"module:attr"`` string and imports it when it runs.
"""
