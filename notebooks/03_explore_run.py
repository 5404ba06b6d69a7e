# Databricks notebook source
# MAGIC %md
# MAGIC # Exploring a night's results
# MAGIC Metrics of every model on the holdout's test users, the coverage and exposure plots of
# MAGIC the HTML report, what was published, and a few users with their history beside their
# MAGIC recommendations. Point `cfg` and `RUN_DATE` at any night; by default the one that
# MAGIC `02_nightly_walkthrough.py` computed. Runs on Databricks or locally as a script.

# COMMAND ----------

from datetime import date

from pyspark.sql import functions as F

from recsys_spark import tables
from recsys_spark.io.delta import read_table
from recsys_spark.notebook import (
    metrics_table,
    most_active_users,
    notebook_config,
    show,
    show_report,
    user_story,
)
from recsys_spark.pipeline.stages import report_files
from recsys_spark.session import get_spark

cfg = notebook_config(overrides=["storage.root=data/notebook-lake", "tracking.enabled=false"])
spark = get_spark(cfg.spark)
RUN_DATE = date(2026, 4, 30)
files = report_files(cfg, RUN_DATE)

# COMMAND ----------

# MAGIC %md ## Ranking and beyond-accuracy metrics per model (test users of the holdout)

# COMMAND ----------

show(
    metrics_table(
        files["metrics_json"],
        [
            "users_evaluated",
            "precision_at_10",
            "recall_at_10",
            "ndcg_at_10",
            "map",
            "catalog_coverage",
            "gini",
            "novelty",
            "intra_list_diversity",
            "long_tail_share",
        ],
    )
)

# COMMAND ----------

# MAGIC %md ## Coverage plots: metric@K curves, long tail, Lorenz curve of exposure

# COMMAND ----------

show_report(files["html"])

# COMMAND ----------

# MAGIC %md ## What was published, night by night

# COMMAND ----------

show(read_table(spark, cfg.storage.table(tables.PUBLISH_LOG)).orderBy("run_date"))
latest = read_table(spark, cfg.storage.table(tables.RECOMMENDATIONS_LATEST))
show(latest.groupBy("model", "source").agg(F.countDistinct("user_id").alias("users")))

# COMMAND ----------

# MAGIC %md ## Example users: their strongest history items, what they are recommended, and why
# MAGIC `because_item_id` is the history item each recommendation comes from (null for the
# MAGIC popularity fallback); titles come from the catalogue (`items`) when there is one.

# COMMAND ----------

for user in most_active_users(spark, cfg, n=3):
    history, recs = user_story(spark, cfg, user, RUN_DATE)
    print(f"user {user}")
    show(history)
    titled = [c for c in ("title", "because_title") if c in recs.columns]
    show(recs.select("rank", "item_id", *titled[:1], "score", "source", "because_item_id",
                     *titled[1:]))  # fmt: skip
