"""Similarity measures computed from co-occurrence counts (vectorised numpy).

Every measure takes, per item pair (i, j), the co-occurrence count `c_ij` (users who
interacted with both), the item counts `c_i`, `c_j` (users per item) and the number of
users `n_users` of the binarised matrix:

- `count`     c_ij
- `jaccard`   c_ij / (c_i + c_j - c_ij)
- `cosine`    c_ij / sqrt(c_i c_j)
- `lift`      c_ij / (c_i c_j)
- `inclusion` c_ij / min(c_i, c_j)
- `llr`       Dunning's log-likelihood ratio (G-test) of the 2x2 contingency table, in
  Mahout's formulation (never negative).

These run on the executors inside the co-occurrence stage (see blocks.py).
"""

from __future__ import annotations

import numpy as np

MEASURES: tuple[str, ...] = ("count", "jaccard", "cosine", "lift", "inclusion", "llr")


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x * log(x) with xlogx(0) = 0."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    positive = x > 0
    out[positive] = x[positive] * np.log(x[positive])
    return out


def log_likelihood_ratio(
    k11: np.ndarray | float,
    k12: np.ndarray | float,
    k21: np.ndarray | float,
    k22: np.ndarray | float,
) -> np.ndarray:
    """Dunning's log-likelihood ratio of 2x2 tables, as Mahout computes it.

    ``LLR = 2 * (H(k11 + k12, k21 + k22) + H(k11 + k21, k12 + k22) - H(k11, k12, k21, k22))``
    with the un-normalised entropy ``H(x_1..x_n) = xlogx(sum x) - sum xlogx(x_i)``.
    Mathematically never negative; a tiny negative from rounding is clamped to 0.

    Parameters
    ----------
    k11, k12, k21, k22
        Cell counts (scalars or equal-length arrays): both events, only the first, only
        the second, neither.

    Returns
    -------
    numpy.ndarray
        The ratio per table (float64, >= 0).
    """
    k11, k12, k21, k22 = (np.asarray(k, dtype=np.float64) for k in (k11, k12, k21, k22))
    row = _xlogx(k11 + k12 + k21 + k22) - _xlogx(k11 + k12) - _xlogx(k21 + k22)
    col = _xlogx(k11 + k12 + k21 + k22) - _xlogx(k11 + k21) - _xlogx(k12 + k22)
    matrix = _xlogx(k11 + k12 + k21 + k22) - (_xlogx(k11) + _xlogx(k12) + _xlogx(k21) + _xlogx(k22))
    return np.maximum(2.0 * (row + col - matrix), 0.0)


def similarity_scores(
    measure: str, c_ij: np.ndarray, c_i: np.ndarray, c_j: np.ndarray, n_users: int
) -> np.ndarray:
    """The score of `measure` for each pair, from its counts.

    Parameters
    ----------
    measure
        One of :data:`MEASURES`.
    c_ij, c_i, c_j
        Co-occurrence count and the two item counts, equal-length arrays.
    n_users
        Users in the binarised matrix (only `llr` uses it).

    Returns
    -------
    numpy.ndarray
        float64 scores, one per pair.
    """
    c_ij, c_i, c_j = (np.asarray(a, dtype=np.float64) for a in (c_ij, c_i, c_j))
    if measure == "count":
        return c_ij.copy()
    if measure == "jaccard":
        return c_ij / (c_i + c_j - c_ij)
    if measure == "cosine":
        return c_ij / np.sqrt(c_i * c_j)
    if measure == "lift":
        return c_ij / (c_i * c_j)
    if measure == "inclusion":
        return c_ij / np.minimum(c_i, c_j)
    if measure == "llr":
        return log_likelihood_ratio(c_ij, c_i - c_ij, c_j - c_ij, n_users - c_i - c_j + c_ij)
    raise ValueError(f"unknown similarity measure '{measure}'; use one of {', '.join(MEASURES)}")
