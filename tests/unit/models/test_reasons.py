"""A reason per recommendation (`because_item_id`): item-based, EASE, ALS, hybrid, ranker."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from pyspark.sql import SparkSession

from recsys_spark import columns as C
from recsys_spark.models.hybrid import blend_ranked_lists
from recsys_spark.models.item_based import recommend_item_based, strongest_contributors
from recsys_spark.models.reasons import factor_reasons
from recsys_spark.pipeline.ranking import with_reasons
from tests.unit.models.test_item_based import AFFINITY_SCHEMA, SIM_SCHEMA, _sim_rows


def test_strongest_contributors_pick_the_largest_positive_term():
    history = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))
    sim = np.array([[0.0, 0.5, 0.9], [0.3, 0.0, 0.4], [0.2, -0.1, 0.0]])  # history x candidate
    rows, cols = np.array([0, 0, 1, 1]), np.array([2, 0, 1, 0])
    # user 0, item 2: 1*0.9 vs 2*0.4 -> item 0; user 0, item 0: only 2*0.3 -> item 1;
    # user 1, item 1: 1*(-0.1) is no reason -> -1; user 1, item 0: 1*0.2 -> item 2.
    got = strongest_contributors(history, sp.csr_matrix(sim), rows, cols)
    assert got.tolist() == [0, 1, -1, 2]


@pytest.mark.parametrize("seed", [0, 1])
def test_strongest_contributors_equal_a_brute_force_reference(monkeypatch, seed):
    """Random histories and weights with ties, in chunks of a few entries and in one:
    each pair's reason is the argmax of its positive terms, the smaller item on a tie."""
    from recsys_spark.models import item_based

    rng = np.random.default_rng(seed)
    users, items = 30, 25
    history = np.where(rng.random((users, items)) < 0.3, rng.integers(1, 3, (users, items)), 0)
    sim = np.where(rng.random((items, items)) < 0.5, rng.integers(-2, 4, (items, items)), 0)
    rows = rng.integers(0, users, 200)
    cols = rng.integers(0, items, 200)
    want = []
    for row, col in zip(rows, cols, strict=True):
        terms = history[row] * sim[:, col].astype(float)
        want.append(int(np.argmax(terms)) if terms.max() > 0 else -1)  # argmax: first max
    weights = sp.csr_matrix(sim.astype(np.float32))
    unsorted = weights.copy()  # each row's entries reversed: indices not sorted
    for lo, hi in zip(unsorted.indptr[:-1], unsorted.indptr[1:], strict=True):
        unsorted.indices[lo:hi] = unsorted.indices[lo:hi][::-1].copy()
        unsorted.data[lo:hi] = unsorted.data[lo:hi][::-1].copy()
    unsorted.has_sorted_indices = False
    for chunk in (3, 1_000_000):  # a few pairs at a time, and all at once
        monkeypatch.setattr(item_based, "ENTRIES_PER_CHUNK", chunk)
        for matrix in (weights, unsorted):
            got = strongest_contributors(sp.csr_matrix(history.astype(float)), matrix, rows, cols)
            assert got.tolist() == want


@pytest.mark.parametrize("neighbourhood", ["candidate", "history"])
def test_item_based_reasons_are_the_largest_contribution_in_the_history(
    spark: SparkSession, neighbourhood: str
) -> None:
    rng = np.random.default_rng(3)
    n_users, n_items = 20, 12
    weights = np.where(
        rng.random((n_users, n_items)) < 0.3, rng.uniform(0.5, 3, (n_users, n_items)), 0
    )
    sim = np.where(rng.random((n_items, n_items)) < 0.4, rng.random((n_items, n_items)), 0)
    np.fill_diagonal(sim, 0)
    items = [f"i{j:02d}" for j in range(n_items)]
    users = [f"u{u:02d}" for u in range(n_users)]
    affinity = spark.createDataFrame(
        [
            (int(u), users[u], int(j), items[j], float(weights[u, j]))
            for u, j in zip(*np.nonzero(weights), strict=True)
        ],
        AFFINITY_SCHEMA,
    )
    sims = spark.createDataFrame(_sim_rows(sim, items), SIM_SCHEMA)
    got = recommend_item_based(affinity, sims, measure="m", top_n=5, neighbourhood=neighbourhood)
    effective = sim if neighbourhood == "history" else sim.T
    rows = got.collect()
    assert len(rows) > 50
    for r in rows:
        u, j = r[C.USER_IDX], r[C.ITEM_IDX]
        terms = weights[u] * effective[:, j]
        assert r[C.BECAUSE_ITEM_ID] == items[int(np.argmax(terms))]
        assert weights[u, items.index(r[C.BECAUSE_ITEM_ID])] > 0  # in the user's history


