"""Config sections of the item catalogue and the business rules applied to every list."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys_spark.config.checks import one_of
from recsys_spark.errors import ConfigError

CATALOG_FORMATS = ("csv", "json", "parquet")


@dataclass(frozen=True)
class CatalogFile:
    """Where a catalogue file (or folder of files) is and how it is read.

    `source` "" means none is configured. CSV files have a header unless `csv_header` is
    false, in which case `csv_columns` names their columns in order.
    """

    source: str = ""
    format: str = "csv"
    csv_delimiter: str = ","
    csv_header: bool = True
    csv_columns: tuple[str, ...] = ()

    def _check(self, section: str, mapped: dict[str, str]) -> None:
        one_of(f"{section}.format", self.format, CATALOG_FORMATS)
        if self.format == "csv" and not self.csv_delimiter:
            raise ConfigError(f"{section}.csv_delimiter must not be empty")
        if self.format == "csv" and not self.csv_header:
            if not self.csv_columns:
                raise ConfigError(
                    f"{section}.csv_columns: list the column names when csv_header is false"
                )
            for key, name in mapped.items():
                if name and name not in self.csv_columns:
                    raise ConfigError(
                        f"{section}.columns.{key} names column '{name}', which is not in "
                        f"{section}.csv_columns {list(self.csv_columns)}"
                    )


@dataclass(frozen=True)
class ItemColumns:
    """The catalogue file's column names; "" = the file has no such column."""

    item: str = "item_id"
    title: str = "title"
    categories: str = "categories"
    available_from: str = "available_from"
    available_until: str = "available_until"
    active: str = "active"


@dataclass(frozen=True)
class ItemsFile(CatalogFile):
    """The item catalogue: one row per item, a full or a partial snapshot.

    `categories` is a list (JSON, Parquet) or one string split on `category_separator`.
    Every other column of the file is kept in the `attributes` map, or only those named
    in `attributes` when it is not empty. A `full` snapshot deactivates the items it
    does not list; a `partial` one leaves them as they are.
    """

    columns: ItemColumns = field(default_factory=ItemColumns)
    category_separator: str = "|"
    attributes: tuple[str, ...] = ()
    snapshot: str = "partial"

    def __post_init__(self) -> None:
        self._check("catalog.items", vars(self.columns))
        one_of("catalog.items.snapshot", self.snapshot, ("partial", "full"))
        if not self.columns.item:
            raise ConfigError("catalog.items.columns.item must name the item id column")
        if not self.category_separator:
            raise ConfigError("catalog.items.category_separator must not be empty")


@dataclass(frozen=True)
class ExclusionColumns:
    """The exclusions file's column names; `until` "" = every exclusion is permanent."""

    user: str = "user_id"
    item: str = "item_id"
    until: str = "until"


@dataclass(frozen=True)
class ExclusionsFile(CatalogFile):
    """Pairs a user must never be shown ("not interested"), optionally until a date."""

    columns: ExclusionColumns = field(default_factory=ExclusionColumns)

    def __post_init__(self) -> None:
        self._check("catalog.exclusions", vars(self.columns))
        if not self.columns.user or not self.columns.item:
            raise ConfigError("catalog.exclusions.columns: user and item must name a column")


@dataclass(frozen=True)
class CatalogConfig:
    """The item catalogue and the exclusions, MERGEd into the `items` and `exclusions`
    tables by `jobs/ingest_catalog.py` (and by the nightly's ingest stage).

    A batch whose quarantined rows exceed `max_quarantine_share` of its rows is refused
    (nothing merged). Items with fewer than `cold_min_interactions` interactions are new
    (cold): with `content_neighbours` they get item-item neighbours from their categories
    and title (recsys_spark.catalog.content), scaled by `content_weight`, among the
    `content_candidates` most popular items of each category and title word.
    """

    items: ItemsFile = field(default_factory=ItemsFile)
    exclusions: ExclusionsFile = field(default_factory=ExclusionsFile)
    max_quarantine_share: float = 0.05
    cold_min_interactions: int = 5
    content_neighbours: bool = True
    content_weight: float = 1.0
    content_candidates: int = 200

    def __post_init__(self) -> None:
        if self.content_candidates < 1:
            raise ConfigError(
                f"catalog.content_candidates must be at least 1; got {self.content_candidates}"
            )
        if not self.content_weight > 0:
            raise ConfigError(f"catalog.content_weight must be positive; got {self.content_weight}")
        if not 0.0 <= self.max_quarantine_share <= 1.0:
            raise ConfigError(
                "catalog.max_quarantine_share must be a share in [0, 1]; "
                f"got {self.max_quarantine_share}"
            )
        if self.cold_min_interactions < 0:
            raise ConfigError(
                f"catalog.cold_min_interactions must be >= 0; got {self.cold_min_interactions}"
            )


@dataclass(frozen=True)
class RulesConfig:
    """Business rules applied to every model's lists, the fallback and the evaluation.

    `availability`: only items available on the run date (catalogue window and active
    flag); items the catalogue does not know are allowed or blocked by `unknown_items`.
    `exclusions`: pairs of the `exclusions` table in force on the run date never appear.
    `max_per_category`: at most this many items of one category per list (0 = off).
    Models draw `candidate_factor` times deeper lists while a rule can remove items, so
    the lists stay `top_n` long.
    """

    availability: bool = True
    unknown_items: str = "allow"
    exclusions: bool = True
    max_per_category: int = 0
    candidate_factor: int = 3

    def __post_init__(self) -> None:
        one_of("rules.unknown_items", self.unknown_items, ("allow", "block"))
        if self.max_per_category < 0:
            raise ConfigError(
                f"rules.max_per_category must be >= 0 (0 = off); got {self.max_per_category}"
            )
        if self.candidate_factor < 1:
            raise ConfigError(
                f"rules.candidate_factor must be at least 1; got {self.candidate_factor}"
            )
