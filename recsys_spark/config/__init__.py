"""Typed, frozen configuration loaded from YAML: one dataclass per section of `conf/base.yml`.

`load_config` merges `conf/base.yml`, an overlay and `--set` overrides and parses them into
`AppConfig`; an unknown key, a wrong type or an out-of-range value raises `ConfigError`
naming the key, before any Spark work starts. Each runner takes the sections it uses.
"""

from __future__ import annotations

from recsys_spark.config.loader import BASE_FILE, CONF_DIR, AppConfig, from_mapping, load_config
from recsys_spark.config.sections_catalog import (
    CatalogConfig,
    ExclusionsFile,
    ItemsFile,
    RulesConfig,
)
from recsys_spark.config.sections_data import ColumnMapping, IngestConfig, SampleConfig
from recsys_spark.config.sections_models import (
    ALS_SOLVERS,
    SIMILARITY_MEASURES,
    SIMILARITY_NEIGHBOURHOODS,
    AlsConfig,
    AlsTuningConfig,
    EaseConfig,
    RankerConfig,
    RecommendConfig,
    SimilarityConfig,
)
from recsys_spark.config.sections_pipeline import (
    EVALUATION_SPLITS,
    NIGHTLY_GATE_METRICS,
    EvaluationConfig,
    MaintenanceConfig,
    NightlyConfig,
)
from recsys_spark.config.sections_runtime import SparkConfig, StorageConfig, TrackingConfig
from recsys_spark.errors import ConfigError

__all__ = [
    "BASE_FILE",
    "CONF_DIR",
    "EVALUATION_SPLITS",
    "NIGHTLY_GATE_METRICS",
    "ALS_SOLVERS",
    "SIMILARITY_MEASURES",
    "SIMILARITY_NEIGHBOURHOODS",
    "AlsConfig",
    "AlsTuningConfig",
    "AppConfig",
    "CatalogConfig",
    "ColumnMapping",
    "ConfigError",
    "EaseConfig",
    "EvaluationConfig",
    "ExclusionsFile",
    "ItemsFile",
    "MaintenanceConfig",
    "IngestConfig",
    "NightlyConfig",
    "RankerConfig",
    "RecommendConfig",
    "RulesConfig",
    "SampleConfig",
    "SimilarityConfig",
    "SparkConfig",
    "StorageConfig",
    "TrackingConfig",
    "from_mapping",
    "load_config",
]
