"""Train implicit ALS on the interactions and write top-N lists for every user.

    python jobs/train_als.py --conf conf/local.yml [--set als.tuning.enabled=true]

Reads `interactions` under storage.root (its user_idx and item_idx columns; the index
tables are not read); writes `als_user_factors`, `als_item_factors`, `als_tuning` (when
tuning) and the `als` rows of `model_recommendations`. Exit codes: 0 done, 2 bad
configuration or missing input tables.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.affinity import user_item_affinity
from recsys_spark.als import (
    AlsParams,
    als_ratings,
    fit_als,
    item_factors,
    user_factors,
    with_ids,
)
from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import AppConfig
from recsys_spark.fallback import recommend_with_fallback, users_by_source
from recsys_spark.io import delta
from recsys_spark.logs import get_logger, stage
from recsys_spark.popularity import popular_items
from recsys_spark.recommendations import write_recommendations
from recsys_spark.session import get_spark
from recsys_spark.topn import recommend_for_all_users
from recsys_spark.tuning import candidates, mlflow_trial_logger, trials_frame, tune_als

log = get_logger("jobs.train_als")
MODEL_NAME = "als"


class MissingInputError(RuntimeError):
    """An input table is missing; the message says which job creates it."""


@dataclass(frozen=True)
class AlsRunReport:
    """What one run did: parameters used, users per source, the run id."""

    run_id: str
    params: AlsParams
    users_by_source: dict[str, int] = field(default_factory=dict)
    tuning: tuple[dict[str, Any], ...] = ()


def params_from_config(cfg: AppConfig) -> AlsParams:
    """The ALS parameters of `cfg.als`."""
    a = cfg.als
    return AlsParams(
        rank=a.rank,
        reg_param=a.reg_param,
        alpha=a.alpha,
        max_iter=a.max_iter,
        seed=a.seed,
        num_user_blocks=a.num_user_blocks,
        num_item_blocks=a.num_item_blocks,
        checkpoint_interval=a.checkpoint_interval,
    )


def _read_input(spark: SparkSession, cfg: AppConfig, name: str) -> DataFrame:
    path = cfg.storage.table(name)
    if not delta.table_exists(spark, path):
        raise MissingInputError(f"no Delta table at {path}: run jobs/ingest.py first")
    return delta.read_table(spark, path)


def run(spark: SparkSession, cfg: AppConfig, *, serve: DataFrame | None = None) -> AlsRunReport:
    """Tune (optionally), fit, write factors and the `als` recommendations.

    `serve` (`user_id`) limits the lists to those users (the nightly's holdout users);
    default: every user of the interactions table.
    """
    interactions = _read_input(spark, cfg, tables.INTERACTIONS)
    spark.sparkContext.setCheckpointDir(f"{cfg.storage.root_uri}/_checkpoints/als")
    with ExitStack() as stack:
        mlflow = None
        if cfg.tracking.enabled:
            import mlflow  # noqa: PLC0415 - only when tracking is on

            mlflow.set_tracking_uri(cfg.tracking.uri)
            mlflow.set_experiment(cfg.tracking.experiment)
            # Under the nightly's parent run this becomes a child run.
            nested = mlflow.active_run() is not None
            run = mlflow.start_run(run_name="train_als", nested=nested)
            run_id = stack.enter_context(run).info.run_id
        else:
            run_id = uuid.uuid4().hex
        report = _train_and_recommend(spark, cfg, interactions, run_id, mlflow, serve)
    return report


def _train_and_recommend(
    spark: SparkSession,
    cfg: AppConfig,
    interactions: DataFrame,
    run_id: str,
    mlflow: Any,
    serve: DataFrame | None,
) -> AlsRunReport:
    affinity = user_item_affinity(
        interactions, half_life_days=cfg.als.half_life_days, window_days=cfg.als.window_days
    ).cache()
    ratings = als_ratings(affinity, log_scaling=cfg.als.log_scaling, eps=cfg.als.log_eps).cache()
    params = params_from_config(cfg)
    trials: tuple[dict[str, Any], ...] = ()
    if cfg.als.tuning.enabled:
        t = cfg.als.tuning
        grid = candidates(
            t.ranks, t.reg_params, t.alphas, mode=t.mode, n_trials=t.n_trials, seed=t.seed
        )
        with stage(log, f"tuning ({len(grid)} candidates, {t.mode})"):
            result = tune_als(
                ratings,
                params,
                grid,
                validation_ratio=t.validation_ratio,
                seed=t.seed,
                on_trial=mlflow_trial_logger(run_id) if mlflow else None,
            )
        params = result.best
        delta.overwrite(trials_frame(spark, result, run_id), cfg.storage.table(tables.ALS_TUNING))
        trials = tuple(
            {"rank": x.rank, "reg_param": x.reg_param, "alpha": x.alpha, **x.metrics}
            for x in result.trials
        )
    if mlflow:
        mlflow.log_params({**params.as_dict(), "log_scaling": cfg.als.log_scaling})

    with stage(log, f"ALS fit (rank {params.rank}, {params.max_iter} iterations)"):
        model = fit_als(ratings, params)
        pairs = affinity.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.ITEM_ID)
        users_ix = pairs.select(C.USER_IDX, C.USER_ID).distinct()
        items_ix = pairs.select(C.ITEM_IDX, C.ITEM_ID).distinct()
        run_col = F.lit(run_id).alias(C.RUN_ID)
        uf_path = cfg.storage.table(tables.ALS_USER_FACTORS)
        if_path = cfg.storage.table(tables.ALS_ITEM_FACTORS)
        ids = {"idx_col": C.USER_IDX, "id_col": C.USER_ID}
        delta.overwrite(
            with_ids(user_factors(model), users_ix, **ids).select("*", run_col), uf_path
        )
        ids = {"idx_col": C.ITEM_IDX, "id_col": C.ITEM_ID}
        delta.overwrite(
            with_ids(item_factors(model), items_ix, **ids).select("*", run_col), if_path
        )
    if mlflow:
        with tempfile.TemporaryDirectory() as tmp:
            model.write().overwrite().save(f"{tmp}/als_model")
            mlflow.log_artifacts(f"{tmp}/als_model", "als_model")
    ratings.unpersist()

    who = "every user" if serve is None else "the users to serve"
    with stage(log, f"top-{cfg.recommend.top_n} for {who}"):
        recs = _recommend(spark, cfg, interactions, affinity, run_id, uf_path, if_path, serve)
        rec_path = cfg.storage.table(tables.MODEL_RECOMMENDATIONS)
        write_recommendations(recs, rec_path, MODEL_NAME)
    affinity.unpersist()
    written = delta.read_table(spark, rec_path).filter(F.col(C.MODEL) == MODEL_NAME)
    counts = users_by_source(written)
    log.info("users served: %s", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if mlflow:
        mlflow.log_metrics({f"users_{k}": float(v) for k, v in counts.items()})
    return AlsRunReport(run_id, params, counts, trials)


def _recommend(
    spark: SparkSession,
    cfg: AppConfig,
    interactions: DataFrame,
    affinity: DataFrame,
    run_id: str,
    uf_path: str,
    if_path: str,
    serve: DataFrame | None,
) -> DataFrame:
    n = cfg.recommend.top_n
    # Served by the model: users with factors and at least min_interactions distinct items.
    history = affinity.groupBy(C.USER_IDX).agg(F.count(F.lit(1)).alias("_n_items"))
    enough = history.filter(F.col("_n_items") >= cfg.recommend.min_interactions)
    served = delta.read_table(spark, uf_path).join(enough, on=C.USER_IDX, how="left_semi")
    users = interactions.select(C.USER_ID)
    if serve is not None:
        users = serve.select(C.USER_ID)
        served = served.join(users, on=C.USER_ID, how="left_semi")
    seen_idx = interactions.select(C.USER_IDX, C.ITEM_IDX)
    model_recs = recommend_for_all_users(served, delta.read_table(spark, if_path), seen_idx, n=n)
    events = interactions.select(C.USER_ID, C.ITEM_ID, F.col(C.EVENT_TS).alias(C.LAST_TS))
    popular = popular_items(events, window_days=cfg.recommend.popularity_window_days)
    recs = recommend_with_fallback(
        model_recs,
        users,
        interactions.select(C.USER_ID, C.ITEM_ID),
        popular,
        n=n,
    )
    return recs.select("*", F.lit(MODEL_NAME).alias(C.MODEL), F.lit(run_id).alias(C.RUN_ID))


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    _, cfg = parse_job_args(parser, argv)
    spark = get_spark(cfg.spark)
    try:
        report = run(spark, cfg)
    except MissingInputError as exc:
        log.error("%s", exc)
        return 2
    log.info("run %s done: %s", report.run_id, report.params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
