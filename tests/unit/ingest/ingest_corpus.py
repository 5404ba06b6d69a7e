"""The ingest tests' shared corpus: raw lines with known outcomes, and table snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import IngestConfig, StorageConfig
from recsys_spark.io import delta

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HEADER = "user_id,item_id,event_type,timestamp,value\n"
GOOD = [
    "u1,i1,view,2026-01-05T10:00:00Z,12.5",
    "u1,i2,purchase,2026-01-05T10:05:00Z,2",
    "u2,i1,click,1767607200,",
    "u2,i3,view,1767607200000,3",
    "u3,i2,add_to_cart,2026-01-06T00:00:00Z,1",
    "u3,i3,view,2026-02-01T08:00:00Z,",
]
BAD = {
    ",i1,view,2026-01-05T10:00:00Z,": "missing_user_id",
    "u4,,view,2026-01-05T10:00:00Z,": "missing_item_id",
    "u4,i4,view,,": "missing_timestamp",
    "u4,i4,view,not-a-time,": "unparseable_timestamp",
    "u4,i4,view,1970-01-01T00:00:00Z,": "timestamp_out_of_range",
    "u4,i4,teleport,2026-01-05T10:00:00Z,": "unknown_event_type",
    "u4,i4,view,2026-01-05T10:00:00Z,lots": "non_numeric_value",
    "u4,i4,view,2026-01-05T10:00:00Z,-1": "negative_value",
    "u4,i4,view,2026-01-05T10:00:00Z,NaN": "non_finite_value",
    "u4,i4": "malformed_row",
    "u4,i4,view,2026-01-05T10:00:00Z,1,extra": "malformed_row",
}


DAY3 = ["u1,i9,view,2026-03-01T09:00:00Z,", "u9,i1,click,2026-03-02T09:00:00Z,1"]


def corpus_config(source: object, **fields: object) -> IngestConfig:
    """The ingest settings of the corpus tests: the circuit breaker off (a share of 1),
    since these batches are mostly bad rows on purpose (test_ingest_operator checks it)."""
    return IngestConfig(source=str(source), **{"max_quarantine_share": 1.0, **fields})


def write_log(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def killed_step(*args, **kwargs):
    """Stands in for a step of the job: the run dies there."""
    raise RuntimeError("killed")


def lake_snapshot(spark, storage: StorageConfig) -> dict:
    read = lambda name: spark.read.format("delta").load(storage.table(name))  # noqa: E731
    return {
        "interactions": read(tables.INTERACTIONS).count(),
        "version": delta.table_version(spark, storage.table(tables.INTERACTIONS)),
        "users": {
            r[0]: r[1] for r in read(tables.USER_INDEX).select(C.USER_ID, C.USER_IDX).collect()
        },
        "items": {
            r[0]: r[1] for r in read(tables.ITEM_INDEX).select(C.ITEM_ID, C.ITEM_IDX).collect()
        },
        "quarantine": sorted(
            (r[0], r[1]) for r in read(tables.QUARANTINE).select(C.REASON, C.RAW).collect()
        ),
    }
