"""Exact co-occurrence cosine of chosen item pairs, one bucket of items at a time (numpy).

The cosine of items a and b is |U_a & U_b| / sqrt(|U_a| |U_b|) over their training
users: entry (a, b) of X^T X for the binary user x item matrix X, scaled by the items'
degrees. Only the rows of X^T X for the items a of the wanted pairs are computed.

`pairs` and `stages` send every wanted row (an item a and its partner items, or a
and a user whose row of X is the partner list) to the bucket hash(a) mod B, packed per
partition, and a copy of X (one packed row of pairs per training partition) to every
bucket, so B x the training pairs are shuffled once, as a few large rows. In each
bucket the rows X^T X[a, :] of the bucket's items are computed in dense chunks of at
most `DENSE_CELLS` cells (a sparse product is what scipy does in C; a join per pair is
what made the Spark SQL version explode) and the wanted entries read off. A bucket's
Python worker needs about 24 bytes per training pair and
4 x `DENSE_CELLS` bytes for a chunk.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_spark.evaluation._kernels.pairs import TO_HISTORY, WITHIN

# Cells of one dense block of X^T X rows (int32): 64 MiB.
DENSE_CELLS = 1 << 24


def diversity_terms(
    matrix: sp.csr_array,
    items: np.ndarray,
    lengths: np.ndarray,
    partners: np.ndarray,
    weights: np.ndarray,
    kinds: np.ndarray,
) -> tuple[float, float]:
    """One bucket's weighted sums for intra-list diversity and serendipity.

    Items are codes 0..n_items - 1 (-1: unknown to training, cosine 0).

    Parameters
    ----------
    matrix
        X (`binary_matrix`): users x items.
    items, lengths, partners, weights, kinds
        The wanted rows: item a, its partner count and (flattened) partners, the row's
        weight and kind (`WITHIN` or `TO_HISTORY`).

    Returns
    -------
    tuple of float
        sum of weight x (sum of cosines) over `WITHIN` rows, and sum of weight x
        (1 - mean cosine) over `TO_HISTORY` rows with partners.
    """
    pair_row = np.repeat(np.arange(items.size), lengths)
    cosine = pair_cosines(matrix, items[pair_row], partners)
    sums = np.bincount(pair_row, weights=cosine, minlength=items.size)
    within = kinds == WITHIN
    to_history = (kinds == TO_HISTORY) & (lengths > 0)
    unexpected = 1.0 - sums[to_history] / np.maximum(lengths[to_history], 1)
    return float((weights[within] * sums[within]).sum()), float(
        (weights[to_history] * unexpected).sum()
    )


def binary_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """The binary matrix with ones at (`rows`, `cols`); repeated pairs count once."""
    data = np.ones(rows.size, dtype=np.int32)
    matrix = sp.csr_array((data, (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def pair_cosines(matrix: sp.csr_array, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of the columns `a[i]` and `b[i]` of a binary matrix.

    0 where either index is -1 or its column is empty.

    The rows (X^T X)[a, :] are computed for the distinct `a`, in dense chunks of at
    most `DENSE_CELLS` cells, and the entries (a[i], b[i]) read off.
    """
    out = np.zeros(a.size, dtype=np.float64)
    by_item = matrix.T.tocsr()
    n_items = matrix.shape[1]
    degree = np.diff(by_item.indptr).astype(np.float64)
    has_users = np.append(degree > 0, False)  # index -1: unknown item
    known = np.flatnonzero(has_users[a] & has_users[b])
    if known.size == 0:
        return out
    needed = np.zeros(n_items, dtype=bool)
    needed[a[known]] = True
    row_items = np.flatnonzero(needed)
    row_of = np.full(n_items, -1, dtype=np.int64)
    row_of[row_items] = np.arange(row_items.size)
    row = row_of[a[known]]
    step = max(1, DENSE_CELLS // max(n_items, 1))
    for lo in range(0, row_items.size, step):
        hi = min(row_items.size, lo + step)
        block = (by_item[row_items[lo:hi]] @ matrix).toarray()
        here = np.flatnonzero((row >= lo) & (row < hi))
        pairs = known[here]
        out[pairs] = block[row[here] - lo, b[pairs]]
    out[known] /= np.sqrt(degree[a[known]] * degree[b[known]])
    return out
