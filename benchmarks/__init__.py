"""Benchmarks against xtuner's own tools: ``python -m benchmarks`` (see BENCHMARKS.md)."""
