"""Schemas of the tables that ingest writes: the contract later stages read."""

from __future__ import annotations

from pyspark.sql import types as T

from recsys_spark import columns as C

_S, _I, _L, _D, _TS = (
    T.StringType(),
    T.IntegerType(),
    T.LongType(),
    T.DoubleType(),
    T.TimestampType(),
)


def _schema(*fields: tuple[str, T.DataType, bool]) -> T.StructType:
    return T.StructType([T.StructField(name, dtype, nullable) for name, dtype, nullable in fields])


# Partitioned by event_date; event_id is the deduplication key. The last two columns
# (batch_id, ingested_at) record which batch inserted the row.
INTERACTIONS = _schema(
    (C.EVENT_ID, _S, True),
    (C.USER_ID, _S, True),
    (C.ITEM_ID, _S, True),
    (C.USER_IDX, _I, True),
    (C.ITEM_IDX, _I, True),
    (C.EVENT_TYPE, _S, True),
    (C.EVENT_TS, _TS, True),
    (C.EVENT_DATE, T.DateType(), True),
    (C.VALUE, _D, True),
    (C.WEIGHT, _D, True),
    (C.SOURCE_FILE, _S, True),
    (C.BATCH_ID, _S, True),
    (C.INGESTED_AT, _TS, True),
)

QUARANTINE = _schema(
    (C.BATCH_ID, _S, True),
    (C.SOURCE_FILE, _S, True),
    (C.REASON, _S, True),
    (C.RAW, _S, True),
    (C.QUARANTINED_AT, _TS, True),
    # quarantined | refused (its batch was refused: its files are read again) |
    # resolved (a replay under a corrected config stored the row). Null in older rows.
    (C.STATUS, _S, True),
)

INGEST_LOG = _schema(
    (C.SOURCE_FILE, _S, True),
    ("size_bytes", _L, True),
    ("modified_at", _TS, True),
    (C.BATCH_ID, _S, True),
    ("status", _S, True),
    ("error", _S, True),
    ("rows_read", _L, True),
    ("rows_quarantined", _L, True),
    (C.INGESTED_AT, _TS, True),
    ("attempts", _L, True),
)

INGEST_BATCHES = _schema(
    (C.BATCH_ID, _S, True),
    (C.INGESTED_AT, _TS, True),
    ("files", _L, True),
    ("files_failed", _L, True),
    ("rows_read", _L, True),
    ("rows_inserted", _L, True),
    ("duplicates_in_batch", _L, True),
    ("duplicates_existing", _L, True),
    ("rows_quarantined", _L, True),
    ("new_users", _L, True),
    ("new_items", _L, True),
    ("interactions_version", _L, True),
    ("reconciled", T.BooleanType(), True),
    ("problems", _S, True),
)


def index_schema(id_col: str, idx_col: str) -> T.StructType:
    """Schema of an id index table: string id, its int index, the batch that added it."""
    return _schema((id_col, _S, False), (idx_col, _I, False), (C.BATCH_ID, _S, True))
