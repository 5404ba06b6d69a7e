# Databricks notebook source
# MAGIC %md
# MAGIC # Ingest walkthrough
# MAGIC Generates the built-in sample log, ingests it into Delta and looks at what landed:
# MAGIC the interactions, the quarantined rows with their reasons, and the batch's reconciliation.
# MAGIC Runs on Databricks or locally as a script:
# MAGIC `python notebooks/01_ingest_walkthrough.py` from the project root.

# COMMAND ----------

from recsys_spark import tables
from recsys_spark.config import SampleConfig
from recsys_spark.data.sample import write_sample
from recsys_spark.ingest.runner import run_ingest
from recsys_spark.io.delta import read_table
from recsys_spark.notebook import notebook_config
from recsys_spark.session import get_spark

cfg = notebook_config(
    overrides=["storage.root=data/notebook-lake", "ingest.source=data/notebook/events.csv"]
)
spark = get_spark(cfg.spark)

# COMMAND ----------

# MAGIC %md ## 1. A small synthetic log, with a few duplicates and broken rows

# COMMAND ----------

write_sample(
    SampleConfig(n_events=5_000, duplicate_fraction=0.01, bad_row_fraction=0.01), cfg.ingest.source
)

# COMMAND ----------

# MAGIC %md ## 2. Ingest: validate, quarantine, deduplicate, index, append the new events

# COMMAND ----------

report = run_ingest(spark, cfg.ingest, cfg.storage)
print(report.summary())

# COMMAND ----------

# MAGIC %md ## 3. What landed

# COMMAND ----------

read_table(spark, cfg.storage.table(tables.INTERACTIONS)).groupBy("event_type").count().orderBy(
    "event_type"
).show()
read_table(spark, cfg.storage.table(tables.QUARANTINE)).groupBy("reason").count().orderBy(
    "reason"
).show()
read_table(spark, cfg.storage.table(tables.INGEST_BATCHES)).show(truncate=False, vertical=True)
