"""Most-popular items: the cold-start fallback and the baseline every model must beat."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C

SECONDS_PER_DAY = 86_400


def popular_items(
    affinity: DataFrame,
    *,
    window_days: float | None = None,
    t_ref: datetime | None = None,
) -> DataFrame:
    """Items ranked by how many distinct users interacted with them.

    Parameters
    ----------
    affinity
        user-item pairs with `user_id`, `item_id` and `last_ts` (see user_item_affinity).
    window_days
        Count only pairs whose newest event is within this many days of `t_ref` (the
        newest `last_ts` by default). None counts everything.

    Returns
    -------
    DataFrame
        `item_id`, `score` (distinct users, as double), `rank` (1 = most popular; ties
        by item id). One row per item: small, a catalogue's size.
    """
    pairs = affinity.select(C.USER_ID, C.ITEM_ID, C.LAST_TS)
    if window_days is not None:
        ref = F.lit(t_ref).cast("timestamp") if t_ref is not None else F.col("_t_ref")
        if t_ref is None:
            pairs = pairs.crossJoin(pairs.agg(F.max(C.LAST_TS).alias("_t_ref")))
        age_s = F.unix_seconds(ref) - F.unix_seconds(C.LAST_TS)
        pairs = pairs.filter(age_s < window_days * SECONDS_PER_DAY)
    counts = pairs.groupBy(C.ITEM_ID).agg(F.countDistinct(C.USER_ID).cast("double").alias(C.SCORE))
    # The catalogue is small (one row per item): a single ordered pass is cheap.
    order = F.row_number().over(
        Window.partitionBy(F.lit(0)).orderBy(F.col(C.SCORE).desc(), F.col(C.ITEM_ID).asc())
    )
    return counts.withColumn(C.RANK, order)


def recommend_popular(
    users: DataFrame, seen: DataFrame, popular: DataFrame, *, n: int, max_seen: int
) -> DataFrame:
    """Top-`n` popular items per user, skipping the items that user has seen.

    Each user's list is the popularity ranking minus their own history, cut at `n`: one
    array difference per user against the top `n + max_seen` items, so no user-by-item
    cross product is built.

    Parameters
    ----------
    users
        `user_id` of the users to serve (repeats allowed).
    seen
        `user_id`, `item_id` pairs the users have already interacted with.
    popular
        Output of `popular_items`.
    max_seen
        The largest number of distinct items any of these users has seen; lists have `n`
        items whenever the catalogue holds `n` unseen ones.

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `rank` (1..n), `score` (the item's popularity).
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    top = popular.filter(F.col(C.RANK) <= n + max(max_seen, 0)).agg(
        F.sort_array(F.collect_list(F.struct(C.RANK, C.ITEM_ID, C.SCORE))).alias("_top")
    )
    histories = seen.groupBy(C.USER_ID).agg(F.collect_set(C.ITEM_ID).alias("_seen"))
    per_user = (
        users.select(C.USER_ID)
        .distinct()
        .join(histories, on=C.USER_ID, how="left")
        .crossJoin(top)  # one row: broadcast
        .select(
            C.USER_ID,
            F.slice(
                F.filter(
                    "_top",
                    lambda t: (
                        ~F.array_contains(
                            F.coalesce("_seen", F.array().cast("array<string>")), t[C.ITEM_ID]
                        )
                    ),
                ),
                1,
                n,
            ).alias("_recs"),
        )
    )
    return per_user.select(C.USER_ID, F.posexplode("_recs").alias("_pos", "_rec")).select(
        C.USER_ID,
        F.col(f"_rec.{C.ITEM_ID}").alias(C.ITEM_ID),
        (F.col("_pos") + 1).cast("int").alias(C.RANK),
        F.col(f"_rec.{C.SCORE}").alias(C.SCORE),
    )
