"""A learned second-stage ranker over every model's candidates (LightGBM lambdarank).

Stage one: each model proposes its top-`ranker.depth` items per user (ALS, each
item-based measure, EASE, popularity). Stage two ranks the union with a gradient-boosted
ranking model on features computed in Spark:

- per source model: its rank (depth + 1 when it did not propose the item) and score
  (missing then), and how many models proposed the item;
- item: training users in total and over the last `ranker.windows` days, days since
  the item's first and last interaction;
- user: history length and days since their last interaction;
- categories (with a catalogue): the largest share of the user's training items in one
  of the candidate's categories (0 when none is shared, missing when the item has none).

`ranker.features` picks the groups the model learns from (`ranks`, `scores`, `sources`,
`items`, `users`, `categories`; the last only when there is a catalogue); a missing rank
counts as depth + 1, and the model is constrained to rank better-ranked and
higher-scored candidates no lower (monotone constraints), a prior that small training
sets need: on MovieLens-100K the ranks alone rank best (BENCHMARKS.md,
bench-quality), the other groups cost a little there.

Training (`fit_ranker`) takes labelled candidates of users disjoint from the ones it is
evaluated on (their held-out pairs are the labels) and fits a LightGBM ranking objective
(`ranker.objective`: `rank_xendcg` or `lambdarank`) on the driver: the training rows
are a sample of users x candidates, a few million rows at most
(`ranker.max_train_users`). Scoring (`rank_candidates`) is distributed: the model
travels as text in a broadcast, each partition of users is scored with pandas and the
top N kept. Seeded, single-threaded per task and deterministic.

LightGBM rather than XGBoost's `SparkXGBRanker`: the training set is small enough for one
process (no barrier-mode Spark stage, no ray/dask), and its lambdarank, missing-value
handling, monotone constraints and `deterministic` mode are what this needs; scoring
stays in Spark.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.catalog import schemas as S
from recsys_spark.config import RankerConfig
from recsys_spark.config.sections_models import RANKER_FEATURE_GROUPS
from recsys_spark.logs import get_logger

log = get_logger(__name__)

LABEL = "label"
FEATURE_GROUPS = RANKER_FEATURE_GROUPS  # ranks, scores, sources, items, users, categories
# the groups computed from the candidates and training pairs alone (no catalogue)
BEHAVIOUR_GROUPS = FEATURE_GROUPS[:-1]
CATEGORY_SHARE = "category_share"
_DAY_S = 86_400.0


class NoTrainingSignal(ValueError):
    """No user's candidates hold a held-out item: there is nothing to learn from."""


@dataclass(frozen=True)
class RankerModel:
    """A fitted ranker: LightGBM's model as text, its features, and their importances."""

    model_text: str
    features: tuple[str, ...]
    importance: dict[str, float]  # total gain per feature
    train_users: int
    train_rows: int


