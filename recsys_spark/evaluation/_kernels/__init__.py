"""Executor kernels of the evaluation: numpy over partitions of users (private)."""
