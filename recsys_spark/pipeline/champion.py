"""Choosing on validation: the hybrid's blend weight and the night's champion model."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation.ranking_metrics import ranking_metrics_of_lists
from recsys_spark.logs import get_logger
from recsys_spark.models.hybrid import blend_ranked_lists

log = get_logger(__name__)


def metric_cutoff(metric: str, default_k: int) -> int:
    """The K of a metric name (`ndcg_at_10` -> 10); `default_k` for `map`."""
    match = re.fullmatch(r"[a-z_]+_at_(\d+)", metric)
    return int(match.group(1)) if match else default_k


def validation_scores(
    lists: Mapping[str, DataFrame], validation: DataFrame, *, metric: str, k: int
) -> dict[str, float]:
    """`metric` of each of `lists` (cut at `k`) against the held-out pairs `validation`,
    all in one Spark pass."""
    tops = {
        name: rows.filter(F.col(C.RANK) <= k).select(C.USER_ID, C.ITEM_ID, C.RANK)
        for name, rows in lists.items()
    }
    scored = ranking_metrics_of_lists(tops, validation.select(C.USER_ID, C.ITEM_ID), ks=(k,))
    return {name: scored[name][metric] for name in lists}


def tune_blend_weight(
    first: DataFrame,
    second: DataFrame,
    validation: DataFrame,
    *,
    weights: Sequence[float],
    depth: int,
    metric: str,
    k: int,
) -> tuple[float, dict[float, float]]:
    """The weight of `first` whose blend scores best on `validation` (ties: listed first).

    Every weight's blend is scored in one pass, on the validation users only (a blend is
    made user by user). Returns the best weight and the score of every weight tried.
    """
    if not weights:
        raise ValueError("no blend weights to try")
    users = validation.select(C.USER_ID).distinct()
    first, second = (rows.join(users, C.USER_ID, "left_semi") for rows in (first, second))
    blends = {
        str(i): blend_ranked_lists(first, second, weight=w, depth=depth, n=k)
        for i, w in enumerate(weights)
    }
    by_index = validation_scores(blends, validation, metric=metric, k=k)
    scores: dict[float, float] = {}
    for i, weight in enumerate(weights):
        scores[weight] = by_index[str(i)]
        log.info("hybrid weight %.2f: validation %s %.4f", weight, metric, scores[weight])
    best = max(weights, key=lambda w: (scores[w], -list(weights).index(w)))
    return best, scores


def choose_champion(scores: Mapping[str, float]) -> str:
    """The model with the best validation score; ties go to the alphabetically first.

    NaN scores (a model that could not be measured) never win.
    """
    measured = {m: s for m, s in scores.items() if s == s}
    if not measured:
        raise ValueError(f"no model could be scored on validation: {dict(scores)}")
    return min(measured, key=lambda m: (-measured[m], m))
