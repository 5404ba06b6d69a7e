"""Choosing on validation: the hybrid's blend weight and the night's champion model."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation.ranking_metrics import ranking_metrics
from recsys_spark.logs import get_logger
from recsys_spark.models.hybrid import blend_ranked_lists

log = get_logger(__name__)


def metric_cutoff(metric: str, default_k: int) -> int:
    """The K of a metric name (`ndcg_at_10` -> 10); `default_k` for `map`."""
    match = re.fullmatch(r"[a-z_]+_at_(\d+)", metric)
    return int(match.group(1)) if match else default_k


def validation_score(lists: DataFrame, validation: DataFrame, *, metric: str, k: int) -> float:
    """`metric` of `lists` (cut at `k`) against the held-out pairs `validation`."""
    top = lists.filter(F.col(C.RANK) <= k).select(C.USER_ID, C.ITEM_ID, C.RANK)
    return ranking_metrics(top, validation.select(C.USER_ID, C.ITEM_ID), ks=(k,))[metric]


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

    Returns the best weight and the score of every weight tried.
    """
    if not weights:
        raise ValueError("no blend weights to try")
    scores: dict[float, float] = {}
    for weight in weights:
        blended = blend_ranked_lists(first, second, weight=weight, depth=depth, n=k)
        scores[weight] = validation_score(blended, validation, metric=metric, k=k)
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
