"""Cold start and short lists: fill every user's list from the popularity ranking.

Users the model cannot serve (no factors, or fewer interactions than a threshold) get
the most popular unseen items; users whose model list is shorter than N (a small
catalogue minus their history) are topped up the same way. A `source` column says which
model produced each row.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.popularity import recommend_popular

SOURCE_MODEL = "model"
SOURCE_POPULARITY = "popularity"
_N_MODEL = "_n_model"


def recommend_with_fallback(
    model_recs: DataFrame,
    users: DataFrame,
    seen: DataFrame,
    popular: DataFrame,
    *,
    n: int,
) -> DataFrame:
    """Model lists, completed to `n` items per user from the popularity ranking.

    Parameters
    ----------
    model_recs
        `user_id`, `item_id`, `rank` (1..), `score`: the model's lists (at most `n` each),
        optionally `source` (kept; `model` when absent).
    users
        `user_id` of every user to serve (repeats allowed); those without a model list
        get a popularity list.
    seen
        `user_id`, `item_id` pairs never to recommend.
    popular
        Output of `recsys_spark.popularity.popular_items`.

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `rank` (1..n), `score`, `source` (`model` or
        `popularity`). A user has `n` rows whenever the popularity ranking holds enough
        items they have neither seen nor been given by the model.
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    # Lists that already carry a `source` (a blend of fallback-completed lists) keep it.
    source = F.col(C.SOURCE) if C.SOURCE in model_recs.columns else F.lit(SOURCE_MODEL)
    model = model_recs.select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE, source.alias(C.SOURCE))
    counts = model.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias(_N_MODEL))
    short = (
        users.select(C.USER_ID)
        .unionByName(model.select(C.USER_ID))
        .filter(F.col(C.USER_ID).isNotNull())
        .distinct()
        .join(counts, on=C.USER_ID, how="left")
        .select(C.USER_ID, F.coalesce(F.col(_N_MODEL), F.lit(0)).alias(_N_MODEL))
        .filter(F.col(_N_MODEL) < n)
    )
    excluded = (
        seen.select(C.USER_ID, C.ITEM_ID)
        .unionByName(model.select(C.USER_ID, C.ITEM_ID))
        .join(short.select(C.USER_ID), on=C.USER_ID, how="left_semi")
        .distinct()
    )
    # One scalar: how far down the popularity ranking a short user's list may reach.
    max_excluded = excluded.groupBy(C.USER_ID).count().agg(F.max("count")).first()[0] or 0
    filler = (
        recommend_popular(short, excluded, popular, n=n, max_seen=int(max_excluded))
        .join(short, on=C.USER_ID, how="inner")
        .withColumn(C.RANK, (F.col(C.RANK) + F.col(_N_MODEL)).cast("int"))
        .filter(F.col(C.RANK) <= n)
        .select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE)
    )
    return model.unionByName(filler.withColumn(C.SOURCE, F.lit(SOURCE_POPULARITY)))


def users_by_source(recs: DataFrame) -> dict[str, int]:
    """Distinct users served by each source (a topped-up user counts under both).

    Returns a dict over the sources present, plus `users` (distinct users in total).
    """
    per_source = recs.groupBy(C.SOURCE).agg(F.countDistinct(C.USER_ID).alias("_users"))
    out = {row[C.SOURCE]: int(row["_users"]) for row in per_source.collect()}
    out["users"] = int(recs.agg(F.countDistinct(C.USER_ID)).first()[0])
    return out
