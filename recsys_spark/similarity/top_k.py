"""Top-K per group in numpy: the ranking step of neighbour lists and item-based lists."""

from __future__ import annotations

import numpy as np


def top_k_per_group(
    group: np.ndarray, score: np.ndarray, tie: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the `k` best entries of every group, by score desc then `tie` asc.

    Groups larger than `k` are first cut to the entries scoring at least their k-th
    largest score (`np.partition`, linear time), so the exact three-key sort only sees
    about k entries per group instead of all of them.

    Parameters
    ----------
    group
        Group of each entry (any integers; fastest when already sorted).
    score
        Score of each entry (finite); higher is better.
    tie
        Tie-break key of each entry (for example the item's position in item-id order);
        smaller wins, so reruns give identical lists.
    k
        Entries kept per group.

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]
        `(positions, ranks)`: indices into the inputs, ordered by group then rank, and
        the 1-based rank of each within its group.
    """
    if k <= 0:
        raise ValueError(f"k must be positive; got {k}")
    n = len(group)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    by_group = (
        np.arange(n) if bool(np.all(group[1:] >= group[:-1])) else np.argsort(group, kind="stable")
    )
    g, s = group[by_group], score[by_group]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], n]
    keep = np.ones(n, dtype=bool)
    for lo, hi in zip(starts[ends - starts > k], ends[ends - starts > k], strict=True):
        segment = s[lo:hi]
        kth = np.partition(segment, len(segment) - k)[len(segment) - k]
        keep[lo:hi] = segment >= kth
    candidates = by_group[keep]
    order = candidates[np.lexsort((tie[candidates], -score[candidates], group[candidates]))]
    sorted_groups = group[order]
    first = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    top = rank < k
    return order[top], rank[top] + 1
