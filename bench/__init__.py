"""`make bench`: this API vs `mlflow models serve` vs a constant-response ceiling.

See docs/BENCHMARKS.md.
"""
