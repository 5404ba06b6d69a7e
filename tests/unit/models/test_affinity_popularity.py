from __future__ import annotations

import math
from datetime import datetime

import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from recsys_spark import columns as C
from recsys_spark.models.affinity import user_item_affinity
from recsys_spark.models.popularity import popular_items, recommend_popular

T0 = datetime(2026, 3, 1)


def _events(spark, rows):
    """rows: (user, item, days before T0, weight)"""
    return spark.createDataFrame(
        [
            (u, i, int(u[1:]), int(i[1:]), datetime.fromtimestamp(T0.timestamp() - d * 86400), w)
            for u, i, d, w in rows
        ],
        "user_id string, item_id string, user_idx int, item_idx int, event_ts timestamp, "
        "weight double",
    )


def test_affinity_sums_weights_and_decays_by_age(spark):
    events = _events(
        spark,
        [("u1", "i1", 0, 1.0), ("u1", "i1", 10, 8.0), ("u1", "i2", 20, 2.0), ("u2", "i1", 5, None)],
    )
    got = user_item_affinity(events, half_life_days=10).select(
        C.USER_ID, C.ITEM_ID, C.AFFINITY, C.N_EVENTS
    )
    expected = spark.createDataFrame(
        [("u1", "i1", 1.0 + 8.0 * 0.5, 2), ("u1", "i2", 2.0 * 0.25, 1)],
        "user_id string, item_id string, affinity double, n_events long",
    )
    # grouping gives no order: compare as sets; nullability differs for computed columns
    assert_approx_df_equality(got, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_affinity_window_and_explicit_reference_time(spark):
    events = _events(spark, [("u1", "i1", 0, 1.0), ("u1", "i1", 10, 8.0), ("u1", "i2", 40, 2.0)])
    got = user_item_affinity(events, window_days=30, t_ref=T0)
    assert sorted((r[C.ITEM_ID], r[C.AFFINITY]) for r in got.collect()) == [("i1", 9.0)]


def test_affinity_drops_zero_weight_pairs_and_rejects_bad_half_life(spark):
    events = _events(spark, [("u1", "i1", 0, 0.0), ("u1", "i2", 0, 1.0)])
    assert [r[C.ITEM_ID] for r in user_item_affinity(events).collect()] == ["i2"]
    with pytest.raises(ValueError, match="half_life_days"):
        user_item_affinity(events, half_life_days=0)


def _pairs(spark, rows):
    return spark.createDataFrame(
        [(u, i, datetime.fromtimestamp(T0.timestamp() - d * 86400)) for u, i, d in rows],
        "user_id string, item_id string, last_ts timestamp",
    )


def test_popular_items_counts_distinct_users_and_breaks_ties_by_item_id(spark):
    pairs = _pairs(
        spark,
        [
            ("u1", "b", 0),
            ("u2", "b", 0),
            ("u1", "a", 0),
            ("u3", "c", 0),
            ("u2", "c", 0),
            ("u3", "d", 50),
        ],
    )
    got = popular_items(pairs).select(C.ITEM_ID, C.SCORE, C.RANK)
    expected = spark.createDataFrame(
        [("b", 2.0, 1), ("c", 2.0, 2), ("a", 1.0, 3), ("d", 1.0, 4)],
        "item_id string, score double, rank int",
    )
    assert_df_equality(got.orderBy(C.RANK), expected, ignore_nullable=True)
    recent = popular_items(pairs, window_days=30)
    assert [r[C.ITEM_ID] for r in recent.orderBy(C.RANK).collect()] == ["b", "c", "a"]


def test_recommend_popular_skips_seen_items_and_serves_unknown_users(spark):
    pairs = _pairs(
        spark,
        [
            ("u1", "b", 0),
            ("u2", "b", 0),
            ("u1", "a", 0),
            ("u3", "c", 0),
            ("u2", "c", 0),
            ("u3", "d", 0),
        ],
    )
    popular = popular_items(pairs)
    users = spark.createDataFrame([("u1",), ("u9",), ("u1",)], "user_id string")
    got = recommend_popular(users, pairs.select(C.USER_ID, C.ITEM_ID), popular, n=3)
    rows = sorted((r[C.USER_ID], r[C.RANK], r[C.ITEM_ID]) for r in got.collect())
    # u1 has seen a and b: only c and d are left (a short list, not padded with seen items)
    assert rows == [("u1", 1, "c"), ("u1", 2, "d"), ("u9", 1, "b"), ("u9", 2, "c"), ("u9", 3, "a")]
    with pytest.raises(ValueError):
        recommend_popular(users, pairs, popular, n=0)
    assert math.isclose(got.filter("user_id = 'u9' and rank = 1").first()[C.SCORE], 2.0)
