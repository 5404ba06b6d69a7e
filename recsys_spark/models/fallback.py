"""Cold start and short lists: fill every user's list from the popularity ranking.

Users the model cannot serve (no factors, or fewer interactions than a threshold) get
the most popular unseen items; users whose model list is shorter than N (a small
catalogue minus their history) are topped up the same way. A `source` column says which
model produced each row.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.catalog.rules import Rules, apply_rules, eligible_items, filtered, with_exclusions
from recsys_spark.models.popularity import POP_RANK, popular_fill, popularity_ranks, seen_ranks

SOURCE_MODEL = "model"
SOURCE_POPULARITY = "popularity"
USERS = "users"  # users_by_source's key of the distinct users in total


def recommend_with_fallback(
    model_recs: DataFrame,
    users: DataFrame,
    seen: DataFrame,
    popular: DataFrame,
    *,
    n: int,
    models: Sequence[str] = (),
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
        Output of `recsys_spark.models.popularity.popular_items`.
    models
        When given, `model_recs` holds the lists of these models in a `model` column,
        and every user is served once per model (one pass for several models).

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `rank` (1..n), `score`, `source` (`model` or
        `popularity`), `because_item_id` (the model's reason, kept when `model_recs` has
        one; null for popularity rows), and `model` when `models` are given. A user has
        `n` rows (per model) whenever the popularity ranking holds enough items they have
        neither seen nor been given by the model.
        The model's lists are computed by this call (held as a local checkpoint); the
        filler stays lazy.
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    # Lists that already carry a `source` (a blend of fallback-completed lists) keep it;
    # their reasons (`because_item_id`) too, and the popularity rows have none.
    source = F.col(C.SOURCE) if C.SOURCE in model_recs.columns else F.lit(SOURCE_MODEL)
    because = F.col(C.BECAUSE_ITEM_ID) if C.BECAUSE_ITEM_ID in model_recs.columns else F.lit(None)
    by = [C.MODEL] if models else []
    keys = [*by, C.USER_ID]
    model = model_recs.select(
        *by,
        C.USER_ID,
        C.ITEM_ID,
        C.RANK,
        C.SCORE,
        source.alias(C.SOURCE),
        because.cast("string").alias(C.BECAUSE_ITEM_ID),
    ).filter(F.col(C.USER_ID).isNotNull())
    # Computed once (the model's lists can be the costly part): read by the counts below
    # and returned. Most users get full lists from the model: only the short ones need
    # their seen items, so the seen pairs of the others never go through a shuffle (one
    # aggregation of every row of every user into arrays took half of the item-based
    # lists' time at 2M events).
    model = model.localCheckpoint(eager=True)
    ranked = popularity_ranks(popular)
    counts = model.groupBy(*keys).agg(F.count(F.lit(1)).alias("_n_model"))
    wanted = users.select(C.USER_ID).filter(F.col(C.USER_ID).isNotNull()).distinct()
    if models:
        names = users.sparkSession.createDataFrame([(m,) for m in models], f"{C.MODEL} string")
        wanted = wanted.crossJoin(F.broadcast(names))
    short = (
        wanted.join(counts, on=keys, how="full_outer")
        .select(*keys, F.coalesce("_n_model", F.lit(0)).alias("_n_model"))
        .filter(F.col("_n_model") < n)
    )
    # What each short user's filler must skip: the ranks of their seen and listed items.
    seen_by_short = seen_ranks(seen, ranked).select(C.USER_ID, POP_RANK)
    seen_by_short = (
        seen_by_short.join(short.select(*keys), on=C.USER_ID, how="inner")
        if models
        else seen_by_short.join(short.select(C.USER_ID), on=C.USER_ID, how="left_semi")
    )
    listed_by_short = model.join(
        ranked.select(C.ITEM_ID, POP_RANK), on=C.ITEM_ID, how="inner"
    ).join(short.select(*keys), on=keys, how="left_semi")
    excluded = (
        seen_by_short.select(*keys, POP_RANK)
        .unionByName(listed_by_short.select(*keys, POP_RANK))
        .groupBy(*keys)
        .agg(F.collect_set(POP_RANK).alias("_excluded"))
    )
    per_user = short.join(excluded, on=keys, how="left")
    n_model = F.col("_n_model")
    filler = popular_fill(
        per_user,
        ranked,
        excluded=F.col("_excluded"),
        k=F.lit(n) - n_model,
        offset=n_model,
        by=tuple(by),
    ).select(
        "*",
        F.lit(SOURCE_POPULARITY).alias(C.SOURCE),
        F.lit(None).cast("string").alias(C.BECAUSE_ITEM_ID),
    )
    return model.unionByName(filler)


def recommend_under_rules(
    model_recs: DataFrame,
    users: DataFrame,
    seen: DataFrame,
    popular: DataFrame,
    rules: Rules,
    *,
    n: int,
) -> DataFrame:
    """`recommend_with_fallback` under business rules: `n` items per user whenever enough
    eligible items exist.

    Unavailable and excluded items leave the model's lists and the popularity ranking
    first; the lists (`model_recs` should be `rules.depth(n)` deep) are completed from the
    popularity ranking `rules.depth(n)` deep, and the category cap then keeps the best
    `n`. Without active rules this is `recommend_with_fallback` itself.
    """
    complete = recommend_with_fallback(
        filtered(model_recs, rules),
        users,
        with_exclusions(seen, rules),
        eligible_items(popular, rules),
        n=rules.depth(n),
    )
    return apply_rules(complete, rules, n)


def served_frames(
    interactions: DataFrame, affinity: DataFrame, serve: DataFrame | None
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The users to serve, their histories and every pair they have seen.

    Every user of `interactions` by default, or the `user_id`s of `serve` (the nightly's
    holdout users). Seen pairs come from `interactions`, so pairs the affinity leaves out
    (before its window, or of no weight) are still never recommended.

    Returns `(users, histories, seen)`: `user_id`; the `affinity` rows of those users;
    `user_idx`, `user_id`, `item_idx`, `item_id` of their interactions.
    """
    users, histories = interactions.select(C.USER_ID), affinity
    seen = interactions.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.ITEM_ID)
    if serve is not None:
        users = serve.select(C.USER_ID)
        histories = affinity.join(users, on=C.USER_ID, how="left_semi")
        seen = seen.join(users, on=C.USER_ID, how="left_semi")
    return users, histories, seen


