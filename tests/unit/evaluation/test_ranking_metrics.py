"""Ranking metrics against a hand-worked case, a numpy/pandas reference and Spark's own."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.mllib.evaluation import RankingMetrics
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from recsys_spark.evaluation.ranking_metrics import (
    metric_names,
    per_user_ranking_metrics,
    ranking_metrics,
    ranking_metrics_of_lists,
)

RECS = T.StructType(
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("item_id", T.StringType()),
        T.StructField("rank", T.IntegerType()),
    ]
)
REL = T.StructType(
    [T.StructField("user_id", T.StringType()), T.StructField("item_id", T.StringType())]
)
GRADED = T.StructType([*REL.fields, T.StructField("rating", T.DoubleType())])


def reference(
    recs: pd.DataFrame, rel: pd.DataFrame, ks: tuple[int, ...], rating: bool = False
) -> dict[str, float]:
    """Plain pandas/numpy implementation of the definitions in the module docstring."""
    recs = recs.dropna()
    rel = rel.dropna(subset=["user_id", "item_id"])
    recs = recs.groupby(["user_id", "item_id"], as_index=False)["rank"].min()
    lists = {
        u: list(g.sort_values(["rank", "item_id"])["item_id"]) for u, g in recs.groupby("user_id")
    }
    if rating:
        rel = rel.groupby(["user_id", "item_id"], as_index=False)["rating"].max()
        gains = {(u, i): 2.0**r - 1.0 if r == r else 0.0 for u, i, r in rel.itertuples(index=False)}
    else:
        rel = rel.drop_duplicates(["user_id", "item_id"])
        gains = {(u, i): 1.0 for u, i in rel[["user_id", "item_id"]].itertuples(index=False)}
    per_user: dict[str, list[float]] = {n: [] for n in metric_names(ks)}
    for user, group in rel.groupby("user_id"):
        truth = set(group["item_id"])
        ranked = lists.get(user, [])
        hit = np.array([i in truth for i in ranked], dtype=float)
        gain = np.array([gains.get((user, i), 0.0) for i in ranked])
        ideal = np.sort(np.array([gains[(user, i)] for i in truth]))[::-1]
        cum = np.cumsum(hit)
        pos = np.arange(1, len(ranked) + 1)
        for k in ks:
            h, c, p, g = hit[:k], cum[:k], pos[:k], gain[:k]
            per_user[f"precision_at_{k}"].append(h.sum() / k)
            per_user[f"recall_at_{k}"].append(h.sum() / len(truth))
            per_user[f"hit_rate_at_{k}"].append(float(h.sum() > 0))
            per_user[f"mrr_at_{k}"].append(1.0 / p[h > 0][0] if h.sum() else 0.0)
            dcg = float((g / np.log2(p + 1)).sum())
            ip = np.arange(1, min(len(truth), k) + 1)
            idcg = float((ideal[: len(ip)] / np.log2(ip + 1)).sum())
            per_user[f"ndcg_at_{k}"].append(dcg / idcg if idcg > 0 else 0.0)
            per_user[f"map_at_{k}"].append(float((h * c / p).sum()) / min(len(truth), k))
        per_user["map"].append(float((hit * cum / pos).sum()) / len(truth))
    out = {n: float(np.mean(v)) if v else 0.0 for n, v in per_user.items()}
    out["users_evaluated"] = float(rel["user_id"].nunique())
    return out


def random_case(
    seed: int, n_users: int = 40, n_items: int = 30
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lists of random length (0..25, some longer than the catalogue slice), rank ties,
    duplicate items, users with nothing relevant and relevant users without a list."""
    rng = np.random.default_rng(seed)
    rec_rows, rel_rows = [], []
    for u in range(n_users):
        user = f"u{u:02d}"
        if u % 7 != 3:  # some relevant users get no list
            length = int(rng.integers(0, 26))
            items = rng.choice(n_items, size=min(length, n_items), replace=False)
            for r, i in enumerate(items, start=1):
                rank = r if u % 5 else (r + 1) // 2  # every 5th user: tied ranks
                rec_rows.append((user, f"i{i:02d}", rank))
            if length and u % 4 == 0:  # a repeated item at a worse rank
                rec_rows.append((user, f"i{items[0]:02d}", 99))
        if u % 6 != 5:  # some users have nothing relevant
            n_rel = int(rng.integers(1, 15))
            for i in rng.choice(n_items, size=n_rel, replace=False):
                rel_rows.append((user, f"i{i:02d}", float(rng.integers(1, 6))))
            rel_rows.append(rel_rows[-1])  # a duplicate relevant pair
    recs = pd.DataFrame(rec_rows, columns=["user_id", "item_id", "rank"])
    rel = pd.DataFrame(rel_rows, columns=["user_id", "item_id", "rating"])
    return recs, rel


