"""Intra-list diversity and serendipity from item co-occurrence cosine, in Spark.

The cosine of items a and b is |U_a & U_b| / sqrt(|U_a| |U_b|) over their training
users. Only the pairs the metrics need are counted: for each pair, the users of its
less popular item are looked up in the other item's users (a join, no item x item
matrix). These pairs grow with list length x history length, so the metrics are
computed on a seeded sample of at most `max_users` users (None: every user), and the
co-occurrence of items with more than `max_item_users` users is estimated from a seeded
sample of them; the number of users used is reported beside the metrics.

- `intra_list_diversity`: mean over users (lists of >= 2 items) of
  1 - mean cosine of the pairs in the user's top K;
- `serendipity`: mean over users of (1 / list length) x sum over the list's relevant
  items of (1 - mean cosine of the item to the user's training items).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation.coverage import top_k

_A, _B = "_item_a", "_item_b"


def sample_users(users: DataFrame, max_users: int | None, *, seed: int, user_col: str) -> DataFrame:
    """Distinct `user_col` values, or the `max_users` of them with the smallest seeded hash."""
    distinct = users.select(user_col).filter(F.col(user_col).isNotNull()).distinct()
    if max_users is None:
        return distinct
    key = F.xxhash64(F.col(user_col).cast("string"), F.lit(seed))
    return distinct.orderBy(key, F.col(user_col)).limit(max_users)


def pair_cosine(
    pairs: DataFrame,
    train: DataFrame,
    *,
    max_item_users: int | None = 500,
    seed: int = 42,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
) -> DataFrame:
    """Co-occurrence cosine of item pairs `_item_a`, `_item_b` over training users.

    For each pair, the users of its less popular item are looked up among the other
    item's users. An item with more than `max_item_users` users is represented by the
    `max_item_users` of them with the smallest seeded hash, and the count is scaled up
    by (users / sample): an unbiased estimate that bounds the work per pair. None, or
    items with at most that many users, give exact counts.

    Returns the distinct input pairs with `cosine` (0.0 when the items share no user
    or one of them is unknown to training).
    """
    wanted = pairs.select(_A, _B).distinct()
    needed = (
        wanted.select(F.col(_A).alias(item_col))
        .union(wanted.select(F.col(_B).alias(item_col)))
        .distinct()
    )
    # Only the items of the wanted pairs: catalogue-sized at most, broadcast.
    rows = (
        train.select(user_col, item_col)
        .join(F.broadcast(needed), on=item_col, how="left_semi")
        .filter(F.col(user_col).isNotNull())
        .distinct()
    )
    degree = rows.groupBy(item_col).agg(F.count(F.lit(1)).alias("_deg"))
    deg_a = degree.select(F.col(item_col).alias(_A), F.col("_deg").alias("_deg_a"))
    deg_b = degree.select(F.col(item_col).alias(_B), F.col("_deg").alias("_deg_b"))
    sized = wanted.join(deg_a, on=_A, how="left").join(deg_b, on=_B, how="left")
    known = sized.filter(F.col("_deg_a").isNotNull() & F.col("_deg_b").isNotNull())
    a_first = (F.col("_deg_a") < F.col("_deg_b")) | (
        (F.col("_deg_a") == F.col("_deg_b")) & (F.col(_A) <= F.col(_B))
    )
    oriented = known.select(
        _A,
        _B,
        F.when(a_first, F.col(_A)).otherwise(F.col(_B)).alias("_lo"),
        F.when(a_first, F.col(_B)).otherwise(F.col(_A)).alias("_hi"),
    )
    lo_rows = rows
    if max_item_users is not None:
        by_hash = Window.partitionBy(item_col).orderBy(
            F.xxhash64(F.col(user_col).cast("string"), F.lit(seed)), F.col(user_col)
        )
        lo_rows = rows.withColumn("_n", F.row_number().over(by_hash)).filter(
            F.col("_n") <= max_item_users
        )
    lo_users = lo_rows.select(F.col(user_col).alias("_u"), F.col(item_col).alias("_lo"))
    hi_users = rows.select(F.col(user_col).alias("_u"), F.col(item_col).alias("_hi"))
    common = (
        oriented.select("_lo", "_hi")
        .distinct()
        .join(lo_users, on="_lo", how="inner")
        .join(hi_users, on=["_u", "_hi"], how="inner")
        .groupBy("_lo", "_hi")
        .agg(F.count(F.lit(1)).alias("_common"))
    )
    deg_lo = degree.select(F.col(item_col).alias("_lo"), F.col("_deg").alias("_deg_lo"))
    scale = (
        F.col("_deg_lo") / F.least(F.col("_deg_lo"), F.lit(max_item_users))
        if max_item_users is not None
        else F.lit(1.0)
    )
    counted = (
        oriented.join(common, on=["_lo", "_hi"], how="left")
        .join(deg_lo, on="_lo", how="left")
        .select(_A, _B, (F.coalesce(F.col("_common"), F.lit(0)) * scale).alias("_common"))
    )
    return sized.join(counted, on=[_A, _B], how="left").select(
        _A,
        _B,
        F.coalesce(F.col("_common") / F.sqrt(F.col("_deg_a") * F.col("_deg_b")), F.lit(0.0)).alias(
            "cosine"
        ),
    )


def diversity_metrics(
    recs: DataFrame,
    train: DataFrame,
    relevant: DataFrame,
    *,
    k: int = 10,
    max_users: int | None = 200,
    max_item_users: int | None = 500,
    seed: int = 42,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> dict[str, float]:
    """Intra-list diversity and serendipity of the top `k` (see the module docstring).

    Parameters
    ----------
    recs
        Lists `user_col`, `item_col`, `rank_col`.
    train
        Training pairs: the users' histories and the co-occurrence counts.
    relevant
        Held-out pairs `user_col`, `item_col`.
    max_users
        Sample at most this many list users (seeded); None uses every user.
    max_item_users
        Co-occurrence counts of items with more users are estimated from this many
        (see `pair_cosine`); None counts exactly.

    Returns
    -------
    dict[str, float]
        `intra_list_diversity`, `serendipity`, `diversity_users` (users sampled).
    """
    top = top_k(recs, k, user_col=user_col, item_col=item_col, rank_col=rank_col)
    chosen = sample_users(top, max_users, seed=seed, user_col=user_col)
    top = top.join(F.broadcast(chosen), on=user_col, how="inner").select(user_col, item_col)
    within = (
        top.alias("x")
        .join(top.alias("y"), on=user_col, how="inner")
        .filter(F.col(f"x.{item_col}") < F.col(f"y.{item_col}"))
        .select(user_col, F.col(f"x.{item_col}").alias(_A), F.col(f"y.{item_col}").alias(_B))
    )
    rel = relevant.select(user_col, item_col).distinct()
    hits = top.join(rel, on=[user_col, item_col], how="inner")
    history = (
        train.select(user_col, F.col(item_col).alias(_B))
        .join(F.broadcast(chosen), on=user_col, how="left_semi")
        .distinct()
    )
    to_history = hits.select(user_col, F.col(item_col).alias(_A)).join(
        history, on=user_col, how="inner"
    )
    # Both metrics below read these cosines: compute them once (a small, pair-sized
    # frame) and cut the deep join plan, rather than re-plan and re-run it per metric.
    cosine = pair_cosine(
        within.select(_A, _B).unionByName(to_history.select(_A, _B)),
        train,
        max_item_users=max_item_users,
        seed=seed,
        user_col=user_col,
        item_col=item_col,
    ).localCheckpoint(eager=True)
    ild = (
        within.join(cosine, on=[_A, _B], how="left")
        .groupBy(user_col)
        .agg((1.0 - F.avg("cosine")).alias("_ild"))
        .agg(F.avg("_ild").alias("v"))
        .first()
    )
    unexpected = (
        to_history.join(cosine, on=[_A, _B], how="left")
        .groupBy(user_col, _A)
        .agg((1.0 - F.avg("cosine")).alias("_unexp"))
        .groupBy(user_col)
        .agg(F.sum("_unexp").alias("_sum"))
    )
    lengths = top.groupBy(user_col).agg(F.count(F.lit(1)).alias("_len"))
    seren = (
        lengths.join(unexpected, on=user_col, how="left")
        .agg(
            F.avg(F.coalesce(F.col("_sum"), F.lit(0.0)) / F.col("_len")).alias("v"),
            F.count(F.lit(1)).alias("n"),
        )
        .first()
    )
    return {
        "intra_list_diversity": float(ild["v"] or 0.0) if ild else 0.0,
        "serendipity": float(seren["v"] or 0.0) if seren else 0.0,
        "diversity_users": float(seren["n"] or 0) if seren else 0.0,
    }
