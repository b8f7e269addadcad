"""Benchmarks: tinytorch vs PyTorch measured side by side in one run (not timed tests)."""
