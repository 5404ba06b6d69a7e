"""Small numpy helpers shared by the per-partition kernels."""

from __future__ import annotations

import numpy as np


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-D array, found by a sort.

    Same result as `np.unique(values)`; numpy 2.3+ answers that call with a hash table,
    which on a few hundred thousand mostly distinct int64 keys (a partition's pairs) is
    about 10x slower than sorting (0.22 s against 0.02 s for 375K keys here).
    """
    ordered = np.sort(values)
    if ordered.size == 0:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
