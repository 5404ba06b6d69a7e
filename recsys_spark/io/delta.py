"""Delta Lake reads and writes used across the jobs.

Every write here is one Delta commit: a crash before it leaves the table at its previous
version, a crash after it leaves the new one. Nothing is ever half written.
"""

from __future__ import annotations

from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, path)


def read_table(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """Read the Delta table at `path`, optionally at an older `version` (time travel)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


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


def overwrite(df: DataFrame, path: str, partition_by: tuple[str, ...] = ()) -> dict[str, int]:
    """Replace the whole table at `path` with `df` (one commit); returns the commit's metrics."""
    before = table_version(df.sparkSession, path)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
    return commit_metrics(df.sparkSession, path, before)


def replace_where(df: DataFrame, path: str, condition: str) -> dict[str, int]:
    """Atomically replace the rows matching `condition` with `df` (an idempotent append)."""
    before = table_version(df.sparkSession, path)
    writer = df.write.format("delta").mode("overwrite")
    if before is not None:
        writer = writer.option("replaceWhere", condition)
    writer.save(path)
    return commit_metrics(df.sparkSession, path, before)


def insert_new(
    spark: SparkSession,
    source: DataFrame,
    path: str,
    key_columns: tuple[str, ...],
    *,
    source_is_cached: bool = False,
) -> dict[str, int]:
    """MERGE `source` into the table at `path`, inserting only rows whose key is new.

    Rows whose key already exists are left alone, so re-running the same source adds
    nothing. `source` must not repeat a key. With `source_is_cached` (the caller persisted
    a deterministic `source`), Delta skips its own copy of the source. Returns the MERGE
    commit's metrics (numSourceRows, numTargetRowsInserted, ...); {} if nothing committed.
    """
    condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in key_columns)
    before = table_version(spark, path)
    setting = "spark.databricks.delta.merge.materializeSource"
    previous = spark.conf.get(setting, None)
    if source_is_cached:
        spark.conf.set(setting, "none")
    try:
        (
            DeltaTable.forPath(spark, path)
            .alias("t")
            .merge(source.alias("s"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )
    finally:
        if source_is_cached:
            if previous is None:
                spark.conf.unset(setting)
            else:
                spark.conf.set(setting, previous)
    return commit_metrics(spark, path, before)


def commit_metrics(spark: SparkSession, path: str, before: int | None) -> dict[str, int]:
    """operationMetrics of the commit just made, as integers; {} when none was made.

    `before` is the table version read just before the write: Delta skips the commit of
    some no-op writes, and then the newest commit is an older one whose metrics must
    not be taken for this write's.
    """
    if table_version(spark, path) == before:
        return {}
    row = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()
    metrics: dict[str, Any] = (row["operationMetrics"] if row else None) or {}
    return {k: int(v) for k, v in metrics.items() if str(v).lstrip("-").isdigit()}


def table_version(spark: SparkSession, path: str) -> int | None:
    """The newest version of the table at `path`, or None when there is no table."""
    if not table_exists(spark, path):
        return None
    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    return int(row["version"]) if row else None
