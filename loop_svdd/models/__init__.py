"""The models: LoopSVDD (HTS-AT encoder + Deep SVDD head, transformers-style), the musicnn teacher, weight
conversion, the encoder registry and safe model folders (safetensors + JSON)."""
