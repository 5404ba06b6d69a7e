"""Beyond-accuracy metrics of top-K lists: coverage, concentration, novelty, popularity.

All computed in Spark; only one-row aggregates and fixed-size curves (`n_points` rows,
whatever the catalogue size) reach the driver. Item popularity is the number of
distinct training users of an item; the catalogue is the set of training items.

- `catalog_coverage`: distinct recommended items / distinct training items;
- `user_coverage`: share of the served users whose list holds K items;
- `distributional_coverage`: entropy (bits) of the items' shares of recommendations;
- `gini`: Gini index of item exposure over the catalogue (0 = every item recommended
  equally often, 1 = one item takes every slot); recommended items outside the
  catalogue are included;
- `novelty`: mean of -log2(popularity / training users) over recommended items that
  training knows;
- `long_tail_share`: share of recommendations outside the short head (the most popular
  items that together make up the first `head_share` of training interactions);
- `popularity_bias`: mean popularity of recommended items / mean popularity of the
  items in training histories (1 = as popular as what users consume).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation.ranking import POS, ordered_lists

POPULARITY = "popularity"
EXPOSURE = "exposure"
IN_HEAD = "in_head"
COVERAGE_METRICS = (
    "catalog_coverage",
    "user_coverage",
    "distributional_coverage",
    "gini",
    "novelty",
    "long_tail_share",
    "popularity_bias",
)


def top_k(
    recs: DataFrame,
    k: int,
    *,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> DataFrame:
    """The first `k` positions of each list: `user_col`, `item_col`, `_pos` (1..k)."""
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    lists = ordered_lists(recs, user_col=user_col, item_col=item_col, rank_col=rank_col)
    return lists.filter(F.col(POS) <= k)


def item_popularity(
    train: DataFrame,
    *,
    head_share: float = 0.2,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
) -> DataFrame:
    """Training popularity of every catalogue item and whether it is in the short head.

    Returns
    -------
    DataFrame
        `item_col`, `popularity` (distinct users, long), `pop_rank` (1 = most popular,
        ties by item id) and `in_head` (the item starts before `head_share` of all
        interactions are covered). One row per item: catalogue-sized.
    """
    if not 0.0 <= head_share <= 1.0:
        raise ValueError(f"head_share must be in [0, 1]; got {head_share}")
    pop = (
        train.filter(F.col(user_col).isNotNull() & F.col(item_col).isNotNull())
        .groupBy(item_col)
        .agg(F.countDistinct(user_col).alias(POPULARITY))
    )
    # Catalogue-sized (one row per item): a single ordered pass is cheap.
    order = Window.partitionBy(F.lit(0)).orderBy(F.col(POPULARITY).desc(), F.col(item_col).asc())
    running = order.rowsBetween(Window.unboundedPreceding, -1)
    everything = Window.partitionBy(F.lit(0))
    return pop.select(
        item_col,
        POPULARITY,
        F.row_number().over(order).alias("pop_rank"),
        (
            F.coalesce(F.sum(POPULARITY).over(running), F.lit(0))
            < F.lit(head_share) * F.sum(POPULARITY).over(everything)
        ).alias(IN_HEAD),
    )


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
    top = top_k(recs, k, user_col=user_col, item_col=item_col, rank_col=rank_col)
    pop = item_popularity(train, head_share=head_share, user_col=user_col, item_col=item_col)
    n_train_users = train.select(user_col).distinct().count()
    counts = top.groupBy(item_col).agg(F.count(F.lit(1)).alias(EXPOSURE))
    items = pop.join(counts, on=item_col, how="full").select(
        item_col,
        F.coalesce(F.col(EXPOSURE), F.lit(0)).cast("double").alias(EXPOSURE),
        F.col(POPULARITY).cast("double").alias(POPULARITY),
        F.coalesce(F.col(IN_HEAD), F.lit(False)).alias(IN_HEAD),
    )
    total = F.sum(EXPOSURE).over(Window.partitionBy(F.lit(0)))
    asc = Window.partitionBy(F.lit(0)).orderBy(F.col(EXPOSURE).asc(), F.col(item_col).asc())
    share = F.col(EXPOSURE) / F.col("_total")
    log_pop = -F.log2(F.col(POPULARITY) / F.lit(float(max(n_train_users, 1))))
    stats = (
        items.withColumn("_total", total)
        .withColumn("_i", F.row_number().over(asc))
        .agg(
            F.sum(F.when(F.col(EXPOSURE) > 0, 1).otherwise(0)).alias("recommended_items"),
            F.sum(F.when(F.col(POPULARITY).isNotNull(), 1).otherwise(0)).alias("catalog_items"),
            F.sum(EXPOSURE).alias("recommendations"),
            F.sum(F.when(F.col(EXPOSURE) > 0, -share * F.log2(share))).alias("entropy"),
            F.count(F.lit(1)).alias("_n"),
            F.sum((2 * F.col("_i") - 1) * F.col(EXPOSURE)).alias("_gini_num"),
            F.sum(F.when(F.col(POPULARITY) > 0, F.col(EXPOSURE) * log_pop)).alias("_novel"),
            F.sum(F.when(F.col(POPULARITY) > 0, F.col(EXPOSURE))).alias("_known"),
            F.sum(F.when(~F.col(IN_HEAD), F.col(EXPOSURE))).alias("_tail"),
            F.sum(F.col(EXPOSURE) * F.coalesce(F.col(POPULARITY), F.lit(0.0))).alias("_rec_pop"),
            F.sum(F.col(POPULARITY) * F.col(POPULARITY)).alias("_hist_pop_sum"),
            F.sum(F.col(POPULARITY)).alias("_hist_rows"),
        )
        .first()
    )
    s = {key: float(v or 0.0) for key, v in (stats.asDict() if stats else {}).items()}
    served = (users if users is not None else train).select(user_col).distinct()
    full = top.groupBy(user_col).agg(F.count(F.lit(1)).alias("_len")).filter(F.col("_len") >= k)
    coverage_row = (
        served.join(full, on=user_col, how="left")
        .agg(F.count(F.lit(1)).alias("_users"), F.count("_len").alias("_full"))
        .first()
    )
    n_served = float(coverage_row["_users"]) if coverage_row else 0.0
    n_full = float(coverage_row["_full"]) if coverage_row else 0.0
    n_recs, n, catalog = (
        s.get("recommendations", 0.0),
        s.get("_n", 0.0),
        s.get("catalog_items", 0.0),
    )
    # Gini of x sorted ascending: sum_i (2i - n - 1) x_i / (n sum x), with _gini_num the
    # sum of (2i - 1) x_i.
    gini = (s["_gini_num"] - n * n_recs) / (n * n_recs) if n_recs and n else 0.0
    mean_hist_pop = s["_hist_pop_sum"] / s["_hist_rows"] if s.get("_hist_rows") else 0.0
    mean_rec_pop = s["_rec_pop"] / n_recs if n_recs else 0.0
    return {
        "catalog_coverage": s["recommended_items"] / catalog if catalog else 0.0,
        "user_coverage": n_full / n_served if n_served else 0.0,
        "distributional_coverage": s.get("entropy", 0.0),
        "gini": gini,
        "novelty": s["_novel"] / s["_known"] if s.get("_known") else 0.0,
        "long_tail_share": s["_tail"] / n_recs if n_recs else 0.0,
        "popularity_bias": mean_rec_pop / mean_hist_pop if mean_hist_pop else 0.0,
        "recommended_items": s.get("recommended_items", 0.0),
        "catalog_items": catalog,
        "recommendations": n_recs,
    }


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
    """Points of the long-tail and Lorenz curves, at most `n_points` + 1 each.

    Returns
    -------
    dict[str, list[float]]
        `longtail_x` (share of catalogue items, most popular first), `longtail_recs`
        (cumulative share of recommendations going to them), `longtail_train` (their
        cumulative share of training interactions); `lorenz_x` (share of items, least
        exposed first) and `lorenz_y` (their cumulative share of exposure). Each curve
        starts at (0, 0).
    """
    top = top_k(recs, k, user_col=user_col, item_col=item_col, rank_col=rank_col)
    pop = item_popularity(train, user_col=user_col, item_col=item_col)
    counts = top.groupBy(item_col).agg(F.count(F.lit(1)).alias(EXPOSURE))
    items = pop.join(counts, on=item_col, how="full").select(
        item_col,
        F.coalesce(F.col(EXPOSURE), F.lit(0)).cast("double").alias(EXPOSURE),
        F.coalesce(F.col(POPULARITY), F.lit(0)).cast("double").alias(POPULARITY),
    )
    everything = Window.partitionBy(F.lit(0))
    by_pop = everything.orderBy(F.col(POPULARITY).desc(), F.col(item_col).asc())
    by_exposure = everything.orderBy(F.col(EXPOSURE).asc(), F.col(item_col).asc())
    upto = Window.unboundedPreceding, Window.currentRow
    ranked = items.select(
        (F.row_number().over(by_pop) / F.count(F.lit(1)).over(everything)).alias("_x_pop"),
        (F.sum(EXPOSURE).over(by_pop.rowsBetween(*upto)) / F.sum(EXPOSURE).over(everything)).alias(
            "_recs"
        ),
        (
            F.sum(POPULARITY).over(by_pop.rowsBetween(*upto)) / F.sum(POPULARITY).over(everything)
        ).alias("_train"),
        (F.row_number().over(by_exposure) / F.count(F.lit(1)).over(everything)).alias("_x_exp"),
        (
            F.sum(EXPOSURE).over(by_exposure.rowsBetween(*upto)) / F.sum(EXPOSURE).over(everything)
        ).alias("_lorenz"),
    )
    # Keep the last item of each of n_points equal slices of the catalogue.
    longtail = (
        ranked.groupBy(F.ceil(F.col("_x_pop") * n_points).alias("_b"))
        .agg(F.max("_x_pop").alias("x"), F.max("_recs").alias("r"), F.max("_train").alias("t"))
        .orderBy("_b")
        .collect()
    )
    lorenz = (
        ranked.groupBy(F.ceil(F.col("_x_exp") * n_points).alias("_b"))
        .agg(F.max("_x_exp").alias("x"), F.max("_lorenz").alias("y"))
        .orderBy("_b")
        .collect()
    )
    return {
        "longtail_x": [0.0] + [float(r["x"]) for r in longtail],
        "longtail_recs": [0.0] + [float(r["r"] or 0.0) for r in longtail],
        "longtail_train": [0.0] + [float(r["t"] or 0.0) for r in longtail],
        "lorenz_x": [0.0] + [float(r["x"]) for r in lorenz],
        "lorenz_y": [0.0] + [float(r["y"] or 0.0) for r in lorenz],
    }
