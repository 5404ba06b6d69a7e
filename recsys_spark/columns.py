"""Column names shared by every table and transform.

One place for names, so a rename is one edit. Transforms take these as defaults and
accept overrides where a caller's frame uses other names.
"""

from __future__ import annotations

USER_ID = "user_id"
ITEM_ID = "item_id"
USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
EVENT_ID = "event_id"
EVENT_TYPE = "event_type"
EVENT_TS = "event_ts"
EVENT_DATE = "event_date"
VALUE = "value"
WEIGHT = "weight"
BATCH_ID = "batch_id"
SOURCE_FILE = "source_file"
INGESTED_AT = "ingested_at"

# quarantine
REASON = "reason"
RAW = "raw"
QUARANTINED_AT = "quarantined_at"
STATUS = "status"

# Spark's corrupt-record column for CSV / JSON reads.
CORRUPT_RECORD = "_corrupt_record"
MALFORMED = "_malformed"

# affinity
AFFINITY = "affinity"
N_EVENTS = "n_events"
LAST_TS = "last_ts"

# recommendations
RANK = "rank"
SCORE = "score"
MODEL = "model"
RUN_ID = "run_id"
SOURCE = "source"  # what produced the list: the model itself, or the popularity fallback
BECAUSE_ITEM_ID = "because_item_id"  # the history item the recommendation is explained by

# ALS factors and tuning
FEATURES = "features"
RATING = "rating"  # the ALS training target derived from affinity

# item-item similarity
NEIGHBOUR_IDX = "neighbour_idx"
NEIGHBOUR_ID = "neighbour_id"
MEASURE = "measure"
COOCCURRENCE = "cooccurrence"
SIMILAR_ITEM_ID = "similar_item_id"
