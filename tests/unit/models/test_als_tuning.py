"""ALS tuning: candidate grids, the validation split and the choice of the best trial."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession

from recsys_spark import columns as C
from recsys_spark.config import AlsConfig
from recsys_spark.models.als_tuning import Trial, candidates, trials_frame, tune_als

RATINGS_DDL = f"{C.USER_IDX} int, {C.ITEM_IDX} int, {C.RATING} float"


def test_grid_is_every_combination_without_duplicates() -> None:
    grid = candidates([8, 8, 16], [0.1], [1.0, 40.0], mode="grid")
    assert grid == [(8, 0.1, 1.0), (8, 0.1, 40.0), (16, 0.1, 1.0), (16, 0.1, 40.0)]


def test_random_is_a_seeded_subset() -> None:
    full = candidates([8, 16, 32], [0.01, 0.1], [1.0, 4.0], mode="grid")
    a = candidates([8, 16, 32], [0.01, 0.1], [1.0, 4.0], mode="random", n_trials=5, seed=3)
    b = candidates([8, 16, 32], [0.01, 0.1], [1.0, 4.0], mode="random", n_trials=5, seed=3)
    assert a == b and len(a) == 5 and len(set(a)) == 5 and set(a) <= set(full)
    assert len(candidates([8], [0.1], [1.0], mode="random", n_trials=9)) == 1
    with pytest.raises(ValueError, match="mode"):
        candidates([8], [0.1], [1.0], mode="bayes")
    with pytest.raises(ValueError, match="at least one value"):
        candidates([], [0.1], [1.0])


def test_tune_als_picks_the_best_validation_ndcg(spark: SparkSession) -> None:
    # Two clean taste groups: a sensible model finds the held-out items, a model
    # regularised to zero factors scores every item 0 and ranks by item index only.
    rows = [(u, i, 1.0) for u in range(16) for i in range(6 * (u % 2), 6 * (u % 2) + 6)]
    ratings = spark.createDataFrame(rows, RATINGS_DDL)
    base = AlsConfig(rank=2, max_iter=5, num_user_blocks=2, num_item_blocks=2)
    seen: list[Trial] = []
    result = tune_als(
        ratings, base, [(2, 1e6, 1.0), (2, 0.1, 10.0)], validation_ratio=0.34, seed=1,
        on_trial=seen.append,
    )  # fmt: skip
    assert [t.trial for t in seen] == [0, 1]
    ndcg = [t.metrics["ndcg_at_10"] for t in seen]
    assert ndcg[1] > ndcg[0]
    assert ndcg[1] == pytest.approx(1.0)  # every held-out item is in the top 10 of 12
    assert result.best == AlsConfig(
        rank=2, reg_param=0.1, alpha=10.0, max_iter=5, num_user_blocks=2, num_item_blocks=2
    )
    frame = trials_frame(spark, result, "r1").orderBy("trial").collect()
    assert [r["best"] for r in frame] == [False, True] and frame[1][C.RUN_ID] == "r1"


def test_tune_als_rejects_an_empty_grid(spark: SparkSession) -> None:
    ratings = spark.createDataFrame([(0, 0, 1.0)], RATINGS_DDL)
    with pytest.raises(ValueError, match="empty"):
        tune_als(ratings, AlsConfig(), [])
