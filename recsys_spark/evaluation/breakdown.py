"""Metric breakdowns by user activity bucket and by item popularity bucket.

User buckets, from the number of distinct training items of each evaluated user:
`cold` (at most `cold_max_history`, users unknown to training included), `heavy` (at
least the `heavy_quantile` quantile of training users' activity) and `light` (the rest).
Item buckets: `head` (the short head of `coverage.head_items`), `tail` (the other
training items) and `unseen` (items training does not know).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame

from recsys_spark import columns as C
from recsys_spark.evaluation._kernels.frames import run_passes, tagged_rows

USER_BUCKET = "activity_bucket"
ITEM_BUCKET = "popularity_bucket"
USER_BUCKETS = ("cold", "light", "heavy")
ITEM_BUCKETS = ("head", "tail", "unseen")


def heavy_min_history(histogram: Mapping[int, int], *, heavy_quantile: float) -> int:
    """The `heavy_quantile` quantile of training users' history lengths, exactly.

    `histogram` maps a history length to its number of training users. The quantile is
    the value at rank ceil(q n) of the sorted lengths (the rule of `percentile_approx`,
    without its approximation); 0 without training users.
    """
    if not 0.0 < heavy_quantile < 1.0:
        raise ValueError(f"heavy_quantile must be in (0, 1); got {heavy_quantile}")
    total = sum(histogram.values())
    rank = max(1, math.ceil(heavy_quantile * total))
    seen = 0
    for length in sorted(histogram):
        seen += histogram[length]
        if seen >= rank:
            return int(length)
    return 0


def activity_bucket(history: int, *, cold_max_history: int, heavy_min: int) -> str:
    """`cold` (history <= `cold_max_history`), `heavy` (>= the heavy threshold) or `light`."""
    if history <= cold_max_history:
        return "cold"
    return "heavy" if history >= max(heavy_min, cold_max_history + 1) else "light"


def item_bucket_metrics(row: Mapping[str, Any], *, k: int) -> dict[str, dict[str, float]]:
    """bucket -> `rec_share`, `relevant_pairs`, `recall_at_k` from `item_bucket_columns`."""
    value = {key: float(row.get(key) or 0.0) for key in row}
    n_recs = sum(value.get(f"_{b}_recs", 0.0) for b in ITEM_BUCKETS)
    out: dict[str, dict[str, float]] = {}
    for name in ITEM_BUCKETS:
        n_rel, hits = value.get(f"_{name}_rel", 0.0), value.get(f"_{name}_hits", 0.0)
        out[name] = {
            "rec_share": value.get(f"_{name}_recs", 0.0) / n_recs if n_recs else 0.0,
            "relevant_pairs": n_rel,
            f"recall_at_{k}": hits / n_rel if n_rel else 0.0,
        }
    return out


def metrics_by_item_bucket(
    recs: DataFrame,
    relevant: DataFrame,
    train: DataFrame,
    *,
    k: int = 10,
    head_share: float = 0.2,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> dict[str, dict[str, float]]:
    """Per item popularity bucket: share of the top-`k` slots and recall of its test pairs.

    Returns
    -------
    dict[str, dict[str, float]]
        bucket -> `rec_share` (share of recommendations in the bucket), `relevant_pairs`
        (held-out pairs in it), `recall_at_k` (hits among them / their number: pairs
        pooled over users).
    """
    rows = tagged_rows(
        recs, relevant, train, user_col=user_col, item_col=item_col, rank_col=rank_col
    )
    result = run_passes(rows, ks=(k,), k=k, head_share=head_share)
    return item_bucket_metrics(result.item_sums, k=k)
