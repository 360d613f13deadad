"""Export (torch, onnx): graphs, quantization, packaging, verification, calibration, torch-vs-ONNX benchmarks."""