def candidate_features(
    lists: Mapping[str, DataFrame],
    train: DataFrame,
    *,
    depth: int,
    windows: tuple[int, ...] = (7, 30),
    categories: DataFrame | None = None,
) -> DataFrame:
    """Every model's top-`depth` items per user, one row per (user, item), with features.

    Parameters
    ----------
    lists
        Model name -> `user_id`, `item_id`, `rank`, `score` (the candidate lists; users
        are those of the lists).
    train
        The training pairs the models were fitted on: `user_id`, `item_id`, `last_ts`
        (for example the affinity frame); never held-out pairs.
    depth
        Candidates taken from each model.
    windows
        Popularity windows in days, counted back from the newest training event.
    categories
        The catalogue's `item_id`, `categories` (array of strings): adds
        `category_share`; None: no category feature.

    Returns
    -------
    DataFrame
        `user_id`, `item_id` and the feature columns of :func:`feature_names` (with
        `categories` only when `categories` is given).
    """
    models = sorted(lists)
    union = None
    for name in models:
        rows = (
            lists[name]
            .filter(F.col(C.RANK) <= depth)
            .select(C.USER_ID, C.ITEM_ID, F.lit(name).alias(C.MODEL), C.SCORE, C.RANK)
        )
        union = rows if union is None else union.unionByName(rows)
    assert union is not None, "no candidate lists"
    wide = (
        union.groupBy(C.USER_ID, C.ITEM_ID)
        .pivot(C.MODEL, models)
        .agg(F.first(C.SCORE).alias("score"), F.first(C.RANK).cast("double").alias("rank"))
    )
    n_sources = sum(F.col(f"{m}_rank").isNotNull().cast("int") for m in models)
    wide = wide.select(
        C.USER_ID,
        C.ITEM_ID,
        *[F.coalesce(f"{m}_rank", F.lit(depth + 1.0)).alias(f"rank__{m}") for m in models],
        *[F.col(f"{m}_score").alias(f"score__{m}") for m in models],
        n_sources.cast("double").alias("n_sources"),
    )
    newest = train.agg(F.max(C.LAST_TS).cast("long")).first()[0]
    stamped = train.select(C.USER_ID, C.ITEM_ID, C.LAST_TS)
    age = (F.lit(newest) - F.col(C.LAST_TS).cast("long")) / _DAY_S
    items = stamped.groupBy(C.ITEM_ID).agg(
        F.count(F.lit(1)).cast("double").alias("item_users"),
        *[F.sum((age <= w).cast("double")).alias(f"item_users_{w}d") for w in windows],
        F.max(age).alias("item_age_days"),
        F.min(age).alias("item_recency_days"),
    )
    users = stamped.groupBy(C.USER_ID).agg(
        F.count(F.lit(1)).cast("double").alias("user_items"),
        F.min(age).alias("user_recency_days"),
    )
    # Both are at most catalogue- or user-sized: joined without a shuffle of candidates
    # for the items, by user for the users.
    wide = wide.join(F.broadcast(items), C.ITEM_ID, "left")
    if categories is None:
        return wide.join(users, C.USER_ID, "left")
    cats = categories.select(C.ITEM_ID, F.col(S.CATEGORIES).alias("_cats"))
    # Per user: how many of their training items fall in each category, as a map.
    counts = (
        stamped.join(F.broadcast(cats), C.ITEM_ID)
        .select(C.USER_ID, F.explode("_cats").alias("_cat"))
        .groupBy(C.USER_ID, "_cat")
        .agg(F.count(F.lit(1)).cast("double").alias("_n"))
        .groupBy(C.USER_ID)
        .agg(F.map_from_entries(F.collect_list(F.struct("_cat", "_n"))).alias("_cat_n"))
    )
    in_history = F.transform("_cats", lambda c: F.coalesce(F.col("_cat_n")[c], F.lit(0.0)))
    return (
        wide.join(F.broadcast(cats), C.ITEM_ID, "left")
        .join(users.join(counts, C.USER_ID, "left"), C.USER_ID, "left")
        .withColumn(CATEGORY_SHARE, F.array_max(in_history) / F.col("user_items"))
        .drop("_cats", "_cat_n")
    )


def feature_names(
    models: list[str] | tuple[str, ...],
    windows: tuple[int, ...],
    groups: tuple[str, ...] = BEHAVIOUR_GROUPS,
) -> tuple[str, ...]:
    """The feature columns of :func:`candidate_features` in `groups`, in a fixed order."""
    unknown = sorted(set(groups) - set(FEATURE_GROUPS))
    if unknown:
        raise ValueError(f"unknown feature groups {unknown}; use some of {FEATURE_GROUPS}")
    by_group = {
        "scores": [f"score__{m}" for m in sorted(models)],
        "ranks": [f"rank__{m}" for m in sorted(models)],
        "sources": ["n_sources"],
        "items": [
            "item_users",
            *[f"item_users_{w}d" for w in windows],
            "item_age_days",
            "item_recency_days",
        ],
        "users": ["user_items", "user_recency_days"],
        "categories": [CATEGORY_SHARE],
    }
    return tuple(name for g in FEATURE_GROUPS if g in groups for name in by_group[g])


def usable_groups(groups: tuple[str, ...], *, catalogue: bool) -> tuple[str, ...]:
    """`groups` without `categories` when there is no catalogue (logged): the other
    groups need nothing but the candidates and the training pairs."""
    if catalogue or "categories" not in groups:
        return groups
    log.info("ranker: no catalogue, the categories feature group is left out")
    return tuple(g for g in groups if g != "categories")


def _monotone(feature: str) -> int:
    """-1: a better (smaller) rank never lowers the score; +1 for scores and source counts."""
    if feature.startswith("rank__"):
        return -1
    return 1 if feature.startswith("score__") or feature == "n_sources" else 0


def with_labels(features: DataFrame, held_out: DataFrame) -> DataFrame:
    """`label` 1 for candidates among the user's held-out pairs (`user_id`, `item_id`), else 0."""
    positives = held_out.select(C.USER_ID, C.ITEM_ID).distinct().withColumn(LABEL, F.lit(1))
    return features.join(positives, [C.USER_ID, C.ITEM_ID], "left").fillna(0, subset=[LABEL])


