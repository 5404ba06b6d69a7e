"""Names of the Delta tables under the storage root, and of the models in their `model` column.

Every stage reads and writes tables by these names under a `StorageConfig` root: the
lake's root for what ingest and publish write, `<root>/nightly/run_date=D/` (and its
`holdout/` child) for a night's working tables, `<root>/holdout/` for the standalone
evaluation's model runs. The README's architecture section lists which stage writes and
reads each one.
"""

from __future__ import annotations

# Ingest (recsys_spark.ingest.runner)
INTERACTIONS = "interactions"
QUARANTINE = "quarantine"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
INGEST_LOG = "ingest_log"
INGEST_BATCHES = "ingest_batches"
# Catalogue (recsys_spark.catalog.ingest): items and exclusions MERGEd by id, their
# quarantined rows and one log row per catalogue batch.
ITEMS = "items"
EXCLUSIONS = "exclusions"
ITEMS_QUARANTINE = "items_quarantine"
EXCLUSIONS_QUARANTINE = "exclusions_quarantine"
CATALOG_BATCHES = "catalog_batches"
# Models (recsys_spark.models.als_training, recsys_spark.similarity.item_models): every
# model's newest top-N lists, one `model` value each, and what the models are made of.
MODEL_RECOMMENDATIONS = "model_recommendations"
ALS_USER_FACTORS = "als_user_factors"
ALS_ITEM_FACTORS = "als_item_factors"
ALS_TUNING = "als_tuning"
ITEM_SIMILARITY = "item_similarity"
SIMILAR_ITEMS = "similar_items"
# Standalone evaluation (recsys_spark.evaluation.offline): the split, the models' lake
# `<root>/holdout/` trained on its training side only, and the most-popular baseline.
EVAL_TRAIN = "eval_train"
EVAL_SPLIT = "eval_split"  # the split's fingerprint, written after the split's tables
EVAL_TEST = "eval_test"
HOLDOUT = "holdout"
EVAL_RECOMMENDATIONS = "eval_recommendations"
# The nightly (recsys_spark.pipeline): per-run-date working tables under
# <root>/nightly/run_date=<date>/ ...
NIGHTLY = "nightly"
NIGHT_INPUTS = "night_inputs"  # per run date: the interactions version its first attempt read
HOLDOUT_PAIRS = "holdout_pairs"  # the chronological holdout's pairs, role validation / test
HOLDOUT_HYBRID = "holdout_hybrid"  # the hybrid's lists on the holdout
HOLDOUT_RANKER = "holdout_ranker"  # the learned ranker's lists on the holdout
FINAL_RECOMMENDATIONS = "final_recommendations"  # the champion refitted, before publishing
# ... and what it publishes: the champion's lists, partitioned by run date ...
PUBLISHED_RECOMMENDATIONS = "recommendations"
# ... the lists of the newest published run date, what serving reads ...
RECOMMENDATIONS_LATEST = "recommendations_latest"
# ... the same joined with the catalogue's titles and categories, for people to read ...
RECOMMENDATIONS_DISPLAY = "recommendations_display"
PUBLISH_LOG = "publish_log"  # one row per published run date: champion, gate metric, versions
ALS_BEST_PARAMS = "als_best_params"  # tuned ALS parameters per tuning date (the schedule)
# Maintenance (recsys_spark.pipeline.maintain): one row per table and maintenance run.
MAINTENANCE_LOG = "maintenance_log"

# Model names in the `model` column of the recommendations tables.
ALS = "als"
EASE = "ease"
RANKER = "ranker"  # the learned ranker over every model's candidates
HYBRID = "hybrid"
MOST_POPULAR = "most_popular"  # the evaluation's baseline


def item_model(measure: str) -> str:
    """The model name of the item-based lists of a similarity measure: `item_<measure>`."""
    return f"item_{measure}"
