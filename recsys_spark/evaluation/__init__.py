"""Offline evaluation: ranking, coverage, novelty and diversity metrics, reports.

The public API is re-exported here; the executor kernels (numpy over partitions of
users) live in the private `_kernels` package.

- `run_evaluation` (offline): the standalone evaluation's split, baseline, scores, report;
- `evaluate_lists` / `evaluate_model` (model_eval): every metric of several / one model's
  lists against a split; `prepare_training` packs the training pairs once for all;
- `ranking_metrics`, `per_user_ranking_metrics` (ranking_metrics), `coverage_metrics`,
  `beyond_accuracy_metrics` (coverage), `diversity_metrics` (diversity): single metrics;
- `write_report` (offline), `write_metrics_json`, `write_html` (report): the report files.
"""

from recsys_spark.evaluation.coverage import beyond_accuracy_metrics, coverage_metrics
from recsys_spark.evaluation.diversity import diversity_metrics
from recsys_spark.evaluation.model_eval import (
    evaluate_lists,
    evaluate_model,
    most_popular_lists,
    prepare_training,
)
from recsys_spark.evaluation.offline import prepare_split, run_evaluation, write_report
from recsys_spark.evaluation.ranking_metrics import (
    metric_names,
    per_user_ranking_metrics,
    ranking_metrics,
)
from recsys_spark.evaluation.report import write_html, write_metrics_json

__all__ = [
    "beyond_accuracy_metrics",
    "coverage_metrics",
    "diversity_metrics",
    "evaluate_lists",
    "evaluate_model",
    "metric_names",
    "most_popular_lists",
    "per_user_ranking_metrics",
    "prepare_split",
    "prepare_training",
    "ranking_metrics",
    "run_evaluation",
    "write_html",
    "write_metrics_json",
    "write_report",
]
