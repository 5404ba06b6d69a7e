"""Ranking metrics of top-N lists against held-out pairs, computed in Spark.

Definitions (those of BASELINES.md and Spark's `RankingMetrics`), for a user with
relevant set R (|R| >= 1), a list ordered by rank and a cut-off K:

- `precision_at_K` = hits in the top K / K (a list shorter than K still divides by K);
- `recall_at_K` = hits in the top K / |R|;
- `hit_rate_at_K` = 1 if any hit in the top K, else 0;
- `mrr_at_K` = 1 / position of the first hit in the top K (0 without one);
- `ndcg_at_K` = DCG / ideal DCG, log2 discount; gain 1 per hit (binary) or
  `2 ** relevance - 1` (graded, as Spark), ideal DCG over the min(|R|, K) best gains;
- `map_at_K` = sum over hits at positions p <= K of (hits so far / p), / min(|R|, K);
- `map` = the same sum over the whole list, / |R| (Spark's `meanAveragePrecision`, the
  "MAP" of the published tables).

Each is averaged over the users with at least one relevant item (`users_evaluated`);
such a user without a list scores 0. Users with a list but nothing relevant are not
evaluated. Lists are ordered explicitly by (rank, item id); a repeated item keeps its
best rank, so positions are 1..n without gaps or ties.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C

POS = "_pos"
GAIN = "_gain"
N_RELEVANT = "n_relevant"
METRICS_AT_K = ("precision", "recall", "hit_rate", "mrr", "ndcg", "map")


def metric_names(ks: Sequence[int]) -> list[str]:
    """The metric keys `ranking_metrics` returns for cut-offs `ks`, in output order."""
    return [f"{m}_at_{k}" for k in ks for m in METRICS_AT_K] + ["map"]


def ordered_lists(
    recs: DataFrame,
    *,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> DataFrame:
    """Each user's list with explicit positions 1..n, ordered by (rank, item id).

    Rows with a null user, item or rank are dropped; a repeated (user, item) keeps its
    best rank. Returns `user_col`, `item_col`, `_pos` (int, 1 = best).
    """
    best = (
        recs.select(user_col, item_col, rank_col)
        .filter(F.col(user_col).isNotNull() & F.col(item_col).isNotNull())
        .filter(F.col(rank_col).isNotNull())
        .groupBy(user_col, item_col)
        .agg(F.min(rank_col).alias("_best_rank"))
    )
    order = Window.partitionBy(user_col).orderBy(F.col("_best_rank").asc(), F.col(item_col).asc())
    return best.select(user_col, item_col, F.row_number().over(order).alias(POS))


def relevant_pairs(
    relevant: DataFrame,
    *,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    relevance_col: str | None = None,
) -> DataFrame:
    """Distinct relevant (user, item) pairs with their gain.

    Returns `user_col`, `item_col`, `_gain`: 1.0 (binary), or `2 ** relevance - 1` with
    `relevance_col` (the largest relevance of a repeated pair; a null or NaN relevance
    gives 0 gain, the pair still counts as relevant).
    """
    rows = relevant.filter(F.col(user_col).isNotNull() & F.col(item_col).isNotNull())
    if relevance_col is None:
        gain: Column = F.lit(1.0)
        rows = rows.select(user_col, item_col).distinct()
    else:
        value = F.col(relevance_col).cast("double")
        value = F.when(F.isnan(value), F.lit(None)).otherwise(value)  # NaN counts as null
        rows = rows.groupBy(user_col, item_col).agg(F.max(value).alias("_rel"))
        gain = F.coalesce(F.pow(F.lit(2.0), F.col("_rel").cast("double")) - 1.0, F.lit(0.0))
    return rows.select(user_col, item_col, gain.alias(GAIN))


def per_user_ranking_metrics(
    recs: DataFrame,
    relevant: DataFrame,
    *,
    ks: Sequence[int] = (5, 10, 20),
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
    relevance_col: str | None = None,
) -> DataFrame:
    """Every ranking metric of every evaluated user (see the module docstring).

    Parameters
    ----------
    recs
        Top-N lists: `user_col`, `item_col`, `rank_col` (1 = best).
    relevant
        Held-out pairs: `user_col`, `item_col` (and `relevance_col` for graded NDCG).
    ks
        Cut-offs, each >= 1.

    Returns
    -------
    DataFrame
        One row per user with at least one relevant item: `user_col`, `n_relevant`
        (long), `n_recommended` (list length, 0 without a list) and one double column per
        name of `metric_names(ks)`.
    """
    ks = _check_ks(ks)
    # One row per user on each side (two shuffles, then a join on co-partitioned data);
    # the metrics are array expressions on small per-user lists, evaluated in the JVM.
    rel_type = relevant.schema[item_col].dataType
    lists = (
        recs.select(user_col, item_col, rank_col)
        .filter(F.col(user_col).isNotNull() & F.col(item_col).isNotNull())
        .filter(F.col(rank_col).isNotNull())
        .groupBy(user_col)
        .agg(
            # Explicit order: sort (rank, item id) structs; collect_list order is not trusted.
            F.array_sort(
                F.collect_list(F.struct(F.col(rank_col).alias("r"), F.col(item_col).alias("i")))
            ).alias("_sorted")
        )
        .select(
            user_col,
            # array_distinct keeps the first (best-ranked) occurrence of a repeated item.
            F.array_distinct(F.transform("_sorted", lambda x: x["i"].cast(rel_type))).alias(
                "_items"
            ),
        )
    )
    rows = relevant.filter(F.col(user_col).isNotNull() & F.col(item_col).isNotNull())
    if relevance_col is None:
        users = rows.groupBy(user_col).agg(F.collect_set(item_col).alias("_rel"))
    else:
        value = F.col(relevance_col).cast("double")
        value = F.when(F.isnan(value), F.lit(None)).otherwise(value)  # NaN counts as null
        gain = F.coalesce(F.pow(F.lit(2.0), F.col("_v")) - 1.0, F.lit(0.0))
        users = (
            rows.groupBy(user_col, item_col)
            .agg(F.max(value).alias("_v"))
            .groupBy(user_col)
            .agg(F.map_from_entries(F.collect_list(F.struct(item_col, gain))).alias("_gains"))
            .withColumn("_rel", F.map_keys("_gains"))
        )
    joined = users.join(lists, on=user_col, how="left").withColumn(
        "_items", F.coalesce(F.col("_items"), F.array().cast(T.ArrayType(rel_type)))
    )
    hit = F.transform("_items", lambda x: F.array_contains("_rel", x))
    if relevance_col is None:
        gains = F.transform(
            "_items", lambda x: F.when(F.array_contains("_rel", x), 1.0).otherwise(0.0)
        )
        ideal = F.array_repeat(F.lit(1.0), F.size("_rel"))
    else:
        gains = F.transform(
            "_items", lambda x: F.coalesce(F.try_element_at("_gains", x), F.lit(0.0))
        )
        ideal = F.reverse(F.array_sort(F.map_values("_gains")))
    joined = joined.select(
        user_col,
        F.size("_rel").cast("long").alias(N_RELEVANT),
        F.size("_items").cast("long").alias("n_recommended"),
        hit.alias("_hit"),
        gains.alias("_gain"),
        ideal.alias("_ideal"),
    )
    # Hits up to each position, for average precision (lists are short: O(n^2) is fine).
    cum = F.transform("_hit", lambda h, i: F.size(F.filter(F.slice("_hit", 1, i + 1), lambda y: y)))
    joined = joined.withColumn(
        "_ap_terms",
        F.transform(cum, lambda c, i: F.when(F.col("_hit")[i], c / (i + 1.0)).otherwise(0.0)),
    ).withColumn("_first", F.array_position("_hit", True))
    n_rel = F.col(N_RELEVANT)
    out: list[Column] = [F.col(user_col), n_rel, F.col("n_recommended")]
    for k in ks:
        hits_k = F.size(F.filter(F.slice("_hit", 1, k), lambda h: h)).cast("double")
        dcg = _discounted_sum(F.slice("_gain", 1, k))
        idcg = _discounted_sum(F.slice("_ideal", 1, k))
        first = F.col("_first")
        out += [
            (hits_k / k).alias(f"precision_at_{k}"),
            (hits_k / n_rel).alias(f"recall_at_{k}"),
            F.when(hits_k > 0, 1.0).otherwise(0.0).alias(f"hit_rate_at_{k}"),
            F.when((first > 0) & (first <= k), 1.0 / first).otherwise(0.0).alias(f"mrr_at_{k}"),
            F.when(idcg > 0, dcg / idcg).otherwise(0.0).alias(f"ndcg_at_{k}"),
            (_sum(F.slice("_ap_terms", 1, k)) / F.least(n_rel, F.lit(k))).alias(f"map_at_{k}"),
        ]
    out.append((_sum(F.col("_ap_terms")) / n_rel).alias("map"))
    return joined.select(*out)


def ranking_metrics(
    recs: DataFrame,
    relevant: DataFrame,
    *,
    ks: Sequence[int] = (5, 10, 20),
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
    relevance_col: str | None = None,
) -> dict[str, float]:
    """Mean ranking metrics over the users with at least one relevant item.

    Computed on the executors; only the one-row aggregate reaches the driver.

    Parameters
    ----------
    recs
        Top-N lists: `user_col`, `item_col`, `rank_col` (1 = best; ties by item id).
    relevant
        Held-out pairs `user_col`, `item_col`; repeats count once. With `relevance_col`,
        NDCG uses graded gain `2 ** relevance - 1`; the other metrics stay binary.
    ks
        Cut-offs (default 5, 10, 20).

    Returns
    -------
    dict[str, float]
        `precision_at_K`, `recall_at_K`, `hit_rate_at_K`, `mrr_at_K`, `ndcg_at_K`,
        `map_at_K` for each K, `map`, and `users_evaluated` (a float holding a count).
        With no relevant pair at all, every metric is 0.0 and `users_evaluated` 0.
    """
    ks = _check_ks(ks)
    per_user = per_user_ranking_metrics(
        recs,
        relevant,
        ks=ks,
        user_col=user_col,
        item_col=item_col,
        rank_col=rank_col,
        relevance_col=relevance_col,
    )
    return mean_metrics(per_user, metric_names(ks))


def mean_metrics(per_user: DataFrame, names: Sequence[str]) -> dict[str, float]:
    """Average the columns `names` of a per-user frame; adds `users_evaluated`."""
    row = per_user.agg(
        *[F.avg(n).alias(n) for n in names], F.count(F.lit(1)).alias("users_evaluated")
    ).first()
    values = row.asDict() if row else {}
    result = {n: float(values.get(n) or 0.0) for n in names}
    result["users_evaluated"] = float(values.get("users_evaluated") or 0)
    return result


def _sum(values: Column) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda acc, x: acc + x)


def _discounted_sum(gains: Column) -> Column:
    """Sum of gain / log2(position + 1) over an array of gains in list order."""
    return _sum(F.transform(gains, lambda g, i: g / F.log2(i + 2.0)))


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1:
        raise ValueError(f"ks must hold at least one cut-off, each >= 1; got {list(ks)}")
    return out
