"""Seeded, deterministic train/test splits of user-item interactions.

Three protocols:

- `random_split_per_user`: each user's pairs shuffled with a seed, a ratio to test (the
  protocol of BASELINES.md: per-user 75/25, seed 42);
- `chronological_split`: one global cut time, train before it, test from it on (the
  honest protocol for a nightly system);
- `leave_last_k_out`: each user's newest `k` pairs to test.

Every function returns `(train, test)` with the input's columns and never drops a row:
users and items of the test side that training lacks are counted by `split_summary`.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C

_ORDER = "_split_order"
_POS = "_split_pos"
_N = "_split_n"


def _seeded_hash(user_col: str, item_col: str, seed: int) -> Column:
    # xxhash64 of (user, item, seed): a deterministic shuffle that does not depend on
    # partitioning, row order or the number of executors.
    return F.xxhash64(F.col(user_col).cast("string"), F.col(item_col).cast("string"), F.lit(seed))


def random_split_per_user(
    df: DataFrame,
    *,
    test_ratio: float = 0.25,
    seed: int = 42,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
) -> tuple[DataFrame, DataFrame]:
    """Split each user's pairs at random (seeded): `test_ratio` of them to test.

    Each user's distinct items are ordered by a seeded hash of (user, item), ties by
    item id; the first `round(n * (1 - test_ratio))` of the user's `n` distinct items go
    to train (rounding half up), the rest to test. Rows repeating a (user, item) pair
    all go to the same side, so no pair leaks across the split. A user with one item
    keeps it in train.

    Parameters
    ----------
    df
        Any frame with `user_col` and `item_col` (for example the affinity frame: one
        row per user-item pair). Rows with a null user or item go to train.
    test_ratio
        Share of each user's items held out, in [0, 1).
    seed
        Seed of the shuffle; the same seed gives the same split on any cluster.

    Returns
    -------
    tuple[DataFrame, DataFrame]
        `(train, test)`, both with exactly the columns of `df`.
    """
    if not 0.0 <= test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in [0, 1); got {test_ratio}")
    by_user = Window.partitionBy(user_col)
    ordered = by_user.orderBy(F.col(_ORDER).asc(), F.col(item_col).asc())
    ranked = (
        df.withColumn(_ORDER, _seeded_hash(user_col, item_col, seed))
        .withColumn(_POS, F.dense_rank().over(ordered))
        .withColumn(_N, F.max(_POS).over(by_user))
    )
    n_train = F.round(F.col(_N) * F.lit(1.0 - test_ratio), 0)
    in_train = F.col(user_col).isNull() | F.col(item_col).isNull() | (F.col(_POS) <= n_train)
    return _sides(ranked, in_train, df.columns)


def chronological_split(
    df: DataFrame, *, cut: datetime, ts_col: str = C.LAST_TS
) -> tuple[DataFrame, DataFrame]:
    """Split at one global time: rows before `cut` to train, rows at or after it to test.

    Parameters
    ----------
    df
        Any frame with the timestamp column `ts_col` (the affinity frame's `last_ts`,
        or the interactions' `event_ts`). Rows with a null timestamp go to train.
    cut
        The cut time (a naive datetime is read in the session time zone, UTC here).

    Returns
    -------
    tuple[DataFrame, DataFrame]
        `(train, test)` with the columns of `df`.
    """
    cut_col = F.lit(cut).cast("timestamp")
    in_train = F.col(ts_col).isNull() | (F.col(ts_col) < cut_col)
    return _sides(df, in_train, df.columns)


def leave_last_k_out(
    df: DataFrame,
    *,
    k: int = 1,
    ts_col: str = C.LAST_TS,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    min_train: int = 1,
) -> tuple[DataFrame, DataFrame]:
    """Hold out each user's `k` newest rows, keeping at least `min_train` rows in train.

    Rows are ordered newest first by `ts_col`, ties by item id (descending, so the
    order is total and reruns are identical). A user with `n` rows sends
    `min(k, max(n - min_train, 0))` of them to test.

    Parameters
    ----------
    df
        A frame with `user_col`, `item_col` and `ts_col` (one row per pair is typical).
    k
        How many newest rows per user to hold out (>= 1).
    min_train
        Users never lose their last `min_train` rows to the test side (>= 0).

    Returns
    -------
    tuple[DataFrame, DataFrame]
        `(train, test)` with the columns of `df`.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    if min_train < 0:
        raise ValueError(f"min_train must be >= 0; got {min_train}")
    by_user = Window.partitionBy(user_col)
    newest_first = by_user.orderBy(
        F.col(ts_col).desc_nulls_last(), F.col(item_col).desc_nulls_last()
    )
    ranked = df.withColumn(_POS, F.row_number().over(newest_first)).withColumn(
        _N, F.count(F.lit(1)).over(by_user)
    )
    n_test = F.least(F.lit(k), F.greatest(F.col(_N) - F.lit(min_train), F.lit(0)))
    in_train = F.col(user_col).isNull() | (F.col(_POS) > n_test)
    return _sides(ranked, in_train, df.columns)


def split_summary(
    train: DataFrame,
    test: DataFrame,
    *,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
) -> dict[str, int]:
    """Counts that make a split auditable, computed in Spark (one small row collected).

    Returns
    -------
    dict[str, int]
        `train_rows`, `test_rows`, `train_users`, `test_users`, `train_items`,
        `test_items`, `test_users_not_in_train` (cold users), `test_items_not_in_train`
        (cold items), `test_rows_cold_user`, `test_rows_cold_item`.
    """
    tr_users = train.select(F.col(user_col).alias("_u")).distinct().withColumn("_tu", F.lit(1))
    tr_items = train.select(F.col(item_col).alias("_i")).distinct().withColumn("_ti", F.lit(1))
    flagged = (
        test.select(F.col(user_col).alias("_u"), F.col(item_col).alias("_i"))
        .join(tr_users, on="_u", how="left")
        .join(tr_items, on="_i", how="left")
    )
    test_stats = flagged.agg(
        F.count(F.lit(1)).alias("test_rows"),
        F.countDistinct("_u").alias("test_users"),
        F.countDistinct("_i").alias("test_items"),
        F.countDistinct(F.when(F.col("_tu").isNull(), F.col("_u"))).alias(
            "test_users_not_in_train"
        ),
        F.countDistinct(F.when(F.col("_ti").isNull(), F.col("_i"))).alias(
            "test_items_not_in_train"
        ),
        F.sum(F.when(F.col("_tu").isNull(), 1).otherwise(0)).alias("test_rows_cold_user"),
        F.sum(F.when(F.col("_ti").isNull(), 1).otherwise(0)).alias("test_rows_cold_item"),
    )
    train_stats = train.agg(
        F.count(F.lit(1)).alias("train_rows"),
        F.countDistinct(user_col).alias("train_users"),
        F.countDistinct(item_col).alias("train_items"),
    )
    row = train_stats.crossJoin(test_stats).first()
    return {k: int(v or 0) for k, v in (row.asDict() if row else {}).items()}


def _sides(df: DataFrame, in_train: Column, columns: list[str]) -> tuple[DataFrame, DataFrame]:
    flagged = df.withColumn("_in_train", in_train)
    train = flagged.filter(F.col("_in_train")).select(*columns)
    test = flagged.filter(~F.col("_in_train")).select(*columns)
    return train, test
