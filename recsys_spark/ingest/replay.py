"""Replay the quarantine: re-validate quarantined rows under the current settings.

Rows quarantined for a setting that was wrong or incomplete (an event type not yet in
`ingest.event_weights`, a `min_timestamp` too recent) need not wait for a full refresh:
`run_replay` reads them back from their raw text, validates them as a batch would, stores
the rows that now pass (new ids numbered, events deduplicated against the table), and
marks their quarantine rows `resolved`. Rows that still fail keep their quarantine rows.

A replay is idempotent and reconciled like any batch: rows replayed = inserted +
duplicates in the replay + already present + still quarantined. A crash between the
interactions commit and the quarantine update leaves the rows unresolved; the next replay
finds their events present and resolves them.

The raw text of a row is the JSON of its mapped fields as they were read (or the broken
line of a malformed row, which stays malformed): a replay reads the fields by the names
`ingest.columns` gives now.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import IngestConfig, StorageConfig
from recsys_spark.errors import MissingInputError, ReconciliationError
from recsys_spark.ingest.checks import check_writable
from recsys_spark.ingest.dedup import ROW_ID, row_id
from recsys_spark.ingest.filelog import write_batch_row
from recsys_spark.ingest.read import FileCounts, counts_by_file, mapped_columns, validate_raw
from recsys_spark.ingest.report import FileOutcome, IngestReport
from recsys_spark.ingest.write import write_events
from recsys_spark.io import delta
from recsys_spark.io.files import SourceFile
from recsys_spark.logs import get_logger, stage

log = get_logger(__name__)
KEY = "_quarantine_key"  # identifies a quarantine row: md5 of its batch, file, raw, time


def run_replay(
    spark: SparkSession,
    cfg: IngestConfig,
    storage: StorageConfig,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Re-validate the quarantined rows (of `reason` only, if given) under `cfg`.

    Unreadable files are not rows (they are read again from their files), and rows of a
    refused batch come back with their files: neither is replayed. Raises
    ReconciliationError when the replay's counts do not add up (nothing is resolved).
    """
    now = now or datetime.now(UTC).replace(microsecond=0)
    check_writable(spark, storage.root)
    path = storage.table(tables.QUARANTINE)
    if not delta.table_exists(spark, path):
        raise MissingInputError(f"no quarantine table at {path}: run jobs/ingest.py first")
    if C.STATUS not in delta.read_table(spark, path).columns:  # a table from before status
        spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({C.STATUS} STRING)")
    version = delta.table_version(spark, path)
    pending = _replayable(delta.read_table(spark, path), reason)
    batch_id = "replay-" + hashlib.md5(f"{version}|{reason}".encode()).hexdigest()[:9]
    with stage(log, f"re-validate quarantined rows{f' of {reason}' if reason else ''}"):
        validated = validate_raw(_as_raw(pending, cfg), cfg, now, keep=(KEY,))
        validated = validated.withColumn(ROW_ID, row_id()).persist(StorageLevel.MEMORY_AND_DISK)
        counts = counts_by_file(validated)
    try:
        report = _report(batch_id, counts)
        log.info(
            "%d quarantined rows replayed, %d now pass",
            report.rows_read,
            report.rows_valid,
        )
        if report.rows_valid:
            report = write_events(spark, storage, validated, report, now, full_refresh=False)
        if report.reconciled and report.rows_valid:
            with stage(log, "mark replayed rows resolved"):
                _mark_resolved(spark, path, validated)
    finally:
        validated.unpersist()
    if report.rows_read:
        write_batch_row(spark, storage, report, now)
    log.info(report.summary())
    if not report.reconciled:
        raise ReconciliationError(
            f"replay {batch_id} does not reconcile: {report.summary()}; "
            f"{'; '.join(report.problems)}"
        )
    return report


def _replayable(quarantine: DataFrame, reason: str | None) -> DataFrame:
    rows = quarantine.filter(
        (F.coalesce(F.col(C.STATUS), F.lit("quarantined")) == "quarantined")
        & (F.col(C.REASON) != "unreadable_file")
    )
    if reason:
        rows = rows.filter(F.col(C.REASON) == reason)
    return rows.withColumn(KEY, quarantine_key())


def quarantine_key(alias: str = "") -> Column:
    """The identity of a quarantine row: md5 of its batch, file, raw text and time (equal
    rows of one batch and file are one key). `alias` names the table in a MERGE."""
    col = lambda name: F.col(f"{alias}.{name}" if alias else name)  # noqa: E731
    parts = [F.coalesce(col(c), F.lit("")) for c in (C.BATCH_ID, C.SOURCE_FILE, C.RAW)]
    when = F.coalesce(F.unix_micros(col(C.QUARANTINED_AT)).cast("string"), F.lit(""))
    return F.md5(F.concat_ws("\u001f", *parts, when))


def _as_raw(rows: DataFrame, cfg: IngestConfig) -> DataFrame:
    """Quarantine rows back as `read_raw_logs` rows: the mapped fields from the raw JSON;
    a raw text that is not a JSON object of fields (a broken line) stays malformed."""
    columns = mapped_columns(cfg)
    schema = T.StructType(
        [T.StructField(c, T.StringType(), True) for c in columns]
        + [T.StructField(C.CORRUPT_RECORD, T.StringType(), True)]
    )
    fields = F.from_json(
        F.col(C.RAW), schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": C.CORRUPT_RECORD}
    )
    parsed = rows.select("*", fields.alias("_fields"))
    malformed = (
        F.col("_fields").isNull()
        | F.col(f"_fields.{C.CORRUPT_RECORD}").isNotNull()
        | ~F.col(C.RAW).startswith("{")
    )
    return parsed.select(
        *[F.col("_fields").getField(c).alias(c) for c in columns],
        malformed.alias(C.MALFORMED),
        C.RAW,
        C.SOURCE_FILE,
        KEY,
    )


def _report(batch_id: str, counts: dict[str, FileCounts]) -> IngestReport:
    """The replay as an ingest report: one outcome per original file of its rows."""
    outcomes = tuple(
        FileOutcome(
            SourceFile(path, 0, datetime.fromtimestamp(0, tz=UTC)),
            "ingested",
            c.rows,
            sum(n for _, n, _ in c.reasons),
            event_dates=tuple(sorted(c.dates)),
            reasons=tuple(c.reasons),
        )
        for path, c in sorted(counts.items())
    )
    report = IngestReport(
        batch_id=batch_id,
        files_seen=0,
        files_skipped=0,
        files=outcomes,
        rows_read=sum(o.rows_read for o in outcomes),
    )
    return replace(report, rows_quarantined=sum(o.rows_quarantined for o in outcomes))


def _mark_resolved(spark: SparkSession, path: str, validated: DataFrame) -> None:
    """Set status `resolved` on the quarantine rows whose replay passed (one MERGE)."""
    passed = validated.filter(F.col(C.REASON).isNull()).select(KEY).distinct()
    before = delta.table_version(spark, path)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(passed.alias("s"), quarantine_key("t") == F.col(f"s.{KEY}"))
        .whenMatchedUpdate(set={C.STATUS: F.lit("resolved")})
        .execute()
    )
    delta.commit_metrics(spark, path, before)  # counts the MERGE's commit
