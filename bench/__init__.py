"""Scripts that measure gpo and write BENCHMARKS.md; run each as ``python -m bench.<name>``."""
