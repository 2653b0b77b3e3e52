"""The one road from audio to a score: decode -> features -> embedding (cached) -> latent -> score -> time
scores, and the runners (PyTorch, ONNX Runtime, OpenVINO) that execute it."""
