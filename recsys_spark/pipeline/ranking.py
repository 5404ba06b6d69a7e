"""The night's learned ranker: trained on the validation users' held-out pairs, measured
on validation out of fold, and applied to the test users and the final lists.

The candidates are every single model's holdout lists (ALS, each item-based measure,
EASE) and the most-popular list, `min(ranker.depth, nightly.candidate_depth)` deep. The
validation users are cut into two folds by a hash seeded with `evaluation.seed`: the
ranker fitted on one fold ranks the other, so the validation score that decides the
champion is never measured on the pairs the ranker learned from. The ranker fitted on
every validation user ranks the test users (the evaluation and the gate) and, when it
is the champion, the final lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.config import RankerConfig
from recsys_spark.logs import get_logger
from recsys_spark.models.ranker import (
    RankerModel,
    candidate_features,
    feature_names,
    fit_ranker,
    rank_candidates,
    usable_groups,
    with_labels,
)

log = get_logger(__name__)
FOLDS = 2


@dataclass(frozen=True)
class NightRanker:
    """The ranker fitted on every validation user, and what it ranks from."""

    model: RankerModel
    sources: tuple[str, ...]  # the candidate models
    depth: int
    windows: tuple[int, ...]
    categories: DataFrame | None = None  # the catalogue's item categories it learned from


def holdout_ranker_lists(
    lists: dict[str, DataFrame],
    train: DataFrame,
    validation: DataFrame,
    cfg: RankerConfig,
    *,
    depth: int,
    n: int,
    seed: int,
    categories: DataFrame | None = None,
) -> tuple[DataFrame, NightRanker]:
    """The ranker's top-`n` for every user of `lists`, and the ranker for the final fit.

    Parameters
    ----------
    lists
        Model -> the holdout lists (`user_id`, `item_id`, `rank`, `score`) of the
        holdout users (validation and test).
    train
        The holdout's training pairs (`user_id`, `item_id`, `last_ts`): the features.
    validation
        The validation users' held-out pairs: the labels.
    depth, n
        Candidates per model; list length.
    categories
        The catalogue's `item_id`, `categories` (the `categories` feature group), or None.

    Returns
    -------
    (DataFrame, NightRanker)
        `user_id`, `item_id`, `rank`, `score`: out of fold for validation users, from
        the ranker fitted on every validation user for the others.
    """
    groups = usable_groups(cfg.features, catalogue=categories is not None)
    names = feature_names(tuple(lists), cfg.windows, groups)
    if "categories" not in groups:
        categories = None  # not asked for: no catalogue join
    features = candidate_features(
        lists, train, depth=depth, windows=cfg.windows, categories=categories
    ).persist()
    val_users = validation.select(C.USER_ID).distinct()
    fold = F.pmod(F.xxhash64(C.USER_ID, F.lit(seed)), F.lit(FOLDS))
    val_users = val_users.withColumn("_fold", fold).persist()
    labelled = with_labels(features.join(val_users, C.USER_ID, "inner"), validation)
    parts = []
    for f in range(FOLDS):
        model = fit_ranker(labelled.filter(F.col("_fold") != f), names, cfg)
        mine = features.join(val_users.filter(F.col("_fold") == f), C.USER_ID, "left_semi")
        parts.append(rank_candidates(mine, model, top_n=n))
    final = fit_ranker(labelled, names, cfg)
    others = features.join(val_users, C.USER_ID, "left_anti")
    parts.append(rank_candidates(others, final, top_n=n))
    ranked = parts[0]
    for part in parts[1:]:
        ranked = ranked.unionByName(part)
    ranked = with_reasons(ranked, lists, depth).localCheckpoint(eager=True)
    features.unpersist()
    val_users.unpersist()
    return ranked, NightRanker(final, tuple(sorted(lists)), depth, cfg.windows, categories)


def final_ranker_lists(
    lists: dict[str, DataFrame], train: DataFrame, ranker: NightRanker, *, n: int
) -> DataFrame:
    """The night's ranker over the final fit's candidate lists (the same models)."""
    missing = sorted(set(ranker.sources) - set(lists))
    if missing:
        raise ValueError(f"the ranker needs the candidates of {missing}")
    sources = {m: lists[m] for m in ranker.sources}
    features = candidate_features(
        sources, train, depth=ranker.depth, windows=ranker.windows, categories=ranker.categories
    )
    return with_reasons(rank_candidates(features, ranker.model, top_n=n), sources, ranker.depth)


def with_reasons(ranked: DataFrame, sources: dict[str, DataFrame], depth: int) -> DataFrame:
    """`ranked` with `because_item_id`: the reason of the source list that ranked the item
    highest among those giving one (ties: the model name's order); null when none does."""
    given = [
        rows.filter((F.col(C.RANK) <= depth) & F.col(C.BECAUSE_ITEM_ID).isNotNull()).select(
            C.USER_ID, C.ITEM_ID, C.RANK, F.lit(name).alias("_source"), C.BECAUSE_ITEM_ID
        )
        for name, rows in sorted(sources.items())
        if C.BECAUSE_ITEM_ID in rows.columns
    ]
    if not given:
        return ranked.withColumn(C.BECAUSE_ITEM_ID, F.lit(None).cast("string"))
    rows = given[0]
    for more in given[1:]:
        rows = rows.unionByName(more)
    best = F.min(F.struct(C.RANK, "_source", C.BECAUSE_ITEM_ID))
    reasons = (
        rows.groupBy(C.USER_ID, C.ITEM_ID)
        .agg(best.alias("_best"))
        .select(C.USER_ID, C.ITEM_ID, F.col(f"_best.{C.BECAUSE_ITEM_ID}").alias(C.BECAUSE_ITEM_ID))
    )
    return ranked.join(reasons, on=[C.USER_ID, C.ITEM_ID], how="left")
