"""The ingest batch: new raw files -> quarantine, id indices, interactions, ingest logs.

Every step is an idempotent Delta commit keyed by a deterministic batch id (a hash of
the batch's files, sizes and modification times), so a crash at any point followed by
a rerun converges to the same tables: the quarantine and log rows of the batch are
replaced, index and interaction rows are MERGEd on their keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import IngestConfig, StorageConfig
from recsys_spark.ingest import schemas
from recsys_spark.ingest.index import assign_new_indices
from recsys_spark.ingest.read import read_validated
from recsys_spark.ingest.report import IngestReport, ReconciliationError
from recsys_spark.io import delta
from recsys_spark.io.files import SourceFile, list_source_files
from recsys_spark.logs import get_logger, stage

log = get_logger(__name__)


def run_ingest(
    spark: SparkSession,
    cfg: IngestConfig,
    storage: StorageConfig,
    *,
    full_refresh: bool = False,
    now: datetime | None = None,
) -> IngestReport:
    """Ingest the files of `cfg.source` not ingested yet (all of them with `full_refresh`).

    Raises ReconciliationError, after recording the batch, when its counts do not add up.
    """
    now = now or datetime.now(UTC).replace(microsecond=0)
    with stage(log, "list source files"):
        files = list_source_files(spark, cfg.source)
        done = set() if full_refresh else _ingested_files(spark, storage)
        pending = [f for f in files if _file_key(f) not in done]
    log.info("%d files at %s, %d new", len(files), cfg.source, len(pending))
    if not pending:
        return IngestReport(batch_id=None, files_seen=len(files), files_skipped=len(files))
    batch_id = _batch_id(pending)
    validated, outcomes = read_validated(spark, cfg, pending, now)
    report = IngestReport(
        batch_id=batch_id,
        files_seen=len(files),
        files_skipped=len(files) - len(pending),
        files=tuple(outcomes),
        rows_read=sum(o.rows_read for o in outcomes),
    )
    try:
        report = _write_batch(spark, storage, validated, report, now, full_refresh)
    finally:
        if validated is not None:
            validated.unpersist()
    _write_logs(spark, storage, report, now, full_refresh)
    log.info(report.summary())
    if not report.reconciled:
        raise ReconciliationError(
            f"batch {batch_id} does not reconcile: {report.summary()}; {'; '.join(report.problems)}"
        )
    return report


def _write_batch(
    spark: SparkSession,
    storage: StorageConfig,
    validated: DataFrame | None,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
) -> IngestReport:
    batch = F.lit(report.batch_id)
    failed_rows = [
        (report.batch_id, o.file.path, "unreadable_file", o.error, now)
        for o in report.files
        if o.status == "failed"
    ]
    quarantine = spark.createDataFrame(failed_rows, schemas.QUARANTINE)
    if validated is not None:
        bad = validated.filter(F.col(C.REASON).isNotNull()).select(
            batch.alias(C.BATCH_ID),
            C.SOURCE_FILE,
            C.REASON,
            C.RAW,
            F.lit(now).alias(C.QUARANTINED_AT),
        )
        quarantine = bad.unionByName(quarantine)
    with stage(log, "write quarantine"):
        q_path = storage.table(tables.QUARANTINE)
        if full_refresh:
            delta.overwrite(quarantine, q_path)
        else:
            delta.replace_where(quarantine, q_path, f"{C.BATCH_ID} = '{report.batch_id}'")
    # Counted back from the table: what is stored, not what we meant to store.
    stored = delta.read_table(spark, q_path).filter(F.col(C.BATCH_ID) == report.batch_id)
    quarantined = stored.filter(F.col(C.REASON) != "unreadable_file").count()
    expected_bad = sum(o.rows_quarantined for o in report.files)
    problems = list(report.problems)
    if quarantined != expected_bad:
        problems.append(f"{expected_bad} invalid rows but {quarantined} written to quarantine")
    report = replace(report, rows_quarantined=quarantined, problems=tuple(problems))
    if validated is None:
        return report
    return _merge_valid(spark, storage, validated, report, now, full_refresh)


def _merge_valid(
    spark: SparkSession,
    storage: StorageConfig,
    validated: DataFrame,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
) -> IngestReport:
    valid = validated.filter(F.col(C.REASON).isNull())
    # Equal event ids mean equal events; only the file can differ: keep the first by name.
    deduped = (
        valid.groupBy(
            C.EVENT_ID,
            C.USER_ID,
            C.ITEM_ID,
            C.EVENT_TYPE,
            C.EVENT_TS,
            C.EVENT_DATE,
            C.VALUE,
            C.WEIGHT,
        )
        .agg(F.min(C.SOURCE_FILE).alias(C.SOURCE_FILE))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        with stage(log, "deduplicate"):
            distinct_events = deduped.count()
            validated.unpersist()  # everything below reads the deduplicated cache
        with stage(log, "update user and item indices"):
            new_users = _update_index(
                spark, storage, deduped, tables.USER_INDEX, C.USER_ID, C.USER_IDX, report.batch_id
            )
            new_items = _update_index(
                spark, storage, deduped, tables.ITEM_INDEX, C.ITEM_ID, C.ITEM_IDX, report.batch_id
            )
        users = delta.read_table(spark, storage.table(tables.USER_INDEX)).select(
            C.USER_ID, C.USER_IDX
        )
        items = delta.read_table(spark, storage.table(tables.ITEM_INDEX)).select(
            C.ITEM_ID, C.ITEM_IDX
        )
        enriched = (
            deduped.join(users, on=C.USER_ID, how="inner")
            .join(items, on=C.ITEM_ID, how="inner")
            .select(
                *schemas.INTERACTIONS.fieldNames()[:-2],
                F.lit(report.batch_id).alias(C.BATCH_ID),
                F.lit(now).alias(C.INGESTED_AT),
            )
        )
        path = storage.table(tables.INTERACTIONS)
        with stage(log, f"merge {distinct_events} distinct events into interactions"):
            if full_refresh:
                inserted = delta.overwrite(enriched, path, partition_by=(C.EVENT_DATE,)).get(
                    "numOutputRows", 0
                )
                merged_rows = inserted
            else:
                delta.ensure_table(spark, path, schemas.INTERACTIONS, partition_by=(C.EVENT_DATE,))
                # The source is a cached, deterministic frame: Delta need not copy it again.
                metrics = delta.insert_new(
                    spark, enriched, path, (C.EVENT_DATE, C.EVENT_ID), source_is_cached=True
                )
                inserted = metrics.get("numTargetRowsInserted", 0)
                merged_rows = metrics.get("numSourceRows", distinct_events if not metrics else -1)
    finally:
        deduped.unpersist()
    problems = list(report.problems)
    if merged_rows != distinct_events:
        problems.append(f"{distinct_events} distinct valid events but the write saw {merged_rows}")
    valid_rows = report.rows_read - sum(o.rows_quarantined for o in report.files)
    return replace(
        report,
        problems=tuple(problems),
        rows_inserted=inserted,
        duplicates_existing=distinct_events - inserted,
        duplicates_in_batch=valid_rows - distinct_events,
        new_users=new_users,
        new_items=new_items,
        interactions_version=delta.table_version(spark, path),
    )


def _update_index(
    spark: SparkSession,
    storage: StorageConfig,
    events: DataFrame,
    table: str,
    id_col: str,
    idx_col: str,
    batch_id: str | None,
) -> int:
    path = storage.table(table)
    schema = schemas.index_schema(id_col, idx_col)
    existing = delta.read_or_empty(spark, path, schema)
    new = assign_new_indices(events, existing, id_col=id_col, idx_col=idx_col).withColumn(
        C.BATCH_ID, F.lit(batch_id)
    )
    delta.ensure_table(spark, path, schema)
    return delta.insert_new(spark, new, path, key_columns=(id_col,)).get("numTargetRowsInserted", 0)


def _write_logs(
    spark: SparkSession,
    storage: StorageConfig,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
) -> None:
    file_rows = [
        (
            o.file.path,
            o.file.size_bytes,
            o.file.modified_at,
            report.batch_id,
            o.status,
            o.error,
            o.rows_read,
            o.rows_quarantined,
            now,
        )
        for o in report.files
    ]
    batch_row = [
        (
            report.batch_id,
            now,
            len(report.files),
            report.files_failed,
            report.rows_read,
            report.rows_inserted,
            report.duplicates_in_batch,
            report.duplicates_existing,
            report.rows_quarantined,
            report.new_users,
            report.new_items,
            report.interactions_version,
            report.reconciled,
            "; ".join(report.problems) or None,
        )
    ]
    condition = f"{C.BATCH_ID} = '{report.batch_id}'"
    for table, rows, schema in (
        (tables.INGEST_LOG, file_rows, schemas.INGEST_LOG),
        (tables.INGEST_BATCHES, batch_row, schemas.INGEST_BATCHES),
    ):
        frame = spark.createDataFrame(rows, schema)
        path = storage.table(table)
        if full_refresh:
            delta.overwrite(frame, path)
        else:
            delta.replace_where(frame, path, condition)


def _file_key(f: SourceFile) -> tuple[str, int, int]:
    return f.path, f.size_bytes, round(f.modified_at.timestamp() * 1000)


def _ingested_files(spark: SparkSession, storage: StorageConfig) -> set[tuple[str, int, int]]:
    """(path, size, modified epoch ms) of every file an earlier batch ingested successfully."""
    path = storage.table(tables.INGEST_LOG)
    if not delta.table_exists(spark, path):
        return set()
    rows = (
        delta.read_table(spark, path)
        .filter(F.col("status") == "ingested")
        .select(C.SOURCE_FILE, "size_bytes", F.unix_millis("modified_at"))
        .collect()  # one row per ingested file, not per event
    )
    return {(r[0], r[1], r[2]) for r in rows}


def _batch_id(files: list[SourceFile]) -> str:
    signature = "\n".join(f"{f.path}|{f.size_bytes}|{f.modified_at.isoformat()}" for f in files)
    return hashlib.md5(signature.encode()).hexdigest()[:16]
