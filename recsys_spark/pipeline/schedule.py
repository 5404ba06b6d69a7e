"""The ALS tuning schedule: tune every `tune_every_days`, reuse the last best otherwise.

Each tuning writes one row to the `als_best_params` table (the tuning date, the winning
rank, reg_param and alpha, its validation NDCG@10 and the run id); the nights between
tunings fit with the newest row's parameters, or the config's when none exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark.config import AlsConfig
from recsys_spark.io import delta

TUNED_ON = "tuned_on"
SCHEMA = T.StructType(
    [
        T.StructField(TUNED_ON, T.DateType(), False),
        T.StructField("rank", T.IntegerType(), False),
        T.StructField("reg_param", T.DoubleType(), False),
        T.StructField("alpha", T.DoubleType(), False),
        T.StructField("validation_ndcg_at_10", T.DoubleType(), True),
        T.StructField(C.RUN_ID, T.StringType(), True),
    ]
)


@dataclass(frozen=True)
class BestParams:
    """One tuning's winner."""

    tuned_on: date
    rank: int
    reg_param: float
    alpha: float


def last_best(spark: SparkSession, path: str, *, on_or_before: date) -> BestParams | None:
    """The newest tuning at or before `on_or_before` (a backfill never sees later tunings)."""
    if not delta.table_exists(spark, path):
        return None
    row = (
        delta.read_table(spark, path)
        .filter(F.col(TUNED_ON) <= F.lit(on_or_before))
        .orderBy(F.col(TUNED_ON).desc())
        .first()
    )
    if row is None:
        return None
    return BestParams(row[TUNED_ON], int(row["rank"]), float(row["reg_param"]), float(row["alpha"]))


def tuning_due(last: BestParams | None, run_date: date, every_days: int) -> bool:
    """True when tuning is on (`every_days` > 0) and the last tuning is that old, or none."""
    if every_days <= 0:
        return False
    return last is None or (run_date - last.tuned_on).days >= every_days


def record_best(
    spark: SparkSession,
    path: str,
    best: BestParams,
    *,
    validation_ndcg: float | None,
    run_id: str,
) -> None:
    """Store `best` as the tuning of its date (a rerun of the date replaces its row)."""
    row = spark.createDataFrame(
        [(best.tuned_on, best.rank, best.reg_param, best.alpha, validation_ndcg, run_id)], SCHEMA
    )
    delta.replace_where(row, path, f"{TUNED_ON} = DATE'{best.tuned_on.isoformat()}'")


def als_for_night(
    als: AlsConfig, last: BestParams | None, run_date: date, every_days: int
) -> tuple[AlsConfig, bool]:
    """The ALS settings of `run_date` and whether it tunes (returned config's tuning.enabled).

    Tuning is due by `tuning_due`, except on a rerun of a tuning night, which reuses
    that night's winner so reruns give the same lists. Otherwise the newest tuning's
    rank, reg_param and alpha replace the config's.
    """
    rerun = last is not None and last.tuned_on == run_date
    due = not rerun and tuning_due(last, run_date, every_days)
    if last is not None and not due:
        als = replace(als, rank=last.rank, reg_param=last.reg_param, alpha=last.alpha)
    return replace(als, tuning=replace(als.tuning, enabled=due)), due
