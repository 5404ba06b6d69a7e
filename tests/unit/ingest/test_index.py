from __future__ import annotations

from chispa import assert_df_equality

from recsys_spark.ingest.index import assign_new_indices
from recsys_spark.ingest.schemas import index_schema

SCHEMA = index_schema("user_id", "user_idx")


def _index(spark, rows):
    return spark.createDataFrame([(u, i, "b0") for u, i in rows], SCHEMA).select(
        "user_id", "user_idx"
    )


def test_first_ids_are_numbered_from_zero_in_id_order(spark):
    ids = spark.createDataFrame([("c",), ("a",), ("b",), ("a",)], "user_id string")
    got = assign_new_indices(ids, _index(spark, []), id_col="user_id", idx_col="user_idx")
    expected = spark.createDataFrame([("a", 0), ("b", 1), ("c", 2)], "user_id string, user_idx int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_existing_ids_keep_their_index_and_new_ones_continue(spark):
    existing = _index(spark, [("m", 0), ("z", 7)])
    ids = spark.createDataFrame([("z",), ("a",), ("m",), ("q",)], "user_id string")
    got = assign_new_indices(ids, existing, id_col="user_id", idx_col="user_idx")
    # only the new ids, numbered after the largest existing index
    expected = spark.createDataFrame([("a", 8), ("q", 9)], "user_id string, user_idx int")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_no_new_ids_gives_an_empty_frame(spark):
    existing = _index(spark, [("a", 0)])
    ids = spark.createDataFrame([("a",)], "user_id string")
    assert assign_new_indices(ids, existing, id_col="user_id", idx_col="user_idx").count() == 0
