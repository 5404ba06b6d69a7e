"""Names of the Delta tables under the storage root."""

from __future__ import annotations

INTERACTIONS = "interactions"
QUARANTINE = "quarantine"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
INGEST_LOG = "ingest_log"
INGEST_BATCHES = "ingest_batches"
# Every model's newest top-N lists, written by the model jobs (similarity, train_als).
MODEL_RECOMMENDATIONS = "model_recommendations"
# Published by jobs/nightly.py: the champion's lists, partitioned by run date ...
PUBLISHED_RECOMMENDATIONS = "recommendations"
# ... and the lists of the newest published run date, what serving reads.
RECOMMENDATIONS_LATEST = "recommendations_latest"
PUBLISH_LOG = "publish_log"  # one row per published run date: champion, gate metric, versions
ALS_BEST_PARAMS = "als_best_params"  # tuned ALS parameters per tuning date (the schedule)
NIGHTLY = "nightly"  # per-run-date working tables: <root>/nightly/run_date=<date>/...
ALS_USER_FACTORS = "als_user_factors"
ALS_ITEM_FACTORS = "als_item_factors"
ALS_TUNING = "als_tuning"
ITEM_SIMILARITY = "item_similarity"
SIMILAR_ITEMS = "similar_items"
EVAL_TRAIN = "eval_train"
EVAL_TEST = "eval_test"
