from __future__ import annotations

from datetime import UTC, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark.ingest.validate import (
    as_number,
    parse_timestamp,
    standardize_raw,
    validate_events,
)

WEIGHTS = {"view": 1.0, "click": 2.0, "purchase": 8.0}
MIN_TS = datetime(1995, 1, 1, tzinfo=UTC)
MAX_TS = datetime(2027, 1, 1, tzinfo=UTC)
RAW_SCHEMA = T.StructType(
    [T.StructField(n, T.StringType()) for n in ("u", "i", "t", "e", "v")]
    + [
        T.StructField(C.MALFORMED, T.BooleanType()),
        T.StructField(C.RAW, T.StringType()),
        T.StructField(C.SOURCE_FILE, T.StringType()),
    ]
)


def _validate(spark, rows, **kwargs):
    raw = spark.createDataFrame(
        [(*r[:5], r[5] if len(r) > 5 else False, "raw", "f.csv") for r in rows], RAW_SCHEMA
    )
    standard = standardize_raw(
        raw,
        user_col="u",
        item_col="i",
        timestamp_col="t",
        event_type_col=kwargs.pop("event_col", "e"),
        value_col="v",
    )
    options = dict(
        timestamp_format="auto",
        min_ts=MIN_TS,
        max_ts=MAX_TS,
        event_weights=WEIGHTS,
        default_event_type="rating",
        has_event_type=True,
    )
    options.update(kwargs)
    return validate_events(standard, **options)


def test_every_rule_names_its_reason(spark):
    rows = [
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", None),  # valid
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", None, True),  # wrong field count
        (None, "i1", "2026-01-05T10:00:00Z", "view", None),
        ("  ", "i1", "2026-01-05T10:00:00Z", "view", None),
        ("u1", "", "2026-01-05T10:00:00Z", "view", None),
        ("u1", "i1", None, "view", None),
        ("u1", "i1", "yesterday", "view", None),
        ("u1", "i1", "1970-01-02T00:00:00Z", "view", None),
        ("u1", "i1", "4102444800", "view", None),  # 2100-01-01
        ("u1", "i1", "99999999999999999", "view", None),  # no timestamp holds it
        ("u1", "i1", "NaN", "view", None),
        ("u1", "i1", "2026-01-05T10:00:00Z", "", None),
        ("u1", "i1", "2026-01-05T10:00:00Z", "teleport", None),
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", "lots"),
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", "NaN"),
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", "Infinity"),
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", "-2"),
        (" u2 ", " i2 ", "1767607200000", " PURCHASE ", "3"),  # valid: trimmed, ms, case
    ]
    got = _validate(spark, rows).select(C.REASON).collect()
    assert [r[0] for r in got] == [
        None,
        "malformed_row",
        "missing_user_id",
        "missing_user_id",
        "missing_item_id",
        "missing_timestamp",
        "unparseable_timestamp",
        "timestamp_out_of_range",
        "timestamp_out_of_range",
        "timestamp_out_of_range",
        "unparseable_timestamp",
        "missing_event_type",
        "unknown_event_type",
        "non_numeric_value",
        "non_finite_value",
        "non_finite_value",
        "negative_value",
        None,
    ]


