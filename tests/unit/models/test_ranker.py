"""The learned ranker: candidate features, labels, a seeded lambdarank fit, distributed scoring."""

from __future__ import annotations

from datetime import datetime, timedelta

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from recsys_spark import columns as C
from recsys_spark.config import RankerConfig
from recsys_spark.models.ranker import (
    LABEL,
    candidate_features,
    feature_names,
    fit_ranker,
    rank_candidates,
    usable_groups,
    with_labels,
)

LIST = f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RANK} int, {C.SCORE} double"
TRAIN = f"{C.USER_ID} string, {C.ITEM_ID} string, {C.LAST_TS} timestamp"
NEWEST = datetime(2026, 3, 31)


def test_features_pivot_every_models_proposal_and_describe_items_and_users(
    spark: SparkSession,
) -> None:
    a = spark.createDataFrame([("u1", "x", 1, 0.9), ("u1", "y", 2, 0.5), ("u1", "z", 3, 0.1)], LIST)
    b = spark.createDataFrame([("u1", "y", 1, 7.0)], LIST)
    train = spark.createDataFrame(
        [
            ("u1", "w", NEWEST),
            ("u2", "y", NEWEST - timedelta(days=3)),
            ("u3", "y", NEWEST - timedelta(days=20)),
            ("u3", "x", NEWEST - timedelta(days=40)),
        ],
        TRAIN,
    )
    got = (
        candidate_features({"b": b, "a": a}, train, depth=2, windows=(7, 30))
        .toPandas()
        .set_index(C.ITEM_ID)
    )
    assert list(got.columns[1:]) == list(feature_names(["a", "b"], (7, 30)))
    assert feature_names(["b", "a"], (7,), ("users", "ranks")) == (
        "rank__a", "rank__b", "user_items", "user_recency_days"
    )  # fmt: skip
    assert sorted(got.index) == ["x", "y"]  # z is below the depth
    assert (got.loc["y", "score__a"], got.loc["y", "rank__a"]) == (0.5, 2.0)
    assert (got.loc["y", "score__b"], got.loc["y", "rank__b"]) == (7.0, 1.0)
    assert pd.isna(got.loc["x", "score__b"]) and got.loc["x", "rank__b"] == 3.0  # depth + 1
    assert (got.loc["y", "n_sources"], got.loc["x", "n_sources"]) == (2.0, 1.0)
    y = got.loc["y"]
    assert (y["item_users"], y["item_users_7d"], y["item_users_30d"]) == (2.0, 1.0, 2.0)
    assert (y["item_age_days"], y["item_recency_days"]) == (20.0, 3.0)
    assert (y["user_items"], y["user_recency_days"]) == (1.0, 0.0)  # u1's history: w


def test_category_share_is_the_largest_share_of_the_history_in_one_of_the_items_categories(
    spark: SparkSession,
) -> None:
    lists = spark.createDataFrame(
        [("u1", "x", 1, 0.9), ("u1", "y", 2, 0.5), ("u1", "z", 3, 0.4), ("u1", "n", 4, 0.1),
         ("u2", "x", 1, 0.3)],
        LIST,
    )  # fmt: skip
    # u1's history: four items, two of them comedies, one a drama, one unknown to the
    # catalogue; u2's history has no category at all.
    train = spark.createDataFrame(
        [("u1", h, NEWEST) for h in ("h1", "h2", "h3", "h4")] + [("u2", "h4", NEWEST)], TRAIN
    )
    categories = spark.createDataFrame(
        [("h1", ["comedy"]), ("h2", ["comedy", "drama"]), ("h3", ["drama", "war"]),
         ("x", ["comedy", "war"]), ("y", ["war"]), ("z", ["horror"]), ("n", [])],
        f"{C.ITEM_ID} string, categories array<string>",
    )  # fmt: skip
    got = candidate_features({"a": lists}, train, depth=5, categories=categories).toPandas()
    share = {(r[C.USER_ID], r[C.ITEM_ID]): r["category_share"] for _, r in got.iterrows()}
    assert share[("u1", "x")] == 2 / 4  # comedy: h1, h2 (war: h3 only)
    assert share[("u1", "y")] == 1 / 4
    assert share[("u1", "z")] == 0.0  # no category in common
    assert pd.isna(share[("u1", "n")])  # an item without categories: missing
    assert share[("u2", "x")] == 0.0
    assert feature_names(["a"], (7,), ("ranks", "categories")) == ("rank__a", "category_share")
    assert usable_groups(("ranks", "categories"), catalogue=False) == ("ranks",)
    assert usable_groups(("ranks", "categories"), catalogue=True) == ("ranks", "categories")


