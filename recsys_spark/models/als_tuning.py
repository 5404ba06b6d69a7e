"""Hyperparameter search for implicit ALS: rank x regParam x alpha, scored by NDCG@10.

Every candidate is fitted on a training part and scored on a validation part that is
carved, per user, out of the data it is given; callers pass the training split only, so
the test split never influences the choice.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark.config import AlsConfig
from recsys_spark.data.splits import random_split_per_user
from recsys_spark.evaluation.ranking_metrics import ranking_metrics
from recsys_spark.logs import get_logger
from recsys_spark.models.als import fit_als, item_factors, user_factors
from recsys_spark.models.topn import recommend_for_all_users

log = get_logger("tuning")

TRIALS_SCHEMA = T.StructType(
    [
        T.StructField("trial", T.IntegerType(), False),
        T.StructField("rank", T.IntegerType(), False),
        T.StructField("reg_param", T.DoubleType(), False),
        T.StructField("alpha", T.DoubleType(), False),
        T.StructField("ndcg_at_10", T.DoubleType(), True),
        T.StructField("precision_at_10", T.DoubleType(), True),
        T.StructField("map", T.DoubleType(), True),
        T.StructField("best", T.BooleanType(), False),
        T.StructField(C.RUN_ID, T.StringType(), True),
    ]
)


@dataclass(frozen=True)
class Trial:
    """One candidate and its validation metrics."""

    trial: int
    rank: int
    reg_param: float
    alpha: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TuningResult:
    """The best parameters (ties: the earlier trial) and every trial in order."""

    best: AlsConfig
    trials: tuple[Trial, ...]


def candidates(
    ranks: Sequence[int],
    reg_params: Sequence[float],
    alphas: Sequence[float],
    *,
    mode: str = "grid",
    n_trials: int = 8,
    seed: int = 7,
) -> list[tuple[int, float, float]]:
    """The (rank, reg_param, alpha) combinations to try.

    `grid` gives every combination in input order; `random` a seeded sample of
    `min(n_trials, grid size)` distinct combinations. Duplicate values are dropped.
    """
    grid = list(
        itertools.product(dict.fromkeys(ranks), dict.fromkeys(reg_params), dict.fromkeys(alphas))
    )
    if not grid:
        raise ValueError("ranks, reg_params and alphas each need at least one value")
    if mode == "grid":
        return grid
    if mode == "random":
        return random.Random(seed).sample(grid, min(n_trials, len(grid)))
    raise ValueError(f"mode must be 'grid' or 'random'; got '{mode}'")


def validation_ndcg(
    train: DataFrame, valid: DataFrame, params: AlsConfig, *, n: int = 10
) -> dict[str, float]:
    """Fit on `train` (`user_idx`, `item_idx`, `rating`), score top-`n` lists on `valid`.

    Items of `train` are excluded from each user's list. Returns the metrics of
    `ranking_metrics` at cut-off `n` (`ndcg_at_10`, `precision_at_10`, `map`, ...).
    """
    model = fit_als(train, params)
    recs = recommend_for_all_users(
        user_factors(model), item_factors(model), train.select(C.USER_IDX, C.ITEM_IDX), n=n
    )
    return ranking_metrics(
        recs, valid, ks=(n,), user_col=C.USER_IDX, item_col=C.ITEM_IDX, rank_col=C.RANK
    )


def tune_als(
    ratings: DataFrame,
    base: AlsConfig,
    grid: Sequence[tuple[int, float, float]],
    *,
    validation_ratio: float = 0.2,
    seed: int = 7,
    n: int = 10,
    on_trial: Callable[[Trial], None] | None = None,
) -> TuningResult:
    """Pick rank, reg_param and alpha by validation NDCG@`n`.

    Parameters
    ----------
    ratings
        Training pairs only (`user_idx`, `item_idx`, `rating`); the validation part is
        split out of them per user with `validation_ratio` and `seed`.
    base
        Every other parameter (iterations, seed, blocks) of each fit.
    grid
        Candidates from `candidates`.
    on_trial
        Called after each trial (for example to log an MLflow child run).

    Returns
    -------
    TuningResult
        `best` is `base` with the winning rank, reg_param and alpha.
    """
    if not grid:
        raise ValueError("the candidate grid is empty")
    train, valid = random_split_per_user(
        ratings, test_ratio=validation_ratio, seed=seed, user_col=C.USER_IDX, item_col=C.ITEM_IDX
    )
    train, valid = train.cache(), valid.cache()
    trials: list[Trial] = []
    key = f"ndcg_at_{n}"
    try:
        for i, (rank, reg, alpha) in enumerate(grid):
            params = replace(base, rank=int(rank), reg_param=float(reg), alpha=float(alpha))
            metrics = validation_ndcg(train, valid, params, n=n)
            trial = Trial(i, int(rank), float(reg), float(alpha), metrics)
            trials.append(trial)
            log.info(
                "trial %d: rank=%d reg_param=%g alpha=%g -> %s=%.4f",
                i, rank, reg, alpha, key, metrics[key],
            )  # fmt: skip
            if on_trial is not None:
                on_trial(trial)
    finally:
        train.unpersist()
        valid.unpersist()
    best = max(trials, key=lambda t: (t.metrics[key], -t.trial))
    log.info("best: rank=%d reg_param=%g alpha=%g", best.rank, best.reg_param, best.alpha)
    return TuningResult(
        replace(base, rank=best.rank, reg_param=best.reg_param, alpha=best.alpha), tuple(trials)
    )


def trials_frame(spark: SparkSession, result: TuningResult, run_id: str | None) -> DataFrame:
    """The trials as a small frame of TRIALS_SCHEMA (one row per candidate)."""
    best = (result.best.rank, result.best.reg_param, result.best.alpha)
    rows = [
        (
            t.trial,
            t.rank,
            t.reg_param,
            t.alpha,
            t.metrics.get("ndcg_at_10"),
            t.metrics.get("precision_at_10"),
            t.metrics.get("map"),
            (t.rank, t.reg_param, t.alpha) == best,
            run_id,
        )
        for t in result.trials
    ]
    return spark.createDataFrame(rows, TRIALS_SCHEMA)


def mlflow_trial_logger(experiment_run_id: str) -> Callable[[Trial], None]:
    """An `on_trial` callback logging each trial as an MLflow child run of the active run."""
    import mlflow

    def log_trial(trial: Trial) -> None:
        with mlflow.start_run(
            run_name=f"als-trial-{trial.trial}",
            nested=True,
            tags={"mlflow.parentRunId": experiment_run_id},
        ):
            mlflow.log_params(
                {"rank": trial.rank, "reg_param": trial.reg_param, "alpha": trial.alpha}
            )
            mlflow.log_metrics({k: float(v) for k, v in trial.metrics.items()})

    return log_trial