def fit_ranker(labelled: DataFrame, features: tuple[str, ...], cfg: RankerConfig) -> RankerModel:
    """Fit LightGBM's `cfg.objective` on labelled candidates (one query per user).

    Users whose candidates hold no positive are dropped (they carry no ranking signal);
    at most `cfg.max_train_users` users are kept, chosen by a seeded hash. The rows are
    brought to the driver sorted by user and item, so the fit is deterministic.
    """
    import lightgbm as lgb

    with_pos = labelled.join(
        labelled.groupBy(C.USER_ID).agg(F.max(LABEL).alias("_any")).filter("_any = 1"),
        C.USER_ID,
        "left_semi",
    )
    if cfg.max_train_users:
        keys = with_pos.select(C.USER_ID).distinct()
        keys = keys.orderBy(F.xxhash64(C.USER_ID, F.lit(cfg.seed)), C.USER_ID).limit(
            cfg.max_train_users
        )
        with_pos = with_pos.join(keys, C.USER_ID, "left_semi")
    rows = with_pos.select(C.USER_ID, C.ITEM_ID, LABEL, *features).toPandas()
    if rows.empty:
        raise NoTrainingSignal("no user's candidates hold a held-out item: nothing to train on")
    rows = rows.sort_values([C.USER_ID, C.ITEM_ID], kind="stable", ignore_index=True)
    groups = rows.groupby(C.USER_ID, sort=False).size().to_numpy()
    x = rows[list(features)].astype(np.float64).to_numpy()
    model = lgb.LGBMRanker(
        objective=cfg.objective,
        n_estimators=cfg.num_rounds,
        learning_rate=cfg.learning_rate,
        num_leaves=cfg.num_leaves,
        min_child_samples=cfg.min_data_in_leaf,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        monotone_constraints=[_monotone(f) for f in features],
        monotone_constraints_method="advanced",
        random_state=cfg.seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )
    model.fit(x, rows[LABEL].to_numpy(), group=groups, feature_name=list(features))
    booster = model.booster_
    gain = booster.feature_importance(importance_type="gain")
    importance = {f: float(g) for f, g in zip(features, gain, strict=True)}
    log.info(
        "ranker fitted on %d users, %d candidates (%d positive); top features: %s",
        len(groups),
        len(rows),
        int(rows[LABEL].sum()),
        ", ".join(f"{k} {v:.0f}" for k, v in sorted(importance.items(), key=lambda kv: -kv[1])[:5]),
    )
    return RankerModel(booster.model_to_string(), features, importance, len(groups), len(rows))


def rank_candidates(
    features: DataFrame, model: RankerModel, *, top_n: int, num_partitions: int = 0
) -> DataFrame:
    """The ranker's top-`top_n` candidates per user, scored per partition of users.

    Returns `user_id`, `item_id`, `rank` (1 = best), `score`; ties go to the smaller
    item id.
    """
    if top_n <= 0:
        raise ValueError(f"top_n must be positive; got {top_n}")
    spark = features.sparkSession
    shared = spark.sparkContext.broadcast((model.model_text, model.features))
    rows = features.select(C.USER_ID, C.ITEM_ID, *model.features)
    rows = (
        rows.repartition(num_partitions, C.USER_ID)
        if num_partitions
        else rows.repartition(C.USER_ID)
    )
    schema = f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RANK} int, {C.SCORE} double"
    return rows.mapInPandas(partial(_score_partition, shared=shared, top_n=top_n), schema)


def _score_partition(
    frames: Iterator[pd.DataFrame], *, shared, top_n: int
) -> Iterator[pd.DataFrame]:
    import lightgbm as lgb

    text, features = shared.value
    booster = lgb.Booster(model_str=text, params={"num_threads": 1})
    part = pd.concat(list(frames), ignore_index=True)
    if part.empty:
        return
    part["_s"] = booster.predict(part[list(features)].astype(np.float64).to_numpy())
    part = part.sort_values(
        [C.USER_ID, "_s", C.ITEM_ID], ascending=[True, False, True], kind="stable"
    )
    part[C.RANK] = part.groupby(C.USER_ID, sort=False).cumcount() + 1
    top = part[part[C.RANK] <= top_n]
    yield pd.DataFrame(
        {
            C.USER_ID: top[C.USER_ID],
            C.ITEM_ID: top[C.ITEM_ID],
            C.RANK: top[C.RANK].astype(np.int32),
            C.SCORE: top["_s"].astype(np.float64),
        }
    )
