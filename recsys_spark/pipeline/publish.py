"""Publishing the night's lists: the only writes that serving ever sees.

Three Delta tables under the storage root, each written in one commit:
- `recommendations`: the champion's lists, partitioned by `run_date`, written with
  `replaceWhere run_date = D`, so a rerun of a date replaces exactly that date;
- `recommendations_latest`: a copy of the newest published date (a backfill of an older
  date leaves it alone), what a serving layer reads; with a catalogue, also
  `recommendations_display`, the same joined with titles and categories;
- `publish_log`: one row per published date (champion, gate metric, table versions),
  which the next night's quality gate compares against.
A crash between the commits leaves each table at a complete version; rerunning the
date converges to the same state as an uninterrupted run. If the rerun does not publish
(its gate refuses), `withdraw_unfinished` takes back what the killed attempt wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.display import write_display
from recsys_spark.config import StorageConfig
from recsys_spark.faults import failpoint
from recsys_spark.io import delta
from recsys_spark.models.lists import SCHEMA as RECOMMENDATIONS_SCHEMA
from recsys_spark.models.lists import conformed

RUN_DATE = "run_date"
PUBLISHED_SCHEMA = T.StructType(
    [*RECOMMENDATIONS_SCHEMA.fields, T.StructField(RUN_DATE, T.DateType(), False)]
)
PUBLISH_LOG_SCHEMA = T.StructType(
    [
        T.StructField(RUN_DATE, T.DateType(), False),
        T.StructField(C.RUN_ID, T.StringType(), False),
        T.StructField(C.MODEL, T.StringType(), False),
        T.StructField("metric", T.StringType(), False),
        T.StructField("value", T.DoubleType(), True),
        T.StructField("users", T.LongType(), False),
        T.StructField("rows", T.LongType(), False),
        T.StructField("recommendations_version", T.LongType(), False),
        T.StructField("published_at", T.TimestampType(), False),
    ]
)


@dataclass(frozen=True)
class LastPublished:
    """The newest publication before a run date (what the gate compares against)."""

    run_date: date
    model: str
    metric: str
    value: float | None


@dataclass(frozen=True)
class Publication:
    """What `publish` committed: rows, users and the table versions after each write."""

    rows: int
    users: int
    versions: dict[str, int]
    latest_moved: bool


def last_published(
    spark: SparkSession, storage: StorageConfig, before: date
) -> LastPublished | None:
    """The newest `publish_log` row with a run date before `before`, or None."""
    path = storage.table(tables.PUBLISH_LOG)
    if not delta.table_exists(spark, path):
        return None
    row = (
        delta.read_table(spark, path)
        .filter(F.col(RUN_DATE) < F.lit(before))
        .orderBy(F.col(RUN_DATE).desc())
        .first()
    )
    if row is None:
        return None
    return LastPublished(row[RUN_DATE], row[C.MODEL], row["metric"], row["value"])


def publish(
    spark: SparkSession,
    recs: DataFrame,
    storage: StorageConfig,
    *,
    run_date: date,
    run_id: str,
    metric: str,
    value: float,
) -> Publication:
    """Publish `recs` (one model's lists, RECOMMENDATIONS_SCHEMA columns) for `run_date`.

    Writes `recommendations` (replaceWhere on the date), then `recommendations_latest`
    when `run_date` is the newest published date, then the `publish_log` row.
    """
    rec_path = storage.table(tables.PUBLISHED_RECOMMENDATIONS)
    latest_path = storage.table(tables.RECOMMENDATIONS_LATEST)
    log_path = storage.table(tables.PUBLISH_LOG)
    rows = conformed(recs).withColumn(RUN_DATE, F.lit(run_date))
    model, n_rows, n_users = _single_model_counts(rows)
    # merge_schema: a table published before a column was added (because_item_id) gains it.
    delta.replace_where(
        rows, rec_path, _on_date(run_date), partition_by=(RUN_DATE,), merge_schema=True
    )
    rec_version = delta.table_version(spark, rec_path)
    failpoint("publish.after_recommendations")

    tonight = delta.read_table(spark, rec_path, version=rec_version).filter(
        F.col(RUN_DATE) == F.lit(run_date)
    )
    # Against the logged dates: a later date a killed run left in `recommendations`
    # without its log row was never published.
    latest_moved = all(d <= run_date for d in _logged_dates(spark, log_path))
    if latest_moved:
        delta.overwrite(tonight, latest_path)
        write_display(spark, storage, tonight)
    failpoint("publish.after_latest")

    entry = spark.createDataFrame(
        [
            (
                run_date,
                run_id,
                model,
                metric,
                float(value),
                n_users,
                n_rows,
                int(rec_version or 0),
                datetime.now(UTC),
            )
        ],
        PUBLISH_LOG_SCHEMA,
    )
    delta.replace_where(entry, log_path, _on_date(run_date))
    versions = {
        tables.PUBLISHED_RECOMMENDATIONS: int(rec_version or 0),
        tables.PUBLISH_LOG: int(delta.table_version(spark, log_path) or 0),
    }
    latest_version = delta.table_version(spark, latest_path)
    if latest_version is not None:
        versions[tables.RECOMMENDATIONS_LATEST] = latest_version
    return Publication(n_rows, n_users, versions, latest_moved)


def withdraw_unfinished(spark: SparkSession, storage: StorageConfig, run_date: date) -> bool:
    """Take back what a killed attempt published for `run_date` without its log row.

    `publish` commits `recommendations`, `recommendations_latest`, then the `publish_log`
    row: a kill in between leaves the date served but not recorded. For a rerun that does
    not publish, the date's rows are deleted and `latest` goes back to the newest logged
    date (one commit each). Returns whether anything was taken back.
    """
    rec_path = storage.table(tables.PUBLISHED_RECOMMENDATIONS)
    latest_path = storage.table(tables.RECOMMENDATIONS_LATEST)
    logged = _logged_dates(spark, storage.table(tables.PUBLISH_LOG))
    if run_date in logged or not delta.table_exists(spark, rec_path):
        return False
    recs = delta.read_table(spark, rec_path)
    on_date = F.col(RUN_DATE) == F.lit(run_date)
    withdrawn = recs.filter(on_date).limit(1).count() > 0
    if withdrawn:
        delta.replace_where(recs.limit(0), rec_path, _on_date(run_date))
    if delta.table_exists(spark, latest_path):
        latest = delta.read_table(spark, latest_path)
        if latest.filter(on_date).limit(1).count() > 0:
            newest = max(logged, default=None)
            restored = delta.read_table(spark, rec_path).filter(F.col(RUN_DATE) == F.lit(newest))
            delta.overwrite(restored, latest_path)
            write_display(spark, storage, restored)
            withdrawn = True
    return withdrawn


def _on_date(run_date: date) -> str:
    """The `replaceWhere` condition of one run date's rows."""
    return f"{RUN_DATE} = DATE'{run_date.isoformat()}'"


def _logged_dates(spark: SparkSession, log_path: str) -> set[date]:
    """The run dates in `publish_log` (one row per published date)."""
    if not delta.table_exists(spark, log_path):
        return set()
    return {r[0] for r in delta.read_table(spark, log_path).select(RUN_DATE).collect()}


def _single_model_counts(lists: DataFrame) -> tuple[str, int, int]:
    """The one model of `lists`, its rows and users (one pass; ValueError for two models)."""
    row = lists.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(C.USER_ID).alias("users"),
        F.array_sort(F.collect_set(C.MODEL)).alias("models"),
    ).first()
    models = list(row["models"])
    if len(models) != 1:
        raise ValueError(f"publish one model's lists per run date; got models {models}")
    return models[0], int(row["rows"]), int(row["users"])
