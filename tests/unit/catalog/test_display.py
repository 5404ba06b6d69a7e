"""Titled lists for people: recommendations_display and the report's example users."""

from __future__ import annotations

from datetime import datetime

from chispa import assert_df_equality

from recsys_spark import columns as C
from recsys_spark.catalog.display import display_lists, example_users
from recsys_spark.catalog.schemas import ITEMS

RECS = "user_id string, item_id string, rank int, source string, because_item_id string"


def items(spark):
    rows = [
        ("a", "Alpha", ["x"], None, None, None, {}, "b", None),
        ("b", "Beta", ["y", "x"], None, None, None, {}, "b", None),
    ]
    return spark.createDataFrame(rows, ITEMS)


def test_display_lists_join_titles_categories_and_the_reason_title(spark):
    recs = spark.createDataFrame(
        [("u", "a", 1, "model", "b"), ("u", "z", 2, "popularity", None)], RECS
    )
    expected = spark.createDataFrame(
        [
            ("b", "a", "u", 1, "model", "Alpha", ["x"], "Beta"),
            (None, "z", "u", 2, "popularity", None, None, None),
        ],
        "because_item_id string, item_id string, user_id string, rank int, source string, "
        "title string, categories array<string>, because_title string",
    )
    got = display_lists(recs, items(spark))
    assert_df_equality(
        got, expected, ignore_row_order=True, ignore_nullable=True, ignore_column_order=True
    )


def test_example_users_show_titled_history_lists_and_reasons(spark):
    recs = spark.createDataFrame(
        [("u1", "a", 1, "model", "b"), ("u1", "c", 2, "popularity", None),
         ("u2", "c", 1, "popularity", None)],
        RECS,
    )  # fmt: skip
    history = spark.createDataFrame(
        [("u1", "b", datetime(2026, 1, 2)), ("u2", "a", datetime(2026, 1, 1))],
        "user_id string, item_id string, last_ts timestamp",
    )
    [one] = example_users(recs, history, items(spark))  # u2 has no reason: not an example
    assert one["user_id"] == "u1"
    assert one["history"] == ["Beta (b)"]
    assert one["recommendations"] == [
        {"rank": 1, "item": "Alpha (a)", "because": "Beta (b)", "source": "model"},
        {"rank": 2, "item": "c", "because": None, "source": "popularity"},
    ]
    assert example_users(recs.filter(f"{C.USER_ID} = 'u2'"), history, None) == []
