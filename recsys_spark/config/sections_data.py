"""Config sections of the data: the raw log's ingest and the synthetic sample."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from recsys_spark.config.checks import one_of
from recsys_spark.errors import ConfigError


@dataclass(frozen=True)
class ColumnMapping:
    """Names of the raw log's columns; an empty string means the log has no such column."""

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str = "timestamp"
    event_type: str = "event_type"
    value: str = "value"


@dataclass(frozen=True)
class IngestConfig:
    """How raw logs are read, validated, weighted and merged into Delta.

    `max_quarantine_share` refuses a batch whose bad rows exceed that share of its rows
    (one reason taking nearly every row refuses it whatever the share); a file that
    fails to read `max_file_attempts` times is parked; a folder source reads only files
    ending in `extensions` (default: those of `format`, see `ingest_extensions`).
    """

    source: str = "data/sample/events.csv"
    format: str = "csv"
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    csv_delimiter: str = ","
    csv_header: bool = True
    csv_columns: tuple[str, ...] = ()
    timestamp_format: str = "auto"
    min_timestamp: str = "1995-01-01"
    max_future_days: int = 1
    default_event_type: str = "interaction"
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0}
    )
    weight_rule: str = "event"
    value_threshold: float = 0.0
    max_quarantine_share: float = 0.05
    max_file_attempts: int = 3
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        one_of("ingest.format", self.format, ("csv", "json", "parquet"))
        if not 0.0 <= self.max_quarantine_share <= 1.0:
            raise ConfigError(
                "ingest.max_quarantine_share must be a share in [0, 1] (1 = never refuse a "
                f"batch for its bad rows); got {self.max_quarantine_share}"
            )
        if self.max_file_attempts < 1:
            raise ConfigError(
                f"ingest.max_file_attempts must be at least 1; got {self.max_file_attempts}"
            )
        if any(not e or e.startswith(".") or "/" in e for e in self.extensions):
            raise ConfigError(
                "ingest.extensions: give names without the dot, e.g. [csv, tsv]; "
                f"got {list(self.extensions)}"
            )
        one_of(
            "ingest.timestamp_format", self.timestamp_format, ("auto", "iso", "epoch_s", "epoch_ms")
        )
        one_of(
            "ingest.weight_rule", self.weight_rule, ("event", "value", "event_x_value", "threshold")
        )
        if not self.columns.user or not self.columns.item or not self.columns.timestamp:
            raise ConfigError("ingest.columns: user, item and timestamp must name a column")
        if not self.event_weights:
            raise ConfigError("ingest.event_weights: give at least one event type and its weight")
        if self.weight_rule != "event" and not self.columns.value:
            raise ConfigError(
                f"ingest.weight_rule '{self.weight_rule}' needs ingest.columns.value "
                "to name a column"
            )
        if self.format == "csv" and not self.csv_header and not self.csv_columns:
            raise ConfigError("ingest.csv_columns: list the column names when csv_header is false")
        if self.format == "csv" and not self.csv_header:
            for key in ("user", "item", "timestamp", "event_type", "value"):
                name = getattr(self.columns, key)
                if name and name not in self.csv_columns:
                    raise ConfigError(
                        f"ingest.columns.{key} names column '{name}', which is not in "
                        f"ingest.csv_columns {list(self.csv_columns)}"
                    )
        if self.format == "csv" and not self.csv_delimiter:
            raise ConfigError("ingest.csv_delimiter must not be empty")
        try:
            datetime.fromisoformat(self.min_timestamp)
        except (TypeError, ValueError):
            raise ConfigError(
                f"ingest.min_timestamp must be an ISO-8601 date or time; got '{self.min_timestamp}'"
            ) from None


# The file name endings a folder source reads for each format when ingest.extensions is
# empty, each also with a compression suffix (.gz, .bz2, ...).
DEFAULT_EXTENSIONS = {
    "csv": ("csv", "tsv", "txt"),
    "json": ("json", "jsonl", "ndjson"),
    "parquet": ("parquet",),
}


def ingest_extensions(cfg: IngestConfig) -> tuple[str, ...]:
    """The name endings (without the dot) of the files a folder source reads."""
    return tuple(e.lower() for e in cfg.extensions) or DEFAULT_EXTENSIONS[cfg.format]


SAMPLE_TIMESTAMP_FORMATS = ("iso", "epoch_s", "epoch_ms")
SAMPLE_FILE_FORMATS = ("csv", "json", "parquet")


@dataclass(frozen=True)
class SampleConfig:
    """The built-in synthetic log (see recsys_spark.data.sample); checked on construction.

    `n_groups` latent taste groups (at most `n_items`) over `days` days from `start_date`
    (ISO, not before 1970); item popularity is Zipf with `popularity_exponent` (0 =
    uniform); `duplicate_fraction` and `bad_row_fraction` are shares in [0, 1) whose sum is
    below 1. `new_item_fraction` of the items launch in the last `new_item_days` and
    `withdrawn_fraction` are withdrawn in the last 30 days (no events outside their
    window); `catalog_path` ("" = none) receives the item catalogue. The same settings
    always give the same rows.
    """

    path: str = "data/sample/events.csv"
    format: str = "csv"
    n_events: int = 20_000
    n_users: int = 1_000
    n_items: int = 500
    n_groups: int = 8
    start_date: str = "2026-01-01"
    days: int = 120
    seed: int = 42
    popularity_exponent: float = 1.1
    duplicate_fraction: float = 0.01
    bad_row_fraction: float = 0.002
    timestamp_format: str = "iso"
    catalog_path: str = "data/sample/items.csv"
    new_item_fraction: float = 0.02
    new_item_days: int = 21
    withdrawn_fraction: float = 0.03

    def __post_init__(self) -> None:
        one_of("sample.format", self.format, SAMPLE_FILE_FORMATS)
        one_of("sample.timestamp_format", self.timestamp_format, SAMPLE_TIMESTAMP_FORMATS)
        for name in ("n_events", "n_users", "n_items", "n_groups", "days", "seed"):
            v, least = getattr(self, name), 0 if name == "seed" else 1
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < least:
                raise ConfigError(f"sample.{name} must be an integer >= {least}, got {v!r}")
        if self.n_groups > self.n_items:
            raise ConfigError(
                f"sample.n_groups must be <= n_items ({self.n_items}), got {self.n_groups}"
            )
        for name in ("duplicate_fraction", "bad_row_fraction"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v < 1.0:
                raise ConfigError(f"sample.{name} must be a number in [0, 1), got {v!r}")
        for name in ("new_item_fraction", "withdrawn_fraction"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v < 0.5:
                raise ConfigError(f"sample.{name} must be a number in [0, 0.5), got {v!r}")
        if not 1 <= self.new_item_days <= self.days:
            raise ConfigError(
                f"sample.new_item_days must be in [1, days={self.days}], got {self.new_item_days}"
            )
        if self.duplicate_fraction + self.bad_row_fraction >= 1.0:
            raise ConfigError("sample.duplicate_fraction + bad_row_fraction must be < 1")
        e = self.popularity_exponent
        if isinstance(e, bool) or not isinstance(e, int | float) or not 0 <= e < math.inf:
            raise ConfigError(f"sample.popularity_exponent must be a finite number >= 0, got {e!r}")
        try:
            ok = date.fromisoformat(self.start_date) >= date(1970, 1, 1)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                f"sample.start_date must be an ISO date >= 1970-01-01: {self.start_date!r}"
            )
