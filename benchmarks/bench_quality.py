"""Most-popular, item-based (jaccard, cosine), ALS and EASE on MovieLens (BASELINES protocol).

    python benchmarks/bench_quality.py [--conf conf/movielens.yml] [--set key=value ...]

Protocol: per-user 75/25 random split of the user-item pairs (seed 42), top-10, items
seen in training never recommended, every held-out pair relevant (binary). Data path,
format and column mapping come from the config (conf/movielens.yml by default), so any
MovieLens-format file evaluates the same way with overrides only, for example the
newer releases' ratings.csv:

    --set ingest.source=/data/ml-latest-small/ratings.csv --set ingest.csv_delimiter=,
    --set ingest.columns.user=userId --set ingest.columns.item=movieId
    --set ingest.columns.timestamp=timestamp --set ingest.columns.value=rating

Models: the most-popular baseline always; the item-based co-occurrence models
(jaccard, cosine) and implicit ALS when their modules import; EASE (config `ease`). Writes the split
(eval_train, eval_test), the lists (eval_recommendations), metrics.json and report.html
under the storage root (default /tmp/recsys-bench/quality), prints their paths, and
writes bench-results/quality.json. Skips with a message when the data is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from pyspark.sql import DataFrame  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from recsys_spark import columns as C  # noqa: E402
from recsys_spark import tables  # noqa: E402
from recsys_spark.catalog import schemas as S  # noqa: E402
from recsys_spark.catalog.ingest import ITEMS_KIND, ingest_catalog  # noqa: E402
from recsys_spark.cli import job_parser, parse_job_args  # noqa: E402
from recsys_spark.config import AppConfig, IngestConfig, StorageConfig  # noqa: E402
from recsys_spark.data.splits import random_split_per_user, split_summary  # noqa: E402
from recsys_spark.evaluation.model_eval import evaluate_lists, most_popular_lists  # noqa: E402
from recsys_spark.evaluation.offline import (  # noqa: E402
    lists_of_test_users,
    report_folder,
    split_description,
    write_report,
)
from recsys_spark.ingest.runner import run_ingest  # noqa: E402
from recsys_spark.io import delta  # noqa: E402
from recsys_spark.io.files import list_source_files  # noqa: E402
from recsys_spark.models.affinity import user_item_affinity  # noqa: E402
from recsys_spark.models.lists import write_recommendations  # noqa: E402
from recsys_spark.models.ranker import (  # noqa: E402
    RankerModel,
    candidate_features,
    feature_names,
    fit_ranker,
    rank_candidates,
    usable_groups,
    with_labels,
)
from recsys_spark.session import get_spark  # noqa: E402

TOP_N = 10
RANKER = "ranker"
DEFAULT_ROOT = "/tmp/recsys-bench/quality"  # the benchmark's own lake: rebuilt at will
COLUMNS = ("map", "ndcg_at_10", "precision_at_10", "recall_at_10", "catalog_coverage")
# ../shared/BASELINES.md: MAP, NDCG@10, P@10, R@10, catalogue coverage (None: not given).
PUBLISHED = {
    "BiVAE (published)": (0.146126, 0.475077, 0.411771, 0.219145, None),
    "BPR (published)": (0.132478, 0.441997, 0.388229, 0.212522, None),
    "LightGCN (published)": (0.088526, 0.419846, 0.379626, 0.144336, None),
    "NCF (published)": (0.107720, 0.396118, 0.347296, 0.180775, None),
    "SAR Jaccard (published)": (0.110591, 0.382461, 0.330753, 0.176385, None),
    "SVD (published)": (0.012873, 0.095930, 0.091198, 0.032783, None),
    "ALS explicit (published)": (0.004732, 0.044239, 0.048462, 0.017796, None),
    "most popular (measured)": (0.053, 0.248, 0.227, 0.111, 0.027),
    "co-occurrence Jaccard (measured)": (0.112, 0.383, 0.340, 0.186, 0.128),
    "co-occurrence cosine (measured)": (0.119, 0.402, 0.351, 0.189, 0.109),
    "ALS implicit r64 reg0.1 a1 (measured)": (0.150, 0.477, 0.420, 0.225, 0.338),
    "EASE lambda 500 (measured)": (0.154, 0.492, 0.430, 0.229, 0.175),
}


Builder = Callable[[DataFrame, int], DataFrame]  # (training pairs, list depth) -> lists


def item_based_models(cfg: AppConfig) -> dict[str, Builder]:
    """Item-based co-occurrence models, when recsys_spark.similarity and item_based import."""
    try:
        from recsys_spark.models.item_based import recommend_item_based
        from recsys_spark.similarity import item_similarity
    except ImportError as exc:
        print(f"item-based models unavailable: {exc}")
        return {}
    s = cfg.similarity

    def model(measure: str) -> Builder:
        def recommend(train: DataFrame, n: int) -> DataFrame:
            sims = item_similarity(
                train,
                measures=(measure,),
                min_support=s.min_support,
                top_k=s.top_k,
                max_per_user=s.max_per_user,
                max_per_item=s.max_per_item,
                seed=s.seed,
            ).cache()
            return recommend_item_based(train, sims, measure=measure, top_n=n)

        return recommend

    return {f"item_{m}": model(m) for m in ("jaccard", "cosine")}


def als_models(cfg: AppConfig) -> dict[str, Builder]:
    """Implicit ALS (config `als`, BASELINES row: rank 64, regParam 0.1, alpha 1, 15 iter)."""
    try:
        from recsys_spark.models.als import (
            als_ratings,
            fit_als,
            item_factors,
            user_factors,
        )
        from recsys_spark.models.topn import recommend_for_all_users
    except ImportError as exc:
        print(f"ALS unavailable: {exc}")
        return {}
    a = cfg.als

    def recommend(train: DataFrame, n: int) -> DataFrame:
        model = fit_als(als_ratings(train, log_scaling=a.log_scaling, eps=a.log_eps).cache(), a)
        items = train.select(C.ITEM_IDX, C.ITEM_ID).distinct()
        users = train.select(C.USER_IDX, C.USER_ID).distinct()
        recs = recommend_for_all_users(
            user_factors(model).join(users, on=C.USER_IDX, how="inner"),
            item_factors(model).join(items, on=C.ITEM_IDX, how="inner"),
            train.select(C.USER_IDX, C.ITEM_IDX),
            n=n,
        )
        return recs

    return {"als": recommend}


def ease_models(cfg: AppConfig) -> dict[str, Builder]:
    """EASE (config `ease`; the BASELINES row is lambda 500 with every weight kept)."""
    from recsys_spark.models.ease import fit_ease, recommend_ease

    def recommend(train: DataFrame, n: int) -> DataFrame:
        fitted = fit_ease(train, cfg.ease)
        if isinstance(fitted, str):
            raise RuntimeError(fitted)
        return recommend_ease(train, fitted, top_n=n)

    return {tables.EASE: recommend}


def ranker_lists(
    cfg: AppConfig,
    builders: dict[str, Builder],
    train: DataFrame,
    deep: dict[str, DataFrame],
    categories: DataFrame | None,
) -> tuple[DataFrame, RankerModel]:
    """The learned ranker's top-10, trained without the test pairs.

    A `ranker.validation_ratio` share of each user's training pairs is held out as labels;
    every model is refitted on the rest and proposes `ranker.depth` candidates; LightGBM
    learns to rank them. The ranker then ranks the candidates of the models fitted on all
    training pairs (`deep`). `categories`: the catalogue's item categories (the
    `categories` feature group), or None.
    """
    rk = cfg.ranker
    fit_part, labels = random_split_per_user(train, test_ratio=rk.validation_ratio, seed=rk.seed)
    fit_part, labels = fit_part.localCheckpoint(eager=True), labels.localCheckpoint(eager=True)
    proposals = {m: build(fit_part, rk.depth) for m, build in builders.items()}
    groups = usable_groups(rk.features, catalogue=categories is not None)
    features = feature_names(list(builders), rk.windows, groups)
    kw = {"depth": rk.depth, "windows": rk.windows, "categories": categories}
    candidates = candidate_features(proposals, fit_part, **kw)
    model = fit_ranker(with_labels(candidates, labels), features, rk)
    scored = candidate_features(deep, train, **kw)
    return rank_candidates(scored, model, top_n=TOP_N), model


def catalogue_categories(spark, cfg: AppConfig, storage: StorageConfig) -> DataFrame | None:
    """The configured catalogue's `item_id`, `categories`, MERGEd into the bench lake
    first (nothing changes when it holds this file already); None without one or when
    the ranker does not learn from categories."""
    if not cfg.catalog.items.source or "categories" not in cfg.ranker.features:
        return None
    ingest_catalog(spark, cfg.catalog, storage, kinds=(ITEMS_KIND,))
    items = delta.read_table(spark, storage.table(tables.ITEMS))
    return items.select(C.ITEM_ID, S.CATEGORIES).localCheckpoint(eager=True)


def write_model_lists(recs: DataFrame, recs_path: str, model: str) -> None:
    """One model's lists (`user_id`, `item_id`, `rank`, `score`) into eval_recommendations."""
    rows = recs.select(
        "*",
        F.lit(model).alias(C.MODEL),
        F.lit("model").alias(C.SOURCE),
        F.lit("bench-quality").alias(C.RUN_ID),
    )
    write_recommendations(rows, recs_path, model)


