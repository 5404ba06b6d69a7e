"""Top-N scoring with seen items excluded: numpy selection and the Spark mapInPandas path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark.models.topn import recommend_for_all_users, select_top_n


def reference_top_n(scores: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
    """Full sort per row by (score desc, column asc), -inf dropped."""
    out = []
    for row in scores:
        cols = [c for c in np.lexsort((np.arange(row.size), -row)) if np.isfinite(row[c])]
        out.append([(int(c), float(row[c])) for c in cols[:n]])
    return out


def as_lists(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int):
    out: list[list[tuple[int, float]]] = [[] for _ in range(n_rows)]
    for r, c, v in zip(rows, cols, values, strict=True):
        out[r].append((int(c), float(v)))
    return out


@pytest.mark.parametrize("n", [1, 3, 10])
@pytest.mark.parametrize("width", [2, 4, 64])
def test_select_top_n_matches_full_sort_with_ties_and_masks(n: int, width: int) -> None:
    rng = np.random.default_rng(n * 100 + width)
    # Few distinct values: many ties, which must break by column index.
    scores = rng.integers(0, 5, size=(40, 37)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[0, :] = -np.inf  # nothing left to recommend
    scores[1, :] = -np.inf
    scores[1, [5, 30]] = [1.0, 1.0]  # fewer than n finite: both, by column
    rows, cols, values = select_top_n(scores, n, width=width)
    assert as_lists(rows, cols, values, 40) == reference_top_n(scores, n)


def test_select_top_n_real_valued_scores() -> None:
    rng = np.random.default_rng(3)
    scores = (rng.normal(size=(50, 8)) @ rng.normal(size=(8, 500))).astype(np.float32)
    rows, cols, values = select_top_n(scores, 10)
    assert as_lists(rows, cols, values, 50) == reference_top_n(scores, 10)
    assert np.bincount(rows, minlength=50).tolist() == [10] * 50


def test_select_top_n_rejects_non_positive_n() -> None:
    with pytest.raises(ValueError, match="n must be positive"):
        select_top_n(np.zeros((2, 3), np.float32), 0)


def _factors(spark: SparkSession, rows: list[tuple], key: str, with_id: bool):
    fields = [T.StructField(key, T.IntegerType())]
    if with_id:
        fields.append(T.StructField(key.replace("idx", "id"), T.StringType()))
    fields.append(T.StructField(C.FEATURES, T.ArrayType(T.FloatType())))
    return spark.createDataFrame(rows, T.StructType(fields))


def test_recommend_for_all_users_matches_numpy_reference(spark: SparkSession) -> None:
    rng = np.random.default_rng(11)
    n_users, n_items, rank, n = 7, 9, 3, 4
    users = np.round(rng.normal(size=(n_users, rank)), 2).astype(np.float32)
    items = np.round(rng.normal(size=(n_items, rank)), 2).astype(np.float32)
    items[4] = items[2]  # exact score ties between items 2 and 4 for every user
    # item ids sort in the reverse of their indices, so ties must follow the ids.
    item_ids = [f"i{9 - j}" for j in range(n_items)]
    seen = {
        0: [1, 1, 3],  # duplicate pair
        1: [],  # no history row at all
        2: [0, 99],  # 99: an item the model does not know
        3: list(range(n_items - 1)),  # one unseen item left: a 1-item list
        4: list(range(n_items)),  # everything seen: no list
        5: [2],
        6: [8],
    }
    uf = _factors(
        spark,
        [(u, f"u{u}", users[u].tolist()) for u in range(n_users)],
        C.USER_IDX,
        with_id=True,
    )
    itf = _factors(
        spark,
        [(j, item_ids[j], items[j].tolist()) for j in range(n_items)],
        C.ITEM_IDX,
        with_id=True,
    )
    seen_df = spark.createDataFrame(
        [(u, j) for u, js in seen.items() for j in js],
        T.StructType(
            [T.StructField(C.USER_IDX, T.IntegerType()), T.StructField(C.ITEM_IDX, T.IntegerType())]
        ),
    )
    got = recommend_for_all_users(uf, itf, seen_df, n=n)

    scores = users @ items.T
    expected_rows = []
    for u in range(n_users):
        cand = [j for j in range(n_items) if j not in seen[u]]
        cand.sort(key=lambda j: (-scores[u, j], item_ids[j]))
        for r, j in enumerate(cand[:n], start=1):
            expected_rows.append((u, f"u{u}", j, item_ids[j], r, float(scores[u, j])))
    expected = spark.createDataFrame(
        pd.DataFrame(
            expected_rows, columns=[C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.ITEM_ID, C.RANK, C.SCORE]
        ).astype({C.USER_IDX: "int32", C.ITEM_IDX: "int32", C.RANK: "int32"})
    )
    # Row order across scoring tasks is not part of the contract: sort both sides.
    assert_approx_df_equality(got, expected, 1e-5, ignore_row_order=True, ignore_nullable=True)
    ties = got.filter(f"{C.USER_IDX} = 0").orderBy(C.RANK).toPandas()
    both = ties[ties[C.ITEM_IDX].isin([2, 4])]
    if len(both) == 2:  # tied items appear in item id order: i5 (idx 4) before i7 (idx 2)
        assert both[C.ITEM_ID].tolist() == ["i5", "i7"]


def test_recommend_for_all_users_without_ids_orders_ties_by_index(spark: SparkSession) -> None:
    uf = _factors(spark, [(0, [1.0]), (1, [2.0])], C.USER_IDX, with_id=False)
    itf = _factors(spark, [(5, [1.0]), (2, [1.0]), (7, [0.5])], C.ITEM_IDX, with_id=False)
    seen = spark.createDataFrame([(1, 2)], f"{C.USER_IDX} int, {C.ITEM_IDX} int")
    got = recommend_for_all_users(uf, itf, seen, n=2).orderBy(C.USER_IDX, C.RANK)
    assert [tuple(r) for r in got.collect()] == [
        (0, 2, 1, 1.0),
        (0, 5, 2, 1.0),
        (1, 5, 1, 2.0),
        (1, 7, 2, 1.0),
    ]


def test_recommend_for_all_users_empty_inputs(spark: SparkSession) -> None:
    uf = _factors(spark, [], C.USER_IDX, with_id=False)
    itf = _factors(spark, [(0, [1.0])], C.ITEM_IDX, with_id=False)
    seen = spark.createDataFrame([], f"{C.USER_IDX} int, {C.ITEM_IDX} int")
    assert recommend_for_all_users(uf, itf, seen, n=3).count() == 0
    no_items = _factors(spark, [], C.ITEM_IDX, with_id=False)
    uf1 = _factors(spark, [(0, [1.0])], C.USER_IDX, with_id=False)
    assert recommend_for_all_users(uf1, no_items, seen, n=3).count() == 0
    with pytest.raises(ValueError, match="n must be positive"):
        recommend_for_all_users(uf1, itf, seen, n=0)
