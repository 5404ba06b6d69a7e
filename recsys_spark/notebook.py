"""What the notebooks need so they hold no logic: config with overrides, display, lookups.

Notebooks run on Databricks (where `display` and `displayHTML` exist) and locally as
plain scripts from the project root (`python notebooks/02_nightly_walkthrough.py`), where
the same calls fall back to `DataFrame.show` and printing the report's path. CI runs
them locally; RECSYS_NOTEBOOK_SET (`key=value;key=value`) adds config overrides there.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.display import display_lists
from recsys_spark.config import AppConfig, load_config
from recsys_spark.io import delta

ENV_OVERRIDES = "RECSYS_NOTEBOOK_SET"


def notebook_config(conf_file: str = "conf/local.yml", overrides: Sequence[str] = ()) -> AppConfig:
    """`conf_file` with `overrides`, then the ones of RECSYS_NOTEBOOK_SET (CI's tiny data)."""
    extra = [s.strip() for s in os.environ.get(ENV_OVERRIDES, "").split(";") if s.strip()]
    return load_config(conf_file, [*overrides, *extra])


def show(df: DataFrame | pd.DataFrame, n: int = 20) -> None:
    """Databricks' `display`, or a plain print of the first `n` rows."""
    shown = getattr(builtins, "display", None)
    if shown is not None:
        shown(df)
    elif isinstance(df, pd.DataFrame):
        print(df.head(n).to_string())
    else:
        df.show(n, truncate=False)


def show_report(path: str | Path) -> None:
    """The self-contained HTML report: rendered on Databricks, its path printed locally."""
    html = getattr(builtins, "displayHTML", None)
    if html is not None:
        html(Path(path).read_text())
    else:
        print(f"report: {Path(path).resolve()}")


def metrics_table(metrics_json: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """One row per model of a metrics.json, with `columns` (missing ones are NaN)."""
    doc = json.loads(Path(metrics_json).read_text())
    rows = {model: {c: values.get(c) for c in columns} for model, values in doc["models"].items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def most_active_users(spark: SparkSession, cfg: AppConfig, n: int = 3) -> list[str]:
    """The `n` users with the most distinct items (ties by user id): good examples."""
    pairs = delta.read_table(spark, cfg.storage.table(tables.INTERACTIONS))
    counts = pairs.groupBy(C.USER_ID).agg(F.countDistinct(C.ITEM_ID).alias("items"))
    top = counts.orderBy(F.col("items").desc(), F.col(C.USER_ID)).limit(n).collect()
    return [r[C.USER_ID] for r in top]


def user_story(
    spark: SparkSession, cfg: AppConfig, user_id: str, run_date: date | None = None, n: int = 10
) -> tuple[DataFrame, DataFrame]:
    """A user's strongest history items and their published list (latest, or `run_date`'s),
    with titles, categories and the reason's title when the lake has an `items` table."""
    events = delta.read_table(spark, cfg.storage.table(tables.INTERACTIONS))
    history = (
        events.filter(F.col(C.USER_ID) == user_id)
        .groupBy(C.ITEM_ID)
        .agg(F.sum(C.WEIGHT).alias("weight"), F.max(C.EVENT_TS).alias("last_seen"))
        .withColumn(
            "pos", F.row_number().over(Window.orderBy(F.col("weight").desc(), F.col(C.ITEM_ID)))
        )  # fmt: skip
        .filter(F.col("pos") <= n)
        .drop("pos")
    )
    name = tables.PUBLISHED_RECOMMENDATIONS if run_date else tables.RECOMMENDATIONS_LATEST
    recs = delta.read_table(spark, cfg.storage.table(name)).filter(F.col(C.USER_ID) == user_id)
    if run_date is not None:
        recs = recs.filter(F.col("run_date") == F.lit(run_date))
    items_path = cfg.storage.table(tables.ITEMS)
    if delta.table_exists(spark, items_path):
        items = delta.read_table(spark, items_path)
        titles = items.select(C.ITEM_ID, "title", "categories")
        history = history.join(F.broadcast(titles), on=C.ITEM_ID, how="left")
        recs = display_lists(recs, items)
    return history.orderBy(F.col("weight").desc(), C.ITEM_ID), recs.orderBy(C.RANK)
