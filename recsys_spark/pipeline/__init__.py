"""The nightly pipeline's building blocks: holdout, hybrid blend, gate, publishing, lock.

`jobs/nightly.py` runs them in order; each module is usable (and tested) on its own.
"""
