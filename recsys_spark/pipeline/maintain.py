"""Table maintenance: OPTIMIZE, then VACUUM, of every Delta table under the storage root.

Appends leave small files (a night's batch adds a file or two to `interactions`, each
publication a few to the recommendations tables) and every rewrite leaves the files of
older versions behind. `maintain_lake` compacts each table (for the liquid-clustered
`interactions`, OPTIMIZE also clusters it by event date, which keeps date-window reads
narrow) and deletes the files no version of the last `maintenance.retention_hours`
reads, never fewer hours than Delta's default safety interval (the config refuses less).
One row per table and run goes to `maintenance_log`; `maintenance_due` reads it for the
night's schedule.

A night's working tables (`<root>/nightly/run_date=D/`) are left alone: they are written
whole by each attempt of their night and read by nothing afterwards.

The caller holds the storage root's lock (jobs/maintain.py and the night take it): VACUUM
must not delete the files of a write in progress.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import tables
from recsys_spark.config import MaintenanceConfig, StorageConfig
from recsys_spark.io import delta
from recsys_spark.io.files import hadoop_path
from recsys_spark.logs import get_logger, stage

log = get_logger(__name__)

# VACUUM lists a table's folders in a Spark job of this many tasks (Spark's default,
# 10,000, made a three-file table take 20-40 s here); one per core is plenty for tables
# with no or few partition folders.
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
# Folders under the root that are not searched for tables (see the module docstring).
SKIPPED_FOLDERS = (tables.NIGHTLY,)
SEARCH_DEPTH = 2  # <root>/<table> and <root>/holdout/<table>

LOG_SCHEMA = T.StructType(
    [
        T.StructField("run_date", T.DateType(), False),
        T.StructField("table", T.StringType(), False),
        T.StructField("files_compacted", T.LongType(), False),
        T.StructField("files_written", T.LongType(), False),
        T.StructField("files_deleted", T.LongType(), False),
        T.StructField("retention_hours", T.IntegerType(), False),
        T.StructField("seconds", T.DoubleType(), False),
        T.StructField("maintained_at", T.TimestampType(), False),
    ]
)


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one table (`table` is its path under the storage root)."""

    table: str
    files_compacted: int  # small files OPTIMIZE rewrote into bigger (or clustered) ones ...
    files_written: int  # ... as these
    files_deleted: int  # files VACUUM deleted: no version within the retention reads them
    seconds: float


def lake_tables(spark: SparkSession, storage: StorageConfig) -> list[str]:
    """The Delta tables under the storage root, as paths relative to it, sorted.

    Searched `SEARCH_DEPTH` folders deep; hidden folders (`.`, `_`) and `SKIPPED_FOLDERS`
    are not entered.
    """
    fs, root = hadoop_path(spark, storage.root)
    if not fs.exists(root):
        return []
    found: list[str] = []

    def search(folder, prefix: str, depth: int) -> None:  # type: ignore[no-untyped-def]
        for status in fs.listStatus(folder):
            name = status.getPath().getName()
            if not status.isDirectory() or name.startswith((".", "_")):
                continue
            if fs.exists(status.getPath().suffix("/_delta_log")):
                found.append(prefix + name)
            elif depth > 1 and name not in SKIPPED_FOLDERS:
                search(status.getPath(), f"{prefix}{name}/", depth - 1)

    search(root, "", SEARCH_DEPTH)
    return sorted(found)


def maintain_table(spark: SparkSession, path: str, retention_hours: int) -> dict[str, int]:
    """OPTIMIZE then VACUUM the table at `path`: the files OPTIMIZE compacted and wrote,
    and the files VACUUM deleted (counted on storage, before and after)."""
    table = DeltaTable.forPath(spark, path)
    version = delta.table_version(spark, path)
    optimized = table.optimize().executeCompaction().first()
    metrics = optimized["metrics"] if optimized else None
    stored = _stored_files(spark, path)
    with delta.session_conf(
        spark, {LISTING_PARALLELISM: str(spark.sparkContext.defaultParallelism)}
    ):
        table.vacuum(float(retention_hours))
    delta.commit_metrics(spark, path, version)  # counts the commits since `version`
    return {
        "files_compacted": int(metrics["numFilesRemoved"]) if metrics else 0,
        "files_written": int(metrics["numFilesAdded"]) if metrics else 0,
        "files_deleted": stored - _stored_files(spark, path),
    }


def _stored_files(spark: SparkSession, path: str) -> int:
    """Files in the table's folder outside its transaction log (what VACUUM may delete)."""
    fs, folder = hadoop_path(spark, path)
    count, files = 0, fs.listFiles(folder, True)
    while files.hasNext():
        count += "/_delta_log/" not in files.next().getPath().toString()
    return count


def maintain_lake(
    spark: SparkSession,
    storage: StorageConfig,
    cfg: MaintenanceConfig,
    run_date: date,
    *,
    now: datetime | None = None,
) -> list[TableMaintenance]:
    """Maintain every table under the storage root; one `maintenance_log` row each.

    The log is appended once, after the last table: a run that fails midway logs nothing
    and is simply run again (OPTIMIZE and VACUUM of a maintained table change no data;
    Delta records each VACUUM as VACUUM START / END commits).
    """
    now = now or datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    names = [n for n in lake_tables(spark, storage) if n != tables.MAINTENANCE_LOG]
    log.info(
        "maintaining %d tables under %s (VACUUM retention %d h)",
        len(names),
        storage.root,
        cfg.retention_hours,
    )
    done = []
    for i, name in enumerate(names, 1):
        start = time.perf_counter()
        with stage(log, f"maintain {name} ({i}/{len(names)})"):
            counts = maintain_table(spark, storage.table(name), cfg.retention_hours)
        done.append(TableMaintenance(name, **counts, seconds=time.perf_counter() - start))
        log.info(
            "%s: %d files compacted into %d, %d old files deleted",
            name,
            counts["files_compacted"],
            counts["files_written"],
            counts["files_deleted"],
        )
    if done:
        rows = [
            {
                **asdict(t),
                "run_date": run_date,
                "retention_hours": cfg.retention_hours,
                "maintained_at": now,
            }
            for t in done
        ]
        delta.append(spark.createDataFrame(rows, LOG_SCHEMA), storage.table(tables.MAINTENANCE_LOG))
    return done


def last_maintained(spark: SparkSession, storage: StorageConfig) -> date | None:
    """The run date of the newest maintenance logged; for a lake never maintained, that of
    its first night (`night_inputs`): a young lake has nothing to compact or delete yet.
    None when there is neither."""
    newest = _run_date(spark, storage.table(tables.MAINTENANCE_LOG), F.max)
    return newest or _run_date(spark, storage.table(tables.NIGHT_INPUTS), F.min)


def _run_date(spark: SparkSession, path: str, pick) -> date | None:  # type: ignore[no-untyped-def]
    """`pick` (F.min or F.max) of the table's `run_date`; None without a table or rows."""
    if not delta.table_exists(spark, path):
        return None
    return delta.read_table(spark, path).agg(pick("run_date")).first()[0]


def maintenance_due(last: date | None, run_date: date, every_days: int) -> bool:
    """True when maintenance is on (`every_days` > 0) and the last one is that old, or none.

    A backfill of past nights (run dates before the last maintenance) never maintains.
    """
    if every_days <= 0:
        return False
    return last is None or run_date >= last + timedelta(days=every_days)
