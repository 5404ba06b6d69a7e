"""Speed of the full evaluation: top-10 lists of 50K users against a 500K-row test split.

    python benchmarks/bench_evaluate.py [--users 50000] [--items 20000] [--pairs-per-user 40]

Synthetic data (seeded numpy, power-law item popularity): ~2M distinct user-item pairs,
a quarter of them (~500K) the test split, the rest training; top-10 lists for every
user drawn from the popularity distribution. The inputs are materialised (cached)
before the clock starts. Times `ranking_metrics` alone (ks 5, 10, 20) and
`evaluate_model` with every metric (ranking, coverage, novelty, long tail, Gini,
diversity and serendipity on a 200-user sample, breakdowns, curves). The target of
issue 5: less than the ALS top-N step of the same data (see bench-results/als.json).
Writes bench-results/evaluate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from recsys_spark.config import SparkConfig  # noqa: E402
from recsys_spark.evaluation.evaluate import EvaluationParams, evaluate_model  # noqa: E402
from recsys_spark.evaluation.ranking import ranking_metrics  # noqa: E402
from recsys_spark.session import get_spark  # noqa: E402


def synthetic(
    n_users: int, n_items: int, pairs_per_user: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(10, n_items + 10) ** 0.9
    weights /= weights.sum()
    users = np.repeat(np.arange(n_users), pairs_per_user + 4)
    items = rng.choice(n_items, size=users.size, p=weights)
    pairs = pd.DataFrame({"u": users, "i": items}).drop_duplicates()
    pairs = pairs.groupby("u").head(pairs_per_user)
    is_test = rng.random(len(pairs)) < 0.25
    rec_users = np.repeat(np.arange(n_users), 14)
    rec_items = rng.choice(n_items, size=rec_users.size, p=weights)
    recs = pd.DataFrame({"u": rec_users, "i": rec_items}).drop_duplicates().groupby("u").head(10)
    recs["rank"] = recs.groupby("u").cumcount().astype("int32") + 1

    def named(df: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({"user_id": "u" + df.u.astype(str), "item_id": "i" + df.i.astype(str)})
        if "rank" in df:
            out["rank"] = df["rank"].to_numpy()
        return out

    return named(pairs[~is_test]), named(pairs[is_test]), named(recs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--pairs-per-user", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "evaluate.json"))
    args = parser.parse_args(argv)

    train_pd, test_pd, recs_pd = synthetic(args.users, args.items, args.pairs_per_user, args.seed)
    spark = get_spark(SparkConfig(app_name="bench-evaluate", log_level="ERROR"))
    train = spark.createDataFrame(train_pd).repartition(4).cache()
    test = spark.createDataFrame(test_pd).repartition(4).cache()
    recs = spark.createDataFrame(recs_pd).repartition(4).cache()
    sizes = {"train_rows": train.count(), "test_rows": test.count(), "rec_rows": recs.count()}
    sizes["users"] = args.users
    sizes["items"] = args.items
    print(f"data: {sizes}")

    start = time.perf_counter()
    ranking = ranking_metrics(recs, test, ks=(5, 10, 20))
    ranking_s = time.perf_counter() - start
    print(f"ranking_metrics (ks 5, 10, 20): {ranking_s:.1f} s  ndcg@10 {ranking['ndcg_at_10']:.4f}")

    start = time.perf_counter()
    result = evaluate_model(recs, train, test, EvaluationParams(ks=(5, 10, 20), k=10))
    full_s = time.perf_counter() - start
    print(f"evaluate_model (every metric, breakdowns, curves): {full_s:.1f} s")
    for name in ("map", "ndcg_at_10", "catalog_coverage", "gini", "novelty", "serendipity"):
        print(f"  {name}: {result.metrics[name]:.4f}")

    load = os.getloadavg()
    out = {
        "data": sizes,
        "ranking_metrics_s": round(ranking_s, 1),
        "evaluate_model_all_metrics_s": round(full_s, 1),
        "metrics": result.metrics,
        "load_average_after": [round(x, 1) for x in load],
        "cpus": os.cpu_count(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"load average {load}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
