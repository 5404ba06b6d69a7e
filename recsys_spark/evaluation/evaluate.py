"""One model's full evaluation, and the most-popular baseline every model is compared to.

Pure functions of DataFrames (no I/O): `evaluate_model` runs the ranking metrics, the
beyond-accuracy metrics, the diversity metrics, the breakdowns and the curves for one
set of lists; `most_popular_lists` builds the baseline lists with
`recsys_spark.popularity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.evaluation.breakdown import (
    metrics_by_item_bucket,
    metrics_by_user_bucket,
    user_activity_buckets,
)
from recsys_spark.evaluation.coverage import beyond_accuracy_metrics, exposure_curves
from recsys_spark.evaluation.diversity import diversity_metrics
from recsys_spark.evaluation.ranking import mean_metrics, metric_names, per_user_ranking_metrics
from recsys_spark.logs import get_logger, stage
from recsys_spark.popularity import popular_items, recommend_popular

BASELINE_MODEL = "most_popular"
log = get_logger(__name__)


@dataclass(frozen=True)
class EvaluationParams:
    """Cut-offs and knobs of `evaluate_model` (see the config section `evaluation`)."""

    ks: tuple[int, ...] = (5, 10, 20)
    k: int = 10
    relevance_col: str | None = None
    head_share: float = 0.2
    cold_max_history: int = 5
    heavy_quantile: float = 0.8
    diversity_max_users: int | None = 200
    seed: int = 42


@dataclass
class ModelEvaluation:
    """Everything measured for one model: metrics, breakdowns, curve points."""

    metrics: dict[str, float] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)


def evaluate_model(
    recs: DataFrame,
    train: DataFrame,
    test: DataFrame,
    params: EvaluationParams = EvaluationParams(),
    *,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> ModelEvaluation:
    """Every metric of the lists `recs` against the held-out pairs `test`.

    Parameters
    ----------
    recs
        Lists `user_col`, `item_col`, `rank_col` (cache it: it is read several times).
    train
        Training pairs: catalogue, popularity, histories and activity buckets.
    test
        Held-out pairs (with `params.relevance_col` for graded NDCG).

    Returns
    -------
    ModelEvaluation
        `metrics` (ranking at every K, `map`, `users_evaluated`, coverage, novelty,
        diversity...), `breakdowns` (`by_activity`, `by_popularity`) and `curves`.
    """
    cols = {"user_col": user_col, "item_col": item_col, "rank_col": rank_col}
    pair_cols = {"user_col": user_col, "item_col": item_col}
    ks = tuple(sorted(set(params.ks) | {params.k}))
    k = params.k
    per_user = per_user_ranking_metrics(
        recs, test, ks=ks, relevance_col=params.relevance_col, **cols
    ).cache()
    try:
        with stage(log, "ranking metrics"):
            metrics = mean_metrics(per_user, metric_names(ks))
        with stage(log, "activity breakdown"):
            buckets = user_activity_buckets(
                train,
                test,
                cold_max_history=params.cold_max_history,
                heavy_quantile=params.heavy_quantile,
                **pair_cols,
            )
            main = [f"{m}_at_{k}" for m in ("precision", "recall", "ndcg", "hit_rate")]
            by_activity = metrics_by_user_bucket(
                per_user, buckets, [*main, "map"], user_col=user_col
            )
    finally:
        per_user.unpersist()
    with stage(log, "coverage metrics"):
        metrics.update(
            beyond_accuracy_metrics(
                recs, train, k=k, users=test, head_share=params.head_share, **cols
            )
        )
    with stage(log, f"diversity metrics (at most {params.diversity_max_users} users)"):
        metrics.update(
            diversity_metrics(
                recs,
                train,
                test,
                k=k,
                max_users=params.diversity_max_users,
                seed=params.seed,
                **cols,
            )
        )
    with stage(log, "popularity breakdown and curves"):
        by_popularity = metrics_by_item_bucket(
            recs, test, train, k=k, head_share=params.head_share, **cols
        )
        curves = exposure_curves(recs, train, k=k, **cols)
    return ModelEvaluation(
        metrics=metrics,
        breakdowns={"by_activity": by_activity, "by_popularity": by_popularity},
        curves=curves,
    )


def most_popular_lists(
    train: DataFrame, users: DataFrame, *, n: int, exclude_seen: bool = True
) -> DataFrame:
    """The most-popular baseline: the `n` most popular training items each user has not seen.

    Parameters
    ----------
    train
        Training pairs `user_id`, `item_id` (and `last_ts`, not needed here).
    users
        `user_id` of the users to serve (users unknown to training get the plain list).
    exclude_seen
        Skip each user's training items (the protocol of BASELINES.md).

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `rank` (1..n), `score` (distinct training users).
    """
    pairs = train.select(C.USER_ID, C.ITEM_ID)
    with_ts = pairs.withColumn(C.LAST_TS, F.lit(None).cast("timestamp"))
    popular = popular_items(with_ts)
    seen = pairs if exclude_seen else pairs.limit(0)
    max_seen_row = (
        seen.groupBy(C.USER_ID)
        .agg(F.countDistinct(C.ITEM_ID).alias("n"))
        .agg(F.max("n").alias("m"))
        .first()
    )
    max_seen = int(max_seen_row["m"] or 0) if max_seen_row else 0
    return recommend_popular(users, seen, popular, n=n, max_seen=max_seen)
