"""Catalogue-sized item statistics in numpy: the short head, coverage sums, buckets, curves.

Inputs are per-item arrays in item id order (ties by item id follow from stable
sorts): `exposure` (top-K slots), `popularity` (distinct training users, 0 = unknown to
training), `relevant` (held-out pairs) and `hits` (those in the top K). They run in one
executor task (`stages`); the definitions are in `coverage` and `breakdown`.
"""

from __future__ import annotations

import numpy as np


def head_items(popularity: np.ndarray, head_share: float) -> np.ndarray:
    """Whether each item (arrays in item id order; popularity 0 = unknown) is in the head.

    The head: most popular first (ties by item id), the items that start before
    `head_share` of all training interactions are covered.
    """
    if not 0.0 <= head_share <= 1.0:
        raise ValueError(f"head_share must be in [0, 1]; got {head_share}")
    order = np.argsort(-popularity, kind="stable")
    before = np.empty(popularity.size, dtype=np.float64)
    before[order] = np.cumsum(popularity[order]) - popularity[order]
    return (popularity > 0) & (before < head_share * popularity.sum())


def coverage_sums(
    exposure: np.ndarray, popularity: np.ndarray, in_head: np.ndarray
) -> dict[str, float]:
    """The sums `coverage_metrics` reads, from per-item arrays in item id order.

    `exposure`: top-K slots; `popularity`: distinct training users (0 = unknown to
    training); `in_head`: see `head_items`.
    """
    e, p = exposure.astype(np.float64), popularity.astype(np.float64)
    counted = np.sort(e[(p > 0) | (e > 0)], kind="stable")  # by exposure, ties by id
    known = p > 0
    return {
        "_recommended_items": float((e > 0).sum()),
        "_catalog_items": float(known.sum()),
        "_recommendations": float(e.sum()),
        "_x_log_x": float((e[e > 0] * np.log2(e[e > 0])).sum()),
        "_n": float(counted.size),
        "_gini_num": float(((2 * np.arange(1, counted.size + 1) - 1) * counted).sum()),
        "_log_pop": float((e[known] * np.log2(p[known])).sum()),
        "_known": float(e[known].sum()),
        "_tail": float(e[~in_head].sum()),
        "_rec_pop": float((e * p).sum()),
        "_hist_pop_sum": float((p * p).sum()),
        "_hist_rows": float(p.sum()),
    }


def curve_points(
    exposure: np.ndarray, popularity: np.ndarray, *, n_points: int = 100
) -> dict[str, list[float]]:
    """Points of the long-tail and Lorenz curves, at most `n_points` + 1 each.

    Arrays over items in item id order; only catalogue and recommended items count.

    Returns
    -------
    dict[str, list[float]]
        `longtail_x` (share of catalogue items, most popular first), `longtail_recs`
        (cumulative share of recommendations going to them), `longtail_train` (their
        cumulative share of training interactions); `lorenz_x` (share of items, least
        exposed first) and `lorenz_y` (their cumulative share of exposure). Each curve
        starts at (0, 0) and keeps the last item of each of `n_points` equal slices.
    """
    if n_points < 1:
        raise ValueError(f"n_points must be positive; got {n_points}")
    counted = (popularity > 0) | (exposure > 0)
    e, p = exposure[counted].astype(np.float64), popularity[counted].astype(np.float64)
    n = e.size
    pos = np.arange(1, n + 1)
    # The last item of each slice: ceil(pos * n_points / n) changes after it.
    slice_of = (pos * n_points + n - 1) // max(n, 1)
    last = np.r_[slice_of[1:] != slice_of[:-1], True] if n else np.zeros(0, bool)

    def share(values: np.ndarray, order: np.ndarray) -> list[float]:
        whole = values.sum()
        cumulative = np.cumsum(values[order])[last]
        return [0.0] + (cumulative / whole if whole else 0.0 * cumulative).tolist()

    x = [0.0] + (pos[last] / max(n, 1)).tolist()
    by_pop = np.argsort(-p, kind="stable")
    by_exposure = np.argsort(e, kind="stable")
    return {
        "longtail_x": x,
        "longtail_recs": share(e, by_pop),
        "longtail_train": share(p, by_pop),
        "lorenz_x": list(x),
        "lorenz_y": share(e, by_exposure),
    }


def item_bucket_sums(
    exposure: np.ndarray,
    relevant: np.ndarray,
    hits: np.ndarray,
    in_head: np.ndarray,
    known: np.ndarray,
) -> dict[str, float]:
    """Per item bucket: top-K slots, relevant pairs and hits (per-item arrays)."""
    member = {"head": known & in_head, "tail": known & ~in_head, "unseen": ~known}
    out: dict[str, float] = {}
    for name, rows in member.items():
        out[f"_{name}_recs"] = float(exposure[rows].sum())
        out[f"_{name}_rel"] = float(relevant[rows].sum())
        out[f"_{name}_hits"] = float(hits[rows].sum())
    return out
