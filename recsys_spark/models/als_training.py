"""The ALS runner: tune (optionally), fit implicit ALS, write factors and top-N lists.

`run_als(spark, AlsConfig, RecommendConfig, TrackingConfig, StorageConfig)` reads
`interactions` under the storage root it is given (its `user_idx` and `item_idx`
columns; the index tables are not read) and writes, under the same root,
`als_user_factors`, `als_item_factors`, `als_tuning` (when tuning) and the `als` rows of
`model_recommendations`: every user gets `top_n` items, users the model cannot serve are
completed from the popularity ranking (`source = popularity`).
"""

from __future__ import annotations

import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import AlsConfig, RecommendConfig, StorageConfig, TrackingConfig
from recsys_spark.io import delta
from recsys_spark.logs import get_logger, stage
from recsys_spark.models.affinity import user_item_affinity
from recsys_spark.models.als import (
    als_ratings,
    fit_als,
    fit_params,
    item_factors,
    save_model,
    user_factors,
    with_ids,
)
from recsys_spark.models.als_tuning import candidates, mlflow_trial_logger, trials_frame, tune_als
from recsys_spark.models.fallback import recommend_with_fallback, users_by_source
from recsys_spark.models.lists import write_recommendations
from recsys_spark.models.popularity import popular_items
from recsys_spark.models.reasons import factor_reasons
from recsys_spark.models.topn import recommend_for_all_users
from recsys_spark.tracking import use_experiment

log = get_logger(__name__)


@dataclass(frozen=True)
class AlsRunReport:
    """What one run did: the parameters fitted, users per source, the run id, the trials."""

    run_id: str
    params: AlsConfig
    users_by_source: dict[str, int] = field(default_factory=dict)
    tuning: tuple[dict[str, Any], ...] = ()