def to_spark(spark: SparkSession, recs: pd.DataFrame, rel: pd.DataFrame, graded: bool = False):
    recs_df = spark.createDataFrame(list(recs.itertuples(index=False, name=None)), RECS)
    if graded:
        rows = [(u, i, None if r != r else r) for u, i, r in rel.itertuples(index=False)]
        rel_df = spark.createDataFrame(rows, GRADED)
    else:
        rel_df = spark.createDataFrame(
            list(rel[["user_id", "item_id"]].itertuples(index=False, name=None)), REL
        )
    return recs_df, rel_df


def assert_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_hand_worked_list(spark: SparkSession) -> None:
    recs = spark.createDataFrame(
        [("a", "i1", 1), ("a", "i2", 2), ("a", "i3", 3), ("b", "i9", 1)], RECS
    )
    relevant = spark.createDataFrame([("a", "i1"), ("a", "i3"), ("b", "i5")], REL)
    got = ranking_metrics(recs, relevant, ks=(2,))
    ndcg_a = 1.0 / (1.0 + 1.0 / math.log2(3))
    want = {
        "precision_at_2": (0.5 + 0.0) / 2,
        "recall_at_2": (0.5 + 0.0) / 2,
        "hit_rate_at_2": 0.5,
        "mrr_at_2": 0.5,
        "ndcg_at_2": ndcg_a / 2,
        "map_at_2": (1.0 / 2) / 2,
        "map": ((1.0 + 2.0 / 3.0) / 2) / 2,
        "users_evaluated": 2.0,
    }
    assert_close(got, want)


def test_matches_pandas_reference(spark: SparkSession) -> None:
    recs, rel = random_case(0)
    ks = (1, 5, 10, 40)  # 40 is larger than the catalogue of 30 items
    got = ranking_metrics(*to_spark(spark, recs, rel), ks=ks)
    assert_close(got, reference(recs, rel, ks))


def test_graded_ndcg_matches_reference(spark: SparkSession) -> None:
    recs, rel = random_case(3)
    rel.loc[rel.index[::9], "rating"] = np.nan  # null relevance: relevant with 0 gain
    ks = (3, 10)
    recs_df, rel_df = to_spark(spark, recs, rel, graded=True)
    got = ranking_metrics(recs_df, rel_df, ks=ks, relevance_col="rating")
    assert_close(got, reference(recs, rel, ks, rating=True))


def test_matches_spark_ranking_metrics(spark: SparkSession) -> None:
    recs, rel = random_case(5)
    recs = recs.groupby(["user_id", "item_id"], as_index=False)["rank"].min()
    rel = rel.drop_duplicates(["user_id", "item_id"])
    rows = []
    for user, group in rel.groupby("user_id"):
        mine = recs[recs.user_id == user].sort_values(["rank", "item_id"])
        rows.append((list(mine.item_id), list(group.item_id)))
    spark_metrics = RankingMetrics(spark.sparkContext.parallelize(rows, 2))
    got = ranking_metrics(*to_spark(spark, recs, rel), ks=(5, 10))
    for k in (5, 10):
        assert got[f"precision_at_{k}"] == pytest.approx(spark_metrics.precisionAt(k))
        assert got[f"recall_at_{k}"] == pytest.approx(spark_metrics.recallAt(k))
        assert got[f"ndcg_at_{k}"] == pytest.approx(spark_metrics.ndcgAt(k))
        assert got[f"map_at_{k}"] == pytest.approx(spark_metrics.meanAveragePrecisionAt(k))
    assert got["map"] == pytest.approx(spark_metrics.meanAveragePrecision)


