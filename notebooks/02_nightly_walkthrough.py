# Databricks notebook source
# MAGIC %md
# MAGIC # A nightly run, stage by stage
# MAGIC The stages `jobs/nightly.py` runs every night (`recsys_spark.pipeline.stages.Night`),
# MAGIC one cell each, on the built-in sample data: ingest, snapshot and chronological holdout,
# MAGIC models on the holdout's training side, the hybrid and the champion (chosen on validation
# MAGIC users), evaluation on test users, the quality gate, the champion refitted on all data,
# MAGIC and publishing.
# MAGIC
# MAGIC Runs on Databricks or locally as a script from the project root:
# MAGIC `python notebooks/02_nightly_walkthrough.py`. It writes under `data/notebook-lake`
# MAGIC (tracking off: the nightly job itself records MLflow runs).

# COMMAND ----------

from datetime import date

from recsys_spark import tables
from recsys_spark.data.sample import write_sample, write_sample_catalog
from recsys_spark.io.delta import read_table
from recsys_spark.notebook import metrics_table, notebook_config, show
from recsys_spark.pipeline.stages import Night
from recsys_spark.session import get_spark

cfg = notebook_config(
    overrides=[
        "storage.root=data/notebook-lake",
        "ingest.source=data/notebook/events.csv",
        "catalog.items.source=data/notebook/items.csv",
        "tracking.enabled=false",
        "nightly.tune_every_days=0",
    ]
)
spark = get_spark(cfg.spark)
RUN_DATE = date(2026, 4, 30)  # the sample log covers 2026-01-01 .. 2026-04-30

# COMMAND ----------

# MAGIC %md ## 0. The raw log: the built-in sample generator (seeded: every run, same data)

# COMMAND ----------

write_sample(cfg.sample, cfg.ingest.source)
write_sample_catalog(cfg.sample, cfg.catalog.items.source)  # titles, categories, availability
night = Night(spark, cfg, RUN_DATE)

# COMMAND ----------

# MAGIC %md ## 1. Ingest: new files into `interactions`, bad rows into `quarantine`

# COMMAND ----------

night.ingest()
show(read_table(spark, cfg.storage.table(tables.QUARANTINE)).groupBy("reason").count())

# COMMAND ----------

# MAGIC %md ## 2. Snapshot up to the run date, and the chronological holdout

# COMMAND ----------

night.snapshot()
print(f"holdout cut: {night.cut} (events before it train the candidate models)")
show(read_table(spark, night.storage.table(tables.HOLDOUT_PAIRS)).groupBy("role").count())

# COMMAND ----------

# MAGIC %md ## 3. Candidate models on the holdout's training side
# MAGIC The item-based measures and ALS, each with lists for the holdout's users.

# COMMAND ----------

night.holdout_models()
for model, rows in night.holdout_lists().items():
    print(model, rows.count(), "rows")

# COMMAND ----------

# MAGIC %md ## 4. The hybrid's blend weight and the champion, chosen on the validation users

# COMMAND ----------

night.candidates()
print(f"hybrid weight of ALS: {night.hybrid_weight}; champion: {night.champion}")
print({model: round(score, 4) for model, score in night.scores.items()})

# COMMAND ----------

# MAGIC %md ## 5. Every model and the most-popular baseline on the test users

# COMMAND ----------

night.evaluation()
report = night.doc["report"]
show(
    metrics_table(
        report["metrics_json"],
        ["precision_at_10", "ndcg_at_10", "map", "catalog_coverage", "novelty"],
    )
)

# COMMAND ----------

# MAGIC %md ## 6. The quality gate, then the champion refitted on all data and published

# COMMAND ----------

decision = night.gate()
print(decision.reason)
if decision.passed:
    night.final_models()
    published = night.publish()
    print(f"published {published.rows} rows for {published.users} users: {published.versions}")
    show(
        read_table(spark, cfg.storage.table(tables.RECOMMENDATIONS_LATEST)).orderBy(
            "user_id", "rank"
        )
    )
