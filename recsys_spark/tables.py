"""Names of the Delta tables under the storage root."""

from __future__ import annotations

INTERACTIONS = "interactions"
QUARANTINE = "quarantine"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
INGEST_LOG = "ingest_log"
INGEST_BATCHES = "ingest_batches"
RECOMMENDATIONS = "recommendations"
ALS_USER_FACTORS = "als_user_factors"
ALS_ITEM_FACTORS = "als_item_factors"
ALS_TUNING = "als_tuning"
ITEM_SIMILARITY = "item_similarity"
SIMILAR_ITEMS = "similar_items"
EVAL_TRAIN = "eval_train"
EVAL_TEST = "eval_test"
