"""Schemas of the catalogue's tables: `items`, `exclusions` and the batch log."""

from __future__ import annotations

from pyspark.sql import types as T

from recsys_spark import columns as C

TITLE = "title"
CATEGORIES = "categories"
AVAILABLE_FROM = "available_from"
AVAILABLE_UNTIL = "available_until"
ACTIVE = "active"
ATTRIBUTES = "attributes"
UNTIL = "until"
UPDATED_AT = "updated_at"

_S, _TS = T.StringType(), T.TimestampType()

# One row per item id. `active` null means active; a null window bound means open.
ITEMS = T.StructType(
    [
        T.StructField(C.ITEM_ID, _S, False),
        T.StructField(TITLE, _S, True),
        T.StructField(CATEGORIES, T.ArrayType(_S, False), True),
        T.StructField(AVAILABLE_FROM, _TS, True),
        T.StructField(AVAILABLE_UNTIL, _TS, True),
        T.StructField(ACTIVE, T.BooleanType(), True),
        T.StructField(ATTRIBUTES, T.MapType(_S, _S, True), True),
        T.StructField(C.BATCH_ID, _S, True),  # the batch that last changed the row
        T.StructField(UPDATED_AT, _TS, True),
    ]
)
ITEM_CONTENT = (TITLE, CATEGORIES, AVAILABLE_FROM, AVAILABLE_UNTIL, ACTIVE, ATTRIBUTES)

# One row per (user, item): the pair is never recommended before `until` (null: ever).
EXCLUSIONS = T.StructType(
    [
        T.StructField(C.USER_ID, _S, False),
        T.StructField(C.ITEM_ID, _S, False),
        T.StructField(UNTIL, T.DateType(), True),
        T.StructField(C.BATCH_ID, _S, True),
        T.StructField(UPDATED_AT, _TS, True),
    ]
)
EXCLUSION_CONTENT = (UNTIL,)

# One row per catalogue batch (kind items or exclusions).
CATALOG_BATCHES = T.StructType(
    [
        T.StructField(C.BATCH_ID, _S, True),
        T.StructField("kind", _S, True),
        T.StructField("source", _S, True),
        T.StructField(C.INGESTED_AT, _TS, True),
        T.StructField("files", T.LongType(), True),
        T.StructField("rows_read", T.LongType(), True),
        T.StructField("rows_valid", T.LongType(), True),
        T.StructField("duplicates", T.LongType(), True),
        T.StructField("rows_quarantined", T.LongType(), True),
        T.StructField("inserted", T.LongType(), True),
        T.StructField("updated", T.LongType(), True),
        T.StructField("deactivated", T.LongType(), True),
        T.StructField("table_version", T.LongType(), True),
        T.StructField("reconciled", T.BooleanType(), True),
        T.StructField("status", _S, True),  # merged | unchanged | refused
    ]
)
