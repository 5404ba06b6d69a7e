"""Load the configuration: base.yml, an overlay, `--set` overrides, into `AppConfig`.

`conf/base.yml` holds every key with its default; an environment overlay (for example
`conf/local.yml`) and repeated `--set dotted.key=value` overrides are merged on top.
The merged mapping is parsed into frozen dataclasses: an unknown key, a value of the
wrong type or a missing file raises :class:`ConfigError` with a one-line message naming
the key, before any Spark work starts.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml

from recsys_spark.config.sections_catalog import CatalogConfig, RulesConfig
from recsys_spark.config.sections_data import IngestConfig, SampleConfig
from recsys_spark.config.sections_models import (
    AlsConfig,
    EaseConfig,
    RankerConfig,
    RecommendConfig,
    SimilarityConfig,
)
from recsys_spark.config.sections_pipeline import (
    EvaluationConfig,
    MaintenanceConfig,
    NightlyConfig,
)
from recsys_spark.config.sections_runtime import SparkConfig, StorageConfig, TrackingConfig
from recsys_spark.errors import ConfigError

# RECSYS_SPARK_CONF_DIR: where base.yml lives when the package is imported from a zip or
# wheel (spark-submit --py-files puts it ahead of the checkout on the driver's path).
CONF_DIR = Path(
    os.environ.get("RECSYS_SPARK_CONF_DIR", Path(__file__).resolve().parents[2] / "conf")
)
BASE_FILE = CONF_DIR / "base.yml"

T = TypeVar("T")


@dataclass(frozen=True)
class AppConfig:
    """The whole configuration of one job run."""

    storage: StorageConfig = field(default_factory=StorageConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    als: AlsConfig = field(default_factory=AlsConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    ease: EaseConfig = field(default_factory=EaseConfig)
    ranker: RankerConfig = field(default_factory=RankerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    nightly: NightlyConfig = field(default_factory=NightlyConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)


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
