"""jobs/evaluate.py end to end on a tiny lake: split, baseline, report files, MLflow."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_spark import tables
from recsys_spark.config import load_config
from recsys_spark.evaluation import offline
from recsys_spark.evaluation.ranking_metrics import ranking_metrics
from recsys_spark.evaluation.report import format_table, render_html
from recsys_spark.ingest.schemas import INTERACTIONS
from recsys_spark.io import delta
from recsys_spark.models.lists import write_recommendations


def tiny_interactions(spark: SparkSession):
    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 1)
    rows = []
    for u in range(30):
        for i in rng.choice(25, size=int(rng.integers(2, 12)), replace=False):
            i = int(i) if u % 3 else int(i) % 8  # popular items among every third user
            ts = start + timedelta(hours=int(rng.integers(0, 500)))
            rows.append(
                (f"e{u}-{i}-{len(rows)}", f"u{u:02d}", f"i{i:02d}", u, i, "view", ts, ts.date())
                + (1.0, 1.0, "f", "b", ts)
            )
    return spark.createDataFrame(rows, INTERACTIONS)


def test_evaluate_job_end_to_end(spark: SparkSession, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    cfg = load_config(
        None,
        [
            f"storage.root={root}",
            "tracking.enabled=true",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "tracking.experiment=test-eval",
            "evaluation.ks=[3, 5]",
            "evaluation.k=5",
        ],
    )
    delta.overwrite(tiny_interactions(spark), cfg.storage.table(tables.INTERACTIONS))
    offline.run_evaluation(spark, cfg.evaluation, cfg.tracking, cfg.storage, prepare=True)
    train = delta.read_table(spark, cfg.storage.table(tables.EVAL_TRAIN))
    test = delta.read_table(spark, cfg.storage.table(tables.EVAL_TEST))
    holdout = delta.read_table(
        spark, offline.holdout_storage(cfg.storage).table(tables.INTERACTIONS)
    )
    # The holdout lake holds no test pair.
    assert holdout.join(test, on=["user_id", "item_id"], how="left_semi").count() == 0

    # A "model" that recommends each user's own test items first, then item i00.
    ranked = test.select(
        "user_id", "item_id", F.row_number().over(_by_user()).cast("int").alias("rank")
    )
    recs = ranked.select(
        "user_id",
        "item_id",
        "rank",
        F.lit(1.0).alias("score"),
        F.lit("oracle").alias("model"),
        F.lit("model").alias("source"),
        F.lit("r1").alias("run_id"),
    )
    recs_path = offline.holdout_storage(cfg.storage).table(tables.MODEL_RECOMMENDATIONS)
    stranger = spark.createDataFrame(  # a list for a user without test items: not scored
        [("zz", "i00", 1, 1.0, "oracle", "model", "r1")], recs.schema
    )
    write_recommendations(recs.unionByName(stranger), recs_path, "oracle")

    doc = offline.run_evaluation(spark, cfg.evaluation, cfg.tracking, cfg.storage, run_id="run-1")
    assert list(doc["models"]) == ["most_popular", "oracle"]
    direct = ranking_metrics(recs, test, ks=(3, 5))
    for name, value in direct.items():
        assert doc["models"]["oracle"][name] == pytest.approx(value), name
    assert doc["models"]["oracle"]["recall_at_5"] > doc["models"]["most_popular"]["recall_at_5"]
    assert doc["models"]["oracle"]["recommendations"] == recs.filter("rank <= 5").count()
    baseline = delta.read_table(spark, cfg.storage.table(tables.EVAL_RECOMMENDATIONS))
    seen = baseline.join(train, on=["user_id", "item_id"], how="left_semi").count()
    assert seen == 0  # the baseline never recommends a training item

    stored = json.loads(Path(doc["report"]["metrics_json"]).read_text())
    assert stored["schema_version"] == 1 and stored["run_id"] == "run-1"
    assert stored["ks"] == [3, 5] and stored["split"]["kind"] == "random"
    assert stored["split"]["summary"]["test_rows"] == test.count()
    assert set(stored["breakdowns"]["oracle"]) == {"by_activity", "by_popularity"}
    page = Path(doc["report"]["html"]).read_text()
    assert page.count("data:image/png;base64,") == 3 and "src='http" not in page

    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    logged = mlflow.get_run(doc["report"]["mlflow_run_id"])
    assert logged.data.metrics["oracle.ndcg_at_5"] == pytest.approx(direct["ndcg_at_5"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(logged.info.run_id)}
    assert artifacts == {"metrics.json", "report.html"}


def _by_user():
    from pyspark.sql import Window

    return Window.partitionBy("user_id").orderBy("item_id")


def test_format_table_and_html_without_models() -> None:
    models = {"a": {"map": 0.5, "users_evaluated": 10.0}, "long_name": {"map": math.nan}}
    text = format_table(models, ["map", "users_evaluated"])
    lines = text.splitlines()
    assert lines[2].split() == ["a", "0.500000", "10"]
    assert lines[3].split()[0] == "long_name" and lines[3].split()[2] == "-"
    doc = {"run_id": "x", "ks": [10], "k": 10, "models": {}, "split": {"kind": "random"}}
    assert "<h1>" in render_html(doc)
