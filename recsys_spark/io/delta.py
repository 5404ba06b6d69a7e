"""Delta Lake reads and writes used across the jobs.

Every write here is one Delta commit: a crash before it leaves the table at its previous
version, a crash after it leaves the new one. Nothing is ever half written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from recsys_spark.errors import MissingInputError
from recsys_spark.io.files import hadoop_path

# Delta commits this process has made: those of this module's writers, and any others a
# caller counts by calling `commit_metrics` after its own commit (the night's summary
# shows them per stage).
_commits_made = 0


def commits_made() -> int:
    """How many Delta commits this process has made so far (see `_commits_made`)."""
    return _commits_made


def _note_commits(count: int) -> None:
    global _commits_made
    _commits_made += max(count, 0)


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, path)


def read_table(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """Read the Delta table at `path`, optionally at an older `version` (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def read_required(spark: SparkSession, path: str, *, made_by: str = "jobs/ingest.py") -> DataFrame:
    """The table at `path`; MissingInputError naming the job that makes it when it is absent."""
    if not table_exists(spark, path):
        raise MissingInputError(f"no Delta table at {path}: run {made_by} first")
    return read_table(spark, path)


def read_or_empty(spark: SparkSession, path: str, schema: T.StructType) -> DataFrame:
    """The table at `path`, or an empty frame of `schema` when it does not exist yet."""
    if table_exists(spark, path):
        return read_table(spark, path)
    return spark.createDataFrame([], schema)


def ensure_table(
    spark: SparkSession, path: str, schema: T.StructType, partition_by: tuple[str, ...] = ()
) -> None:
    """Create an empty Delta table at `path` with `schema` unless one exists there."""
    if table_exists(spark, path):
        return
    writer = spark.createDataFrame([], schema).write.format("delta").mode("ignore")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    _note_commits(1)


def overwrite(df: DataFrame, path: str, partition_by: tuple[str, ...] = ()) -> dict[str, int]:
    """Replace the whole table at `path` with `df` (one commit); returns the commit's metrics."""
    before = table_version(df.sparkSession, path)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    return commit_metrics(df.sparkSession, path, before)


def clustering_columns(spark: SparkSession, path: str) -> list[str]:
    """The liquid-clustering columns of the table at `path` (empty when it has none)."""
    return list(DeltaTable.forPath(spark, path).detail().first()["clusteringColumns"] or [])


def cluster_by(spark: SparkSession, path: str, columns: tuple[str, ...]) -> None:
    """Make the unpartitioned table at `path` liquid-clustered by `columns` (one metadata
    commit); OPTIMIZE clusters the files it rewrites from then on. Delta refuses it for a
    partitioned table."""
    names = ", ".join(f"`{c}`" for c in columns)
    spark.sql(f"ALTER TABLE {_sql_table(path)} CLUSTER BY ({names})")
    _note_commits(1)


def set_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> None:
    """Set table properties of the table at `path` (one metadata commit)."""
    pairs = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
    spark.sql(f"ALTER TABLE {_sql_table(path)} SET TBLPROPERTIES ({pairs})")
    _note_commits(1)


def _sql_table(path: str) -> str:
    """The table at `path` as a SQL identifier."""
    return "delta.`" + path.replace("`", "``") + "`"


def sql_string(text: str) -> str:
    """`text` as a Spark SQL string literal (for a `replaceWhere` condition)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_in(column: str, values: list[str]) -> str:
    """`column IN ('a', 'b')` with each value quoted as a SQL string literal."""
    return f"{column} IN ({', '.join(sql_string(v) for v in values)})"


def replace_where(
    df: DataFrame,
    path: str,
    condition: str,
    *,
    merge_schema: bool = False,
    partition_by: tuple[str, ...] = (),
) -> dict[str, int]:
    """Atomically replace the rows matching `condition` with `df` (an idempotent append).

    A missing table is created with `df`'s rows (partitioned by `partition_by`), in the
    same single commit. `merge_schema` adds the columns of `df` that an older table lacks.
    """
    before = table_version(df.sparkSession, path)
    writer = df.write.format("delta").mode("overwrite")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if before is not None:
        writer = writer.option("replaceWhere", condition)
    elif partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    return commit_metrics(df.sparkSession, path, before)


def append(df: DataFrame, path: str, partition_by: tuple[str, ...] = ()) -> dict[str, int]:
    """Append `df` to the table at `path`, creating it (partitioned) if absent; one commit.

    Returns the commit's metrics (numOutputRows, numFiles, ...).
    """
    before = table_version(df.sparkSession, path)
    writer = df.write.format("delta").mode("append")
    if partition_by and before is None:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    return commit_metrics(df.sparkSession, path, before)


def insert_new(
    spark: SparkSession, source: DataFrame, path: str, key_columns: tuple[str, ...]
) -> dict[str, int]:
    """MERGE `source` into the table at `path`, inserting only rows whose key is new.

    Rows whose key already exists are left alone, so re-running the same source adds
    nothing. `source` must not repeat a key. Returns the MERGE commit's metrics
    (numSourceRows, numTargetRowsInserted, ...); {} if nothing committed.
    """
    condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in key_columns)
    before = table_version(spark, path)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )
    return commit_metrics(spark, path, before)


@contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Apply SQL `settings` for the duration of the block, then restore the previous ones."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def commit_metrics(spark: SparkSession, path: str, before: int | None) -> dict[str, int]:
    """operationMetrics of the commit just made, as integers; {} when none was made.
    Counts every commit since `before` in `commits_made`.

    `before` is the table version read just before the write: Delta skips the commit of
    some no-op writes, and then the newest commit is an older one whose metrics must
    not be taken for this write's.
    """
    commits = _commit_files(spark, path)
    if not commits or max(commits) == before:
        return {}
    _note_commits(max(commits) - (-1 if before is None else before))
    metrics: dict[str, Any] = {}
    for line in _read_text(spark, commits[max(commits)]).splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            metrics = action["commitInfo"].get("operationMetrics") or {}
            break
    return {k: int(v) for k, v in metrics.items() if str(v).lstrip("-").isdigit()}


def table_version(spark: SparkSession, path: str) -> int | None:
    """The newest version of the table at `path`, or None when there is no table."""
    commits = _commit_files(spark, path)
    return max(commits) if commits else None


# The newest commit and its metrics are read straight from the transaction log, as the
# Delta protocol lays it out (`_delta_log/<version, 20 digits>.json`, newest one always
# kept): Delta's history() builds a DataFrame and costs ~0.5 s per call, a listing ~10 ms.
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def _commit_files(spark: SparkSession, path: str) -> dict[int, Any]:
    """Version -> Hadoop path of every commit file in the table's log; {} if no table."""
    fs, log_dir = hadoop_path(spark, path.rstrip("/") + "/_delta_log")
    if not fs.exists(log_dir):
        return {}
    commits = {}
    for status in fs.listStatus(log_dir):
        match = _COMMIT_FILE.match(status.getPath().getName())
        if match:
            commits[int(match.group(1))] = status.getPath()
    return commits


def _read_text(spark: SparkSession, file: Any) -> str:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    fs = file.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    stream = fs.open(file)
    try:
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()
