"""Metric breakdowns by user activity bucket and by item popularity bucket.

User buckets, from the number of distinct training items of each evaluated user:
`cold` (at most `cold_max_history`, users unknown to training included), `heavy` (at
least the `heavy_quantile` quantile of training users' activity) and `light` (the rest).
Item buckets: `head` (the short head of `coverage.item_popularity`), `tail` (the other
training items) and `unseen` (items training does not know).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation.coverage import IN_HEAD, item_popularity, top_k
from recsys_spark.evaluation.ranking import relevant_pairs

USER_BUCKET = "activity_bucket"
ITEM_BUCKET = "popularity_bucket"
USER_BUCKETS = ("cold", "light", "heavy")
ITEM_BUCKETS = ("head", "tail", "unseen")


def user_activity_buckets(
    train: DataFrame,
    users: DataFrame,
    *,
    cold_max_history: int = 5,
    heavy_quantile: float = 0.8,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
) -> DataFrame:
    """`user_col`, `history` (distinct training items) and `activity_bucket` of `users`."""
    if not 0.0 < heavy_quantile < 1.0:
        raise ValueError(f"heavy_quantile must be in (0, 1); got {heavy_quantile}")
    history = train.groupBy(user_col).agg(F.countDistinct(item_col).alias("history"))
    threshold_row = history.agg(
        F.percentile_approx("history", heavy_quantile, 10_000).alias("t")
    ).first()
    threshold = threshold_row["t"] if threshold_row and threshold_row["t"] is not None else 0
    heavy_min = max(int(threshold), cold_max_history + 1)
    counts = F.coalesce(F.col("history"), F.lit(0)).cast("long")
    return (
        users.select(user_col)
        .distinct()
        .join(history, on=user_col, how="left")
        .select(
            user_col,
            counts.alias("history"),
            F.when(counts <= cold_max_history, "cold")
            .when(counts >= heavy_min, "heavy")
            .otherwise("light")
            .alias(USER_BUCKET),
        )
    )


def metrics_by_user_bucket(
    per_user: DataFrame,
    buckets: DataFrame,
    names: Sequence[str],
    *,
    user_col: str = C.USER_ID,
) -> dict[str, dict[str, float]]:
    """Mean of the per-user metric columns `names` in each activity bucket.

    Returns bucket -> metric -> value, with `users_evaluated` per bucket; buckets without
    users are absent. Only one row per bucket reaches the driver.
    """
    rows = (
        per_user.join(buckets.select(user_col, USER_BUCKET), on=user_col, how="left")
        .groupBy(F.coalesce(F.col(USER_BUCKET), F.lit("cold")).alias(USER_BUCKET))
        .agg(*[F.avg(n).alias(n) for n in names], F.count(F.lit(1)).alias("users_evaluated"))
        .collect()
    )
    return {
        r[USER_BUCKET]: {n: float(r[n] or 0.0) for n in [*names, "users_evaluated"]}
        for r in sorted(rows, key=lambda r: USER_BUCKETS.index(r[USER_BUCKET]))
    }


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
    pop = item_popularity(train, head_share=head_share, user_col=user_col, item_col=item_col)
    bucket = (
        F.when(F.col(IN_HEAD).isNull(), "unseen")
        .when(F.col(IN_HEAD), "head")
        .otherwise("tail")
        .alias(ITEM_BUCKET)
    )
    labels = pop.select(item_col, IN_HEAD)
    top = top_k(recs, k, user_col=user_col, item_col=item_col, rank_col=rank_col)
    rel = relevant_pairs(relevant, user_col=user_col, item_col=item_col)
    rec_rows = (
        top.join(labels, on=item_col, how="left")
        .groupBy(bucket)
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )
    hit = top.select(user_col, item_col, F.lit(1).alias("_hit"))
    rel_rows = (
        rel.join(hit, on=[user_col, item_col], how="left")
        .join(labels, on=item_col, how="left")
        .groupBy(bucket)
        .agg(F.count(F.lit(1)).alias("n"), F.count("_hit").alias("hits"))
        .collect()
    )
    n_recs = sum(r["n"] for r in rec_rows)
    recs_by = {r[ITEM_BUCKET]: r["n"] for r in rec_rows}
    rel_by = {r[ITEM_BUCKET]: (r["n"], r["hits"]) for r in rel_rows}
    out: dict[str, dict[str, float]] = {}
    for name in ITEM_BUCKETS:
        n_rel, hits = rel_by.get(name, (0, 0))
        out[name] = {
            "rec_share": recs_by.get(name, 0) / n_recs if n_recs else 0.0,
            "relevant_pairs": float(n_rel),
            f"recall_at_{k}": hits / n_rel if n_rel else 0.0,
        }
    return out
