"""Names of the Delta tables under the storage root."""

from __future__ import annotations

INTERACTIONS = "interactions"
QUARANTINE = "quarantine"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
INGEST_LOG = "ingest_log"
INGEST_BATCHES = "ingest_batches"
RECOMMENDATIONS = "recommendations"
