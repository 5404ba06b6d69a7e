"""Most-popular items: the cold-start fallback and the baseline every model must beat."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C

SECONDS_PER_DAY = 86_400
POP_RANK = "_pop_rank"  # an item's position in the popularity ranking


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


def popularity_ranks(popular: DataFrame) -> DataFrame:
    """`item_id`, `_pop_rank` (int), `score` of `popular_items` output."""
    return popular.select(C.ITEM_ID, F.col(C.RANK).cast("int").alias(POP_RANK), C.SCORE)


def _unseen_ranks(excluded: Column, k: Column) -> Column:
    """The `k` best popularity ranks not in the int array `excluded` (null: none).

    With s ranks excluded, the `k` free ones lie within 1..k + s: one hashed array
    difference and a sort of at most k + s integers per user, whatever the catalogue.
    """
    excluded = F.coalesce(excluded, F.array().cast("array<int>"))
    candidates = F.sequence(F.lit(1), F.greatest(k, F.lit(1)) + F.size(excluded))
    return F.slice(F.array_sort(F.array_except(candidates, excluded)), 1, F.greatest(k, F.lit(0)))


def seen_ranks(seen: DataFrame, ranked: DataFrame) -> DataFrame:
    """`user_id`, `_pop_rank` of the `seen` pairs whose item is in the ranking `ranked`."""
    return seen.select(C.USER_ID, C.ITEM_ID).join(
        ranked.select(C.ITEM_ID, POP_RANK), on=C.ITEM_ID, how="inner"
    )


def popular_fill(
    per_user: DataFrame,
    ranked: DataFrame,
    *,
    excluded: Column,
    k: Column,
    offset: Column,
    by: tuple[str, ...] = (),
) -> DataFrame:
    """Each row of `per_user`: its `k` most popular items whose rank is not in `excluded`.

    Returns the `by` columns of `per_user`, `user_id`, `item_id`, `rank` (offset + 1,
    offset + 2, ...), `score`. Ranks past the end of the catalogue find no item in the
    join: a short list.
    """
    return (
        per_user.select(
            *by,
            C.USER_ID,
            offset.alias("_offset"),
            F.posexplode(_unseen_ranks(excluded, k)).alias("_pos", POP_RANK),
        )
        .join(ranked, on=POP_RANK, how="inner")
        .select(
            *by,
            C.USER_ID,
            C.ITEM_ID,
            (F.col("_offset") + F.col("_pos") + 1).cast("int").alias(C.RANK),
            C.SCORE,
        )
    )


def recommend_popular(
    users: DataFrame, seen: DataFrame, popular: DataFrame, *, n: int
) -> DataFrame:
    """Top-`n` popular items per user, skipping the items that user has seen.

    Works on popularity ranks, not item ids: a user who has seen s ranked items finds
    their `n` unseen ones among ranks 1..n + s, so each list is one integer array
    difference (`array_except`, hashed) against the user's own seen ranks, sorted and
    cut at `n`. No user-by-item cross product, no scan of the catalogue per user, and no
    pass over the data first to find the longest history.

    Parameters
    ----------
    users
        `user_id` of the users to serve (repeats allowed).
    seen
        `user_id`, `item_id` pairs the users have already interacted with.
    popular
        Output of `popular_items`.

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `rank` (1..n), `score` (the item's popularity). Shorter
        lists only when the catalogue holds fewer than `n` unseen items.
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    ranked = popularity_ranks(popular)
    histories = (
        seen_ranks(seen, ranked).groupBy(C.USER_ID).agg(F.collect_set(POP_RANK).alias("_seen"))
    )
    per_user = users.select(C.USER_ID).distinct().join(histories, on=C.USER_ID, how="left")
    return popular_fill(per_user, ranked, excluded=F.col("_seen"), k=F.lit(n), offset=F.lit(0))
