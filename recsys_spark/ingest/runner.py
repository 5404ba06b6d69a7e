"""The ingest batch: new raw files -> quarantine, id indices, interactions, ingest logs.

Every step is an idempotent Delta commit keyed by a deterministic batch id (a hash of
the batch's files, sizes and modification times), so a crash at any point followed by
a rerun converges to the same tables: the quarantine and log rows of the batch are
replaced, index and interaction rows are inserted only for keys not stored yet.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from recsys_spark.config import IngestConfig, StorageConfig
from recsys_spark.config.sections_data import ingest_extensions
from recsys_spark.errors import BatchRefusedError, NoReadableFileError, ReconciliationError
from recsys_spark.ingest.breaker import refusal
from recsys_spark.ingest.checks import check_mapped_columns, check_writable
from recsys_spark.ingest.filelog import FileHistory, file_key, read_history, write_logs
from recsys_spark.ingest.read import read_validated
from recsys_spark.ingest.report import FileOutcome, IngestReport
from recsys_spark.ingest.write import write_batch, write_quarantine
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

    Before any data is read: ConfigError when the storage root cannot be written or a
    mapped column is missing from a file. After the read: BatchRefusedError, with the
    batch's quarantine rows kept as `refused` and nothing else committed, when the
    circuit breaker refuses it (`breaker.refusal`); ReconciliationError, after recording
    the batch, when its counts do not add up; with `require_readable` (the ingest job),
    NoReadableFileError when new files were found and none could be read (a file parked
    by this run does not count: it is reported, not retried).
    """
    now = now or datetime.now(UTC).replace(microsecond=0)
    check_writable(spark, storage.root)
    with stage(log, "list source files"):
        listing = list_source_files(spark, cfg.source, ingest_extensions(cfg))
        files = listing.files
        history = FileHistory() if full_refresh else read_history(spark, storage)
        pending = [f for f in files if file_key(f) not in history.done]
    parked = tuple(f.path for f in files if file_key(f) in (history.parked or {}))
    ignored = tuple(f.path for f in listing.ignored)
    _log_listing(cfg, files, pending, parked, ignored)
    if not pending:
        return IngestReport(
            batch_id=None,
            files_seen=len(files),
            files_skipped=len(files),
            files_ignored=ignored,
            files_parked=parked,
        )
    check_mapped_columns(spark, cfg, pending)
    batch_id = _batch_id(pending)
    validated, outcomes = read_validated(spark, cfg, pending, now)
    outcomes = [_count_attempt(o, history, cfg) for o in outcomes]
    report = IngestReport(
        batch_id=batch_id,
        files_seen=len(files),
        files_skipped=len(files) - len(pending),
        files=tuple(outcomes),
        rows_read=sum(o.rows_read for o in outcomes),
        files_ignored=ignored,
        files_parked=parked + tuple(o.file.path for o in outcomes if o.status == "parked"),
    )
    refused = None if full_refresh else refusal(cfg, report)
    try:
        if refused:
            report = write_quarantine(
                spark, storage, validated, report, now, full_refresh, status="refused"
            )
        else:
            report = write_batch(spark, storage, validated, report, now, full_refresh)
    finally:
        if validated is not None:
            validated.unpersist()
    with stage(log, "write ingest logs"):
        write_logs(spark, storage, report, now, full_refresh=full_refresh, refused=refused)
    if refused:
        raise BatchRefusedError(refused)
    log.info(report.summary())
    if not report.reconciled:
        raise ReconciliationError(
            f"batch {batch_id} does not reconcile: {report.summary()}; {'; '.join(report.problems)}"
        )
    failed = [o for o in report.files if o.status == "failed"]
    for o in report.files:
        if o.status == "parked":
            log.warning(
                "parked %s after %d failed reads (%s): it is not read again until it changes",
                o.file.path,
                o.attempts,
                o.error,
            )
    if failed:
        log.warning(
            "%d unreadable files recorded in ingest_log and quarantine; each is read again by "
            "the next run, and parked after %d failed reads",
            len(failed),
            cfg.max_file_attempts,
        )
    if require_readable and failed and len(failed) == len(report.files):
        raise NoReadableFileError(
            "no new file could be read: check ingest.format and the files' contents "
            f"({failed[0].file.path}: {failed[0].error})"
        )
    log.info("tables under %s", storage.root)
    return report


def _count_attempt(outcome: FileOutcome, history: FileHistory, cfg: IngestConfig) -> FileOutcome:
    """The outcome with this read counted; a failed read that uses up the attempts parks."""
    attempts = history.attempts_of(outcome.file)
    status = outcome.status
    if status == "failed" and attempts >= cfg.max_file_attempts:
        status = "parked"
    return replace(outcome, attempts=attempts, status=status)


def _log_listing(
    cfg: IngestConfig,
    files: list[SourceFile],
    pending: list[SourceFile],
    parked: tuple[str, ...],
    ignored: tuple[str, ...],
) -> None:
    log.info("%d files at %s, %d new", len(files), cfg.source, len(pending))
    if not files and not ignored:
        log.warning("no data files at %s (names starting with . or _ are skipped)", cfg.source)
    if ignored:
        names = ", ".join(p.rsplit("/", 1)[-1] for p in ignored[:5])
        log.warning(
            "skipped %d files whose names are not of ingest.format %s (%s%s); "
            "set ingest.extensions to read them",
            len(ignored),
            cfg.format,
            names,
            ", ..." if len(ignored) > 5 else "",
        )
    if parked:
        log.warning(
            "%d parked files are not read again until they change (see ingest_log): %s",
            len(parked),
            ", ".join(parked[:5]),
        )


def _batch_id(files: list[SourceFile]) -> str:
    signature = "\n".join(f"{f.path}|{f.size_bytes}|{f.modified_at.isoformat()}" for f in files)
    return hashlib.md5(signature.encode()).hexdigest()[:16]
