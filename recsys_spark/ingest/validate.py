"""Parse and validate raw log rows: every row gets typed fields or a quarantine reason.

Pure DataFrame -> DataFrame transforms. The first failing rule names the reason; a row
with a null reason is valid. Reasons, in the order they are checked:

- `malformed_row`: the reader could not split it (wrong number of fields, broken JSON);
- `missing_user_id`, `missing_item_id`: null or blank id;
- `missing_timestamp`, `unparseable_timestamp`, `timestamp_out_of_range`;
- `missing_event_type`, `unknown_event_type` (not a key of the event weights);
- `non_numeric_value`, `non_finite_value` (NaN, infinity), `negative_value`;
- `missing_value`: the weight rule needs a value and the row has none.
"""

from __future__ import annotations

from datetime import datetime
from itertools import chain

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C

TIMESTAMP_FORMATS = ("auto", "iso", "epoch_s", "epoch_ms")
WEIGHT_RULES = ("event", "value", "event_x_value", "threshold")
# Below 1e11 a number reads as epoch seconds (until year 5138), above as milliseconds.
EPOCH_MS_FROM = 1e11
_SEP = "\u001f"  # unit separator: cannot be confused with characters inside ids

_RAW_USER, _RAW_ITEM, _RAW_TS, _RAW_EVENT, _RAW_VALUE = (
    "_raw_user",
    "_raw_item",
    "_raw_ts",
    "_raw_event",
    "_raw_value",
)


def standardize_raw(
    df: DataFrame,
    *,
    user_col: str,
    item_col: str,
    timestamp_col: str,
    event_type_col: str = "",
    value_col: str = "",
    keep: tuple[str, ...] = (),
) -> DataFrame:
    """Rename the mapped raw columns to fixed internal names; "" maps to a null column.

    The columns named in `keep` are carried through unchanged (and through
    `validate_events` given the same `keep`).
    """

    def pick(name: str, alias: str) -> Column:
        return (F.col(f"`{name}`") if name else F.lit(None)).cast("string").alias(alias)

    return df.select(
        pick(user_col, _RAW_USER),
        pick(item_col, _RAW_ITEM),
        pick(timestamp_col, _RAW_TS),
        pick(event_type_col, _RAW_EVENT),
        pick(value_col, _RAW_VALUE),
        F.col(C.MALFORMED),
        F.col(C.RAW),
        F.col(C.SOURCE_FILE),
        *keep,
    )


def parse_timestamp(raw: Column, fmt: str) -> Column:
    """Parse a string column as a timestamp (`fmt` one of TIMESTAMP_FORMATS); null if it fails."""
    text = F.trim(raw)
    return timestamp_from(as_number(text), text, fmt)


def as_number(text: Column) -> Column:
    """`text` cast to double, null when it is not a number; same result as `try_cast`.

    Text with a ':' (an ISO date-time) can never be a number, and is not cast at all:
    Spark's string-to-double cast fails by throwing and catching an exception, which on
    a log of ISO timestamps cost more than parsing them.
    """
    return F.when(~text.contains(":"), text.try_cast("double"))


def timestamp_from(number: Column, text: Column, fmt: str) -> Column:
    """The timestamp of a raw value given as its number (null if not numeric) and its text."""
    finite = number.isNotNull() & ~F.isnan(number) & (F.abs(number) < 1e16)
    seconds = F.when(finite, number)
    if fmt == "epoch_s":
        return seconds.try_cast("timestamp")
    if fmt == "epoch_ms":
        return (seconds / 1000.0).try_cast("timestamp")
    iso = F.try_to_timestamp(text)
    if fmt == "iso":
        return iso
    if fmt != "auto":
        raise ValueError(f"timestamp format must be one of {TIMESTAMP_FORMATS}; got '{fmt}'")
    as_epoch = F.when(F.abs(seconds) >= EPOCH_MS_FROM, seconds / 1000.0).otherwise(seconds)
    return F.when(number.isNotNull(), as_epoch.try_cast("timestamp")).otherwise(iso)


