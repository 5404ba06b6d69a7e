"""One model's full evaluation, and the most-popular baseline every model is compared to.

Pure functions of DataFrames (no I/O): `evaluate_model` runs the ranking metrics, the
beyond-accuracy metrics, the diversity metrics, the breakdowns and the curves for one
set of lists; `most_popular_lists` builds the baseline lists with
`recsys_spark.models.popularity`.

Everything comes from one Spark action (`frames.run_passes`): the lists and held-out
pairs are shuffled by user once into a numpy pass per partition, the training pairs
packed where they lie into pieces of the matrix X; the small output is routed to buckets
of items (exact pair cosines for diversity and serendipity), the first of which also
sums the per-user and per-item statistics; only named sums reach the driver. Several
models evaluated against the same training pairs share one packing of X
(`prepare_training`): about a third of the rows a single evaluation hands to Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.catalog.rules import NO_RULES, Rules, judge, kept_rows, removed_counts_per
from recsys_spark.config import EvaluationConfig
from recsys_spark.evaluation._kernels.frames import run_passes, tagged_rows, training_pieces
from recsys_spark.evaluation.breakdown import (
    USER_BUCKETS,
    activity_bucket,
    heavy_min_history,
    item_bucket_metrics,
)
from recsys_spark.evaluation.coverage import coverage_metrics
from recsys_spark.evaluation.diversity import diversity_metrics, diversity_values
from recsys_spark.evaluation.ranking_metrics import metric_names
from recsys_spark.logs import get_logger, stage
from recsys_spark.models.popularity import popular_items, recommend_popular

log = get_logger(__name__)

_OF = "_model"  # the model a row of several models' lists belongs to


@dataclass(frozen=True)
class PreparedTraining:
    """Training pairs packed once into pieces of X (cached) for several `evaluate_model`s.

    Build it with `prepare_training`; `unpersist` it when the last model is done.
    """

    pairs: DataFrame
    pieces: DataFrame

    def unpersist(self) -> None:
        self.pieces.unpersist()


def prepare_training(
    train: DataFrame, *, user_col: str = C.USER_ID, item_col: str = C.ITEM_ID
) -> PreparedTraining:
    """Pack and cache the training pairs for every model of an evaluation (one Spark job).

    Parameters
    ----------
    train
        Training pairs `user_col`, `item_col` (repeated pairs and nulls are fine).

    Returns
    -------
    PreparedTraining
        To pass as `train` to `evaluate_model`, with the same id types as its lists.
    """
    pieces = training_pieces(train, user_col=user_col, item_col=item_col).cache()
    pieces.count()
    return PreparedTraining(pairs=train, pieces=pieces)


@dataclass
class ModelEvaluation:
    """Everything measured for one model: metrics, breakdowns, curve points."""

    metrics: dict[str, float] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)


def evaluate_model(
    recs: DataFrame,
    train: DataFrame | PreparedTraining,
    test: DataFrame,
    params: EvaluationConfig | None = None,
    *,
    ks: tuple[int, ...] | None = None,
    user_col: str = C.USER_ID,
    item_col: str = C.ITEM_ID,
    rank_col: str = C.RANK,
) -> ModelEvaluation:
    """Every metric of the lists `recs` against the held-out pairs `test`.

    Parameters
    ----------
    recs
        Lists `user_col`, `item_col`, `rank_col` (read once).
    train
        Training pairs: catalogue, popularity, histories and activity buckets; or
        `prepare_training` of them, when several models are evaluated against them.
    test
        Held-out pairs (with `params.relevance_col` for graded NDCG).
    params
        The config section `evaluation` (default: its defaults): cut-offs, relevance
        column, buckets, diversity sample (`diversity_max_users` 0 = every list user), seed.
    ks
        Cut-offs instead of `params.ks` (the nightly adds its gate metric's).

    Returns
    -------
    ModelEvaluation
        `metrics` (ranking at every K, `map`, `users_evaluated`, coverage, novelty,
        diversity...), `breakdowns` (`by_activity`, `by_popularity`) and `curves`.
    """
    params = params or EvaluationConfig()
    ks = tuple(sorted(set(params.ks if ks is None else ks) | {params.k}))
    k = params.k
    sample = params.diversity_max_users or None
    relevance_col = params.relevance_col or None
    prepared = train if isinstance(train, PreparedTraining) else None
    pairs = train.pairs if isinstance(train, PreparedTraining) else train
    rows = tagged_rows(
        recs,
        test,
        None if prepared else pairs,
        relevance_col=relevance_col,
        user_col=user_col,
        item_col=item_col,
        rank_col=rank_col,
    )
    with stage(log, f"per-user pass, item statistics, diversity ({sample or 'all'} users)"):
        result = run_passes(
            rows,
            ks=ks,
            k=k,
            head_share=params.head_share,
            graded=relevance_col is not None,
            diversity=sample is None,
            pieces=prepared.pieces if prepared else None,
        )
    metrics, by_activity = _ranking_by_activity(result.by_history, ks, k, params)
    metrics.update(
        coverage_metrics(
            result.item_sums,
            n_served=result.total("_served"),
            n_full=result.total("_served_full"),
            n_train_users=result.total("_train_users"),
        )
    )
    if sample is None:
        metrics.update(diversity_values(result))
    else:
        with stage(log, f"diversity metrics ({sample} users)"):
            metrics.update(
                diversity_metrics(
                    recs,
                    pairs,
                    test,
                    k=k,
                    max_users=sample,
                    seed=params.seed,
                    user_col=user_col,
                    item_col=item_col,
                    rank_col=rank_col,
                )
            )
    return ModelEvaluation(
        metrics=metrics,
        breakdowns={
            "by_activity": by_activity,
            "by_popularity": item_bucket_metrics(result.item_sums, k=k),
        },
        curves=result.curves,
    )


def _ranking_by_activity(
    by_history: dict[int, dict[str, Any]],
    ks: tuple[int, ...],
    k: int,
    params: EvaluationConfig,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Ranking means over every evaluated user and per activity bucket."""
    histogram = {h: int(r["_train_users"]) for h, r in by_history.items() if r["_train_users"]}
    # Users with no training history count as length 0 (cold), never as training users.
    heavy_min = heavy_min_history(histogram, heavy_quantile=params.heavy_quantile)
    names = metric_names(ks)
    sums: dict[str, dict[str, float]] = {}
    for length, row in by_history.items():
        bucket = activity_bucket(
            length, cold_max_history=params.cold_max_history, heavy_min=heavy_min
        )
        into = sums.setdefault(bucket, dict.fromkeys([*names, "_evaluated"], 0.0))
        for name in [*names, "_evaluated"]:
            into[name] += float(row[name] or 0.0)
    total = sum(b["_evaluated"] for b in sums.values())
    metrics = {n: sum(b[n] for b in sums.values()) / total if total else 0.0 for n in names}
    metrics["users_evaluated"] = total
    main = [f"{m}_at_{k}" for m in ("precision", "recall", "ndcg", "hit_rate")] + ["map"]
    by_activity = {
        bucket: {
            **{n: sums[bucket][n] / sums[bucket]["_evaluated"] for n in main},
            "users_evaluated": sums[bucket]["_evaluated"],
        }
        for bucket in USER_BUCKETS
        if sums.get(bucket, {}).get("_evaluated")
    }
    return metrics, by_activity


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
    return recommend_popular(users, seen, popular, n=n)


def evaluate_lists(
    lists: dict[str, DataFrame],
    train: DataFrame,
    test: DataFrame,
    params: EvaluationConfig,
    *,
    ks: tuple[int, ...] | None = None,
    run_id: str,
    split: dict[str, Any],
    table_paths: dict[str, str],
    rules: Rules = NO_RULES,
    cold_min_interactions: int = 0,
) -> dict[str, Any]:
    """Evaluate each model's lists against one split; the metrics.json document.

    Parameters
    ----------
    lists
        Model name -> its lists (`user_id`, `item_id`, `rank`), each read once.
    train, test
        The split's training pairs (packed once for every model) and held-out pairs.
    params
        The config section `evaluation`; `ks` replaces its cut-offs when given.
    split, table_paths
        What the document records about the split and the tables evaluated.
    rules
        Business rules applied to every list before it is scored (lists should be drawn
        `rules.depth(n)` deep); the document's `rules` holds their settings and the
        candidates each rule removed per model.
    cold_min_interactions
        When positive, the cold-item protocol: test pairs of items with fewer training
        users than this (new items) are scored apart; the document's `cold_items` holds
        per model their recall at `evaluation.k` and the share of list slots they take.

    Returns
    -------
    dict
        The metrics.json document (schema in `recsys_spark.evaluation.report`).
    """
    cutoffs = tuple(params.ks if ks is None else ks)
    doc: dict[str, Any] = {
        "schema_version": 1,
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": split,
        "ks": sorted(set(cutoffs)),
        "k": params.k,
        "models": {},
        "breakdowns": {},
        "curves": {},
        "tables": table_paths,
    }
    depth = max(max(cutoffs), params.k)
    if rules.active:
        doc["rules"] = {"settings": rules.lineage, "removed": {}}
    cold = None
    if cold_min_interactions > 0:
        cold = new_items(train, test, cold_min_interactions).cache()
        doc["cold_items"] = {
            "min_interactions": cold_min_interactions,
            "items": cold.count(),
            "test_pairs": test.join(cold, C.ITEM_ID, "left_semi").count(),
            "models": {},
        }
    with stage(log, "training pairs packed for every model"):
        prepared = prepare_training(train)
    held: list[DataFrame] = []  # persisted here, unpersisted at the end
    try:
        scored = {}  # the lists each model is scored on: after the rules, if any
        judged_by = {}
        for model, recs in lists.items():
            lists_only = recs.select(C.USER_ID, C.ITEM_ID, C.RANK)
            if rules.active:
                judged = judged_by[model] = judge(lists_only, rules, depth).cache()
                held.append(judged)
                lists_only = kept_rows(judged, [C.USER_ID, C.ITEM_ID, C.RANK])
            elif cold is not None:
                # Read twice (the cold items' pass, then the metrics'): held, so that lists
                # computed on the fly (the most-popular baseline) are not computed twice.
                lists_only = lists_only.persist()
                held.append(lists_only)
            scored[model] = lists_only
        # One Spark action each for every model's rule counts and cold-item metrics; they
        # fill the caches that each model's metric pass then reads.
        if rules.active:
            with stage(log, f"rules judged for {len(judged_by)} models"):
                doc["rules"]["removed"] = removed_counts_per(judged_by)
        if cold is not None:
            with stage(log, f"cold items of {len(scored)} models"):
                doc["cold_items"]["models"] = cold_item_metrics_per(scored, test, cold, k=params.k)
        for model, lists_only in scored.items():
            with stage(log, f"evaluate {model}"):
                result = evaluate_model(lists_only, prepared, test, params, ks=cutoffs)
            doc["models"][model] = result.metrics
            doc["breakdowns"][model] = result.breakdowns
            doc["curves"][model] = result.curves
    finally:
        for frame in held:
            frame.unpersist()
        prepared.unpersist()
        if cold is not None:
            cold.unpersist()
    return doc


def new_items(train: DataFrame, test: DataFrame, min_interactions: int) -> DataFrame:
    """`item_id` of the test items with fewer than `min_interactions` training users."""
    users = train.groupBy(C.ITEM_ID).agg(F.countDistinct(C.USER_ID).alias("_users"))
    items = test.select(C.ITEM_ID).distinct().join(users, C.ITEM_ID, "left")
    return items.filter(F.coalesce(F.col("_users"), F.lit(0)) < min_interactions).select(C.ITEM_ID)


def cold_item_metrics(lists: DataFrame, test: DataFrame, cold: DataFrame, *, k: int) -> dict:
    """Recall of the new items' test pairs in the top `k` (hits / their test pairs) and
    their exposure (share of the top-`k` slots they fill), over the users with lists."""
    return cold_item_metrics_per({"": lists}, test, cold, k=k)[""]


def cold_item_metrics_per(
    lists: Mapping[str, DataFrame], test: DataFrame, cold: DataFrame, *, k: int
) -> dict[str, dict]:
    """`cold_item_metrics` of several models' lists (name -> lists) in one Spark action."""
    top = None
    for name, rows in lists.items():
        part = rows.filter(F.col(C.RANK) <= k).select(F.lit(name).alias(_OF), C.USER_ID, C.ITEM_ID)
        top = part if top is None else top.unionByName(part)
    if top is None:
        return {}
    users = top.select(_OF, C.USER_ID).distinct()
    # each model's users with lists, with their held-out pairs of new items
    pairs = test.select(C.USER_ID, C.ITEM_ID).join(cold, C.ITEM_ID, "left_semi")
    pairs = pairs.join(users, C.USER_ID)
    slots = (
        top.join(cold.select(C.ITEM_ID, F.lit(1).alias("_cold")), C.ITEM_ID, "left")
        .groupBy(_OF)
        .agg(F.count(F.lit(1)).alias("slots"), F.count("_cold").alias("cold_slots"))
    )
    listed = top.distinct().withColumn("_hit", F.lit(1))
    found = (
        pairs.join(listed, [_OF, C.USER_ID, C.ITEM_ID], "left")
        .groupBy(_OF)
        .agg(F.count(F.lit(1)).alias("pairs"), F.count("_hit").alias("hits"))
    )
    # A model without lists has no row: no slots, no pairs.
    rows = {r[_OF]: r.asDict() for r in slots.join(found, _OF, "full").collect()}
    out = {}
    for name in lists:
        row = {k: v or 0 for k, v in rows.get(name, {}).items()}
        n_slots, cold_slots = row.get("slots", 0), row.get("cold_slots", 0)
        n_pairs, hits = row.get("pairs", 0), row.get("hits", 0)
        out[name] = {
            f"cold_recall_at_{k}": hits / n_pairs if n_pairs else float("nan"),
            f"cold_exposure_at_{k}": cold_slots / n_slots if n_slots else 0.0,
            "cold_test_pairs": float(n_pairs),
            "cold_hits": float(hits),
        }
    return out
