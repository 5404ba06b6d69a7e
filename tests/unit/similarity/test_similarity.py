"""Item-item similarities against numpy / scipy references on tiny matrices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from scipy.stats.contingency import chi2_contingency

from recsys_spark import columns as C
from recsys_spark.similarity import (
    MEASURES,
    blocks,
    cap_interactions,
    item_similarity,
    log_likelihood_ratio,
    top_k_per_group,
)
from recsys_spark.similarity.cooccurrence import _spark_hash_int, partition_keys

PAIR_SCHEMA = "user_idx int, item_idx int, item_id string"


def _pairs_frame(spark: SparkSession, x: np.ndarray, item_ids: list[str] | None = None):
    users, items = np.nonzero(x)
    ids = item_ids or [f"i{j:02d}" for j in range(x.shape[1])]
    rows = [(int(u), int(i), ids[i]) for u, i in zip(users, items, strict=True)]
    return spark.createDataFrame(rows, PAIR_SCHEMA)


def _reference(x: np.ndarray, measure: str, min_support: int) -> pd.DataFrame:
    """Every pair's score computed straight from the dense matrix (scipy's G-test for LLR)."""
    co = x.T.astype(np.int64) @ x.astype(np.int64)
    counts = np.diag(co)
    n_users = x.shape[0]
    rows = []
    for i in range(x.shape[1]):
        for j in range(x.shape[1]):
            c, ci, cj = co[i, j], counts[i], counts[j]
            if i == j or c < min_support:
                continue
            score = {
                "count": float(c),
                "jaccard": c / (ci + cj - c),
                "cosine": c / math.sqrt(ci * cj),
                "lift": c / (ci * cj),
                "inclusion": c / min(ci, cj),
            }.get(measure)
            if measure == "llr":
                table = np.array([[c, ci - c], [cj - c, n_users - ci - cj + c]])
                score = chi2_contingency(table, correction=False, lambda_="log-likelihood")[0]
            rows.append((i, j, float(score), int(c)))
    return pd.DataFrame(rows, columns=["i", "j", "score", "c"])


def _collect(result, measure: str) -> pd.DataFrame:
    pdf = result.filter(F.col(C.MEASURE) == measure).toPandas()
    return (
        pdf.rename(columns={C.ITEM_IDX: "i", C.NEIGHBOUR_IDX: "j", C.COOCCURRENCE: "c"})[
            ["i", "j", C.SCORE, "c"]
        ]
        .sort_values(["i", "j"])
        .reset_index(drop=True)
    )


@pytest.fixture(scope="module")
def random_matrix() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = (rng.random((40, 12)) < 0.35).astype(np.int8)
    counts = x.sum(axis=0)
    # scipy's G-test needs non-empty margins: no item in every user's history or in none.
    assert (counts > 0).all() and (counts < x.shape[0]).all()
    return x


def test_every_measure_matches_numpy_reference(spark, random_matrix):
    min_support = 3  # exercises the support threshold too
    result = item_similarity(
        _pairs_frame(spark, random_matrix),
        measures=MEASURES,
        min_support=min_support,
        top_k=100,
        max_per_user=None,
        max_per_item=None,
    ).cache()
    for measure in MEASURES:
        expected = _reference(random_matrix, measure, min_support).sort_values(["i", "j"])
        got = _collect(result, measure)
        assert len(got) == len(expected) > 0, measure
        np.testing.assert_array_equal(got[["i", "j", "c"]].to_numpy(), expected[["i", "j", "c"]])
        np.testing.assert_allclose(got[C.SCORE], expected["score"], rtol=1e-9, atol=1e-9)
    assert result.filter(F.col(C.COOCCURRENCE) < min_support).count() == 0
    result.unpersist()


def test_llr_hand_worked_tables():
    # [[1, 0], [0, 1]]: each entropy term is 2 ln 2, so LLR = 2 (2 ln 2 + 2 ln 2 - 2 ln 2).
    assert log_likelihood_ratio(1, 0, 0, 1) == pytest.approx(4 * math.log(2), abs=1e-12)
    # Mahout's LogLikelihoodTest values.
    got = log_likelihood_ratio(
        np.array([10, 5, 1000, 1000, 1000]),
        np.array([0, 1995, 1995, 1000, 1000]),
        np.array([0, 0, 1000, 1000, 1000]),
        np.array([10, 100000, 100000, 100000, 99000]),
    )
    np.testing.assert_allclose(
        got, [27.72589, 39.33052, 4730.737, 5734.343, 5714.932], rtol=0, atol=1e-3
    )
    # Independence: exactly zero in exact arithmetic, never negative after rounding.
    independent = log_likelihood_ratio(
        np.array([10, 3, 7e6]),
        np.array([10, 6, 7e6]),
        np.array([10, 9, 7e6]),
        np.array([10, 18, 7e6]),
    )
    assert (independent >= 0).all() and independent.max() < 1e-6


def test_llr_through_spark_on_hand_worked_matrix(spark):
    # a and b always together (2 users), c alone (2 users): k = [[2, 0], [0, 2]], LLR 8 ln 2.
    rows = [(0, 0, "a"), (0, 1, "b"), (1, 0, "a"), (1, 1, "b"), (2, 2, "c"), (3, 2, "c")]
    result = item_similarity(
        spark.createDataFrame(rows, PAIR_SCHEMA), measures=("llr", "jaccard"), min_support=1
    )
    got = {(r[C.ITEM_ID], r[C.NEIGHBOUR_ID], r[C.MEASURE]): r[C.SCORE] for r in result.collect()}
    assert set(got) == {(a, b, m) for a, b in (("a", "b"), ("b", "a")) for m in ("llr", "jaccard")}
    assert got[("a", "b", "llr")] == pytest.approx(8 * math.log(2), abs=1e-12)
    assert got[("b", "a", "jaccard")] == 1.0


def test_ties_break_by_item_id_not_index(spark):
    # Item "x" (3 users) co-occurs once with each of "c", "a", "b", whose indices run against
    # their id order; every Jaccard score ties, so the lists follow the ids.
    ids = ["x", "c", "b", "a"]
    x = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]], dtype=np.int8)
    result = item_similarity(
        _pairs_frame(spark, x, ids), measures=("jaccard",), min_support=1, top_k=2
    ).filter(F.col(C.ITEM_ID) == "x")
    expected = spark.createDataFrame(
        [("x", "a", 1, 1 / 3), ("x", "b", 2, 1 / 3)],
        f"{C.ITEM_ID} string, {C.NEIGHBOUR_ID} string, {C.RANK} int, {C.SCORE} double",
    )
    assert_df_equality(
        result.select(C.ITEM_ID, C.NEIGHBOUR_ID, C.RANK, C.SCORE).orderBy(C.RANK),
        expected,
        ignore_nullable=True,  # mapInArrow output columns are always nullable
    )


def test_top_k_keeps_the_best_neighbours(spark, random_matrix):
    result = item_similarity(
        _pairs_frame(spark, random_matrix), measures=("count",), min_support=1, top_k=3
    ).toPandas()
    expected = _reference(random_matrix, "count", 1)
    expected["nid"] = [f"i{j:02d}" for j in expected["j"]]
    expected = (
        expected.sort_values(["i", "score", "nid"], ascending=[True, False, True])
        .groupby("i")
        .head(3)
    )
    expected["rank"] = expected.groupby("i").cumcount() + 1
    got = result.sort_values([C.ITEM_IDX, C.RANK])
    np.testing.assert_array_equal(got[C.ITEM_IDX], expected["i"])
    np.testing.assert_array_equal(got[C.NEIGHBOUR_IDX], expected["j"])
    np.testing.assert_array_equal(got[C.RANK], expected["rank"])


def test_item_cap_keeps_the_same_users_for_every_item(spark):
    # Items 0 and 1 share all 100 users: capped alike, they still co-occur in every kept user
    # (independent samples per item would keep about 1 user in common out of 10).
    rows = [(u, i, f"i{i}") for u in range(100) for i in (0, 1)] + [(u, 2, "i2") for u in range(50)]
    pairs = spark.createDataFrame(rows, PAIR_SCHEMA)
    capped = cap_interactions(pairs, max_per_user=None, max_per_item=10, seed=7).toPandas()
    kept = {i: set(capped.loc[capped[C.ITEM_IDX] == i, C.USER_IDX]) for i in (0, 1, 2)}
    assert len(kept[0]) == len(kept[1]) == len(kept[2]) == 10
    assert kept[0] == kept[1]
    # Item 2's users are a subset: its sample holds whichever of them hash lowest.
    assert kept[2] <= set(range(50))
    sims = item_similarity(
        pairs, measures=("jaccard",), min_support=1, max_per_user=None, max_per_item=10, seed=7
    )
    got = _collect(sims, "jaccard").set_index(["i", "j"])
    assert got.loc[(0, 1), C.SCORE] == 1.0 and got.loc[(0, 1), "c"] == 10


def test_caps_keep_at_most_the_cap_and_are_seeded(spark):
    # User 0 has all 30 items; items 0..3 also have 30 light users each.
    rows = [(0, i, f"i{i:02d}") for i in range(30)]
    rows += [(u, u % 4, f"i{u % 4:02d}") for u in range(1, 121)]
    pairs = spark.createDataFrame(rows + rows[:5], PAIR_SCHEMA)  # duplicates merge
    capped = cap_interactions(pairs, max_per_user=5, max_per_item=10, seed=3).toPandas()
    assert capped.groupby(C.USER_IDX).size().max() == 5
    assert capped.groupby(C.ITEM_IDX).size().max() == 10
    assert not capped.duplicated().any()
    # Items 0..3 had 31 users each; items 4..29 only user 0, who keeps 5 items in all.
    assert (capped.groupby(C.ITEM_IDX).size().loc[[0, 1, 2, 3]] <= 10).all()
    again = cap_interactions(pairs, max_per_user=5, max_per_item=10, seed=3).toPandas()
    other = cap_interactions(pairs, max_per_user=5, max_per_item=10, seed=4).toPandas()
    key = [C.USER_IDX, C.ITEM_IDX]
    pd.testing.assert_frame_equal(
        capped.sort_values(key).reset_index(drop=True),
        again.sort_values(key).reset_index(drop=True),
    )
    assert set(map(tuple, capped[key].to_numpy())) != set(map(tuple, other[key].to_numpy()))
    # Counts come from the capped matrix.
    x = np.zeros((121, 30), dtype=np.int8)
    x[capped[C.USER_IDX], capped[C.ITEM_IDX]] = 1
    sims = item_similarity(
        pairs, measures=("jaccard",), min_support=1, max_per_user=5, max_per_item=10, seed=3
    )
    got = _collect(sims, "jaccard")
    expected = _reference(x, "jaccard", 1).sort_values(["i", "j"])
    np.testing.assert_array_equal(got[["i", "j", "c"]].to_numpy(), expected[["i", "j", "c"]])
    np.testing.assert_allclose(got[C.SCORE], expected["score"], rtol=1e-9)


def test_empty_and_null_input(spark):
    empty = item_similarity(spark.createDataFrame([], PAIR_SCHEMA), measures=("cosine",))
    assert empty.count() == 0
    rows = [(0, 0, "a"), (0, 1, "b"), (None, 1, "b"), (1, None, None), (1, 0, "a"), (1, 1, "b")]
    result = item_similarity(spark.createDataFrame(rows, PAIR_SCHEMA), measures=("count",))
    got = sorted((r[C.ITEM_ID], r[C.NEIGHBOUR_ID], r[C.COOCCURRENCE]) for r in result.collect())
    assert got == [("a", "b", 2), ("b", "a", 2)]


def test_unknown_measure_fails(spark):
    with pytest.raises(ValueError, match="unknown measures"):
        item_similarity(spark.createDataFrame([], PAIR_SCHEMA), measures=("pearson",))


@pytest.mark.parametrize("n_blocks", [1, 3, 7])
def test_any_number_of_item_blocks_gives_the_reference(spark, random_matrix, n_blocks):
    # Each block computes whole rows of C from the histories copied to it: the result
    # must not depend on how the items are split.
    result = item_similarity(
        _pairs_frame(spark, random_matrix),
        measures=("cosine",),
        min_support=2,
        top_k=100,
        max_per_user=None,
        max_per_item=None,
        num_partitions=n_blocks,
    )
    got = _collect(result, "cosine")
    expected = _reference(random_matrix, "cosine", 2).sort_values(["i", "j"])
    np.testing.assert_array_equal(got[["i", "j", "c"]].to_numpy(), expected[["i", "j", "c"]])
    np.testing.assert_allclose(got[C.SCORE], expected["score"], rtol=1e-12)


def test_rows_split_into_work_chunks_give_the_same_lists(spark, random_matrix, monkeypatch):
    kwargs = {"measures": ("jaccard",), "min_support": 1, "top_k": 4}
    whole = _collect(item_similarity(_pairs_frame(spark, random_matrix), **kwargs), "jaccard")
    # The kernel itself, run here with a budget of one unit of work per product: every
    # item row is its own chunk.
    monkeypatch.setattr(blocks, "WORK_PER_CHUNK", 1)
    users, items = np.nonzero(random_matrix)
    table = pa.table(
        {
            blocks.BLOCK: np.zeros(len(users), np.int32),
            C.USER_IDX: users.astype(np.int32),
            C.ITEM_IDX: items.astype(np.int32),
        }
    )
    counts = random_matrix.sum(axis=0).astype(np.int64)
    out = pa.Table.from_batches(
        list(
            blocks.block_neighbours(
                iter(table.to_batches()),
                block_of=np.zeros(random_matrix.shape[1], np.int32),
                measures=("jaccard",),
                item_counts=counts,
                tie_rank=np.arange(random_matrix.shape[1]),
                n_users=random_matrix.shape[0],
                min_support=1,
                top_k=4,
            )
        )
    ).to_pandas()
    chunked = (
        out.rename(columns={C.ITEM_IDX: "i", C.NEIGHBOUR_IDX: "j", C.COOCCURRENCE: "c"})[
            ["i", "j", C.SCORE, "c"]
        ]
        .sort_values(["i", "j"])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(chunked, whole, check_dtype=False)


def test_histories_copied_once_per_block_of_their_items():
    # User 0 has items 0, 1 (block 0) and 3 (block 1); user 1 only item 2 (block 1).
    block_of = np.array([0, 0, 1, 1], np.int32)
    table = pa.table(
        {
            C.USER_IDX: np.array([0, 1, 0, 0, 0], np.int32),
            C.ITEM_IDX: np.array([3, 2, 0, 1, 0], np.int32),  # (0, 0) twice: merged upstream
        }
    )
    rows = pa.Table.from_batches(
        list(blocks.replicate_histories(iter(table.slice(0, 4).to_batches()), block_of=block_of))
    ).to_pylist()
    got = sorted((r[blocks.BLOCK], r[C.USER_IDX], r[C.ITEM_IDX]) for r in rows)
    assert got == [(0, 0, 0), (0, 0, 1), (0, 0, 3), (1, 0, 0), (1, 0, 1), (1, 0, 3), (1, 1, 2)]


def test_balanced_blocks_cut_consecutive_items_by_work():
    work = np.array([5, 0, 5, 5, 5, 10, 0], np.int64)
    got = blocks.balanced_blocks(work, 3)
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 1, 2, 2])
    assert (np.diff(got) >= 0).all()
    np.testing.assert_array_equal(blocks.balanced_blocks(np.zeros(3, np.int64), 2), [0, 0, 0])


def testpartition_keys_give_each_block_its_own_partition(spark):
    values = [0, 1, -1, 42, 123_456, 2**31 - 1, -(2**31)]
    hashed = spark.createDataFrame([(v,) for v in values], "v int").select("v", F.hash("v"))
    assert [_spark_hash_int(v) for v, _ in hashed.collect()] == [h for _, h in hashed.collect()]
    for n in (2, 3, 5):
        keys = partition_keys(n)
        placed = (
            spark.createDataFrame([(k,) for k in keys], "k int")
            .repartition(n, "k")
            .select("k", F.spark_partition_id().alias("p"))
            .collect()
        )
        assert sorted((keys.index(r["k"]), r["p"]) for r in placed) == [(p, p) for p in range(n)]


def _top_k_reference(group, score, tie, k):
    order = sorted(range(len(group)), key=lambda e: (group[e], -score[e], tie[e]))
    out, ranks, seen = [], [], {}
    for e in order:
        seen[group[e]] = seen.get(group[e], 0) + 1
        if seen[group[e]] <= k:
            out.append(e)
            ranks.append(seen[group[e]])
    return out, ranks


@pytest.mark.parametrize("k", [1, 3, 50])
def test_top_k_per_group_matches_a_plain_sort(k):
    rng = np.random.default_rng(k)
    group = rng.integers(0, 9, 400)  # unsorted groups, some far larger than k
    score = rng.integers(0, 4, 400) / 3.0  # many ties, broken by `tie`
    tie = rng.permutation(400)
    positions, ranks = top_k_per_group(group, score, tie, k)
    expected, expected_ranks = _top_k_reference(group, score, tie, k)
    assert positions.tolist() == expected
    assert ranks.tolist() == expected_ranks
    empty = top_k_per_group(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), k)
    assert [len(a) for a in empty] == [0, 0]
