"""Torch-free evaluation of exported models, one module per task, and device benchmarks.

``hearkit.evaluate.classify`` (accuracy, per-class report, confusion matrix),
``hearkit.evaluate.ctc`` (WER/CER through the transcriber), ``hearkit.evaluate.bench``
(the timing helper and the device benchmark of a model file, export folder or bundle).
"""
