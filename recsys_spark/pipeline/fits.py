"""The models a night fits on its working roots, and the champion's final lists.

The holdout fits every model on `<night>/holdout/` with lists `nightly.candidate_depth`
deep for the holdout's users: ALS, one item-based model per measure, and EASE when
`ease.enabled`; the final fit refits only the champion (and for the hybrid both of its
models) on `<night>/` and completes every user's list from the popularity ranking.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.content import ContentSource
from recsys_spark.catalog.rules import NO_RULES, Rules
from recsys_spark.config import AlsConfig, AppConfig, StorageConfig
from recsys_spark.evaluation.model_eval import most_popular_lists
from recsys_spark.io import delta
from recsys_spark.models.affinity import user_item_affinity
from recsys_spark.models.als_training import AlsRunReport, run_als
from recsys_spark.models.ease import EaseReport, run_ease
from recsys_spark.models.fallback import recommend_under_rules
from recsys_spark.models.hybrid import blend_ranked_lists
from recsys_spark.models.popularity import popular_items
from recsys_spark.pipeline.ranking import NightRanker, final_ranker_lists
from recsys_spark.similarity.item_models import run_similarity


def night_measures(cfg: AppConfig) -> tuple[str, ...]:
    """The similarity measures a night fits: the configured ones and the hybrid's, once each."""
    return tuple(dict.fromkeys((*cfg.similarity.measures, cfg.nightly.hybrid_measure)))


def night_models(cfg: AppConfig) -> tuple[str, ...]:
    """The single models a night fits on the holdout (the hybrid blends two of them)."""
    models = (tables.ALS, *map(tables.item_model, night_measures(cfg)))
    return (*models, tables.EASE) if cfg.ease.enabled else models


def champion_measure(champion: str, hybrid_measure: str) -> str | None:
    """The similarity measure the champion's final lists need; None for ALS alone."""
    if champion == tables.HYBRID:
        return hybrid_measure
    if champion in (tables.ALS, tables.EASE):
        return None
    return champion.removeprefix("item_")


def fit_item_lists(
    spark: SparkSession,
    cfg: AppConfig,
    storage: StorageConfig,
    depth: int,
    *,
    measures: tuple[str, ...] | None = None,
    run_id: str,
    serve: DataFrame | None = None,
    content: ContentSource | None = None,
) -> None:
    """Item-based lists `depth` deep under `storage` (default: every `night_measures`),
    new items with content neighbours when `content` is given."""
    run_similarity(
        spark,
        cfg.similarity,
        cfg.recommend,
        storage,
        top_n=depth,
        measures=measures or night_measures(cfg),
        run_id=run_id,
        serve=serve,
        content=content,
    )


def fit_als_lists(
    spark: SparkSession,
    cfg: AppConfig,
    storage: StorageConfig,
    als: AlsConfig,
    depth: int,
    *,
    serve: DataFrame | None = None,
) -> AlsRunReport:
    """ALS with the parameters `als`, lists `depth` deep under `storage`."""
    return run_als(spark, als, cfg.recommend, cfg.tracking, storage, top_n=depth, serve=serve)


def fit_ease_lists(
    spark: SparkSession,
    cfg: AppConfig,
    storage: StorageConfig,
    depth: int,
    *,
    run_id: str,
    serve: DataFrame | None = None,
) -> EaseReport:
    """EASE's lists `depth` deep under `storage` (config `ease`)."""
    return run_ease(
        spark, cfg.ease, cfg.recommend, storage, top_n=depth, run_id=run_id, serve=serve
    )


