"""Beyond-accuracy metrics, diversity and breakdowns against pandas/numpy references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from recsys_spark.evaluation.breakdown import (
    metrics_by_item_bucket,
    metrics_by_user_bucket,
    user_activity_buckets,
)
from recsys_spark.evaluation.coverage import (
    beyond_accuracy_metrics,
    exposure_curves,
    item_popularity,
)
from recsys_spark.evaluation.diversity import diversity_metrics, pair_cosine
from recsys_spark.evaluation.ranking import per_user_ranking_metrics

PAIRS = T.StructType(
    [T.StructField("user_id", T.StringType()), T.StructField("item_id", T.StringType())]
)
RECS = T.StructType([*PAIRS.fields, T.StructField("rank", T.IntegerType())])

TRAIN = [("u1", "A"), ("u1", "B"), ("u1", "C"), ("u2", "A"), ("u2", "B"), ("u3", "A")]
TRAIN += [("u3", "D"), ("u4", "A"), ("u4", "B"), ("u4", "F")]
# u1: a rank tie (C, D at 1: C first) and a duplicate; u3: shorter than K; u5: unknown
# user recommended an unknown item E; u2 has rank gaps.
RECS_ROWS = [("u1", "D", 1), ("u1", "C", 1), ("u1", "B", 3), ("u1", "D", 7)]
RECS_ROWS += [("u2", "A", 2), ("u2", "C", 5), ("u2", "D", 9), ("u3", "B", 1)]
RECS_ROWS += [("u5", "E", 1), ("u5", "A", 2), ("u5", "B", 3)]
TEST = [("u1", "D"), ("u2", "D"), ("u2", "C"), ("u3", "C"), ("u5", "E"), ("u6", "A")]


def top_lists(k: int) -> pd.DataFrame:
    recs = pd.DataFrame(RECS_ROWS, columns=["user_id", "item_id", "rank"])
    recs = recs.groupby(["user_id", "item_id"], as_index=False)["rank"].min()
    recs = recs.sort_values(["user_id", "rank", "item_id"])
    return recs.groupby("user_id").head(k)


def reference(k: int, head_share: float) -> dict[str, float]:
    train = pd.DataFrame(TRAIN, columns=["user_id", "item_id"])
    top = top_lists(k)
    pop = train.groupby("item_id")["user_id"].nunique()
    n_users = train.user_id.nunique()
    exposure = top.item_id.value_counts()
    items = sorted(set(pop.index) | set(exposure.index))
    x = np.sort(exposure.reindex(items, fill_value=0).to_numpy(dtype=float))
    n = len(x)
    share = exposure / exposure.sum()
    ordered = pop.reset_index().sort_values(["user_id", "item_id"], ascending=[False, True])
    before = ordered.user_id.cumsum() - ordered.user_id
    head = set(ordered.item_id[before < head_share * ordered.user_id.sum()])
    known = top[top.item_id.isin(pop.index)]
    lengths = top.groupby("user_id").size().reindex(sorted(train.user_id.unique()), fill_value=0)
    return {
        "catalog_coverage": top.item_id.nunique() / len(pop),
        "user_coverage": float((lengths >= k).mean()),
        "distributional_coverage": float(-(share * np.log2(share)).sum()),
        "gini": float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * x.sum())),
        "novelty": float((-np.log2(pop[known.item_id] / n_users)).mean()),
        "long_tail_share": float((~top.item_id.isin(head)).mean()),
        "popularity_bias": float(
            pop.reindex(top.item_id, fill_value=0).mean() / pop[train.item_id].mean()
        ),
        "recommended_items": float(top.item_id.nunique()),
        "catalog_items": float(len(pop)),
        "recommendations": float(len(top)),
    }


@pytest.fixture(scope="module")
def frames(spark: SparkSession):
    return (
        spark.createDataFrame(RECS_ROWS, RECS),
        spark.createDataFrame(TRAIN, PAIRS),
        spark.createDataFrame(TEST, PAIRS),
    )


def test_beyond_accuracy_matches_pandas(frames) -> None:
    recs, train, _ = frames
    k = 2  # cuts u1 and u2, leaves u3 short
    got = beyond_accuracy_metrics(recs, train, k=k, head_share=0.3)
    want = reference(k, 0.3)
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_gini_extremes(spark: SparkSession) -> None:
    train = spark.createDataFrame([("u", "A"), ("u", "B"), ("u", "C"), ("u", "D")], PAIRS)
    equal = spark.createDataFrame([("x", i, 1) for i in "ABCD"], RECS)
    one = spark.createDataFrame([(f"x{j}", "A", 1) for j in range(4)], RECS)
    assert beyond_accuracy_metrics(equal, train, k=4)["gini"] == pytest.approx(0.0)
    got = beyond_accuracy_metrics(one, train, k=4)
    assert got["gini"] == pytest.approx(0.75)  # (n - 1) / n with n = 4
    assert got["distributional_coverage"] == 0.0 and got["user_coverage"] == 0.0


def test_empty_recommendations(frames, spark: SparkSession) -> None:
    _, train, _ = frames
    got = beyond_accuracy_metrics(spark.createDataFrame([], RECS), train, k=3)
    assert got["catalog_coverage"] == 0.0 and got["recommendations"] == 0.0


def test_head_items_and_curves(frames) -> None:
    recs, train, _ = frames
    head = {r.item_id for r in item_popularity(train, head_share=0.5).collect() if r.in_head}
    assert head == {"A", "B"}  # A (4 of 10) starts at 0, B (3) at 0.4 < 0.5, C at 0.7
    curves = exposure_curves(recs, train, k=3, n_points=4)
    assert curves["lorenz_x"][0] == 0.0 and curves["lorenz_y"][-1] == pytest.approx(1.0)
    assert curves["longtail_train"][-1] == pytest.approx(1.0)
    assert all(np.diff(curves["lorenz_y"]) >= 0)
    assert len(curves["lorenz_x"]) <= 5


def test_pair_cosine_matches_numpy(frames, spark: SparkSession) -> None:
    _, train, _ = frames
    items = ["A", "B", "C", "D", "F", "Z"]  # Z: unknown to training
    matrix = pd.crosstab(pd.DataFrame(TRAIN).iloc[:, 0], pd.DataFrame(TRAIN).iloc[:, 1]).reindex(
        columns=items, fill_value=0
    )
    m = matrix.to_numpy(dtype=float)
    norms = np.sqrt((m * m).sum(axis=0))
    wanted = [(a, b) for a in items for b in items if a != b]
    pairs = spark.createDataFrame(wanted, "_item_a string, _item_b string")
    got = {(r[0], r[1]): r[2] for r in pair_cosine(pairs, train).collect()}
    for a, b in wanted:
        ia, ib = items.index(a), items.index(b)
        denom = norms[ia] * norms[ib]
        want = float(m[:, ia] @ m[:, ib] / denom) if denom else 0.0
        assert got[(a, b)] == pytest.approx(want), (a, b)


def test_diversity_and_serendipity_match_reference(frames) -> None:
    recs, train, test = frames
    train_pd = pd.DataFrame(TRAIN, columns=["user_id", "item_id"])
    users_of = train_pd.groupby("item_id")["user_id"].apply(set).to_dict()

    def cos(a: str, b: str) -> float:
        ua, ub = users_of.get(a, set()), users_of.get(b, set())
        return len(ua & ub) / math.sqrt(len(ua) * len(ub)) if ua and ub else 0.0

    top = top_lists(3)
    relevant = set(TEST)
    ild, seren = [], []
    for user, group in top.groupby("user_id"):
        items = list(group.item_id)
        pairs = [(a, b) for i, a in enumerate(items) for b in items[i + 1 :]]
        if pairs:
            ild.append(1 - np.mean([cos(a, b) for a, b in pairs]))
        hist = list(train_pd.item_id[train_pd.user_id == user])
        hits = [i for i in items if (user, i) in relevant] if hist else []
        gains = [1 - np.mean([cos(i, h) for h in hist]) for i in hits]
        seren.append(sum(gains) / len(items))
    got = diversity_metrics(recs, train, test, k=3, max_users=None)
    assert got["intra_list_diversity"] == pytest.approx(float(np.mean(ild)))
    assert got["serendipity"] == pytest.approx(float(np.mean(seren)))
    assert got["diversity_users"] == 4.0
    assert diversity_metrics(recs, train, test, k=3, max_users=2)["diversity_users"] == 2.0


def test_breakdowns(frames) -> None:
    recs, train, test = frames
    buckets = user_activity_buckets(train, test, cold_max_history=1, heavy_quantile=0.75)
    got = {r.user_id: r.activity_bucket for r in buckets.collect()}
    # histories: u1 3, u2 2, u3 2, u4 3 (75th percentile 3), u5 and u6 unknown.
    assert got == {"u1": "heavy", "u2": "light", "u3": "light", "u5": "cold", "u6": "cold"}
    per_user = per_user_ranking_metrics(recs, test, ks=(3,))
    by_user = metrics_by_user_bucket(per_user, buckets, ["recall_at_3"])
    assert list(by_user) == ["cold", "light", "heavy"]
    # u5 hit E (1 of 1), u6 has no list; u2 hits C, D (2 of 2); u3 none; u1 hits D.
    assert by_user["cold"] == {"recall_at_3": 0.5, "users_evaluated": 2.0}
    assert by_user["light"] == {"recall_at_3": 0.5, "users_evaluated": 2.0}
    by_item = metrics_by_item_bucket(recs, test, train, k=3, head_share=0.5)
    # head {A, B}; top-3 slots: u1 C D B, u2 A C D, u3 B, u5 E A B -> 10 slots.
    assert by_item["head"]["rec_share"] == pytest.approx(5 / 10)
    assert by_item["unseen"] == {"rec_share": 0.1, "relevant_pairs": 1.0, "recall_at_3": 1.0}
    assert by_item["tail"]["recall_at_3"] == pytest.approx(3 / 4)
