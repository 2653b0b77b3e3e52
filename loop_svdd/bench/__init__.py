"""Benchmarks: one module per protocol, run by `loop-svdd benchmark PROTOCOL`."""