def ranker_ratios(models: dict[str, dict[str, float]]) -> dict[str, float]:
    """The ranker's NDCG@10 over EASE's and over the best single model's (empty without it)."""
    if RANKER not in models:
        return {}
    ndcg = {m: v["ndcg_at_10"] for m, v in models.items() if m != RANKER}
    best = max(ndcg, key=lambda m: ndcg[m])
    out = {f"over_best_single ({best})": models[RANKER]["ndcg_at_10"] / ndcg[best]}
    if tables.EASE in ndcg:
        out["over_ease"] = models[RANKER]["ndcg_at_10"] / ndcg[tables.EASE]
    return {k: round(v, 4) for k, v in out.items()}


def foreign_files(spark, ingest: IngestConfig, storage: StorageConfig) -> list[str]:
    """Files the lake under `storage` ingested that are not files of `ingest.source`."""
    log_path = storage.table(tables.INGEST_LOG)
    if not delta.table_exists(spark, log_path):
        return []
    wanted = {f.path for f in list_source_files(spark, ingest.source).files}
    stored = delta.read_table(spark, log_path).select(C.SOURCE_FILE).distinct().collect()
    return sorted(r[0] for r in stored if r[0] not in wanted)


def print_table(measured: dict[str, dict[str, float]]) -> None:
    names = ["MAP", "NDCG@10", "P@10", "R@10", "coverage"]
    rows = [(f"{m} (this run)", [v.get(c) for c in COLUMNS]) for m, v in measured.items()]
    rows += [(name, list(values)) for name, values in PUBLISHED.items()]
    width = max(len(r[0]) for r in rows)
    print("\n" + "model".ljust(width) + "".join(f"  {n:>9}" for n in names))
    print("-" * (width + 11 * len(names)))
    for name, values in rows:
        cells = "".join(f"  {'-':>9}" if v is None else f"  {v:>9.4f}" for v in values)
        print(name.ljust(width) + cells)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.set_defaults(conf=str(ROOT / "conf" / "movielens.yml"))
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "quality.json"))
    args, cfg = parse_job_args(parser, argv)
    storage = cfg.storage
    if not any(o.startswith("storage.root=") for o in args.overrides):
        storage = StorageConfig(root=DEFAULT_ROOT)
    tracking = cfg.tracking
    if not any(o.startswith("tracking.") for o in args.overrides):
        tracking = replace(tracking, enabled=False)
    # The BASELINES.md protocol, whatever the config says.
    ev = replace(cfg.evaluation, split="random", test_ratio=0.25, seed=42, ks=(TOP_N,), k=TOP_N)
    source = Path(cfg.ingest.source)
    if "://" not in cfg.ingest.source and not source.exists():
        print(f"skipped: MovieLens data not found at {source} (set --set ingest.source=...)")
        return 0

    spark = get_spark(replace(cfg.spark, app_name="bench-quality", log_level="ERROR"))
    timings: dict[str, float] = {}
    interactions_path = storage.table(tables.INTERACTIONS)
    others = foreign_files(spark, cfg.ingest, storage)
    if others:
        if storage.root != DEFAULT_ROOT:
            print(
                f"refused: the lake at {storage.root} holds files of another source "
                f"({others[0]}, ...): point storage.root elsewhere or delete it"
            )
            return 2
        print(f"rebuilding {DEFAULT_ROOT}: it was built from another source ({others[0]}, ...)")
        shutil.rmtree(DEFAULT_ROOT)
    start = time.perf_counter()
    run_ingest(spark, cfg.ingest, storage)  # nothing new when the lake holds this source
    timings["ingest_s"] = time.perf_counter() - start
    interactions = delta.read_table(spark, interactions_path)
    train_path = storage.table(tables.EVAL_TRAIN)
    test_path = storage.table(tables.EVAL_TEST)
    train, test = random_split_per_user(user_item_affinity(interactions), test_ratio=0.25, seed=42)
    delta.overwrite(train, train_path)
    delta.overwrite(test, test_path)
    train = delta.read_table(spark, train_path).cache()
    test = delta.read_table(spark, test_path).cache()
    summary = split_summary(train, test)
    print(f"split: {summary}")

    recs_path = storage.table(tables.EVAL_RECOMMENDATIONS)
    builders: dict[str, Builder] = {
        tables.MOST_POPULAR: lambda tr, n: most_popular_lists(
            tr, tr.select(C.USER_ID).distinct(), n=n
        ),
        **item_based_models(cfg),
        **als_models(cfg),
        **ease_models(cfg),
    }
    # Lists as deep as the ranker's candidates; the single models are scored on their top 10.
    depth = max(TOP_N, cfg.ranker.depth) if cfg.ranker.enabled else TOP_N
    deep: dict[str, DataFrame] = {}
    failed: dict[str, str] = {}
    for model, build in builders.items():
        start = time.perf_counter()
        try:
            deep[model] = (
                build(train, depth)
                .select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE)
                .localCheckpoint(eager=True)
            )
            write_model_lists(deep[model].filter(F.col(C.RANK) <= TOP_N), recs_path, model)
        except Exception as exc:  # a model written in parallel may be broken: report, go on
            traceback.print_exc()
            failed[model] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            continue
        timings[f"{model}_recommend_s"] = time.perf_counter() - start
    ranker = None
    if cfg.ranker.enabled and not failed:
        start = time.perf_counter()
        categories = catalogue_categories(spark, cfg, storage)
        ranked, ranker = ranker_lists(cfg, {m: builders[m] for m in deep}, train, deep, categories)
        write_model_lists(ranked, recs_path, RANKER)
        timings["ranker_s"] = time.perf_counter() - start
    models = (*deep, RANKER) if ranker is not None else tuple(deep)
    print(f"models run: {list(models)}; failed: {failed or 'none'}")
    # Scored as jobs/evaluate.py scores them: the test users' lists only.
    lists = lists_of_test_users(spark, recs_path, models, test.select(C.USER_ID).distinct())

    start = time.perf_counter()
    doc = evaluate_lists(
        lists,
        train,
        test,
        ev,
        run_id="bench-quality",
        split={**split_description(ev), "summary": summary},
        table_paths={"train": train_path, "test": test_path, "recommendations": recs_path},
    )
    timings["evaluate_all_models_s"] = time.perf_counter() - start
    write_report(doc, report_folder(storage, ev.report_dir), tracking)
    print_table(doc["models"])
    ratios = ranker_ratios(doc["models"])
    if ranker is not None:
        print(f"\nranker NDCG@10 ratios: {ratios}")
        top = sorted(ranker.importance.items(), key=lambda kv: -kv[1])
        print("ranker feature importance (gain): " + ", ".join(f"{k} {v:.0f}" for k, v in top))
    print("\ntables:")
    for name, path in doc["tables"].items():
        print(f"  {name}: {path}")
    print(f"  metrics.json: {doc['report']['metrics_json']}")
    print(f"  report.html: {doc['report']['html']}")

    result: dict[str, Any] = {
        "dataset": str(source),
        "protocol": "per-user 75/25 random split of pairs, seed 42, top-10, seen excluded",
        "split": summary,
        "models_run": list(lists),
        "models_failed": failed,
        "metrics": {
            m: {c: v.get(c) for c in (*COLUMNS, "map_at_10", "users_evaluated")}
            for m, v in doc["models"].items()
        },  # fmt: skip
        "published": {k: dict(zip(COLUMNS, v, strict=True)) for k, v in PUBLISHED.items()},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "ranker_ndcg_ratios": ratios,
        "ranker_importance_gain": ranker.importance if ranker is not None else None,
        "metrics_json": doc["report"]["metrics_json"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