def test_valid_rows_are_typed_and_invalid_rows_keep_raw(spark):
    rows = [(" u2 ", " i2 ", "1767607200000", " PURCHASE ", "3"), ("u1", "i1", "bad", "view", None)]
    got = _validate(spark, rows).drop(C.EVENT_ID)
    schema = T.StructType(
        [
            T.StructField(C.USER_ID, T.StringType()),
            T.StructField(C.ITEM_ID, T.StringType()),
            T.StructField(C.EVENT_TYPE, T.StringType()),
            T.StructField(C.EVENT_TS, T.TimestampType()),
            T.StructField(C.EVENT_DATE, T.DateType()),
            T.StructField(C.VALUE, T.DoubleType()),
            T.StructField(C.WEIGHT, T.DoubleType()),
            T.StructField(C.REASON, T.StringType()),
            T.StructField(C.RAW, T.StringType()),
            T.StructField(C.SOURCE_FILE, T.StringType()),
        ]
    )
    ts = datetime(2026, 1, 5, 10, 0)
    expected = spark.createDataFrame(
        [
            ("u2", "i2", "purchase", ts, ts.date(), 3.0, 8.0, None, None, "f.csv"),
            ("u1", "i1", "view", None, None, None, 1.0, "unparseable_timestamp", "raw", "f.csv"),
        ],
        schema,
    )
    # Nullability differs between computed columns and the literal frame; values must not.
    assert_df_equality(got, expected, ignore_nullable=True)


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("epoch_s", "881250949", datetime(1997, 12, 4, 15, 55, 49)),
        ("epoch_s", "881250949.5", datetime(1997, 12, 4, 15, 55, 49, 500000)),
        ("epoch_ms", "881250949000", datetime(1997, 12, 4, 15, 55, 49)),
        ("iso", "1997-12-04T15:55:49Z", datetime(1997, 12, 4, 15, 55, 49)),
        ("iso", "1997-12-04 15:55:49", datetime(1997, 12, 4, 15, 55, 49)),
        ("iso", "881250949", None),
        ("auto", "881250949", datetime(1997, 12, 4, 15, 55, 49)),
        ("auto", "881250949000", datetime(1997, 12, 4, 15, 55, 49)),
        ("auto", "1997-12-04T15:55:49Z", datetime(1997, 12, 4, 15, 55, 49)),
        ("auto", "NaN", None),
        ("epoch_s", "soon", None),
        ("epoch_s", "1e300", None),
    ],
)
def test_parse_timestamp(spark, fmt, raw, expected):
    frame = spark.createDataFrame([(raw,)], "t string")
    assert frame.select(parse_timestamp(F.col("t"), fmt)).first()[0] == expected


def test_as_number_agrees_with_try_cast_on_every_kind_of_text(spark):
    texts = ["1.5", "-3", "+7", "1e3", "2.5E-2", ".5", "NaN", "Infinity", "-inf", "1d"]
    texts += ["2026-01-05T10:00:00Z", "2026-01-05", "12:30", "abc", "", None]
    frame = spark.createDataFrame([(t,) for t in texts], "t string")
    got = frame.select(
        as_number(F.col("t")).alias("guarded"), F.col("t").try_cast("double").alias("cast")
    ).collect()
    # NaN != NaN, so compare the text of each pair
    assert [str(r["guarded"]) for r in got] == [str(r["cast"]) for r in got]
    assert got[0]["guarded"] == 1.5 and got[10]["guarded"] is None


def test_equal_events_share_a_key_and_any_difference_changes_it(spark):
    base = ("u1", "i1", "2026-01-05T10:00:00Z", "view", "5")
    rows = [
        base,
        base,
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", "6"),
        ("u1", "i1", "2026-01-05T10:00:01Z", "view", "5"),
        ("u1", "i2", "2026-01-05T10:00:00Z", "view", "5"),
        ("u1", "i1", "2026-01-05T10:00:00Z", "click", "5"),
        ("u1", "i1", "2026-01-05T10:00:00Z", "view", None),
    ]
    keys = [r[0] for r in _validate(spark, rows).select(C.EVENT_ID).collect()]
    assert keys[0] == keys[1]
    assert len(set(keys)) == 6


@pytest.mark.parametrize(
    ("rule", "weights"),
    [
        ("event", [8.0, 1.0, 1.0]),
        ("value", [3.0, 0.5, 4.0]),
        ("event_x_value", [24.0, 0.5, 4.0]),
        ("threshold", [8.0, 0.0, 1.0]),
    ],
)
def test_weight_rules(spark, rule, weights):
    rows = [
        ("u", "a", "2026-01-01", "purchase", "3"),
        ("u", "b", "2026-01-01", "view", "0.5"),
        ("u", "c", "2026-01-01", "view", "4"),
    ]
    got = _validate(spark, rows, weight_rule=rule, value_threshold=1.0)
    assert [r[0] for r in got.select(C.WEIGHT).collect()] == weights


def test_value_rules_need_a_value(spark):
    got = _validate(spark, [("u", "a", "2026-01-01", "view", None)], weight_rule="value")
    assert got.first()[C.REASON] == "missing_value"


def test_logs_without_event_type_use_the_default(spark):
    got = _validate(
        spark,
        [("u", "a", "2026-01-01", None, "4")],
        event_col="",
        has_event_type=False,
        event_weights={"rating": 1.0},
    )
    row = got.first()
    assert (row[C.EVENT_TYPE], row[C.WEIGHT], row[C.REASON]) == ("rating", 1.0, None)
