"""ALS training input, factors, the popularity fallback and the train job end to end."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import SparkSession

from recsys_spark import columns as C
from recsys_spark.config import AlsConfig, load_config
from recsys_spark.ingest.schemas import INTERACTIONS
from recsys_spark.models.als import als_ratings, fit_als, item_factors, user_factors
from recsys_spark.models.fallback import recommend_with_fallback, users_by_source
from recsys_spark.models.topn import recommend_for_all_users

AFFINITY_DDL = f"{C.USER_IDX} int, {C.ITEM_IDX} int, {C.AFFINITY} double"
RATINGS_DDL = f"{C.USER_IDX} int, {C.ITEM_IDX} int, {C.RATING} float"


def test_als_ratings_raw_and_log_scaled(spark: SparkSession) -> None:
    rows = [(0, 0, 3.0), (0, 1, 0.5), (1, 0, 0.0), (1, 2, -1.0), (None, 1, 2.0), (2, None, 1.0)]
    affinity = spark.createDataFrame(rows, AFFINITY_DDL)
    raw = als_ratings(affinity)
    assert_df_equality(
        raw, spark.createDataFrame([(0, 0, 3.0), (0, 1, 0.5)], RATINGS_DDL), ignore_nullable=True
    )
    scaled = als_ratings(affinity, log_scaling=True, eps=0.5)
    expected = [(0, 0, math.log1p(3.0 / 0.5)), (0, 1, math.log1p(0.5 / 0.5))]
    assert_approx_df_equality(
        scaled, spark.createDataFrame(expected, RATINGS_DDL), 1e-6, ignore_nullable=True
    )
    with pytest.raises(ValueError, match="eps must be positive"):
        als_ratings(affinity, log_scaling=True, eps=0.0)


@pytest.mark.parametrize("solver", ["mllib", "cg"])
def test_als_learns_two_groups_and_scores_match_factors(spark: SparkSession, solver: str) -> None:
    # Users 0-9 like items 0-4, users 10-19 like items 5-9; each user misses one item
    # of their group, which must be their top recommendation.
    def missing(u: int) -> int:
        return 5 * (u // 10) + u % 5

    rows = [(u, i, 1.0) for u in range(20) for i in range(5 * (u // 10), 5 * (u // 10) + 5)
            if i != missing(u)]  # fmt: skip
    ratings = spark.createDataFrame(rows, RATINGS_DDL)
    params = AlsConfig(rank=2, reg_param=0.1, alpha=10.0, max_iter=10, seed=1,
                       num_user_blocks=2, num_item_blocks=2, solver=solver)  # fmt: skip
    model = fit_als(ratings, params)
    uf, itf = user_factors(model), item_factors(model)
    assert uf.count() == 20 and itf.count() == 10
    recs = recommend_for_all_users(uf, itf, ratings.select(C.USER_IDX, C.ITEM_IDX), n=1)
    top = {r[C.USER_IDX]: r[C.ITEM_IDX] for r in recs.collect()}
    assert top == {u: missing(u) for u in range(20)}
    # The scores are the factor dot products.
    u = np.array([r[C.FEATURES] for r in uf.orderBy(C.USER_IDX).collect()], np.float32)
    v = np.array([r[C.FEATURES] for r in itf.orderBy(C.ITEM_IDX).collect()], np.float32)
    got = sorted((r[C.USER_IDX], r[C.SCORE]) for r in recs.collect())
    assert np.allclose([s for _, s in got], [(u @ v.T)[k, top[k]] for k in range(20)], atol=1e-5)


def _pairs(spark: SparkSession, rows: list[tuple[str, str]]):
    return spark.createDataFrame(rows, f"{C.USER_ID} string, {C.ITEM_ID} string")


def test_recommend_with_fallback_cold_short_and_full_lists(spark: SparkSession) -> None:
    popular = spark.createDataFrame(
        [("a", 5.0, 1), ("b", 4.0, 2), ("c", 4.0, 3), ("d", 1.0, 4)],
        f"{C.ITEM_ID} string, {C.SCORE} double, {C.RANK} int",
    )
    model = spark.createDataFrame(
        [("full", "x", 1, 0.9), ("full", "y", 2, 0.8), ("short", "b", 1, 0.7)],
        f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RANK} int, {C.SCORE} double",
    )
    users = spark.createDataFrame(
        [("full",), ("short",), ("cold",), ("cold",), ("greedy",), (None,)], f"{C.USER_ID} string"
    )
    seen = _pairs(
        spark,
        [
            ("short", "a"),
            ("cold", "b"),
            ("cold", "b"),
            ("greedy", "a"),
            ("greedy", "b"),
            ("greedy", "c"),
            ("greedy", "d"),
            ("stranger", "a"),
        ],
    )  # fmt: skip  (seen, but not a user to serve)
    got = recommend_with_fallback(model, users, seen, popular, n=2)
    expected = spark.createDataFrame(
        [
            ("full", "x", 1, 0.9, "model", None),
            ("full", "y", 2, 0.8, "model", None),
            ("short", "b", 1, 0.7, "model", None),
            ("short", "c", 2, 4.0, "popularity", None),  # a seen, b already given
            ("cold", "a", 1, 5.0, "popularity", None),
            ("cold", "c", 2, 4.0, "popularity", None),
        ],  # greedy has seen the whole catalogue: no list
        f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RANK} int, {C.SCORE} double, "
        f"{C.SOURCE} string, {C.BECAUSE_ITEM_ID} string",  # lists without reasons: none
    )
    # Union of two sources: row order is not part of the contract.
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert users_by_source(got) == {"model": 2, "popularity": 2, "users": 3}
    assert users_by_source(got.limit(0)) == {"users": 0}
    with pytest.raises(ValueError, match="n must be positive"):
        recommend_with_fallback(model, users, seen, popular, n=0)


def _interactions(spark: SparkSession, events: list[tuple[str, str, datetime]]):
    users = {u: i for i, u in enumerate(sorted({e[0] for e in events}))}
    items = {it: i for i, it in enumerate(sorted({e[1] for e in events}))}
    rows = [
        (f"e{k}", u, it, users[u], items[it], "view", ts, ts.date(), None, 1.0, "f", "b", ts)
        for k, (u, it, ts) in enumerate(events)
    ]
    return spark.createDataFrame(rows, INTERACTIONS)


def test_train_job_reports_missing_interactions(spark: SparkSession, tmp_path: Path) -> None:
    from recsys_spark.errors import MissingInputError
    from recsys_spark.models.als_training import run_als

    cfg = load_config(None, [f"storage.root={tmp_path}", "tracking.enabled=false"])
    with pytest.raises(MissingInputError, match="run jobs/ingest.py first"):
        run_als(spark, cfg.als, cfg.recommend, cfg.tracking, cfg.storage)
