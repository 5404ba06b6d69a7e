"""Implicit-feedback ALS (Spark MLlib) on the user-item affinity.

The affinity (event weights summed per pair, optionally time-decayed) is the ALS
"rating"; with `implicitPrefs=True` it becomes the confidence `1 + alpha * rating` of a
binary preference. Optional log scaling `log1p(affinity / eps)` tames heavy users.
"""

from __future__ import annotations

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.config import AlsConfig
from recsys_spark.logs import get_logger
from recsys_spark.models.als_cg import CgAlsModel, fit_cg

log = get_logger(__name__)

# A fitted model: both have `userFactors` and `itemFactors` (`id`, `features`).
FactorModel = ALSModel | CgAlsModel

# The AlsConfig fields that shape a fit (logged as the fit's parameters).
FIT_PARAMS = (
    "rank",
    "reg_param",
    "alpha",
    "max_iter",
    "seed",
    "num_user_blocks",
    "num_item_blocks",
    "checkpoint_interval",
    "solver",
    "cg_steps",
)


def fit_params(als: AlsConfig) -> dict[str, float | int]:
    """The hyperparameters of one fit as a flat dict (for logging and MLflow)."""
    return {name: getattr(als, name) for name in FIT_PARAMS}


def als_ratings(affinity: DataFrame, *, log_scaling: bool = False, eps: float = 1.0) -> DataFrame:
    """The ALS training frame: one row per user-item pair with its confidence weight.

    Parameters
    ----------
    affinity
        `user_idx`, `item_idx`, `affinity` (see recsys_spark.models.affinity.user_item_affinity).
    log_scaling
        Use `log1p(affinity / eps)` instead of the affinity itself.
    eps
        Scale of the log transform; must be positive.

    Returns
    -------
    DataFrame
        `user_idx` (int), `item_idx` (int), `rating` (float). Rows with a null index or
        a non-positive affinity are dropped.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive; got {eps}")
    value = F.col(C.AFFINITY).cast("double")
    rating = F.log1p(value / F.lit(eps)) if log_scaling else value
    return affinity.filter(
        F.col(C.USER_IDX).isNotNull() & F.col(C.ITEM_IDX).isNotNull() & (value > 0)
    ).select(
        F.col(C.USER_IDX).cast("int").alias(C.USER_IDX),
        F.col(C.ITEM_IDX).cast("int").alias(C.ITEM_IDX),
        rating.cast("float").alias(C.RATING),
    )


def build_als(params: AlsConfig) -> ALS:
    """An unfitted implicit ALS estimator reading `user_idx`, `item_idx`, `rating`."""
    return ALS(
        rank=params.rank,
        regParam=params.reg_param,
        alpha=params.alpha,
        maxIter=params.max_iter,
        seed=params.seed,
        numUserBlocks=params.num_user_blocks,
        numItemBlocks=params.num_item_blocks,
        checkpointInterval=params.checkpoint_interval,
        implicitPrefs=True,
        nonnegative=False,
        userCol=C.USER_IDX,
        itemCol=C.ITEM_IDX,
        ratingCol=C.RATING,
        coldStartStrategy="drop",
    )


def fit_als(ratings: DataFrame, params: AlsConfig) -> FactorModel:
    """Fit implicit ALS on the output of `als_ratings` with `params.solver`.

    `cg` (recsys_spark.models.als_cg) solves `params.cg_blocks` row blocks per side in
    parallel (0: Spark's default parallelism) and falls back to MLlib, with a log line,
    when the two factor matrices would not fit `params.broadcast_budget_mb`. MLlib cuts
    long lineages every `checkpoint_interval` iterations when the SparkContext has a
    checkpoint directory (the train job sets one under the storage root).
    """
    if params.solver == "cg":
        # One block per core by default: fewer, larger tasks (each job costs ~0.1 s).
        blocks = params.cg_blocks or ratings.sparkSession.sparkContext.defaultParallelism
        model = fit_cg(ratings, params, blocks=blocks)
        if model is not None:
            return model
        log.info("ALS: fitting with MLlib instead of the conjugate-gradient solver")
    return build_als(params).fit(ratings)


def save_model(model: FactorModel, path: str) -> None:
    """Write a fitted model under `path` (MLlib's model folder, or the CG model's factors)."""
    if isinstance(model, CgAlsModel):
        model.save(path)
    else:
        model.write().overwrite().save(path)


def user_factors(model: FactorModel) -> DataFrame:
    """`user_idx` (int), `features` (array<float>) of a fitted model."""
    return model.userFactors.select(
        F.col("id").cast("int").alias(C.USER_IDX), F.col("features").alias(C.FEATURES)
    )


def item_factors(model: FactorModel) -> DataFrame:
    """`item_idx` (int), `features` (array<float>) of a fitted model."""
    return model.itemFactors.select(
        F.col("id").cast("int").alias(C.ITEM_IDX), F.col("features").alias(C.FEATURES)
    )


def with_ids(factors: DataFrame, index: DataFrame, *, idx_col: str, id_col: str) -> DataFrame:
    """Attach the original string id to factors by their integer index (inner join).

    `index` is the ingest index table (`id_col`, `idx_col`); factors whose index is not
    in it are dropped.
    """
    return factors.join(index.select(idx_col, id_col), on=idx_col, how="inner")