def validate_events(
    df: DataFrame,
    *,
    timestamp_format: str,
    min_ts: datetime,
    max_ts: datetime,
    event_weights: dict[str, float],
    default_event_type: str,
    has_event_type: bool,
    weight_rule: str = "event",
    value_threshold: float = 0.0,
    keep: tuple[str, ...] = (),
) -> DataFrame:
    """Type and check standardized raw rows (see `standardize_raw`); `keep` carries
    those columns through unchanged.

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `event_type` (lower case), `event_ts` (timestamp, UTC),
        `event_date`, `value` (double, nullable), `weight` (double), `event_id` (md5 of
        the event's fields: the deduplication key), `reason` (null when valid), `raw`
        (kept for invalid rows only, null otherwise) and `source_file`.
    """
    if weight_rule not in WEIGHT_RULES:
        raise ValueError(f"weight rule must be one of {WEIGHT_RULES}; got '{weight_rule}'")
    event = F.lower(F.trim(F.col(_RAW_EVENT))) if has_event_type else F.lit(default_event_type)
    # Parse each field once, in its own projection: the reason rules below refer to the
    # parsed columns many times, and Spark keeps a projection apart rather than repeat a
    # costly expression (a timestamp parse) in every branch of the CASE.
    trimmed = df.select(
        F.trim(F.col(_RAW_USER)).alias(C.USER_ID),
        F.trim(F.col(_RAW_ITEM)).alias(C.ITEM_ID),
        F.trim(F.col(_RAW_TS)).alias("_ts_text"),
        event.alias(C.EVENT_TYPE),
        F.trim(F.col(_RAW_VALUE)).alias("_value_text"),
        C.MALFORMED,
        C.RAW,
        C.SOURCE_FILE,
        *keep,
    )
    parsed = trimmed.select(
        "*",
        timestamp_from(as_number(F.col("_ts_text")), F.col("_ts_text"), timestamp_format).alias(
            C.EVENT_TS
        ),
        F.col("_value_text").try_cast("double").alias(C.VALUE),
    )
    typed = parsed.select(
        "*",
        _reason(weight_rule, min_ts, max_ts, list(event_weights), timestamp_format).alias(C.REASON),
    )
    return typed.select(
        C.USER_ID,
        C.ITEM_ID,
        C.EVENT_TYPE,
        C.EVENT_TS,
        F.to_date(C.EVENT_TS).alias(C.EVENT_DATE),
        C.VALUE,
        _weight(event_weights, weight_rule, value_threshold).alias(C.WEIGHT),
        event_key().alias(C.EVENT_ID),
        C.REASON,
        F.when(F.col(C.REASON).isNotNull(), F.col(C.RAW)).alias(C.RAW),
        C.SOURCE_FILE,
        *keep,
    )


def _reason(
    weight_rule: str, min_ts: datetime, max_ts: datetime, known: list[str], timestamp_format: str
) -> Column:
    ts, value, value_text = F.col(C.EVENT_TS), F.col(C.VALUE), F.col("_value_text")
    event = F.col(C.EVENT_TYPE)
    reason = (
        F.when(F.col(C.MALFORMED), "malformed_row")
        .when(_blank(F.col(C.USER_ID)), "missing_user_id")
        .when(_blank(F.col(C.ITEM_ID)), "missing_item_id")
        .when(_blank(F.col("_ts_text")), "missing_timestamp")
        # An epoch number too large for a timestamp is out of range, not unparseable.
        .when(ts.isNull() & _finite_epoch(timestamp_format), "timestamp_out_of_range")
        .when(ts.isNull(), "unparseable_timestamp")
        .when((ts < F.lit(min_ts)) | (ts > F.lit(max_ts)), "timestamp_out_of_range")
        .when(_blank(event), "missing_event_type")
        .when(~event.isin(known), "unknown_event_type")
        .when(~_blank(value_text) & value.isNull(), "non_numeric_value")
        .when(F.isnan(value) | (F.abs(value) == float("inf")), "non_finite_value")
        .when(value < 0, "negative_value")
    )
    if weight_rule != "event":
        reason = reason.when(value.isNull(), "missing_value")
    return reason


def _finite_epoch(timestamp_format: str) -> Column:
    """True for a raw timestamp that is a finite number read as epoch time."""
    if timestamp_format == "iso":
        return F.lit(False)
    number = as_number(F.col("_ts_text"))
    return number.isNotNull() & ~F.isnan(number) & (F.abs(number) < float("inf"))


def event_key() -> Column:
    """md5 of user, item, event type, timestamp (µs) and value: equal events, equal key."""
    parts = [
        F.col(C.USER_ID),
        F.col(C.ITEM_ID),
        F.col(C.EVENT_TYPE),
        F.unix_micros(F.col(C.EVENT_TS)).cast("string"),
        F.coalesce(F.col(C.VALUE).cast("string"), F.lit("")),
    ]
    return F.md5(F.concat_ws(_SEP, *parts))


def _weight(event_weights: dict[str, float], rule: str, threshold: float) -> Column:
    weights = F.create_map(
        *chain.from_iterable((F.lit(k), F.lit(float(v))) for k, v in event_weights.items())
    )
    event_weight = F.try_element_at(weights, F.col(C.EVENT_TYPE))
    value = F.col(C.VALUE)
    if rule == "value":
        return value
    if rule == "event_x_value":
        return event_weight * value
    if rule == "threshold":
        return F.when(value >= threshold, event_weight).otherwise(F.lit(0.0))
    return event_weight


def _blank(col: Column) -> Column:
    return col.isNull() | (col == "")