def synthetic(spark: SparkSession, seed: int, n_users: int = 60):
    """Two models: `weak` lists 6 items and holds the held-out item at rank 1 or 2;
    `strong` lists 3 of them, the held-out item first. Learnable from `strong`'s rank."""
    rng = np.random.default_rng(seed)
    weak, strong, held = [], [], []
    for u in range(n_users):
        user = f"u{u:02d}"
        items = [f"i{k:02d}" for k in rng.permutation(30)[:6]]
        hit = items[int(rng.integers(2))]
        weak += [(user, it, r, float(rng.random())) for r, it in enumerate(items, start=1)]
        others = [it for it in items if it != hit][2:4]
        strong += [(user, it, r, float(rng.random())) for r, it in enumerate([hit, *others], 1)]
        held.append((user, hit))
    lists = {
        "weak": spark.createDataFrame(weak, LIST),
        "strong": spark.createDataFrame(strong, LIST),
    }
    train = spark.createDataFrame(
        [(f"u{u:02d}", f"i{k:02d}", NEWEST) for u in range(n_users) for k in (40, 41)], TRAIN
    )
    labels = spark.createDataFrame(held, f"{C.USER_ID} string, {C.ITEM_ID} string")
    return lists, train, labels


def test_a_seeded_fit_learns_the_signal_and_scores_the_same_in_spark_as_locally(
    spark: SparkSession,
) -> None:
    cfg = RankerConfig(num_rounds=30, min_data_in_leaf=5, windows=(7,))
    lists, train, labels = synthetic(spark, 1)
    names = feature_names(["strong", "weak"], cfg.windows)
    labelled = with_labels(candidate_features(lists, train, depth=6, windows=cfg.windows), labels)
    assert labelled.filter(f"{LABEL} = 1").count() == 60
    model = fit_ranker(labelled, names, cfg)
    again = fit_ranker(labelled, names, cfg)
    assert model.model_text == again.model_text  # seeded and deterministic
    assert max(model.importance, key=model.importance.get) == "rank__strong"

    # Unseen users of the same kind: the held-out item comes first for nearly all.
    lists, train, labels = synthetic(spark, 2)
    features = candidate_features(lists, train, depth=6, windows=cfg.windows)
    top = rank_candidates(features, model, top_n=2, num_partitions=3).toPandas()
    assert (top.groupby(C.USER_ID).size() == 2).all()
    firsts = top[top[C.RANK] == 1].merge(labels.toPandas(), on=[C.USER_ID, C.ITEM_ID])
    assert len(firsts) >= 55
    # The distributed scores are the booster's own.
    local = features.toPandas()
    booster = lgb.Booster(model_str=model.model_text)
    local[C.SCORE] = booster.predict(local[list(names)].astype(float).to_numpy())
    merged = top.merge(local[[C.USER_ID, C.ITEM_ID, C.SCORE]], on=[C.USER_ID, C.ITEM_ID])
    np.testing.assert_allclose(merged[f"{C.SCORE}_x"], merged[f"{C.SCORE}_y"])


def test_no_positive_among_the_candidates_is_refused(spark: SparkSession) -> None:
    lists, train, _ = synthetic(spark, 3, n_users=5)
    nobody = spark.createDataFrame([("u99", "i00")], f"{C.USER_ID} string, {C.ITEM_ID} string")
    labelled = with_labels(candidate_features(lists, train, depth=6, windows=(7,)), nobody)
    with pytest.raises(ValueError, match="nothing to train on"):
        fit_ranker(labelled, feature_names(["strong", "weak"], (7,)), RankerConfig())
