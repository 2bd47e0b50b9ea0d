"""Benchmarks: the conversion matrix (every format × precision of a model: size, parity, latency)."""
