"""Config sections of the evaluation and the nightly pipeline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from recsys_spark.config.checks import one_of
from recsys_spark.config.sections_models import SIMILARITY_MEASURES
from recsys_spark.errors import ConfigError

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
        one_of("evaluation.split", self.split, EVALUATION_SPLITS)
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
        one_of("nightly.hybrid_measure", self.hybrid_measure, SIMILARITY_MEASURES)
        one_of("nightly.gate_metric", self.gate_metric, NIGHTLY_GATE_METRICS)
        if not self.hybrid_weights or any(not 0.0 <= w <= 1.0 for w in self.hybrid_weights):
            raise ConfigError("nightly.hybrid_weights: list weights of ALS in [0, 1]")
        if not math.isfinite(self.gate_tolerance):
            raise ConfigError("nightly.gate_tolerance must be a number")


# Delta's default `delta.deletedFileRetentionDuration` (7 days): VACUUM keeps every file
# that a version of the last week still reads, and so does our maintenance at least.
DELTA_DEFAULT_RETENTION_HOURS = 168


@dataclass(frozen=True)
class MaintenanceConfig:
    """Table maintenance (jobs/maintain.py, and the night's `maintain` stage when due):
    OPTIMIZE, then VACUUM with `retention_hours`, of every table under the storage root."""

    every_days: int = 7
    retention_hours: int = DELTA_DEFAULT_RETENTION_HOURS

    def __post_init__(self) -> None:
        if isinstance(self.every_days, bool) or self.every_days < 0:
            raise ConfigError("maintenance.every_days must be an integer >= 0 (0 = never)")
        if self.retention_hours < DELTA_DEFAULT_RETENTION_HOURS:
            raise ConfigError(
                f"maintenance.retention_hours must be at least {DELTA_DEFAULT_RETENTION_HOURS} "
                f"(Delta's default safety interval; reruns and readers of older versions need "
                f"their files), got {self.retention_hours}"
            )