def test_matches_spark_ranking_evaluator(spark: SparkSession) -> None:
    # pyspark's RankingMetrics drops the relevance list of (pred, labels, rel) rows, and
    # RankingEvaluator has no relevance column: graded NDCG is checked against pandas only.
    recs, rel = random_case(8)
    recs = recs.groupby(["user_id", "item_id"], as_index=False)["rank"].min()
    rel = rel.drop_duplicates(["user_id", "item_id"])
    rows = []
    for user, group in rel.groupby("user_id"):
        mine = recs[recs.user_id == user].sort_values(["rank", "item_id"])
        rows.append(([float(i[1:]) for i in mine.item_id], [float(i[1:]) for i in group.item_id]))
    frame = spark.createDataFrame(rows, "prediction array<double>, label array<double>")
    got = ranking_metrics(*to_spark(spark, recs, rel), ks=(10,))
    evaluator = RankingEvaluator(predictionCol="prediction", labelCol="label", k=10)
    assert got["ndcg_at_10"] == pytest.approx(
        evaluator.evaluate(frame, {evaluator.metricName: "ndcgAtK"})
    )
    assert got["map"] == pytest.approx(
        evaluator.evaluate(frame, {evaluator.metricName: "meanAveragePrecision"})
    )


def test_no_relevant_pairs_gives_zeros(spark: SparkSession) -> None:
    recs = spark.createDataFrame([("a", "i1", 1)], RECS)
    got = ranking_metrics(recs, spark.createDataFrame([], REL), ks=(5,))
    assert got["users_evaluated"] == 0.0
    assert all(v == 0.0 for v in got.values())


def test_nulls_are_ignored_and_ties_break_by_item(spark: SparkSession) -> None:
    # Both items share rank 1: "i1" sorts first, so the hit on "i2" is at position 2.
    recs = spark.createDataFrame(
        [("a", "i2", 1), ("a", "i1", 1), ("a", None, 1), (None, "i2", 1), ("a", "i3", None)],
        RECS,
    )
    relevant = spark.createDataFrame([("a", "i2"), ("a", None), (None, "i1")], REL)
    got = ranking_metrics(recs, relevant, ks=(1, 2))
    assert got["users_evaluated"] == 1.0
    assert got["hit_rate_at_1"] == 0.0
    assert got["mrr_at_2"] == 0.5
    assert got["ndcg_at_2"] == pytest.approx(1.0 / math.log2(3))


def test_several_lists_in_one_pass_score_as_each_alone(spark: SparkSession) -> None:
    # Three random lists (nulls, ties, repeats, relevant users without a list) against
    # one set of relevant pairs, and a list with no rows at all.
    recs, rel = random_case(11)
    relevant = to_spark(spark, recs, rel)[1]
    lists = {f"m{seed}": to_spark(spark, random_case(seed)[0], rel)[0] for seed in (11, 12, 13)}
    lists["empty"] = spark.createDataFrame([], RECS)
    got = ranking_metrics_of_lists(lists, relevant, ks=(3, 10))
    assert list(got) == ["m11", "m12", "m13", "empty"]
    for name, recs in lists.items():
        assert_close(got[name], ranking_metrics(recs, relevant, ks=(3, 10)))
    assert got["empty"]["users_evaluated"] == got["m11"]["users_evaluated"] > 0
    assert got["m12"] != got["m13"]  # each list scored apart
    nothing = ranking_metrics_of_lists(lists, spark.createDataFrame([], REL), ks=(5,))
    assert all(v == 0.0 for m in nothing.values() for v in m.values())


def test_per_user_frame_columns(spark: SparkSession) -> None:
    recs, rel = random_case(2, n_users=12)
    per_user = per_user_ranking_metrics(*to_spark(spark, recs, rel), ks=(10,))
    assert per_user.columns == ["user_id", "n_relevant", "n_recommended", *metric_names((10,))]
    assert per_user.count() == rel.user_id.nunique()


def test_bad_ks_rejected(spark: SparkSession) -> None:
    recs = spark.createDataFrame([("a", "i1", 1)], RECS)
    with pytest.raises(ValueError, match="ks"):
        ranking_metrics(recs, recs.select("user_id", "item_id"), ks=(0, 5))
