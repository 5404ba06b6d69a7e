"""Offline evaluation: ranking metrics, beyond-accuracy metrics, reports."""

from recsys_spark.evaluation.ranking_metrics import (
    metric_names,
    per_user_ranking_metrics,
    ranking_metrics,
)

__all__ = ["metric_names", "per_user_ranking_metrics", "ranking_metrics"]
