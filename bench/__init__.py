"""Benchmark scripts. Each starts its own broker and Redis and prints a RESULT line last."""