def final_lists(
    spark: SparkSession,
    cfg: AppConfig,
    storage: StorageConfig,
    champion: str,
    *,
    als: AlsConfig,
    hybrid_weight: float,
    run_id: str,
    ranker: NightRanker | None = None,
    rules: Rules = NO_RULES,
    content: ContentSource | None = None,
) -> DataFrame:
    """The champion refitted on `storage`'s interactions; `recommend.top_n` items per user.

    Returns `user_id`, `item_id`, `rank`, `score`, `source`, `model` (the champion),
    `run_id`: the champion's lists (the hybrid blended with `hybrid_weight`), completed
    from the popularity ranking for every user of the interactions, under the business
    `rules` (the models draw `rules.depth(top_n)` candidates). The `ranker` champion
    refits every model it ranks (lists `ranker.depth` deep) and ranks them with the
    ranker the candidates stage fitted.
    """
    nc, n = cfg.nightly, cfg.recommend.top_n
    deep = rules.depth(n)
    if champion == tables.RANKER:
        if ranker is None:
            raise RuntimeError("a ranker champion needs the ranker of the candidates stage")
        lists = _ranker_lists(
            spark, cfg, storage, ranker, als=als, run_id=run_id, n=deep, content=content
        )
        return _completed(spark, cfg, storage, lists, champion, run_id, rules)
    measure = champion_measure(champion, nc.hybrid_measure)
    depth = nc.candidate_depth if champion == tables.HYBRID else deep
    if measure is not None:
        fit_item_lists(
            spark, cfg, storage, depth, measures=(measure,), run_id=run_id, content=content
        )
    if champion in (tables.ALS, tables.HYBRID):
        fit_als_lists(spark, cfg, storage, als, depth)
    if champion == tables.EASE:
        report = fit_ease_lists(spark, cfg, storage, depth, run_id=run_id)
        if report.skipped:  # the catalogue outgrew ease.max_items since the holdout fit
            raise RuntimeError(f"the champion EASE cannot be refitted: {report.skipped}")
    rows = delta.read_table(spark, storage.table(tables.MODEL_RECOMMENDATIONS))
    if champion == tables.HYBRID:
        assert measure is not None
        lists = blend_ranked_lists(
            rows.filter(F.col(C.MODEL) == tables.ALS),
            rows.filter(F.col(C.MODEL) == tables.item_model(measure)),
            weight=hybrid_weight,
            depth=depth,
            n=deep,
        )
    else:
        lists = rows.filter((F.col(C.MODEL) == champion) & (F.col(C.RANK) <= deep))
    return _completed(spark, cfg, storage, lists, champion, run_id, rules)


def _ranker_lists(
    spark: SparkSession,
    cfg: AppConfig,
    storage: StorageConfig,
    ranker: NightRanker,
    *,
    als: AlsConfig,
    run_id: str,
    n: int,
    content: ContentSource | None,
) -> DataFrame:
    """Every model the ranker ranks, refitted for every user, ranked by it (top `n`)."""
    depth = ranker.depth
    fit_item_lists(spark, cfg, storage, depth, run_id=run_id, content=content)
    fit_als_lists(spark, cfg, storage, als, depth)
    if tables.EASE in ranker.sources:
        fit_ease_lists(spark, cfg, storage, depth, run_id=run_id)
    rows = delta.read_table(spark, storage.table(tables.MODEL_RECOMMENDATIONS))
    sources = {m: rows.filter(F.col(C.MODEL) == m) for m in ranker.sources}
    affinity = user_item_affinity(delta.read_table(spark, storage.table(tables.INTERACTIONS)))
    users = affinity.select(C.USER_ID).distinct()
    sources[tables.MOST_POPULAR] = most_popular_lists(affinity, users, n=depth)
    return final_ranker_lists(sources, affinity, ranker, n=n).withColumn(C.SOURCE, F.lit("model"))


def _completed(
    spark: SparkSession,
    cfg: AppConfig,
    storage: StorageConfig,
    lists: DataFrame,
    champion: str,
    run_id: str,
    rules: Rules,
) -> DataFrame:
    """The champion's lists completed from the popularity ranking for every user.

    Under `rules`: unavailable and excluded candidates go first (model and popularity
    alike), the lists are completed `rules.depth(top_n)` deep, then the category cap
    takes the best `top_n` of them.
    """
    n = cfg.recommend.top_n
    events = delta.read_table(spark, storage.table(tables.INTERACTIONS))
    affinity = user_item_affinity(events)
    popular = popular_items(affinity, window_days=cfg.recommend.popularity_window_days)
    reason = [C.BECAUSE_ITEM_ID] if C.BECAUSE_ITEM_ID in lists.columns else []
    served = recommend_under_rules(
        lists.select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE, C.SOURCE, *reason),
        events.select(C.USER_ID),
        affinity.select(C.USER_ID, C.ITEM_ID),
        popular,
        rules,
        n=n,
    )
    return served.select("*", F.lit(champion).alias(C.MODEL), F.lit(run_id).alias(C.RUN_ID))
