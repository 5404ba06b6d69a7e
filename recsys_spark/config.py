"""Typed, frozen configuration loaded from YAML.

`conf/base.yml` holds every key with its default; an environment overlay (for example
`conf/local.yml`) and repeated `--set dotted.key=value` overrides are merged on top.
The merged mapping is parsed into frozen dataclasses: an unknown key, a value of the
wrong type or a missing file raises :class:`ConfigError` with a one-line message naming
the key, before any Spark work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

# RECSYS_SPARK_CONF_DIR: where base.yml lives when the package is imported from a zip or
# wheel (spark-submit --py-files puts it ahead of the checkout on the driver's path).
CONF_DIR = Path(
    os.environ.get("RECSYS_SPARK_CONF_DIR", Path(__file__).resolve().parent.parent / "conf")
)
BASE_FILE = CONF_DIR / "base.yml"

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem a user can fix; the message names the key or file."""


@dataclass(frozen=True)
class StorageConfig:
    """Where every table lives: all locations derive from `root` (a folder or a URI)."""

    root: str = "data/lake"

    @property
    def root_uri(self) -> str:
        """The root as a URI; a plain local path is made absolute (relative to the cwd)."""
        if "://" in self.root or self.root.startswith(("file:", "dbfs:")):
            return self.root.rstrip("/")
        return Path(self.root).resolve().as_uri()

    def table(self, name: str) -> str:
        """Location of the Delta table `name` under the storage root."""
        return f"{self.root_uri}/{name}"


