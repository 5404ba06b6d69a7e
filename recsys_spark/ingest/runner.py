"""The ingest batch: new raw files -> quarantine, id indices, interactions, ingest logs.

Every step is an idempotent Delta commit keyed by a deterministic batch id (a hash of
the batch's files, sizes and modification times), so a crash at any point followed by
a rerun converges to the same tables: the quarantine and log rows of the batch are
replaced, index and interaction rows are inserted only for keys not stored yet.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import IngestConfig, StorageConfig
from recsys_spark.errors import NoReadableFileError, ReconciliationError
from recsys_spark.ingest import schemas
from recsys_spark.ingest.read import read_validated
from recsys_spark.ingest.report import IngestReport
from recsys_spark.ingest.write import write_batch
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
    require_readable: bool = False,
    now: datetime | None = None,
) -> IngestReport:
    """Ingest the files of `cfg.source` not ingested yet (all of them with `full_refresh`).

    Raises ReconciliationError, after recording the batch, when its counts do not add up;
    with `require_readable` (the ingest job), NoReadableFileError when new files were
    found and none of them could be read.
    """
    now = now or datetime.now(UTC).replace(microsecond=0)
    with stage(log, "list source files"):
        files = list_source_files(spark, cfg.source)
        done = set() if full_refresh else _ingested_files(spark, storage)
        pending = [f for f in files if _file_key(f) not in done]
    log.info("%d files at %s, %d new", len(files), cfg.source, len(pending))
    if not files:
        log.warning("no data files at %s (names starting with . or _ are skipped)", cfg.source)
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
        report = write_batch(spark, storage, validated, report, now, full_refresh)
    finally:
        if validated is not None:
            validated.unpersist()
    with stage(log, "write ingest logs"):
        _write_logs(spark, storage, report, now, full_refresh)
    log.info(report.summary())
    if not report.reconciled:
        raise ReconciliationError(
            f"batch {batch_id} does not reconcile: {report.summary()}; {'; '.join(report.problems)}"
        )
    if report.files_failed:
        log.warning(
            "%d unreadable files recorded in ingest_log and quarantine", report.files_failed
        )
    if require_readable and report.files_failed == len(report.files):
        raise NoReadableFileError(
            "no new file could be read: check ingest.format and the files' contents"
        )
    log.info("tables under %s", storage.root)
    return report


def _write_logs(
    spark: SparkSession,
    storage: StorageConfig,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
) -> None:
    # Files of a batch that does not add up are not done: the next run takes them again
    # (every write is idempotent for the batch), rather than skip them for good.
    file_rows = [
        (
            o.file.path,
            o.file.size_bytes,
            o.file.modified_at,
            report.batch_id,
            o.status if report.reconciled or o.status == "failed" else "unreconciled",
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
    condition = f"{C.BATCH_ID} = {delta.sql_string(report.batch_id)}"
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