def run_als(
    spark: SparkSession,
    als: AlsConfig,
    recommend: RecommendConfig,
    tracking: TrackingConfig,
    storage: StorageConfig,
    *,
    top_n: int | None = None,
    serve: DataFrame | None = None,
) -> AlsRunReport:
    """Tune (when `als.tuning.enabled`), fit, write the factors and the `als` lists.

    Parameters
    ----------
    als
        The fit's hyperparameters, affinity decay, log scaling and tuning grid.
    recommend
        `min_interactions` for model lists, `popularity_window_days` of the fallback,
        `top_n` (unless given).
    tracking
        An MLflow run `train_als` (a child run under an active parent) when enabled.
    storage
        Where `interactions` is read and every output table is written; checkpoints go
        to `<root>/_checkpoints/als`.
    top_n
        Length of the lists (default `recommend.top_n`).
    serve
        `user_id`s to write lists for (the nightly's holdout users); default every user
        of the interactions table.
    """
    interactions = delta.read_required(spark, storage.table(tables.INTERACTIONS))
    spark.sparkContext.setCheckpointDir(f"{storage.root_uri}/_checkpoints/als")
    n = recommend.top_n if top_n is None else top_n
    with ExitStack() as stack:
        mlflow = None
        if tracking.enabled:
            mlflow = use_experiment(tracking)
            # Under the nightly's parent run this becomes a child run.
            nested = mlflow.active_run() is not None
            run = mlflow.start_run(run_name="train_als", nested=nested)
            run_id = stack.enter_context(run).info.run_id
        else:
            run_id = uuid.uuid4().hex
        affinity = user_item_affinity(
            interactions, half_life_days=als.half_life_days, window_days=als.window_days
        ).cache()
        params, trials = _fit_and_write_factors(spark, als, storage, affinity, run_id, mlflow)
        who = "every user" if serve is None else "the users to serve"
        with stage(log, f"top-{n} for {who}"):
            recs = _recommend(spark, recommend, storage, interactions, affinity, n, serve)
            recs = recs.select("*", F.lit(tables.ALS).alias(C.MODEL), F.lit(run_id).alias(C.RUN_ID))
            rec_path = storage.table(tables.MODEL_RECOMMENDATIONS)
            write_recommendations(recs, rec_path, tables.ALS)
        affinity.unpersist()
        written = delta.read_table(spark, rec_path).filter(F.col(C.MODEL) == tables.ALS)
        counts = users_by_source(written)
        log.info("users served: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        if mlflow:
            mlflow.log_metrics({f"users_{k}": float(v) for k, v in counts.items()})
    return AlsRunReport(run_id, params, counts, trials)


def _fit_and_write_factors(
    spark: SparkSession,
    als: AlsConfig,
    storage: StorageConfig,
    affinity: DataFrame,
    run_id: str,
    mlflow: Any,
) -> tuple[AlsConfig, tuple[dict[str, Any], ...]]:
    """Tune when asked, fit, write both factor tables; the parameters fitted and trials."""
    ratings = als_ratings(affinity, log_scaling=als.log_scaling, eps=als.log_eps).cache()
    params = als
    trials: tuple[dict[str, Any], ...] = ()
    if als.tuning.enabled:
        t = als.tuning
        grid = candidates(
            t.ranks, t.reg_params, t.alphas, mode=t.mode, n_trials=t.n_trials, seed=t.seed
        )
        with stage(log, f"tuning ({len(grid)} candidates, {t.mode})"):
            result = tune_als(
                ratings,
                als,
                grid,
                validation_ratio=t.validation_ratio,
                seed=t.seed,
                on_trial=mlflow_trial_logger(run_id) if mlflow else None,
            )
        params = result.best
        delta.overwrite(trials_frame(spark, result, run_id), storage.table(tables.ALS_TUNING))
        trials = tuple(
            {"rank": x.rank, "reg_param": x.reg_param, "alpha": x.alpha, **x.metrics}
            for x in result.trials
        )
    if mlflow:
        mlflow.log_params({**fit_params(params), "log_scaling": als.log_scaling})

    with stage(log, f"ALS fit (rank {params.rank}, {params.max_iter} iterations)"):
        model = fit_als(ratings, params)
        pairs = affinity.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.ITEM_ID)
        users_ix = pairs.select(C.USER_IDX, C.USER_ID).distinct()
        items_ix = pairs.select(C.ITEM_IDX, C.ITEM_ID).distinct()
        run_col = F.lit(run_id).alias(C.RUN_ID)
        ids = {"idx_col": C.USER_IDX, "id_col": C.USER_ID}
        delta.overwrite(
            with_ids(user_factors(model), users_ix, **ids).select("*", run_col),
            storage.table(tables.ALS_USER_FACTORS),
        )
        ids = {"idx_col": C.ITEM_IDX, "id_col": C.ITEM_ID}
        delta.overwrite(
            with_ids(item_factors(model), items_ix, **ids).select("*", run_col),
            storage.table(tables.ALS_ITEM_FACTORS),
        )
    if mlflow:
        with tempfile.TemporaryDirectory() as tmp:
            save_model(model, f"{tmp}/als_model")
            mlflow.log_artifacts(f"{tmp}/als_model", "als_model")
    ratings.unpersist()
    return params, trials


def _recommend(
    spark: SparkSession,
    recommend: RecommendConfig,
    storage: StorageConfig,
    interactions: DataFrame,
    affinity: DataFrame,
    n: int,
    serve: DataFrame | None,
) -> DataFrame:
    """Model lists for users with factors and enough history, the popularity fill for all."""
    history = affinity.groupBy(C.USER_IDX).agg(F.count(F.lit(1)).alias("_n_items"))
    enough = history.filter(F.col("_n_items") >= recommend.min_interactions)
    factors = delta.read_table(spark, storage.table(tables.ALS_USER_FACTORS))
    served = factors.join(enough, on=C.USER_IDX, how="left_semi")
    users = interactions.select(C.USER_ID)
    if serve is not None:
        users = serve.select(C.USER_ID)
        served = served.join(users, on=C.USER_ID, how="left_semi")
    seen_idx = interactions.select(C.USER_IDX, C.ITEM_IDX)
    item_table = delta.read_table(spark, storage.table(tables.ALS_ITEM_FACTORS))
    model_recs = recommend_for_all_users(served, item_table, seen_idx, n=n)
    # Each recommendation's reason: the history item nearest to it in factor space.
    model_recs = factor_reasons(model_recs, affinity, item_table)
    events = interactions.select(C.USER_ID, C.ITEM_ID, F.col(C.EVENT_TS).alias(C.LAST_TS))
    popular = popular_items(events, window_days=recommend.popularity_window_days)
    return recommend_with_fallback(
        model_recs,
        users,
        interactions.select(C.USER_ID, C.ITEM_ID),
        popular,
        n=n,
    )
