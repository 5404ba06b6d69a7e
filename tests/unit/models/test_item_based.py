"""Item-based top-N and the similarity job, against numpy references."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.models.item_based import (
    item_based_lists,
    item_based_models,
    recommend_item_based,
    similar_items,
)
from recsys_spark.models.popularity import popular_items

AFFINITY_SCHEMA = "user_idx int, user_id string, item_idx int, item_id string, affinity double"
SIM_SCHEMA = (
    "item_idx int, item_id string, neighbour_idx int, neighbour_id string, measure string, "
    "rank int, score double, cooccurrence long"
)
RECS_SCHEMA = "user_id string, item_id string, rank int, score double"


def _reference_top_n(
    weights: np.ndarray, sim: np.ndarray, item_ids: list[str], user_ids: list[str], n: int
) -> pd.DataFrame:
    """Dense A @ S, history excluded, positive scores only, ties by item id."""
    scores = weights @ sim
    rows = []
    for u, user in enumerate(user_ids):
        cands = [
            (-scores[u, j], item_ids[j], j)
            for j in range(sim.shape[1])
            if weights[u, j] == 0 and scores[u, j] > 0
        ]
        for rank, (neg, item, _) in enumerate(sorted(cands)[:n], start=1):
            rows.append((user, item, rank, -neg))
    return pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE])


def _sim_rows(sim: np.ndarray, item_ids: list[str], measure: str = "m") -> list[tuple]:
    rows = []
    for i in range(sim.shape[0]):
        nbrs = [j for j in np.flatnonzero(sim[i])]
        for rank, j in enumerate(sorted(nbrs, key=lambda j: (-sim[i, j], item_ids[j])), start=1):
            rows.append((i, item_ids[i], int(j), item_ids[j], measure, rank, float(sim[i, j]), 1))
    return rows


@pytest.mark.parametrize("neighbourhood", ["candidate", "history"])
def test_scores_match_dense_reference(spark: SparkSession, neighbourhood: str) -> None:
    rng = np.random.default_rng(11)
    n_users, n_items = 25, 14
    weights = np.where(
        rng.random((n_users, n_items)) < 0.25, rng.uniform(0.5, 3, (n_users, n_items)), 0
    )
    sim = np.where(rng.random((n_items, n_items)) < 0.3, rng.random((n_items, n_items)), 0)
    np.fill_diagonal(sim, 0)
    sim[:, 3] = sim[:, 5]  # identical columns: score ties between items 3 and 5
    # Indices against id order, so ties must follow the ids, not the indices.
    item_ids = [f"i{n_items - j:02d}" for j in range(n_items)]
    user_ids = [f"u{u:02d}" for u in range(n_users)]
    affinity = spark.createDataFrame(
        [
            (int(u), user_ids[u], int(j), item_ids[j], float(weights[u, j]))
            for u, j in zip(*np.nonzero(weights), strict=True)
        ],
        AFFINITY_SCHEMA,
    )
    sims = spark.createDataFrame(
        _sim_rows(sim, item_ids) + _sim_rows(sim.T, item_ids, "other"), SIM_SCHEMA
    )
    got = recommend_item_based(
        affinity, sims, measure="m", top_n=4, neighbourhood=neighbourhood
    ).select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE)
    # Row i of `sim` is item i's neighbour list. history: A @ S (i's list feeds its
    # neighbours); candidate: A @ S^T (candidate j sums over its own list).
    effective = sim if neighbourhood == "history" else sim.T
    expected = spark.createDataFrame(
        _reference_top_n(weights, effective, item_ids, user_ids, 4), RECS_SCHEMA
    )
    assert expected.count() > 60
    # Both sides sorted the same way; mapInArrow output columns are always nullable.
    key = [C.USER_ID, C.RANK]
    assert_approx_df_equality(
        got.orderBy(key), expected.orderBy(key), precision=1e-9, ignore_nullable=True
    )


def test_seen_items_excluded_and_users_without_neighbours_skipped(spark: SparkSession) -> None:
    affinity = spark.createDataFrame(
        [
            (0, "u0", 0, "a", 1.0),
            (0, "u0", 1, "b", 2.0),
            (1, "u1", 2, "c", 1.0),  # c has no neighbours: u1 gets nothing
            (2, "u2", 0, "a", 1.0),
            (2, "u2", 0, "a", 1.0),  # a duplicate pair sums like one affinity of 2
        ],
        AFFINITY_SCHEMA,
    )
    sims = spark.createDataFrame(
        [
            (0, "a", 1, "b", "m", 1, 0.5, 2),
            (0, "a", 3, "d", "m", 2, 0.25, 2),
            (1, "b", 3, "d", "m", 1, 0.5, 2),
            (1, "b", 0, "a", "m", 2, 0.5, 2),
        ],
        SIM_SCHEMA,
    )
    got = recommend_item_based(
        affinity, sims, measure="m", top_n=5, neighbourhood="history"
    ).select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE)
    expected = spark.createDataFrame(
        [("u0", "d", 1, 1.25), ("u2", "b", 1, 1.0), ("u2", "d", 2, 0.5)], RECS_SCHEMA
    )
    assert_df_equality(
        got.orderBy(C.USER_ID, C.RANK), expected, ignore_nullable=True
    )  # mapInArrow output columns are always nullable
    # candidate: d has no list of its own, so nobody is offered d; b's list holds a.
    got = recommend_item_based(affinity, sims, measure="m", top_n=5).select(
        C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE
    )
    expected = spark.createDataFrame([("u2", "b", 1, 1.0)], RECS_SCHEMA)
    assert_df_equality(got.orderBy(C.USER_ID, C.RANK), expected, ignore_nullable=True)
    # d seen outside the affinity (before its window): excluded, and it scores nothing.
    seen = spark.createDataFrame(
        [(0, "u0", 3), (2, "u2", 3)], "user_idx int, user_id string, item_idx int"
    )
    got = recommend_item_based(
        affinity, sims, measure="m", top_n=5, neighbourhood="history", seen=seen
    ).select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE)
    expected = spark.createDataFrame([("u2", "b", 1, 1.0)], RECS_SCHEMA)
    assert_df_equality(got.orderBy(C.USER_ID, C.RANK), expected, ignore_nullable=True)
    listed = similar_items(sims, n=1).orderBy(C.ITEM_ID).collect()
    assert [(r[C.ITEM_ID], r[C.SIMILAR_ITEM_ID], r[C.RANK]) for r in listed] == [
        ("a", "b", 1),
        ("b", "d", 1),
    ]
    with pytest.raises(ValueError, match="top_n must be positive"):
        recommend_item_based(affinity, sims, measure="m", top_n=0)
    with pytest.raises(ValueError, match="unknown neighbourhood"):
        recommend_item_based(affinity, sims, measure="m", neighbourhood="user")


def test_full_lists_make_both_neighbourhoods_agree(spark: SparkSession) -> None:
    # Symmetric similarities with every neighbour kept: S = S^T, one answer.
    rng = np.random.default_rng(5)
    sim = np.triu(np.where(rng.random((8, 8)) < 0.5, rng.random((8, 8)), 0), 1)
    sim = sim + sim.T
    item_ids = [f"i{j}" for j in range(8)]
    affinity = spark.createDataFrame(
        [(u, f"u{u}", j, item_ids[j], 1.0) for u in range(6) for j in range(8) if (u + j) % 3 == 0],
        AFFINITY_SCHEMA,
    )
    sims = spark.createDataFrame(_sim_rows(sim, item_ids), SIM_SCHEMA)
    lists = [
        recommend_item_based(affinity, sims, measure="m", top_n=3, neighbourhood=n)
        .select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE)
        .orderBy(C.USER_ID, C.RANK)
        for n in ("candidate", "history")
    ]
    assert lists[0].count() == 18
    assert_approx_df_equality(lists[0], lists[1], precision=1e-12)


def _popular(spark: SparkSession, counts: dict[str, int]):
    t = datetime(2026, 1, 1)
    rows = [(f"p{k}_{item}", item, t) for item, n in counts.items() for k in range(n)]
    events = spark.createDataFrame(
        rows, f"{C.USER_ID} string, {C.ITEM_ID} string, {C.LAST_TS} timestamp"
    )
    return popular_items(events)


def test_item_based_lists_fill_short_and_missing_lists_from_popularity(spark: SparkSession) -> None:
    affinity = spark.createDataFrame(
        [
            (0, "u0", 0, "a", 1.0),  # a's list: b -> one model item, two filled
            (1, "u1", 2, "c", 1.0),  # c has no list: popularity only
            (1, "u1", 3, "d", 1.0),
        ],
        AFFINITY_SCHEMA,
    )
    sims = spark.createDataFrame(
        [(0, "a", 1, "b", "m", 1, 0.5, 2), (1, "b", 0, "a", "m", 1, 0.5, 2)], SIM_SCHEMA
    )
    # Popularity: d > b > a > e > c (ties by id do not arise).
    popular = _popular(spark, {"d": 5, "b": 4, "a": 3, "e": 2, "c": 1})
    users = spark.createDataFrame([("u0",), ("u1",), ("u9",)], f"{C.USER_ID} string")
    got = item_based_lists(
        affinity, sims, popular, measure="m", top_n=3, neighbourhood="history", users=users
    ).select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE, C.SOURCE)
    expected = spark.createDataFrame(
        [
            ("u0", "b", 1, 0.5, "model"),
            ("u0", "d", 2, 5.0, "popularity"),
            ("u0", "e", 3, 2.0, "popularity"),
            ("u1", "b", 1, 4.0, "popularity"),
            ("u1", "a", 2, 3.0, "popularity"),
            ("u1", "e", 3, 2.0, "popularity"),
            ("u9", "d", 1, 5.0, "popularity"),  # no history at all
            ("u9", "b", 2, 4.0, "popularity"),
            ("u9", "a", 3, 3.0, "popularity"),
        ],
        f"{RECS_SCHEMA}, {C.SOURCE} string",
    )
    assert_df_equality(
        got.orderBy(C.USER_ID, C.RANK),
        expected,
        ignore_nullable=True,  # mapInArrow and union outputs are nullable
    )


def test_several_measures_in_one_pass_give_each_measures_own_lists(spark: SparkSession) -> None:
    rng = np.random.default_rng(5)
    n_users, n_items = 30, 16
    item_ids = [f"i{j:02d}" for j in range(n_items)]
    user_ids = [f"u{u:02d}" for u in range(n_users)]
    weights = np.where(
        rng.random((n_users, n_items)) < 0.2, rng.uniform(0.5, 3, (n_users, n_items)), 0
    )
    dense = np.where(rng.random((n_items, n_items)) < 0.4, rng.random((n_items, n_items)), 0)
    np.fill_diagonal(dense, 0)
    sparse = np.where(rng.random((n_items, n_items)) < 0.08, rng.random((n_items, n_items)), 0)
    np.fill_diagonal(sparse, 0)
    sparse[:, 15] = 0  # the sparse measure knows fewer items: a smaller matrix alone
    sparse[15, :] = 0
    affinity = spark.createDataFrame(
        [
            (int(u), user_ids[u], int(j), item_ids[j], float(weights[u, j]))
            for u, j in zip(*np.nonzero(weights), strict=True)
        ],
        AFFINITY_SCHEMA,
    )
    sims = spark.createDataFrame(
        _sim_rows(dense, item_ids, "dense") + _sim_rows(sparse, item_ids, "sparse"), SIM_SCHEMA
    )
    popular = _popular(spark, {item: 1 + j % 5 for j, item in enumerate(item_ids)})
    users = spark.createDataFrame([(u,) for u in [*user_ids, "cold"]], f"{C.USER_ID} string")
    args = {"top_n": 6, "neighbourhood": "candidate", "users": users}
    both = item_based_models(
        affinity, sims, popular, models={"dense": "item_dense", "sparse": "item_sparse"}, **args
    )
    counts = {r[C.SOURCE]: r["count"] for r in both.groupBy(C.SOURCE).count().collect()}
    assert counts["model"] > 0 and counts["popularity"] > 0  # both paths are exercised
    for measure in ("dense", "sparse"):
        alone = item_based_lists(affinity, sims, popular, measure=measure, **args)
        mine = both.filter(F.col(C.MODEL) == f"item_{measure}").drop(C.MODEL)
        assert mine.count() == 31 * 6  # every user, the cold one included, gets six items
        assert_df_equality(
            mine.orderBy(C.USER_ID, C.RANK),
            alone.orderBy(C.USER_ID, C.RANK),
            ignore_nullable=True,  # the one-pass union and joins are nullable
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_and_sparse_candidate_selection_give_the_same_top_k(monkeypatch, seed):
    """Blocks of scores dense enough are selected from as dense arrays in slices of rows:
    the top k of every row (score desc, tie key asc) must equal the sparse path's, ties
    at the k-th score, seen pairs, negative scores and short rows included."""
    import scipy.sparse as sp

    from recsys_spark.models import item_based
    from recsys_spark.similarity.top_k import top_k_per_group

    rng = np.random.default_rng(seed)
    users, items, k = 37, 60, 5
    # few distinct values: many ties; some negative; some rows nearly empty
    values = rng.integers(-2, 6, (users, items)).astype(np.float64) / 4
    values[rng.random((users, items)) < 0.4] = 0.0
    values[3, :] = 0.0
    values[4, :2] = 1.0
    values[4, 2:] = 0.0
    block = sp.csr_matrix(values)
    seen = sp.csr_matrix((rng.random((users, items)) < 0.2).astype(np.float64))
    tie = rng.permutation(items)

    def top(share: float, cells: int):
        monkeypatch.setattr(item_based, "DENSE_SHARE", share)
        monkeypatch.setattr(item_based, "DENSE_CELLS", cells)
        r, j, s = item_based.unseen_candidates(block, seen, k)
        picked, rank = top_k_per_group(r, s, tie[j], k)
        return sorted(zip(r[picked], j[picked], s[picked], rank, strict=True))

    sparse = top(1.0, 8_000_000)
    assert sparse  # the example has candidates
    assert {(u, i) for u, i, _, _ in sparse}.isdisjoint(zip(*seen.nonzero(), strict=True))
    assert all(score > 0 for _, _, score, _ in sparse)
    for cells in (items * 7, items * users, 10):  # slices of 7 rows, one slice, one row
        assert top(0.0, cells) == sparse
