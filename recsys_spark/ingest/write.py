"""The writes of one ingest batch: quarantine, user and item indices, interactions.

Each table gets one Delta commit, idempotent for the batch: quarantine rows of the batch
are replaced, index and interaction rows are inserted only for keys not stored yet. Every
count that reconciles the batch comes from the write itself (Delta's commit metrics, or
rows counted as they flow into the write), never from a second read.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import StorageConfig
from recsys_spark.ingest import schemas
from recsys_spark.ingest.dedup import drop_repeats, first_copies, repeated_key_hashes
from recsys_spark.ingest.index import assign_new_indices
from recsys_spark.ingest.report import IngestReport
from recsys_spark.io import delta
from recsys_spark.logs import get_logger, stage

log = get_logger(__name__)

# The interactions table's layout: not partitioned, liquid-clustered by event date. A
# night's batch appends a file or two, a 20-year backfill as few (date partitions made one
# file per day and task); readers of a date window skip files by their event_date range,
# which OPTIMIZE (jobs/maintain.py) keeps narrow by clustering. BENCHMARKS.md has the
# figures of the layouts measured.
CLUSTER_BY = (C.EVENT_DATE,)
# Settings of the interactions writes. Delta keeps min/max statistics of these columns
# only (it defaults to the first 32; applies to a new table): the ones that readers filter
# on, the clustering column first. Statistics and Parquet dictionaries of near-unique
# columns (event_id, event_ts) save nothing and cost more to build than the rest.
STATS_COLUMNS = (C.EVENT_DATE, C.EVENT_TS, C.USER_IDX, C.ITEM_IDX, C.BATCH_ID, C.INGESTED_AT)
WRITE_SETTINGS = {
    "spark.databricks.delta.properties.defaults.dataSkippingStatsColumns": ",".join(STATS_COLUMNS),
    f"parquet.enable.dictionary#{C.EVENT_ID}": "false",
    f"parquet.enable.dictionary#{C.EVENT_TS}": "false",
}


def write_batch(
    spark: SparkSession,
    storage: StorageConfig,
    validated: DataFrame | None,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
) -> IngestReport:
    """Write the quarantine rows, then the valid events, of a validated batch.

    `validated` is the persisted output of `read_validated` (None when no file could be
    read). Returns `report` with the written counts and any reconciliation problems.
    """
    report = write_quarantine(spark, storage, validated, report, now, full_refresh)
    if validated is None:
        return report
    return write_events(spark, storage, validated, report, now, full_refresh)


def write_events(
    spark: SparkSession,
    storage: StorageConfig,
    validated: DataFrame,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
) -> IngestReport:
    """Number the new ids of the valid rows of `validated`, then insert their new events.

    `validated` is persisted with a `ROW_ID`. Returns `report` with the new ids, the
    inserted rows and the duplicates.
    """
    valid = validated.filter(F.col(C.REASON).isNull())
    with stage(log, "update user and item indices"):
        new_users = _update_index(
            spark, storage, valid, tables.USER_INDEX, C.USER_ID, C.USER_IDX, report.batch_id
        )
        new_items = _update_index(
            spark, storage, valid, tables.ITEM_INDEX, C.ITEM_ID, C.ITEM_IDX, report.batch_id
        )
    report = replace(report, new_users=new_users, new_items=new_items)
    return _write_interactions(spark, storage, valid, report, now, full_refresh)


def write_quarantine(
    spark: SparkSession,
    storage: StorageConfig,
    validated: DataFrame | None,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
    status: str = "quarantined",
) -> IngestReport:
    """Replace the batch's quarantine rows (and those of unfinished or earlier failed
    reads of its files) with its invalid rows and one row per unreadable file, marked
    `status`; returns `report` with the count Delta wrote."""
    failed_rows = [
        (report.batch_id, o.file.path, "unreadable_file", o.error, now, status)
        for o in report.files
        if o.status in ("failed", "parked")
    ]
    quarantine = spark.createDataFrame(failed_rows, schemas.QUARANTINE)
    if validated is not None:
        bad = validated.filter(F.col(C.REASON).isNotNull()).select(
            F.lit(report.batch_id).alias(C.BATCH_ID),
            C.SOURCE_FILE,
            C.REASON,
            C.RAW,
            F.lit(now).alias(C.QUARANTINED_AT),
            F.lit(status).alias(C.STATUS),
        )
        quarantine = bad.unionByName(quarantine)
    path = storage.table(tables.QUARANTINE)
    expected = sum(o.rows_quarantined for o in report.files)
    with stage(log, "write quarantine"):
        if full_refresh:
            metrics = delta.overwrite(quarantine, path)
        else:
            condition = _quarantine_condition(report)
            # A first batch creates the table even when clean: its readers expect it.
            exists = delta.table_exists(spark, path)
            if expected or failed_rows or not exists or _holds_rows(spark, path, condition):
                metrics = delta.replace_where(quarantine, path, condition, merge_schema=True)
            else:  # a clean batch with nothing to take back: no commit at all
                metrics = {}
    # Delta's count of the rows it wrote: what is stored, not what we meant to store.
    quarantined = metrics.get("numOutputRows", 0) - len(failed_rows)
    problems = list(report.problems)
    if quarantined != expected:
        problems.append(f"{expected} invalid rows but {quarantined} written to quarantine")
    return replace(report, rows_quarantined=quarantined, problems=tuple(problems))


def _holds_rows(spark: SparkSession, path: str, condition: str) -> bool:
    """Whether the table at `path` has a row matching `condition`."""
    return bool(delta.read_table(spark, path).filter(condition).limit(1).collect())


def _quarantine_condition(report: IngestReport) -> str:
    """The quarantine rows that this batch's rows replace: its own (a rerun of the same
    files) and every earlier row of its files.

    A file is in a batch because it was never read in full: its earlier rows are those of
    a crashed run (no `ingest_batches` row; its files come back in the next batch, perhaps
    with others beside them), of a refused batch, of an earlier failed read (its one
    `unreadable_file` row), or of an older version of the file, whose rows the new read
    quarantines again. Nothing is read to decide it.
    """
    condition = f"{C.BATCH_ID} = {delta.sql_string(report.batch_id)}"
    paths = [o.file.path for o in report.files]
    return f"{condition} OR {delta.sql_in(C.SOURCE_FILE, paths)}" if paths else condition


def _update_index(
    spark: SparkSession,
    storage: StorageConfig,
    events: DataFrame,
    table: str,
    id_col: str,
    idx_col: str,
    batch_id: str | None,
) -> int:
    """Number the new ids of `events` into the index table; returns how many were added."""
    path = storage.table(table)
    schema = schemas.index_schema(id_col, idx_col)
    exists = delta.table_exists(spark, path)
    existing = delta.read_table(spark, path) if exists else spark.createDataFrame([], schema)
    new = assign_new_indices(events, existing, id_col=id_col, idx_col=idx_col).select(
        id_col, idx_col, F.lit(batch_id).alias(C.BATCH_ID)
    )
    # An append: `new` holds only ids absent from the index as read just now (those a
    # crashed run stored included), and one writer at a time holds the storage root
    # (the ingest job and the night take its lock). One commit; none without new ids.
    return delta.append(new, path).get("numOutputRows", 0)


def _write_interactions(
    spark: SparkSession,
    storage: StorageConfig,
    valid: DataFrame,
    report: IngestReport,
    now: datetime,
    full_refresh: bool,
) -> IngestReport:
    path = storage.table(tables.INTERACTIONS)
    written = report.rows_valid > 0 or full_refresh
    # Persisted and counted, each before the next is planned (a plan is fixed when it is
    # persisted), so that Spark knows how small they are and broadcasts them: the batch
    # itself is then never shuffled.
    hashes = repeated_key_hashes(valid).persist()
    first = None
    try:
        with stage(log, "find repeated events"):
            hashes.count()
            first = first_copies(valid, hashes).persist()
            log.info("%d events repeat within the batch", first.count())
        events, distinct_rows, joined_rows = _indexed_events(
            spark, storage, drop_repeats(valid, first), report, now
        )
        with stage(log, f"write {report.rows_valid} valid rows into interactions"):
            metrics, meant = _write_events(
                spark, events, path, report.event_dates, written, full_refresh
            )
    finally:
        if first is not None:
            first.unpersist()
        hashes.unpersist()
    # Delta's own count of the rows it wrote, against the rows counted on their way in.
    inserted = metrics.get("numOutputRows", 0)
    distinct = _observed_rows(distinct_rows) if written and report.rows_valid else 0
    joined = _observed_rows(joined_rows) if distinct else 0
    to_write = joined if meant is None else (_observed_rows(meant) if joined else 0)
    problems = list(report.problems)
    if joined != distinct:
        problems.append(
            f"{distinct} distinct valid events but {joined} found their user and item index"
        )
    if written and inserted != to_write:
        problems.append(f"{to_write} events to write but the write stored {inserted}")
    return replace(
        report,
        problems=tuple(problems),
        rows_inserted=inserted,
        duplicates_existing=joined - inserted,
        duplicates_in_batch=report.rows_valid - distinct,
        interactions_version=delta.table_version(spark, path),
    )


def _indexed_events(
    spark: SparkSession,
    storage: StorageConfig,
    distinct: DataFrame,
    report: IngestReport,
    now: datetime,
) -> tuple[DataFrame, Observation, Observation]:
    """The interactions rows of the batch, and observations counting them on the way.

    Rows are counted after the deduplication and after the index joins: an id missing
    from an index would lose its row there, and the reconciliation must see that.
    """
    users = delta.read_table(spark, storage.table(tables.USER_INDEX)).select(C.USER_ID, C.USER_IDX)
    items = delta.read_table(spark, storage.table(tables.ITEM_INDEX)).select(C.ITEM_ID, C.ITEM_IDX)
    distinct_rows, joined_rows = Observation(), Observation()
    events = (
        distinct.observe(distinct_rows, F.count(F.lit(1)).alias("rows"))
        .join(users, on=C.USER_ID, how="inner")
        .join(items, on=C.ITEM_ID, how="inner")
        .select(
            *schemas.INTERACTIONS.fieldNames()[:-2],
            F.lit(report.batch_id).alias(C.BATCH_ID),
            F.lit(now).alias(C.INGESTED_AT),
        )
        .observe(joined_rows, F.count(F.lit(1)).alias("rows"))
    )
    return events, distinct_rows, joined_rows


def _write_events(
    spark: SparkSession,
    events: DataFrame,
    path: str,
    dates: tuple[date, ...],
    written: bool,
    full_refresh: bool,
) -> tuple[dict[str, int], Observation | None]:
    """Write the batch's events in one commit; returns the commit metrics, and for an
    incremental batch the count of the events it meant to insert (new keys only).

    A new table gets its clustering in a second, metadata-only commit after the data
    (Delta cannot create a clustered table from a DataFrame write); a table of the older
    layout, partitioned by date, keeps it until a full refresh rebuilds it (data, then
    its statistics columns, then the clustering: three commits).
    """
    if not written:
        return {}, None
    with delta.session_conf(spark, WRITE_SETTINGS):
        exists = delta.table_exists(spark, path)
        if full_refresh and exists and delta.clustering_columns(spark, path) == list(CLUSTER_BY):
            # Every row replaced in one commit that keeps the clustering (an overwrite
            # would drop it).
            return delta.replace_where(events, path, "true"), None
        if full_refresh:
            metrics = delta.overwrite(events, path)
            if exists:  # a table of the older layout: its statistics lacked the date
                stats = {"delta.dataSkippingStatsColumns": ",".join(STATS_COLUMNS)}
                delta.set_properties(spark, path, stats)
        elif not exists:
            # Nothing stored yet, so nothing to deduplicate against: a plain write, which
            # also creates the table.
            metrics = delta.append(events, path)
        else:
            return _append_new_events(spark, events, path, dates)
        # the table is new, or was just overwritten unpartitioned
        delta.cluster_by(spark, path, CLUSTER_BY)
        return metrics, None


def _observed_rows(observation: Observation) -> int:
    """The row count of an observation whose query has run.

    When Spark optimises away the part of a plan holding the observation (an empty join
    side or shuffle), the query completes it with no metrics at all: no row went by.
    """
    try:
        return int(observation.get["rows"])
    except Exception:  # noqa: BLE001 - PySpark cannot convert the empty metrics row
        return 0


def _append_new_events(
    spark: SparkSession, events: DataFrame, path: str, dates: tuple[date, ...]
) -> tuple[dict[str, int], Observation]:
    """Append the batch's events whose (event_date, event_id) is not stored yet.

    Only the files whose event_date range meets the batch's dates are read (every file
    when there are no dates: rows from paths the listing spelt differently). An append,
    not a MERGE: one writer at a time holds the storage root (the ingest job and the
    night take its lock), and an insert-only MERGE did the same anti-join at twice the
    cost.
    """
    stored = delta.read_table(spark, path).select(C.EVENT_DATE, C.EVENT_ID)
    if dates:
        stored = stored.filter(F.col(C.EVENT_DATE).isin(list(dates)))
    new_rows = Observation()
    new = events.join(stored, on=[C.EVENT_DATE, C.EVENT_ID], how="left_anti").observe(
        new_rows, F.count(F.lit(1)).alias("rows")
    )
    return delta.append(new, path), new_rows
