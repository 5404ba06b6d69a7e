"""Quality of every item-based similarity measure on MovieLens-100K (BASELINES.md protocol).

    python benchmarks/quality_similarity.py [--root /tmp/simml] [--set similarity.top_k=100]

Per-user 75/25 random split (seed 42) of the user-item pairs; the model is built on the
training pairs exactly as jobs/similarity.py builds it (conf/movielens.yml plus --set:
similarities, item-based scores, popularity fallback), top-10 unseen items per user,
every held-out pair relevant. Each measure is scored with both neighbourhoods (the
configured one is the job's model; the other is shown for comparison). Prints P@10,
R@10, NDCG@10 and MAP (Spark's meanAveragePrecision) and writes them to
bench-results/similarity_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from pyspark.sql import functions as F  # noqa: E402

from recsys_spark import columns as C  # noqa: E402
from recsys_spark import tables  # noqa: E402
from recsys_spark.config import load_config  # noqa: E402
from recsys_spark.data.splits import random_split_per_user  # noqa: E402
from recsys_spark.evaluation.ranking_metrics import ranking_metrics  # noqa: E402
from recsys_spark.io import delta  # noqa: E402
from recsys_spark.models.affinity import user_item_affinity  # noqa: E402
from recsys_spark.models.item_based import NEIGHBOURHOODS, item_based_lists  # noqa: E402
from recsys_spark.models.popularity import popular_items  # noqa: E402
from recsys_spark.session import get_spark  # noqa: E402
from recsys_spark.similarity import MEASURES, item_similarity  # noqa: E402

ML100K = ROOT.parent / "shared" / "datasets" / "ml-100k" / "ml-100k.inter"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/tmp/simml", help="where the ml-100k lake is cached")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "similarity_quality.json"))
    args = parser.parse_args(argv)
    lake = Path(args.root) / "ml"
    cfg = load_config(ROOT / "conf" / "movielens.yml", [f"storage.root={lake}", *args.overrides])
    sim = cfg.similarity
    spark = get_spark(cfg.spark)
    interactions = cfg.storage.table(tables.INTERACTIONS)
    if not delta.table_exists(spark, interactions):
        if not ML100K.is_file():
            sys.exit(f"MovieLens-100K not found at {ML100K}")
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "jobs/ingest.py"),
                "--conf",
                "conf/movielens.yml",
                "--set",
                f"storage.root={lake}",
                "--set",
                f"ingest.source={ML100K}",
            ],
            check=True,
            cwd=ROOT,
        )
    affinity = user_item_affinity(delta.read_table(spark, interactions))
    train, test = random_split_per_user(affinity, test_ratio=0.25, seed=42)
    train = train.persist()
    relevant = test.select(C.USER_ID, C.ITEM_ID).persist()
    start = time.perf_counter()
    sims = item_similarity(
        train,
        measures=MEASURES,
        min_support=sim.min_support,
        top_k=sim.top_k,
        max_per_user=sim.max_per_user,
        max_per_item=sim.max_per_item,
        seed=sim.seed,
        num_partitions=sim.num_partitions,
    )
    # The job's fallback: popularity over the (training) interactions.
    popular = popular_items(train, window_days=cfg.recommend.popularity_window_days).cache()
    n_items = affinity.select(C.ITEM_ID).distinct().count()
    results: dict[str, dict[str, dict[str, float]]] = {}
    for neighbourhood in (
        sim.neighbourhood,
        *(n for n in NEIGHBOURHOODS if n != sim.neighbourhood),
    ):
        results[neighbourhood] = {}
        for measure in MEASURES:
            recs = item_based_lists(
                train,
                sims,
                popular,
                measure=measure,
                top_n=10,
                neighbourhood=neighbourhood,
            ).cache()
            m = ranking_metrics(recs, relevant, ks=(10,))
            results[neighbourhood][measure] = {
                "precision_at_10": m["precision_at_10"],
                "recall_at_10": m["recall_at_10"],
                "ndcg_at_10": m["ndcg_at_10"],
                "map": m["map"],
                "map_at_10": m["map_at_10"],
                "catalog_coverage": recs.select(C.ITEM_ID).distinct().count() / n_items,
                "users_evaluated": m["users_evaluated"],
                "users_with_popularity_rows": recs.filter(F.col(C.SOURCE) == "popularity")
                .select(C.USER_ID)
                .distinct()
                .count(),
            }
            recs.unpersist()
    seconds = time.perf_counter() - start
    print(
        f"ml-100k, min_support={sim.min_support}, top_k={sim.top_k}, "
        f"caps {sim.max_per_user}/{sim.max_per_item}; job's neighbourhood: {sim.neighbourhood}"
    )
    print(
        f"{'neighbourhood':<13} {'measure':<10} {'P@10':>7} {'R@10':>7} {'NDCG@10':>8} "
        f"{'MAP':>7} {'MAP@10':>7} {'cov':>6} {'pop.users':>9}"
    )
    for neighbourhood, per_measure in results.items():
        for measure, r in per_measure.items():
            print(
                f"{neighbourhood:<13} {measure:<10} {r['precision_at_10']:7.4f} "
                f"{r['recall_at_10']:7.4f} {r['ndcg_at_10']:8.4f} {r['map']:7.4f} "
                f"{r['map_at_10']:7.4f} {r['catalog_coverage']:6.3f} "
                f"{r['users_with_popularity_rows']:9d}"
            )
    n_train = train.count()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "dataset": "ml-100k",
                "train_pairs": n_train,
                "test_pairs": relevant.count(),
                "min_support": sim.min_support,
                "top_k": sim.top_k,
                "neighbourhood": sim.neighbourhood,
                "popularity_window_days": cfg.recommend.popularity_window_days,
                "max_per_user": sim.max_per_user,
                "max_per_item": sim.max_per_item,
                "seconds": round(seconds, 1),
                "metrics": results,
            },
            indent=2,
        )
    )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
