"""Intra-list diversity and serendipity from exact item co-occurrence cosine.

The cosine of items a and b is |U_a & U_b| / sqrt(|U_a| |U_b|) over their training
users (0 when either is unknown to training), computed exactly for the pairs the
metrics need (`cosine`): no sampling of users or of pairs.

- `intra_list_diversity`: mean over users (lists of >= 2 items) of
  1 - mean cosine of the pairs in the user's top K;
- `serendipity`: mean over users of (1 / list length) x sum over the list's relevant
  items of (1 - mean cosine of the item to the user's training items).

Each row of pairs carries its user's weight (1 / pairs in the list, 1 / list length),
so the means over users are plain sums over the rows: no grouping by user.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation._kernels.frames import PassResult, run_passes, tagged_rows


def sample_users(users: DataFrame, max_users: int | None, *, seed: int, user_col: str) -> DataFrame:
    """Distinct `user_col` values, or the `max_users` of them with the smallest seeded hash."""
    distinct = users.select(user_col).filter(F.col(user_col).isNotNull()).distinct()
    if max_users is None:
        return distinct
    key = F.xxhash64(F.col(user_col).cast("string"), F.lit(seed))
    return distinct.orderBy(key, F.col(user_col)).limit(max_users)


def diversity_values(result: PassResult) -> dict[str, float]:
    """`intra_list_diversity`, `serendipity`, `diversity_users` of a `run_passes` result."""
    n_users, n_pair_users = result.total("_list_users"), result.total("_pair_users")
    return {
        "intra_list_diversity": 1.0 - result.within / n_pair_users if n_pair_users else 0.0,
        "serendipity": result.unexpected / n_users if n_users else 0.0,
        "diversity_users": n_users,
    }


def diversity_metrics(
    recs: DataFrame,
    train: DataFrame,
    relevant: DataFrame,
    *,
    k: int = 10,
    max_users: int | None = None,
    seed: int = 42,
    num_buckets: int | None = None,
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
        Score a seeded sample of at most this many list users; None scores every one.
    num_buckets
        Buckets of items for the pair cosines (see `frames.run_passes`).

    Returns
    -------
    dict[str, float]
        `intra_list_diversity`, `serendipity`, `diversity_users` (list users scored).
    """
    if max_users is not None:
        listed = recs.filter(F.col(item_col).isNotNull() & F.col(rank_col).isNotNull())
        chosen = sample_users(listed, max_users, seed=seed, user_col=user_col)
        recs = recs.join(F.broadcast(chosen), on=user_col, how="left_semi")
    rows = tagged_rows(
        recs, relevant, train, user_col=user_col, item_col=item_col, rank_col=rank_col
    )
    result = run_passes(rows, ks=(k,), k=k, diversity=True, num_buckets=num_buckets)
    return diversity_values(result)
