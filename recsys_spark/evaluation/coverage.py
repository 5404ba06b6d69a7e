"""Beyond-accuracy metrics of top-K lists: coverage, concentration, novelty, popularity.

Item popularity is the number of distinct training users of an item; the catalogue is
the set of training items. The per-item counts come from the per-user pass
(`frames`); the sums run in numpy in one executor task over the catalogue-sized
item table (`item_stats`), and only named sums and fixed-size curves (`n_points` + 1
points, whatever the catalogue size) reach the driver.

- `catalog_coverage`: distinct recommended items / distinct training items;
- `user_coverage`: share of the served users whose list holds K items;
- `distributional_coverage`: entropy (bits) of the items' shares of recommendations;
- `gini`: Gini index of item exposure over the catalogue (0 = every item recommended
  equally often, 1 = one item takes every slot); recommended items outside the
  catalogue are included;
- `novelty`: mean of -log2(popularity / training users) over recommended items that
  training knows;
- `long_tail_share`: share of recommendations outside the short head (the most popular
  items that together make up the first `head_share` of training interactions, ties by
  item id);
- `popularity_bias`: mean popularity of recommended items / mean popularity of the
  items in training histories (1 = as popular as what users consume).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame

from recsys_spark import columns as C
from recsys_spark.evaluation._kernels.frames import run_passes, tagged_rows

COVERAGE_METRICS = (
    "catalog_coverage",
    "user_coverage",
    "distributional_coverage",
    "gini",
    "novelty",
    "long_tail_share",
    "popularity_bias",
)


def coverage_metrics(
    row: Mapping[str, Any], *, n_served: float, n_full: float, n_train_users: float
) -> dict[str, float]:
    """The metrics of the module docstring from the aggregates of `coverage_columns`.

    `n_served` users should have a list, `n_full` of them have `k` items; novelty's
    popularity is relative to `n_train_users`.
    """
    s = {key: float(row.get(key) or 0.0) for key in row}
    n_recs, n, catalog = s["_recommendations"], s["_n"], s["_catalog_items"]
    # Entropy of the shares x / X: log2 X - sum(x log2 x) / X.
    entropy = math.log2(n_recs) - s["_x_log_x"] / n_recs if n_recs else 0.0
    # Gini of x sorted ascending: sum_i (2i - n - 1) x_i / (n sum x), with _gini_num the
    # sum of (2i - 1) x_i.
    gini = (s["_gini_num"] - n * n_recs) / (n * n_recs) if n_recs and n else 0.0
    # Mean of -log2(popularity / users) = log2(users) - mean of log2(popularity).
    novelty = (
        math.log2(max(n_train_users, 1.0)) - s["_log_pop"] / s["_known"] if s["_known"] else 0.0
    )
    mean_hist_pop = s["_hist_pop_sum"] / s["_hist_rows"] if s["_hist_rows"] else 0.0
    mean_rec_pop = s["_rec_pop"] / n_recs if n_recs else 0.0
    return {
        "catalog_coverage": s["_recommended_items"] / catalog if catalog else 0.0,
        "user_coverage": n_full / n_served if n_served else 0.0,
        "distributional_coverage": max(entropy, 0.0),
        "gini": gini,
        "novelty": novelty,
        "long_tail_share": s["_tail"] / n_recs if n_recs else 0.0,
        "popularity_bias": mean_rec_pop / mean_hist_pop if mean_hist_pop else 0.0,
        "recommended_items": s["_recommended_items"],
        "catalog_items": catalog,
        "recommendations": n_recs,
    }


def beyond_accuracy_metrics(
    recs: DataFrame,
    train: DataFrame,
    *,
    k: int = 10,
    users: DataFrame | None = None,
    head_share: float = 0.2,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> dict[str, float]:
    """The coverage, concentration and popularity metrics of the module docstring.

    Parameters
    ----------
    recs
        Lists `user_col`, `item_col`, `rank_col`; only each list's first `k` count.
    train
        Training pairs `user_col`, `item_col`: the catalogue and the popularity.
    users
        `user_col` of the users who should have a list (the denominator of
        `user_coverage`); None means every training user.

    Returns
    -------
    dict[str, float]
        The seven `COVERAGE_METRICS` plus `recommended_items`, `catalog_items`,
        `recommendations` (rows in the top `k`).
    """
    rows = tagged_rows(
        recs, None, train, users, user_col=user_col, item_col=item_col, rank_col=rank_col
    )
    served_by = "given" if users is not None else "train"
    result = run_passes(rows, ks=(k,), k=k, head_share=head_share, served_by=served_by)
    return coverage_metrics(
        result.item_sums,
        n_served=result.total("_served"),
        n_full=result.total("_served_full"),
        n_train_users=result.total("_train_users"),
    )


def exposure_curves(
    recs: DataFrame,
    train: DataFrame,
    *,
    k: int = 10,
    n_points: int = 100,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> dict[str, list[float]]:
    """Points of the long-tail and Lorenz curves of the top `k` (see `curve_points`)."""
    rows = tagged_rows(recs, None, train, user_col=user_col, item_col=item_col, rank_col=rank_col)
    return run_passes(rows, ks=(k,), k=k, n_points=n_points).curves
