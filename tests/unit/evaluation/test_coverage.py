"""Beyond-accuracy metrics, diversity and breakdowns against pandas/numpy references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from recsys_spark.config import EvaluationConfig
from recsys_spark.evaluation._kernels import cosine
from recsys_spark.evaluation._kernels.item_stats import head_items
from recsys_spark.evaluation.breakdown import (
    activity_bucket,
    heavy_min_history,
    metrics_by_item_bucket,
)
from recsys_spark.evaluation.coverage import beyond_accuracy_metrics, exposure_curves
from recsys_spark.evaluation.diversity import diversity_metrics
from recsys_spark.evaluation.model_eval import (
    cold_item_metrics,
    cold_item_metrics_per,
    evaluate_lists,
    evaluate_model,
    most_popular_lists,
    new_items,
    prepare_training,
)
from recsys_spark.evaluation.ranking_metrics import ranking_metrics

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
    # Training users of A, B, C, D, F: 4, 3, 1, 1, 1 (10 in all): A starts at 0, B at
    # 0.4 < 0.5, C at 0.7; ties by item id (C before D before F).
    popularity = np.array([4, 3, 1, 1, 1])
    assert head_items(popularity, 0.5).tolist() == [True, True, False, False, False]
    assert head_items(popularity, 0.75).tolist() == [True, True, True, False, False]
    assert not head_items(np.zeros(3), 0.5).any()
    curves = exposure_curves(recs, train, k=3, n_points=4)
    assert curves["lorenz_x"][0] == 0.0 and curves["lorenz_y"][-1] == pytest.approx(1.0)
    assert curves["longtail_train"][-1] == pytest.approx(1.0)
    assert all(np.diff(curves["lorenz_y"]) >= 0)
    assert len(curves["lorenz_x"]) <= 5


def diversity_reference(k: int) -> tuple[float, float]:
    """Intra-list diversity and serendipity of the top `k`, in plain Python."""
    train_pd = pd.DataFrame(TRAIN, columns=["user_id", "item_id"])
    users_of = train_pd.groupby("item_id")["user_id"].apply(set).to_dict()

    def cos(a: str, b: str) -> float:
        ua, ub = users_of.get(a, set()), users_of.get(b, set())
        return len(ua & ub) / math.sqrt(len(ua) * len(ub)) if ua and ub else 0.0

    relevant = set(TEST)
    ild, seren = [], []
    for user, group in top_lists(k).groupby("user_id"):
        items = list(group.item_id)
        pairs = [(a, b) for i, a in enumerate(items) for b in items[i + 1 :]]
        if pairs:
            ild.append(1 - np.mean([cos(a, b) for a, b in pairs]))
        hist = list(train_pd.item_id[train_pd.user_id == user])
        hits = [i for i in items if (user, i) in relevant] if hist else []
        gains = [1 - np.mean([cos(i, h) for h in hist]) for i in hits]
        seren.append(sum(gains) / len(items))
    return float(np.mean(ild)), float(np.mean(seren))


def test_diversity_and_serendipity_match_reference(frames) -> None:
    recs, train, test = frames
    ild, seren = diversity_reference(3)
    # Three buckets of items: each gets a copy of X and its share of the pairs.
    got = diversity_metrics(recs, train, test, k=3, max_users=None, num_buckets=3)
    assert got["intra_list_diversity"] == pytest.approx(ild)
    assert got["serendipity"] == pytest.approx(seren)
    assert got["diversity_users"] == 4.0
    assert diversity_metrics(recs, train, test, k=3, max_users=2)["diversity_users"] == 2.0


def test_pair_cosine_kernel_chunks_match_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dense chunks of one row each: every chunk boundary is exercised.
    rng = np.random.default_rng(0)
    x = (rng.random((40, 9)) < 0.3).astype(np.int32)
    x[:, 8] = 0  # an item nobody has
    monkeypatch.setattr(cosine, "DENSE_CELLS", 9)
    a = rng.integers(-1, 9, size=200)
    b = rng.integers(-1, 9, size=200)
    got = cosine.pair_cosines(sp.csr_array(x), a, b)
    norms = np.sqrt(x.sum(axis=0).astype(float))
    for ai, bi, value in zip(a, b, got, strict=True):
        denom = norms[ai] * norms[bi] if ai >= 0 and bi >= 0 else 0.0
        want = float(x[:, ai] @ x[:, bi] / denom) if denom else 0.0
        assert value == pytest.approx(want), (ai, bi)


def test_activity_threshold_matches_numpy_and_buckets() -> None:
    # histories u1 3, u2 2, u3 2, u4 3: the 75th percentile is 3.
    assert heavy_min_history({2: 2, 3: 2}, heavy_quantile=0.75) == 3
    assert heavy_min_history({}, heavy_quantile=0.8) == 0
    rng = np.random.default_rng(1)
    for q in (0.1, 0.5, 0.75, 0.8, 0.99):
        lengths = rng.integers(1, 30, size=int(rng.integers(1, 200)))
        histogram = dict(zip(*np.unique(lengths, return_counts=True), strict=True))
        want = np.percentile(lengths, 100 * q, method="inverted_cdf")
        assert heavy_min_history(histogram, heavy_quantile=q) == want, q
    with pytest.raises(ValueError, match="heavy_quantile"):
        heavy_min_history({1: 1}, heavy_quantile=1.0)
    buckets = [activity_bucket(h, cold_max_history=1, heavy_min=3) for h in range(5)]
    assert buckets == ["cold", "cold", "light", "heavy", "heavy"]
    # The heavy threshold never falls inside the cold range.
    assert activity_bucket(6, cold_max_history=5, heavy_min=3) == "heavy"


def test_item_buckets(frames) -> None:
    recs, train, test = frames
    by_item = metrics_by_item_bucket(recs, test, train, k=3, head_share=0.5)
    # head {A, B}; top-3 slots: u1 C D B, u2 A C D, u3 B, u5 E A B -> 10 slots.
    assert by_item["head"]["rec_share"] == pytest.approx(5 / 10)
    assert by_item["unseen"] == {"rec_share": 0.1, "relevant_pairs": 1.0, "recall_at_3": 1.0}
    assert by_item["tail"]["recall_at_3"] == pytest.approx(3 / 4)


def test_evaluate_model_matches_the_parts(frames) -> None:
    recs, train, test = frames
    params = EvaluationConfig(ks=(2,), k=3, head_share=0.5, cold_max_history=1, heavy_quantile=0.75)
    got = evaluate_model(recs, train, test, params)
    for name, value in ranking_metrics(recs, test, ks=(2, 3)).items():
        assert got.metrics[name] == pytest.approx(value, abs=1e-12), name
    want = reference(3, 0.5)
    # Served users are the test users: u1, u2, u5 have 3 items, u3 one, u6 none.
    want["user_coverage"] = 3 / 5
    for name, value in want.items():
        assert got.metrics[name] == pytest.approx(value, abs=1e-12), name
    ild, seren = diversity_reference(3)
    assert got.metrics["intra_list_diversity"] == pytest.approx(ild)
    assert got.metrics["serendipity"] == pytest.approx(seren)
    assert got.metrics["diversity_users"] == 4.0
    # Histories u1 3, u2 2, u3 2, u4 3 (75th percentile 3), u5 and u6 unknown:
    # cold u5 (E: 1 of 1), u6 (no list); light u2 (C, D: 2 of 2), u3 (none); heavy u1 (D).
    recall = {
        b: (v["recall_at_3"], v["users_evaluated"])
        for b, v in got.breakdowns["by_activity"].items()
    }
    assert recall == {"cold": (0.5, 2.0), "light": (0.5, 2.0), "heavy": (1.0, 1.0)}
    assert list(got.breakdowns["by_activity"]) == ["cold", "light", "heavy"]
    by_item = got.breakdowns["by_popularity"]
    assert by_item["head"]["rec_share"] == pytest.approx(5 / 10)
    assert by_item["unseen"] == {"rec_share": 0.1, "relevant_pairs": 1.0, "recall_at_3": 1.0}
    assert by_item["tail"]["recall_at_3"] == pytest.approx(3 / 4)
    # Lorenz over the 6 catalogue/recommended items, least exposed first: F 0, E 1, ...
    assert got.curves["lorenz_x"] == pytest.approx([0.0] + [i / 6 for i in range(1, 7)])
    assert got.curves["lorenz_y"][:3] == pytest.approx([0.0, 0.0, 0.1])
    assert got.curves["longtail_train"][-1] == pytest.approx(1.0)


def test_training_pairs_scattered_and_repeated_count_once(frames, spark: SparkSession) -> None:
    # Training pairs are not shuffled by user: X is assembled from every partition's
    # pairs, so a pair repeated in another partition (or a null row) must change nothing.
    recs, train, test = frames
    params = EvaluationConfig(ks=(2,), k=3, head_share=0.5, cold_max_history=1, heavy_quantile=0.75)
    want = evaluate_model(recs, train, test, params)
    null_row = spark.createDataFrame([(None, "A"), ("u1", None)], PAIRS)
    scattered = train.unionByName(train).unionByName(null_row).repartition(3)
    assert scattered.rdd.getNumPartitions() == 3
    got = evaluate_model(recs, scattered, test, params)
    assert got.metrics == pytest.approx(want.metrics, abs=1e-12)
    for name in ("by_activity", "by_popularity"):
        for bucket, values in want.breakdowns[name].items():
            assert got.breakdowns[name][bucket] == pytest.approx(values, abs=1e-12), bucket
    assert got.curves.keys() == want.curves.keys()
    for name, points in want.curves.items():
        assert got.curves[name] == pytest.approx(points), name


def test_prepared_training_gives_the_same_evaluation(frames, spark: SparkSession) -> None:
    # X packed once and shared by several models must give each model what packing it
    # inside the call gives, for the exact and the sampled diversity alike.
    recs, train, test = frames
    scattered = train.unionByName(train).repartition(3)
    prepared = prepare_training(scattered)
    try:
        for sample in (0, 2):  # 0: every list user (exact), 2: a sample of two
            params = EvaluationConfig(ks=(2,), k=3, head_share=0.5, diversity_max_users=sample)
            want = evaluate_model(recs, train, test, params)
            got = evaluate_model(recs, prepared, test, params)
            assert got.metrics == pytest.approx(want.metrics, abs=1e-12), sample
            assert got.breakdowns == want.breakdowns
            assert got.curves.keys() == want.curves.keys()
            for name, points in want.curves.items():
                assert got.curves[name] == pytest.approx(points), name
    finally:
        prepared.unpersist()
    assert prepared.pieces.count() == 3  # one packed row per partition of training pairs


def test_the_cold_item_protocol_leaves_every_models_metrics_as_they_are(
    frames, spark: SparkSession
) -> None:
    # The cold protocol reads each model's lists a second time; lists computed on the fly
    # (the most-popular baseline) must score the same in both reads.
    recs, train, test = frames
    users = test.select("user_id").distinct()
    params = EvaluationConfig(ks=(2,), k=3, head_share=0.5)
    args = {"run_id": "r", "split": {}, "table_paths": {}}
    lists = {"model": recs, "most_popular": most_popular_lists(train, users, n=3)}
    plain = evaluate_lists(lists, train, test, params, **args)
    cold = evaluate_lists(lists, train, test, params, cold_min_interactions=2, **args)
    assert cold["models"].keys() == plain["models"].keys() == lists.keys()
    for name, metrics in plain["models"].items():
        assert cold["models"][name] == pytest.approx(metrics, nan_ok=True), name
    assert cold["cold_items"]["items"] == 3  # C and D have one training user, E none
    new = new_items(train, test, 2)
    for name, frame in lists.items():
        want = cold_item_metrics(frame.select("user_id", "item_id", "rank"), test, new, k=3)
        assert cold["cold_items"]["models"][name] == pytest.approx(want, nan_ok=True), name
    # D for u1 and E for u5; u2's C and D are ranked below 3, u3's C is not listed
    assert cold["cold_items"]["models"]["model"]["cold_hits"] == 2


def test_cold_metrics_of_several_models_in_one_pass_are_each_models_alone(
    frames, spark: SparkSession
) -> None:
    # One action for every model: no model's users, slots or hits may reach another's.
    recs, train, test = frames
    users = test.select("user_id").distinct()
    lists = {
        "model": recs.select("user_id", "item_id", "rank"),
        "most_popular": most_popular_lists(train, users, n=3),
        "first_user_only": recs.filter("user_id = 'u1'").select("user_id", "item_id", "rank"),
        "empty": recs.limit(0).select("user_id", "item_id", "rank"),
    }
    new = new_items(train, test, 2)
    got = cold_item_metrics_per(lists, test, new, k=3)
    assert list(got) == list(lists)
    for name, frame in lists.items():
        alone = cold_item_metrics(frame, test, new, k=3)
        assert got[name] == pytest.approx(alone, nan_ok=True), name
    assert got["model"]["cold_hits"] == 2 and got["first_user_only"]["cold_hits"] == 1
    assert math.isnan(got["empty"]["cold_recall_at_3"]) and got["empty"]["cold_exposure_at_3"] == 0