def test_als_reasons_are_the_nearest_history_item_in_factor_space(spark: SparkSession):
    factors = {0: [1.0, 0.0], 1: [0.0, 1.0], 2: [0.9, 0.1], 3: [0.1, 0.9], 4: [-1.0, 0.0]}
    item_factors = spark.createDataFrame(
        [(i, v) for i, v in factors.items()], "item_idx int, features array<float>"
    )
    history = spark.createDataFrame(
        [(0, 0, "a"), (0, 1, "b"), (1, 4, "e")], "user_idx int, item_idx int, item_id string"
    )
    lists = spark.createDataFrame(
        [(0, 2, "c", 1), (0, 3, "d", 2), (1, 2, "c", 1), (2, 3, "d", 1)],
        "user_idx int, item_idx int, item_id string, rank int",
    )
    got = {
        (r[C.USER_IDX], r[C.ITEM_ID]): r[C.BECAUSE_ITEM_ID]
        for r in factor_reasons(lists, history, item_factors).collect()
    }
    # User 1's only history item points away from c: still the nearest it has. User 2
    # has no history: no reason.
    assert got == {(0, "c"): "a", (0, "d"): "b", (1, "c"): "e", (2, "d"): None}


LISTS = (
    "user_id string, item_id string, rank int, score double, source string, because_item_id string"
)


def test_the_hybrid_keeps_the_reason_of_the_list_that_weighs_more(spark: SparkSession):
    als = spark.createDataFrame(
        [("u", "x", 1, 1.0, "model", "als_x"), ("u", "y", 2, 0.5, "model", "als_y")], LISTS
    )
    items = spark.createDataFrame(
        [("u", "y", 1, 1.0, "model", "item_y"), ("u", "z", 2, 0.5, "model", None)], LISTS
    )
    got = {
        r[C.ITEM_ID]: r[C.BECAUSE_ITEM_ID]
        for r in blend_ranked_lists(als, items, weight=0.3, depth=2, n=3).collect()
    }
    # y: item-based weighs 0.7 * 1 against ALS's 0.3 * 0.5; z: only item-based, no reason
    # there, none from ALS either.
    assert got == {"x": "als_x", "y": "item_y", "z": None}


def test_ranked_lists_take_the_reason_of_the_source_that_ranked_the_item_highest(spark):
    ranked = spark.createDataFrame(
        [("u", "x", 1, 0.9), ("u", "y", 2, 0.5)],
        "user_id string, item_id string, rank int, score double",
    )
    sources = {
        "als": spark.createDataFrame([("u", "x", 3, 0.1, "model", "a1")], LISTS),
        "item_llr": spark.createDataFrame(
            [("u", "x", 1, 0.1, "model", "b1"), ("u", "y", 5, 0.1, "model", "b2")], LISTS
        ),
        "most_popular": spark.createDataFrame(
            [("u", "y", 1, 9.0)], "user_id string, item_id string, rank int, score double"
        ),
    }
    got = {r[C.ITEM_ID]: r[C.BECAUSE_ITEM_ID] for r in with_reasons(ranked, sources, 10).collect()}
    assert got == {"x": "b1", "y": "b2"}
