"""The similarity runner: item-item similarities, item-based top-N lists, similar items.

`run_similarity(spark, SimilarityConfig, RecommendConfig, StorageConfig)` reads
`interactions` under the storage root it is given and writes, under the same root:
`item_similarity` (top-K neighbours per item and measure), the item-based lists of each
measure into `model_recommendations` (model `item_<measure>`; users the model cannot
serve are completed from the popularity ranking, rows marked `source = popularity`) and
`similar_items`. The nightly calls it on its working roots with the depth and measures
it needs; `jobs/similarity.py` on the lake's root with the config's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.content import SOURCE_BEHAVIOUR, ContentSource, with_content
from recsys_spark.config import RecommendConfig, SimilarityConfig, StorageConfig
from recsys_spark.io import delta
from recsys_spark.logs import get_logger, stage
from recsys_spark.models.affinity import user_item_affinity
from recsys_spark.models.fallback import served_frames, users_by_source_per_model
from recsys_spark.models.item_based import item_based_models, similar_items
from recsys_spark.models.lists import write_recommendations
from recsys_spark.models.popularity import popular_items
from recsys_spark.similarity.cooccurrence import item_similarity

log = get_logger(__name__)


@dataclass(frozen=True)
class SimilarityReport:
    """What one run wrote."""

    run_id: str
    similarity_rows: int
    recommendation_rows: dict[str, int]
    similar_items_rows: int
    users_by_source: dict[str, dict[str, int]]


def run_similarity(
    spark: SparkSession,
    similarity: SimilarityConfig,
    recommend: RecommendConfig,
    storage: StorageConfig,
    *,
    top_n: int | None = None,
    measures: tuple[str, ...] | None = None,
    run_id: str | None = None,
    serve: DataFrame | None = None,
    content: ContentSource | None = None,
) -> SimilarityReport:
    """Compute similarities, item-based lists and similar items under `storage`'s root.

    Parameters
    ----------
    similarity
        Caps, support, neighbourhood, time decay and `top_k` of the similarities.
    recommend
        `popularity_window_days` of the popularity fill.
    storage
        Where `interactions` is read and every output table is written.
    top_n
        Length of the item-based lists (default `similarity.top_n`).
    measures
        The measures to compute (default `similarity.measures`).
    serve
        `user_id`s to write lists for (the nightly's holdout users); default every user
        of the interactions table. Similarities always use every user.
    content
        The catalogue: new items get content neighbours (`source = content` rows of
        `item_similarity`, recsys_spark.catalog.content); None: behaviour only.

    Returns
    -------
    SimilarityReport
        Rows written per table and users served per source, per measure.
    """
    top_n = similarity.top_n if top_n is None else top_n
    measures = similarity.measures if measures is None else measures
    run_id = run_id or f"similarity-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    interactions = delta.read_required(spark, storage.table(tables.INTERACTIONS))
    affinity = user_item_affinity(
        interactions,
        half_life_days=similarity.half_life_days,
        window_days=similarity.window_days,
    ).persist()
    sims_path = storage.table(tables.ITEM_SIMILARITY)
    with stage(log, f"item similarities {', '.join(measures)}"):
        sims = item_similarity(
            affinity,
            measures=measures,
            min_support=similarity.min_support,
            top_k=similarity.top_k,
            max_per_user=similarity.max_per_user,
            max_per_item=similarity.max_per_item,
            seed=similarity.seed,
            num_partitions=similarity.num_partitions,
        )
        if content is None:
            sims = sims.withColumn(C.SOURCE, F.lit(SOURCE_BEHAVIOUR))
        else:
            sims = with_content(sims, interactions, content, top_k=similarity.top_k)
        metrics = delta.overwrite(sims.withColumn(C.RUN_ID, F.lit(run_id)), sims_path)
    # Read back the committed table: scoring must not recompute the co-occurrences.
    sims = delta.read_table(spark, sims_path)
    # The fallback of the ALS lists: popularity over the interactions table, every known
    # user served, nothing they ever interacted with recommended.
    events = interactions.select(C.USER_ID, C.ITEM_ID, F.col(C.EVENT_TS).alias(C.LAST_TS))
    popular = popular_items(events, window_days=recommend.popularity_window_days).cache()
    rec_rows: dict[str, int] = {}
    served: dict[str, dict[str, int]] = {}
    recs_path = storage.table(tables.MODEL_RECOMMENDATIONS)
    users, histories, seen = served_frames(interactions, affinity, serve)
    # Read twice by the lists (the scoring and the popularity fill): held, not rescanned.
    seen = seen.persist()
    models = {measure: tables.item_model(measure) for measure in measures}
    # Every measure in one pass: the users' histories are shuffled, scored and completed
    # once, and the lists written in one commit (per measure, that fixed work cost as
    # much as the scoring: BENCHMARKS.md, bench-nightly).
    with stage(log, f"item-based top-{top_n} ({', '.join(measures)}, {similarity.neighbourhood})"):
        recs = item_based_models(
            histories,
            sims,
            popular,
            models=models,
            top_n=top_n,
            neighbourhood=similarity.neighbourhood,
            users=users,
            seen=seen,
        ).select(
            C.USER_ID,
            C.ITEM_ID,
            C.RANK,
            C.SCORE,
            C.MODEL,
            C.SOURCE,
            F.lit(run_id).alias(C.RUN_ID),
            C.BECAUSE_ITEM_ID,
        )
        write_recommendations(recs, recs_path, list(models.values()))
        stored = delta.read_table(spark, recs_path).filter(
            F.col(C.MODEL).isin(list(models.values()))
        )
        by_model = users_by_source_per_model(stored, list(models.values()))
    for measure, model in models.items():
        served[measure], rec_rows[measure] = by_model[model]
        log.info("%s users served: %s", model, served[measure])
    popular.unpersist()
    seen.unpersist()
    with stage(log, "similar items"):
        similar = similar_items(sims, n=similarity.similar_items_n)
        similar_metrics = delta.overwrite(
            similar.withColumn(C.RUN_ID, F.lit(run_id)), storage.table(tables.SIMILAR_ITEMS)
        )
    affinity.unpersist()
    report = SimilarityReport(
        run_id=run_id,
        similarity_rows=metrics.get("numOutputRows", 0),
        recommendation_rows=rec_rows,
        similar_items_rows=similar_metrics.get("numOutputRows", 0),
        users_by_source=served,
    )
    log.info("run %s: %s", run_id, report)
    return report
