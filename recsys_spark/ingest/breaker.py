"""The batch circuit breaker: a batch that is mostly bad is a setting's mistake, not data.

A wrong timestamp unit or column mapping fails every row the same way. Quarantining them
all and logging the files as ingested would lose the night in silence; the breaker
refuses such a batch instead: nothing reaches `interactions`, no file is marked ingested,
and the message says which reason dominates, with an example and a hint.
"""

from __future__ import annotations

import json

from recsys_spark.config import IngestConfig
from recsys_spark.ingest.report import IngestReport
from recsys_spark.ingest.validate import EPOCH_MS_FROM

# One reason taking this share of the rows refuses the batch whatever max_quarantine_share.
DOMINANT_REASON_SHARE = 0.9
TIMESTAMP_REASONS = ("unparseable_timestamp", "timestamp_out_of_range")


def refusal(cfg: IngestConfig, report: IngestReport) -> str | None:
    """Why the batch must not be committed, in one line; None when it may be.

    `ingest.max_quarantine_share: 1` turns the breaker off.
    """
    if cfg.max_quarantine_share >= 1.0 or report.rows_read == 0:
        return None
    reasons = report.reason_counts()
    if not reasons:
        return None
    quarantined = sum(n for n, _ in reasons.values())
    reason, (count, example) = max(reasons.items(), key=lambda kv: (kv[1][0], kv[0]))
    share, top_share = quarantined / report.rows_read, count / report.rows_read
    if share <= cfg.max_quarantine_share and top_share < DOMINANT_REASON_SHARE:
        return None
    hint = _hint(reason, example, cfg)
    return (
        f"batch refused: {quarantined} of {report.rows_read} rows ({share:.1%}) would be "
        f"quarantined, {count} ({top_share:.1%}) as {reason}, e.g. {example[:200]}; "
        f"ingest.max_quarantine_share is {cfg.max_quarantine_share}. Nothing was written to "
        f"interactions and no file was marked ingested.{' ' + hint if hint else ''} Fix the "
        "setting and rerun (the same files are read again), or raise "
        "ingest.max_quarantine_share if the rows are really bad."
    )


def _hint(reason: str, example: str, cfg: IngestConfig) -> str:
    if reason in TIMESTAMP_REASONS:
        value = _field(example, cfg.columns.timestamp)
        unit = timestamp_unit(value) if value is not None else None
        if unit:
            return (
                f"Hint: timestamps like '{value}' look like {unit}; ingest.timestamp_format "
                f"is {cfg.timestamp_format} (auto detects seconds and milliseconds)."
            )
    if reason in ("missing_user_id", "missing_item_id", "missing_timestamp"):
        return "Hint: check that ingest.columns names the log's columns."
    if reason == "unknown_event_type":
        return "Hint: add the event type to ingest.event_weights."
    if reason == "malformed_row":
        return "Hint: check ingest.format, ingest.csv_delimiter and ingest.csv_header."
    return ""


def timestamp_unit(value: str) -> str | None:
    """What a raw timestamp's magnitude says it is, or None when it says nothing."""
    try:
        number = abs(float(value))
    except ValueError:
        return "ISO-8601 text (timestamp_format iso or auto)" if "-" in value else None
    if number != number or number == float("inf"):
        return None
    if number < EPOCH_MS_FROM:
        return "epoch seconds (timestamp_format epoch_s or auto)"
    if number < 1e14:
        return "epoch milliseconds (timestamp_format epoch_ms or auto)"
    if number < 1e17:
        return "epoch microseconds, which ingest does not read: convert them upstream"
    return "epoch nanoseconds, which ingest does not read: convert them upstream"


def _field(raw: str, column: str) -> str | None:
    """The value of `column` in a quarantined row's raw text (JSON of its fields)."""
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    value = fields.get(column) if isinstance(fields, dict) else None
    return None if value is None else str(value).strip()