def users_by_source(recs: DataFrame) -> dict[str, int]:
    """Distinct users served by each source (a topped-up user counts under both).

    Returns a dict over the sources present, plus `users` (distinct users in total).
    """
    return _users_by_source(recs, by=[]).get((), ({USERS: 0}, 0))[0]


def users_by_source_per_model(
    recs: DataFrame, models: Sequence[str]
) -> dict[str, tuple[dict[str, int], int]]:
    """For each of `models` (the `model` column of `recs`): its `users_by_source` and its
    number of rows, in one action."""
    counts = _users_by_source(recs, by=[C.MODEL])
    return {m: counts.get((m,), ({USERS: 0}, 0)) for m in models}


def _users_by_source(recs: DataFrame, by: list[str]) -> dict[tuple, tuple[dict[str, int], int]]:
    # One action: each user counts once under each of its sources and once under `users`,
    # whose row also sums the group's rows.
    keys = F.array_union(F.collect_set(C.SOURCE), F.array(F.lit(USERS)))
    per_user = recs.groupBy(*by, C.USER_ID).agg(
        keys.alias("_keys"), F.count(F.lit(1)).alias("_rows")
    )
    counted = (
        per_user.select(*by, F.explode("_keys").alias("_key"), "_rows")
        .groupBy(*by, "_key")
        .agg(F.count(F.lit(1)).alias("_users"), F.sum("_rows").alias("_rows"))
    )
    out: dict[tuple, tuple[dict[str, int], int]] = {}
    for row in counted.collect():
        group, rows = out.get(tuple(row[b] for b in by), ({USERS: 0}, 0))
        group[row["_key"]] = int(row["_users"])
        if row["_key"] == USERS:
            rows = int(row["_rows"])
        out[tuple(row[b] for b in by)] = (group, rows)
    return out
