"""Ranking metrics of top-N lists against held-out pairs, computed on the executors.

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

Spark shuffles the lists and relevant pairs by user; each partition's users are scored
together with vectorised numpy (`user_pass`), the one implementation behind
`evaluate_model` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation._kernels import user_pass as up
from recsys_spark.evaluation._kernels.frames import per_user_pass, tagged_rows

N_RELEVANT = "n_relevant"
# ranking_metrics_of_lists: the list's name, and the key of a list's user (name, NUL, user)
_LIST, _KEY, _SEP = "_list", "_list_user", "\u0000"
METRICS_AT_K = up.METRICS_AT_K
metric_names = up.metric_names


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

    Lists and relevant pairs are shuffled by user once; each partition's users are
    scored together in numpy (`user_pass`).

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
    rows = tagged_rows(
        recs,
        relevant,
        None,
        relevance_col=relevance_col,
        user_col=user_col,
        item_col=item_col,
        rank_col=rank_col,
    )
    per_user = per_user_pass(rows, ks=ks, graded=relevance_col is not None)
    return per_user.withColumnRenamed(up.USER, user_col)


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


def ranking_metrics_of_lists(
    lists: Mapping[str, DataFrame],
    relevant: DataFrame,
    *,
    ks: Sequence[int] = (5, 10, 20),
) -> dict[str, dict[str, float]]:
    """`ranking_metrics` of each of several lists against the same held-out pairs, in one
    Spark pass instead of one per list.

    Parameters
    ----------
    lists
        Name -> top-N lists `user_id`, `item_id`, `rank`.
    relevant
        Held-out pairs `user_id`, `item_id`, the same for every list.
    ks
        Cut-offs (default 5, 10, 20).

    Returns
    -------
    dict[str, dict[str, float]]
        Name -> what `ranking_metrics` gives for that list alone. Each list's users are
        told apart by a key of the list's name and the user; the relevant pairs are
        repeated for every name (a user without a list still scores 0 in each).
    """
    ks = _check_ks(ks)
    names = list(lists)
    if not names:
        return {}
    key = F.concat_ws(_SEP, _LIST, C.USER_ID).alias(_KEY)
    recs = reduce(
        DataFrame.unionByName,
        [lists[n].select(F.lit(n).alias(_LIST), C.USER_ID, C.ITEM_ID, C.RANK) for n in names],
    )
    tags = relevant.sparkSession.createDataFrame([(n,) for n in names], f"{_LIST} string")
    pairs = relevant.select(C.USER_ID, C.ITEM_ID).crossJoin(F.broadcast(tags))
    per_user = per_user_ranking_metrics(
        recs.select(key, C.ITEM_ID, C.RANK), pairs.select(key, C.ITEM_ID), ks=ks, user_col=_KEY
    )
    by_list = _means(per_user, metric_names(ks), by=F.substring_index(_KEY, _SEP, 1))
    return {n: by_list.get(n) or _means_of_nothing(metric_names(ks)) for n in names}


def mean_metrics(per_user: DataFrame, names: Sequence[str]) -> dict[str, float]:
    """Average the columns `names` of a per-user frame; adds `users_evaluated`."""
    return _means(per_user, names).get(None) or _means_of_nothing(names)


def _means(
    per_user: DataFrame, names: Sequence[str], by: Column | None = None
) -> dict[str | None, dict[str, float]]:
    """The columns `names` averaged, and `users_evaluated`, per value of `by` (one action);
    without `by`, one group keyed None."""
    keys = [] if by is None else [by.alias(_LIST)]
    rows = (
        per_user.groupBy(*keys)
        .agg(*[F.avg(n).alias(n) for n in names], F.count(F.lit(1)).alias("users_evaluated"))
        .collect()
    )
    return {
        (None if by is None else r[_LIST]): {
            n: float(r[n] or 0.0) for n in (*names, "users_evaluated")
        }
        for r in rows
    }


def _means_of_nothing(names: Sequence[str]) -> dict[str, float]:
    """What a list scores with no relevant pair: every metric 0, nobody evaluated."""
    return {n: 0.0 for n in (*names, "users_evaluated")}


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1:
        raise ValueError(f"ks must hold at least one cut-off, each >= 1; got {list(ks)}")
    return out
