"""The ingest logs: `ingest_log` (one row per source file, its latest state) and
`ingest_batches` (one row per batch).

A file is keyed by its path (a batch replaces its files' rows); its row says what the
latest read of it did:
- `ingested`: its rows are stored; the file is not read again while its size and
  modification time stay the same;
- `failed`: it could not be read; it is read again by the next run, `attempts` counting
  the reads of this version of the file;
- `parked`: it failed `ingest.max_file_attempts` times; it is not read again (a new
  version of the file is), and every run lists it;
- `refused`: its batch was refused by the circuit breaker; read again by the next run;
- `unreconciled`: its batch's counts did not add up; read again by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import StorageConfig
from recsys_spark.ingest import schemas
from recsys_spark.ingest.report import IngestReport
from recsys_spark.io import delta
from recsys_spark.io.files import SourceFile

FileKey = tuple[str, int, int]  # path, size in bytes, modified epoch ms
DONE = ("ingested", "parked")


def file_key(f: SourceFile) -> FileKey:
    return f.path, f.size_bytes, round(f.modified_at.timestamp() * 1000)


@dataclass(frozen=True)
class FileHistory:
    """What earlier runs logged of the files: the ones not to read again, failed reads."""

    done: frozenset[FileKey] = frozenset()
    attempts: dict[FileKey, int] | None = None  # earlier reads of a file version not done
    parked: dict[FileKey, str] | None = None  # parked file version -> its error

    def attempts_of(self, f: SourceFile) -> int:
        """Reads of this version of `f` so far, the one about to happen included."""
        return (self.attempts or {}).get(file_key(f), 0) + 1


def read_history(spark: SparkSession, storage: StorageConfig) -> FileHistory:
    """The files' states as `ingest_log` holds them (one small collect: a row per file)."""
    path = storage.table(tables.INGEST_LOG)
    if not delta.table_exists(spark, path):
        return FileHistory()
    log = delta.read_table(spark, path)
    attempts = F.col("attempts") if "attempts" in log.columns else F.lit(1)
    rows = log.select(
        C.SOURCE_FILE,
        "size_bytes",
        F.unix_millis("modified_at").alias("modified_ms"),
        "status",
        "error",
        F.coalesce(attempts, F.lit(1)).alias("attempts"),
    ).collect()
    done, tried, parked = set(), {}, {}
    for r in rows:
        key = (r[C.SOURCE_FILE], r["size_bytes"], r["modified_ms"])
        if r["status"] in DONE:
            done.add(key)
        else:
            tried[key] = max(tried.get(key, 0), r["attempts"])
        if r["status"] == "parked":
            parked[key] = r["error"] or ""
    return FileHistory(frozenset(done), tried, parked)


def write_logs(
    spark: SparkSession,
    storage: StorageConfig,
    report: IngestReport,
    now: datetime,
    *,
    full_refresh: bool,
    refused: str | None = None,
) -> None:
    """One `ingest_log` row per file of the batch (replacing the file's earlier row),
    then the batch's `ingest_batches` row."""
    file_rows = [
        (
            o.file.path,
            o.file.size_bytes,
            o.file.modified_at,
            report.batch_id,
            _file_status(o.status, report, refused),
            o.error,
            o.rows_read,
            o.rows_quarantined,
            now,
            o.attempts,
        )
        for o in report.files
    ]
    files = spark.createDataFrame(file_rows, schemas.INGEST_LOG)
    log_path = storage.table(tables.INGEST_LOG)
    if full_refresh:
        delta.overwrite(files, log_path)
    else:  # each file's earlier row replaced by its new one, in one commit
        condition = delta.sql_in(C.SOURCE_FILE, [o.file.path for o in report.files])
        delta.replace_where(files, log_path, condition, merge_schema=True)
    write_batch_row(spark, storage, report, now, full_refresh=full_refresh, refused=refused)


def write_batch_row(
    spark: SparkSession,
    storage: StorageConfig,
    report: IngestReport,
    now: datetime,
    *,
    full_refresh: bool = False,
    refused: str | None = None,
) -> None:
    """The batch's `ingest_batches` row (replacing a rerun's; the only one after a full
    refresh)."""
    problems = "; ".join((*report.problems, *([refused] if refused else []))) or None
    row = (
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
        report.reconciled and not refused,
        problems,
    )
    batches = spark.createDataFrame([row], schemas.INGEST_BATCHES)
    path = storage.table(tables.INGEST_BATCHES)
    if full_refresh:
        delta.overwrite(batches, path)
    else:
        delta.replace_where(batches, path, f"{C.BATCH_ID} = {delta.sql_string(report.batch_id)}")


def _file_status(status: str, report: IngestReport, refused: str | None) -> str:
    # Files of a batch that does not add up (or was refused) are not done: the next run
    # takes them again (every write is idempotent for the batch), rather than skip them.
    if status in ("failed", "parked"):
        return status
    if refused:
        return "refused"
    return status if report.reconciled else "unreconciled"