@dataclass(frozen=True)
class SparkConfig:
    """SparkSession settings; `master` and `driver_memory` apply outside spark-submit only."""

    app_name: str = "recsys-spark"
    master: str = "local[2]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 4
    log_level: str = "WARN"
    ui_enabled: bool = False
    conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shuffle_partitions <= 0:
            raise ConfigError("spark.shuffle_partitions must be positive")


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
    """How raw logs are read, validated, weighted and merged into Delta."""

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

    def __post_init__(self) -> None:
        _one_of("ingest.format", self.format, ("csv", "json", "parquet"))
        _one_of(
            "ingest.timestamp_format", self.timestamp_format, ("auto", "iso", "epoch_s", "epoch_ms")
        )
        _one_of(
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
        if self.format == "csv" and not self.csv_delimiter:
            raise ConfigError("ingest.csv_delimiter must not be empty")
        try:
            datetime.fromisoformat(self.min_timestamp)
        except (TypeError, ValueError):
            raise ConfigError(
                f"ingest.min_timestamp must be an ISO-8601 date or time; got '{self.min_timestamp}'"
            ) from None


@dataclass(frozen=True)
class SampleConfig:
    """The built-in synthetic log (see recsys_spark.sample)."""

    path: str = "data/sample/events.csv"
    format: str = "csv"
    n_events: int = 20_000
    n_users: int = 1_000
    n_items: int = 500
    n_groups: int = 8
    start_date: str = "2026-01-01"
    days: int = 120
    seed: int = 42
    duplicate_fraction: float = 0.01
    bad_row_fraction: float = 0.002
    timestamp_format: str = "iso"


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking; the embedded SQLite store by default."""

    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "recsys-spark"


@dataclass(frozen=True)
class AlsTuningConfig:
    """Search over rank, regParam and alpha, scored by NDCG@10 on a validation part."""

    enabled: bool = False
    mode: str = "grid"
    n_trials: int = 8
    ranks: tuple[int, ...] = (64, 128)
    reg_params: tuple[float, ...] = (0.1, 0.3, 1.0)
    alphas: tuple[float, ...] = (1.0, 4.0)
    validation_ratio: float = 0.2
    seed: int = 7

    def __post_init__(self) -> None:
        _one_of("als.tuning.mode", self.mode, ("grid", "random"))
        if not self.ranks or not self.reg_params or not self.alphas:
            raise ConfigError("als.tuning: ranks, reg_params and alphas need >= 1 value each")
        if not 0.0 < self.validation_ratio < 1.0:
            raise ConfigError("als.tuning.validation_ratio must be in (0, 1)")
        if self.n_trials <= 0:
            raise ConfigError("als.tuning.n_trials must be positive")
        if min(self.ranks) <= 0:
            raise ConfigError("als.tuning.ranks must be positive")
        if min(self.reg_params) < 0 or min(self.alphas) < 0:
            raise ConfigError("als.tuning.reg_params and als.tuning.alphas must be >= 0")


@dataclass(frozen=True)
class AlsConfig:
    """Implicit ALS on the user-item affinity (see recsys_spark.als)."""

    rank: int = 64
    reg_param: float = 0.1
    alpha: float = 1.0
    max_iter: int = 15
    seed: int = 42
    num_user_blocks: int = 4
    num_item_blocks: int = 4
    log_scaling: bool = False
    log_eps: float = 1.0
    half_life_days: float | None = None
    window_days: float | None = None
    checkpoint_interval: int = 10
    tuning: AlsTuningConfig = field(default_factory=AlsTuningConfig)

    def __post_init__(self) -> None:
        if self.rank <= 0 or self.max_iter <= 0:
            raise ConfigError("als.rank and als.max_iter must be positive")
        if self.reg_param < 0 or self.alpha < 0:
            raise ConfigError("als.reg_param and als.alpha must be >= 0")
        if self.log_eps <= 0:
            raise ConfigError("als.log_eps must be positive")
        if self.num_user_blocks <= 0 or self.num_item_blocks <= 0:
            raise ConfigError("als.num_user_blocks and als.num_item_blocks must be positive")
        if self.checkpoint_interval == 0 or self.checkpoint_interval < -1:
            raise ConfigError("als.checkpoint_interval must be >= 1, or -1 for no checkpoints")
        _positive_or_none("als.half_life_days", self.half_life_days)
        _positive_or_none("als.window_days", self.window_days)


@dataclass(frozen=True)
class RecommendConfig:
    """Top-N serving: list length and the popularity fallback for cold or short histories."""

    top_n: int = 10
    min_interactions: int = 3
    popularity_window_days: float | None = 30.0

    def __post_init__(self) -> None:
        if self.top_n <= 0:
            raise ConfigError("recommend.top_n must be positive")
        if self.min_interactions < 0:
            raise ConfigError("recommend.min_interactions must be >= 0")
        _positive_or_none("recommend.popularity_window_days", self.popularity_window_days)


SIMILARITY_MEASURES = ("count", "jaccard", "cosine", "lift", "inclusion", "llr")
SIMILARITY_NEIGHBOURHOODS = ("candidate", "history")  # recsys_spark.item_based.NEIGHBOURHOODS


@dataclass(frozen=True)
class SimilarityConfig:
    """Item-item co-occurrence similarities and item-based top-N (jobs/similarity.py)."""

    measures: tuple[str, ...] = ("jaccard", "cosine", "llr")
    min_support: int = 2
    max_per_user: int = 500
    max_per_item: int = 500
    top_k: int = 50
    neighbourhood: str = "candidate"
    seed: int = 42
    half_life_days: float | None = None
    window_days: float | None = None
    top_n: int = 10
    similar_items_n: int = 10
    num_partitions: int = 0

    def __post_init__(self) -> None:
        if not self.measures:
            raise ConfigError("similarity.measures: list at least one measure")
        for measure in self.measures:
            _one_of("similarity.measures", measure, SIMILARITY_MEASURES)
        _one_of("similarity.neighbourhood", self.neighbourhood, SIMILARITY_NEIGHBOURHOODS)
        for key in ("min_support", "max_per_user", "max_per_item", "top_k", "top_n"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"similarity.{key} must be positive")
        if self.similar_items_n <= 0 or self.num_partitions < 0:
            raise ConfigError("similarity.similar_items_n must be > 0, num_partitions >= 0")
        _positive_or_none("similarity.half_life_days", self.half_life_days)
        _positive_or_none("similarity.window_days", self.window_days)


EVALUATION_SPLITS = ("random", "chronological", "leave_last_k_out")


@dataclass(frozen=True)
class EvaluationConfig:
    """Offline evaluation: the split, the cut-offs and the report (jobs/evaluate.py)."""

    split: str = "random"
    test_ratio: float = 0.25
    seed: int = 42
    cut: str = ""
    leave_k: int = 1
    min_train: int = 1
    ks: tuple[int, ...] = (5, 10, 20)
    k: int = 10
    relevance_col: str = ""
    models: tuple[str, ...] = ()
    resplit: bool = False
    head_share: float = 0.2
    cold_max_history: int = 5
    heavy_quantile: float = 0.8
    diversity_max_users: int = 0  # 0 = every list user
    report_dir: str = "reports/evaluation"

    def __post_init__(self) -> None:
        _one_of("evaluation.split", self.split, EVALUATION_SPLITS)
        if not 0.0 < self.test_ratio < 1.0:
            raise ConfigError("evaluation.test_ratio must be in (0, 1)")
        if self.split == "chronological" and not self.cut:
            raise ConfigError(
                "evaluation.cut: give an ISO time (2026-03-01T00:00) for split chronological"
            )
        if self.cut:
            try:
                datetime.fromisoformat(self.cut)
            except ValueError:
                raise ConfigError(
                    f"evaluation.cut must be an ISO time (2026-03-01T00:00); got '{self.cut}'"
                ) from None
        if not self.ks or min(self.ks) < 1 or self.k < 1:
            raise ConfigError("evaluation.ks and evaluation.k must be positive cut-offs")
        if self.leave_k < 1 or self.min_train < 0 or self.diversity_max_users < 0:
            raise ConfigError("evaluation.leave_k >= 1, min_train >= 0, diversity_max_users >= 0")
        if not 0.0 <= self.head_share <= 1.0 or not 0.0 < self.heavy_quantile < 1.0:
            raise ConfigError("evaluation.head_share in [0, 1], heavy_quantile in (0, 1)")


NIGHTLY_GATE_METRICS = ("ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10", "map")


@dataclass(frozen=True)
class NightlyConfig:
    """The nightly pipeline (jobs/nightly.py): holdout, hybrid, tuning schedule, gate."""

    holdout_days: int = 14
    validation_share: float = 0.5
    candidate_depth: int = 50
    hybrid_measure: str = "jaccard"
    hybrid_weights: tuple[float, ...] = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
    tune_every_days: int = 7
    gate_metric: str = "ndcg_at_10"
    gate_tolerance: float = 0.01
    report_dir: str = "reports/nightly"

    def __post_init__(self) -> None:
        if self.holdout_days < 1 or self.candidate_depth < 1 or self.tune_every_days < 0:
            raise ConfigError(
                "nightly.holdout_days and candidate_depth must be >= 1, tune_every_days >= 0"
            )
        if not 0.0 < self.validation_share < 1.0:
            raise ConfigError("nightly.validation_share must be in (0, 1)")
        _one_of("nightly.hybrid_measure", self.hybrid_measure, SIMILARITY_MEASURES)
        _one_of("nightly.gate_metric", self.gate_metric, NIGHTLY_GATE_METRICS)
        if not self.hybrid_weights or any(not 0.0 <= w <= 1.0 for w in self.hybrid_weights):
            raise ConfigError("nightly.hybrid_weights: list weights of ALS in [0, 1]")
        if not math.isfinite(self.gate_tolerance):
            raise ConfigError("nightly.gate_tolerance must be a number")


@dataclass(frozen=True)
class AppConfig:
    """The whole configuration of one job run."""

    storage: StorageConfig = field(default_factory=StorageConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    als: AlsConfig = field(default_factory=AlsConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    nightly: NightlyConfig = field(default_factory=NightlyConfig)


def _positive_or_none(key: str, value: float | None) -> None:
    if value is not None and not value > 0:  # also refuses NaN
        raise ConfigError(f"{key} must be positive, or null for none; got {value}")


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(allowed)}; got '{value}'")


def load_config(
    conf_file: str | Path | None = None, overrides: list[str] | None = None
) -> AppConfig:
    """Load `conf/base.yml`, merge `conf_file` and `key=value` overrides, parse and validate.

    Parameters
    ----------
    conf_file
        An overlay YAML file (for example `conf/local.yml`); None loads the base file only.
    overrides
        Strings `dotted.key=value`; the value is parsed as YAML (`10`, `true`, `[a, b]`);
        `key=` sets an empty string, and text that YAML reads as no value (`,`, `|`, `#`)
        is taken as it is.

    Returns
    -------
    AppConfig
        Frozen configuration. Raises ConfigError naming the key or file on any problem.
    """
    merged = _read_yaml(BASE_FILE)
    if conf_file is not None:
        # A file replaces a free-form map (ingest.event_weights) whole ...
        merged = _deep_merge(merged, _read_yaml(Path(conf_file)), AppConfig, replace_maps=True)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set '{item}': expected dotted.key=value")
        # ... while --set ingest.event_weights.view=3 changes one entry of it.
        value = _override_value(raw)
        overlay = _nest(key.strip().split("."), value)
        merged = _deep_merge(merged, overlay, AppConfig, replace_maps=False)
    return from_mapping(AppConfig, merged)


def from_mapping(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build the dataclass `cls` from `data`, checking every key and type recursively."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix or '<root>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}' (known: {', '.join(sorted(names))})")
        values[key] = _coerce(hints[key], value, dotted)
    try:
        return cls(**values)
    except TypeError as exc:  # a required field without a default
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}': {exc}") from None


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value if value is not None else {}, f"{key}.")  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(args[0], value, key)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key '{key}' must be a mapping; got {value!r}")
        _, value_type = typing.get_args(hint)
        return {str(k): _coerce(value_type, v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key '{key}' must be a list; got {value!r}")
        item_type = typing.get_args(hint)[0]
        return tuple(_coerce(item_type, v, f"{key}[{i}]") for i, v in enumerate(value))
    return _coerce_scalar(hint, value, key)


def _coerce_scalar(hint: Any, value: Any, key: str) -> Any:
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        # YAML reads an unquoted 2000-01-01 as a date: as text it is its ISO form.
        str: isinstance(value, str | int | float | date) and not isinstance(value, bool),
    }.get(hint)
    if ok is None:
        raise ConfigError(f"config key '{key}' has an unsupported type {hint!r}")
    if not ok:
        raise ConfigError(f"config key '{key}' must be {hint.__name__}; got {value!r}")
    return value.isoformat() if isinstance(value, date) else hint(value)


_YAML_NULLS = ("null", "Null", "NULL", "~")
_YAML_EMPTY = ('""', "''")


def _override_value(raw: str) -> Any:
    """The value of `--set key=raw`: YAML, or the text itself where YAML reads no value.

    A delimiter is the usual case: `,` is not valid YAML, `|` reads as an empty block and
    `#` as a comment. `key=` sets an empty string; `null` and `''` keep their YAML meaning.
    """
    text = raw.strip()
    if not text:
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if (value is None and text not in _YAML_NULLS) or (value == "" and text not in _YAML_EMPTY):
        return raw
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _deep_merge(
    base: dict[str, Any], overlay: Mapping[str, Any], cls: Any, *, replace_maps: bool
) -> dict[str, Any]:
    """Merge `overlay` into `base` section by section; `cls` is the dataclass at this level."""
    merged = dict(base)
    hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
    for key, value in overlay.items():
        hint = hints.get(key)
        nested = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        if nested and (dataclasses.is_dataclass(hint) or not replace_maps):
            merged[key] = _deep_merge(merged[key], value, hint, replace_maps=replace_maps)
        else:
            merged[key] = value
    return merged


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(keys):
        value = {key: value}
    return value
