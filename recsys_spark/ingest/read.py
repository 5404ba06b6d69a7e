"""Read a batch of raw files and validate it, finding the files that cannot be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.config import IngestConfig
from recsys_spark.ingest.dedup import ROW_ID, row_id
from recsys_spark.ingest.report import FileOutcome
from recsys_spark.ingest.validate import standardize_raw, validate_events
from recsys_spark.io.delta import session_conf
from recsys_spark.io.files import SourceFile, read_header, read_raw_logs
from recsys_spark.logs import get_logger, stage
from recsys_spark.session import quiet_task_failures

log = get_logger(__name__)

# Settings of the batch's cache. Uncompressed, the cache of a batch is about twice as big
# and costs a third of the time to build; it is scanned a few times and dropped at the end
# of the batch.
CACHE_SETTINGS = {"spark.sql.inMemoryColumnarStorage.compressed": "false"}


def read_validated(
    spark: SparkSession, cfg: IngestConfig, pending: list[SourceFile], now: datetime
) -> tuple[DataFrame | None, list[FileOutcome]]:
    """Read and validate all pending files at once; on failure, find the unreadable ones.

    Returns the validated rows (persisted, with a `ROW_ID` per row: the caller unpersists;
    None when no file could be read) and one outcome per file, with its row and
    quarantine counts and the dates of its valid events, or its error.
    """
    with stage(log, f"read and validate {len(pending)} files"), quiet_task_failures(spark):
        try:
            return validated_with_counts(spark, cfg, pending, now)
        except Exception as exc:  # noqa: BLE001 - any reader failure: isolate the bad files
            if len(pending) == 1:
                return None, [FileOutcome(pending[0], "failed", error=first_line(exc))]
            log.warning("batch read failed (%s); reading file by file", first_line(exc))
        failed, readable = [], []
        columns = None  # a CSV file's columns must be those of the first readable file
        for source in pending:
            try:
                frame, _ = validated_with_counts(spark, cfg, [source], now, columns)
                frame.unpersist()
                columns = columns or file_columns(spark, cfg, source.path)
                readable.append(source)
            except Exception as exc:  # noqa: BLE001
                log.error("unreadable file %s: %s", source.path, first_line(exc))
                failed.append(FileOutcome(source, "failed", error=first_line(exc)))
        if not readable:
            return None, failed
        # Files that each read alone may still not read together (Parquet files that type a
        # column differently): read them one by one again, as they were checked.
        frame, outcomes = validated_with_counts(
            spark, cfg, readable, now, columns, file_by_file=True
        )
        return frame, outcomes + failed


def validated_with_counts(
    spark: SparkSession,
    cfg: IngestConfig,
    files: list[SourceFile],
    now: datetime,
    columns: list[str] | None = None,
    *,
    file_by_file: bool = False,
) -> tuple[DataFrame, list[FileOutcome]]:
    """The validated rows of `files`, persisted with a `ROW_ID`, and one outcome per file.

    With `file_by_file`, each file is read on its own (with its own Parquet or JSON schema)
    and the validated rows are put together; otherwise all files are read at once.
    """
    if file_by_file:
        validated = reduce(
            DataFrame.unionByName, (validated_rows(spark, cfg, [f], now, columns) for f in files)
        )
    else:
        validated = validated_rows(spark, cfg, files, now, columns)
    with session_conf(spark, CACHE_SETTINGS):
        validated = validated.withColumn(ROW_ID, row_id()).persist(StorageLevel.MEMORY_AND_DISK)
        counts = counts_by_file(validated)  # this pass also fills the cache
    outcomes = []
    for f in files:
        c = counts.get(f.path, FileCounts())
        outcomes.append(
            FileOutcome(
                f,
                "ingested",
                c.rows,
                sum(n for _, n, _ in c.reasons),
                event_dates=tuple(sorted(c.dates)),
                reasons=tuple(c.reasons),
            )
        )
    unmatched = set(counts) - {f.path for f in files}
    if unmatched:  # a path spelt differently by the reader: keep the rows, flag the log
        log.warning("rows from unlisted paths %s", sorted(unmatched))
    return validated, outcomes


def validated_rows(
    spark: SparkSession,
    cfg: IngestConfig,
    files: list[SourceFile],
    now: datetime,
    columns: list[str] | None = None,
) -> DataFrame:
    """Every row of `files`, read as `cfg` says and validated (`validate_events` columns).

    CSV files are read with `columns` (default: `file_columns` of the first file); a file
    whose header disagrees with them fails the read.
    """
    mapping = cfg.columns
    raw = read_raw_logs(
        spark,
        [f.path for f in files],
        cfg.format,
        mapped_columns(cfg),
        csv_delimiter=cfg.csv_delimiter,
        csv_header=cfg.csv_header,
        file_columns=columns or file_columns(spark, cfg, files[0].path),
        id_columns=(mapping.user, mapping.item),
    )
    return validate_raw(raw, cfg, now)


def mapped_columns(cfg: IngestConfig) -> list[str]:
    """The raw log's columns that `ingest.columns` maps, in the order user, item,
    timestamp, event type, value."""
    m = cfg.columns
    return [c for c in (m.user, m.item, m.timestamp, m.event_type, m.value) if c]


def validate_raw(
    raw: DataFrame, cfg: IngestConfig, now: datetime, keep: tuple[str, ...] = ()
) -> DataFrame:
    """Validate raw rows (`read_raw_logs` columns) under `cfg`; `keep` is carried through."""
    mapping = cfg.columns
    standard = standardize_raw(
        raw,
        user_col=mapping.user,
        item_col=mapping.item,
        timestamp_col=mapping.timestamp,
        event_type_col=mapping.event_type,
        value_col=mapping.value,
        keep=keep,
    )
    return validate_events(
        standard,
        timestamp_format=cfg.timestamp_format,
        min_ts=datetime.fromisoformat(cfg.min_timestamp).replace(tzinfo=UTC),
        max_ts=now + timedelta(days=cfg.max_future_days),
        event_weights=cfg.event_weights,
        default_event_type=cfg.default_event_type,
        has_event_type=bool(mapping.event_type),
        weight_rule=cfg.weight_rule,
        value_threshold=cfg.value_threshold,
        keep=keep,
    )


def file_columns(spark: SparkSession, cfg: IngestConfig, path: str) -> list[str] | None:
    """Every column of a CSV log, in order: the header of the file at `path`, or
    `csv_columns` for files without one. None for the other formats (read by name)."""
    if cfg.format != "csv":
        return None
    if cfg.csv_header:
        return read_header(spark, path, cfg.csv_delimiter)
    return list(cfg.csv_columns)


def counts_by_file(validated: DataFrame) -> dict[str, FileCounts]:
    """Rows, invalid rows per reason (with one raw example) and valid dates, per file.

    The dates let the anti-join read only the files of the dates a batch touches; the reasons feed
    the batch's circuit breaker. One row per file and date or reason comes back: a log
    file spans few dates and few reasons. Unpersists `validated` on failure.
    """
    valid_date = F.when(F.col(C.REASON).isNull(), F.col(C.EVENT_DATE))
    try:
        rows = (
            validated.groupBy(C.SOURCE_FILE, valid_date.alias("date"), C.REASON)
            .agg(F.count(F.lit(1)).alias("rows"), F.min(C.RAW).alias("example"))
            .collect()
        )
    except Exception:
        validated.unpersist()
        raise
    counts: dict[str, FileCounts] = {}
    for row in sorted(rows, key=lambda r: (r[C.SOURCE_FILE], str(r["date"]), str(r[C.REASON]))):
        c = counts.setdefault(row[C.SOURCE_FILE], FileCounts())
        c.rows += row["rows"]
        if row[C.REASON] is not None:
            c.reasons.append((row[C.REASON], row["rows"], row["example"] or ""))
        elif row["date"] is not None:
            c.dates.append(row["date"])
    return counts


@dataclass
class FileCounts:
    """What the read pass counted in one file."""

    rows: int = 0
    reasons: list[tuple[str, int, str]] = field(default_factory=list)
    dates: list[date] = field(default_factory=list)


def first_line(exc: BaseException) -> str:
    """One line saying why a read failed, for the log and the ingest log.

    An error that PySpark passes on from the JVM unconverted says only which call failed
    ("An error occurred while calling o123.collectToPython"): its root cause says why.
    """
    java = getattr(exc, "java_exception", None)
    if java is not None:
        while java.getCause() is not None:
            java = java.getCause()
        text = str(java.toString()).strip().splitlines()
    else:
        text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]
