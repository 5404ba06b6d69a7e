"""The input a night reads, pinned by its first attempt.

A night reads `interactions` at one Delta version. Its first attempt records that version
in `night_inputs` (one row per run date); a rerun of the date reads the same version, so
events ingested between the attempts (late files) change neither its models nor its
gate: they wait for the next night.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import tables
from recsys_spark.config import StorageConfig
from recsys_spark.io import delta

RUN_DATE = "run_date"
SCHEMA = T.StructType(
    [
        T.StructField(RUN_DATE, T.DateType(), False),
        T.StructField("interactions_version", T.LongType(), False),
        T.StructField("run_id", T.StringType(), True),
        T.StructField("recorded_at", T.TimestampType(), False),
    ]
)


def pinned_version(spark: SparkSession, storage: StorageConfig, run_date: date) -> int | None:
    """The interactions version an earlier attempt of `run_date` read, or None."""
    path = storage.table(tables.NIGHT_INPUTS)
    if not delta.table_exists(spark, path):
        return None
    row = delta.read_table(spark, path).filter(F.col(RUN_DATE) == F.lit(run_date)).first()
    return None if row is None else int(row["interactions_version"])


def pin_version(
    spark: SparkSession, storage: StorageConfig, run_date: date, version: int, run_id: str
) -> None:
    """Record `version` as the input of `run_date` unless an attempt recorded one already."""
    row = spark.createDataFrame([(run_date, version, run_id, datetime.now(UTC))], SCHEMA)
    path = storage.table(tables.NIGHT_INPUTS)
    if not delta.table_exists(spark, path):
        delta.append(row, path)
    else:
        delta.insert_new(spark, row, path, (RUN_DATE,))
