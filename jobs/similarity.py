"""Item-item co-occurrence similarities and item-based top-N recommendations.

    python jobs/similarity.py --conf conf/local.yml [--set similarity.measures=[jaccard,llr]]

Reads the interactions table, builds the user-item affinity, and writes under
storage.root: `item_similarity` (top-K neighbours per item and measure), the
recommendations of every measure (model `item_<measure>`; every user of the interactions
table gets `similarity.top_n` items, short lists completed from the popularity ranking as
the ALS job does, rows marked `source = popularity`) and `similar_items`.
Exit codes: 0 done, 2 bad configuration or no interactions table.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.affinity import user_item_affinity
from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import AppConfig
from recsys_spark.fallback import users_by_source
from recsys_spark.io import delta
from recsys_spark.item_based import item_based_lists, similar_items
from recsys_spark.logs import get_logger, stage
from recsys_spark.popularity import popular_items
from recsys_spark.recommendations import write_recommendations
from recsys_spark.session import get_spark
from recsys_spark.similarity import item_similarity

log = get_logger("jobs.similarity")


@dataclass(frozen=True)
class SimilarityReport:
    """What one run wrote."""

    run_id: str
    similarity_rows: int
    recommendation_rows: dict[str, int]
    similar_items_rows: int
    users_by_source: dict[str, dict[str, int]]


def model_name(measure: str) -> str:
    """The recommendations-table model name of a similarity measure."""
    return f"item_{measure}"


def run(
    spark: SparkSession,
    cfg: AppConfig,
    *,
    run_id: str | None = None,
    serve: DataFrame | None = None,
) -> SimilarityReport:
    """Compute similarities, item-based recommendations and similar items; write them.

    `serve` (`user_id`) limits the recommendations to those users (the nightly's holdout
    users); default: every user of the interactions table. Similarities use everyone.
    """
    sim_cfg = cfg.similarity
    run_id = run_id or f"similarity-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    source = cfg.storage.table(tables.INTERACTIONS)
    if not delta.table_exists(spark, source):
        raise FileNotFoundError(f"no interactions table at {source}: run jobs/ingest.py first")
    interactions = delta.read_table(spark, source)
    affinity = user_item_affinity(
        interactions,
        half_life_days=sim_cfg.half_life_days,
        window_days=sim_cfg.window_days,
    ).persist()
    sims_path = cfg.storage.table(tables.ITEM_SIMILARITY)
    with stage(log, f"item similarities {', '.join(sim_cfg.measures)}"):
        sims = item_similarity(
            affinity,
            measures=sim_cfg.measures,
            min_support=sim_cfg.min_support,
            top_k=sim_cfg.top_k,
            max_per_user=sim_cfg.max_per_user,
            max_per_item=sim_cfg.max_per_item,
            seed=sim_cfg.seed,
            num_partitions=sim_cfg.num_partitions,
        )
        metrics = delta.overwrite(sims.withColumn(C.RUN_ID, F.lit(run_id)), sims_path)
    # Read back the committed table: scoring must not recompute the co-occurrences.
    sims = delta.read_table(spark, sims_path)
    # The fallback of the ALS job: popularity over the interactions table, every known
    # user served, nothing they ever interacted with recommended.
    events = interactions.select(C.USER_ID, C.ITEM_ID, F.col(C.EVENT_TS).alias(C.LAST_TS))
    popular = popular_items(events, window_days=cfg.recommend.popularity_window_days).cache()
    rec_rows: dict[str, int] = {}
    served: dict[str, dict[str, int]] = {}
    recs_path = cfg.storage.table(tables.MODEL_RECOMMENDATIONS)
    # Every pair ever seen is excluded, also those the affinity leaves out (before its
    # window, or of no weight).
    users, histories = interactions.select(C.USER_ID), affinity
    seen = interactions.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.ITEM_ID)
    if serve is not None:
        users = serve.select(C.USER_ID)
        histories = affinity.join(users, on=C.USER_ID, how="left_semi")
        seen = seen.join(users, on=C.USER_ID, how="left_semi")
    for measure in sim_cfg.measures:
        with stage(log, f"item-based top-{sim_cfg.top_n} ({measure}, {sim_cfg.neighbourhood})"):
            recs = item_based_lists(
                histories,
                sims,
                popular,
                measure=measure,
                top_n=sim_cfg.top_n,
                neighbourhood=sim_cfg.neighbourhood,
                users=users,
                seen=seen,
            ).select(
                C.USER_ID,
                C.ITEM_ID,
                C.RANK,
                C.SCORE,
                F.lit(model_name(measure)).alias(C.MODEL),
                C.SOURCE,
                F.lit(run_id).alias(C.RUN_ID),
            )
            written = write_recommendations(recs, recs_path, model_name(measure))
            rec_rows[measure] = written.get("numOutputRows", 0)
            served[measure] = users_by_source(
                delta.read_table(spark, recs_path).filter(F.col(C.MODEL) == model_name(measure))
            )
            log.info("%s users served: %s", model_name(measure), served[measure])
    popular.unpersist()
    with stage(log, "similar items"):
        similar = similar_items(sims, n=sim_cfg.similar_items_n).withColumn(C.RUN_ID, F.lit(run_id))
        similar_metrics = delta.overwrite(similar, cfg.storage.table(tables.SIMILAR_ITEMS))
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    _, cfg = parse_job_args(parser, argv)
    spark = get_spark(cfg.spark)
    try:
        run(spark, cfg)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
