"""Each job's runner end to end on a small lake: reads Delta, fits, writes every table it
owns and, where tracked, its MLflow run. Marked e2e: they fit real models and commit
tens of Delta versions each, the unit tier checks the same parts one by one."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_approx_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import load_config
from recsys_spark.evaluation import offline
from recsys_spark.evaluation.ranking_metrics import ranking_metrics
from recsys_spark.ingest.schemas import INTERACTIONS
from recsys_spark.io import delta
from recsys_spark.models.lists import write_recommendations
from tests.unit.evaluation.test_report import _by_user, tiny_interactions
from tests.unit.models.test_als import _interactions, _pairs
from tests.unit.models.test_item_based import RECS_SCHEMA, _reference_top_n

pytestmark = pytest.mark.e2e


def test_train_job_writes_factors_recommendations_and_tuning(
    spark: SparkSession, tmp_path: Path
) -> None:
    from recsys_spark.models.als_training import run_als

    t0 = datetime(2026, 3, 1)
    rng = np.random.default_rng(5)
    events = []
    for u in range(30):
        group = u % 2
        for i in rng.choice(10, size=6, replace=False):
            events.append((f"u{u:02d}", f"i{group * 10 + int(i):02d}", t0 + timedelta(hours=u)))
    events.append(("newbie", "i00", t0))  # 1 interaction < min_interactions: popularity
    root = tmp_path / "lake"
    delta.overwrite(_interactions(spark, events), f"{root.as_uri()}/{tables.INTERACTIONS}")
    cfg = load_config(
        None,
        [
            f"storage.root={root}",
            "tracking.enabled=true",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "als.rank=4",
            "als.max_iter=4",
            "als.num_user_blocks=2",
            "als.num_item_blocks=2",
            "als.tuning.enabled=true",
            "als.tuning.ranks=[4]",
            "als.tuning.reg_params=[0.1]",
            "als.tuning.alphas=[1.0, 10.0]",
            "recommend.top_n=3",
            "recommend.min_interactions=2",
            "recommend.popularity_window_days=null",
        ],
    )
    report = run_als(spark, cfg.als, cfg.recommend, cfg.tracking, cfg.storage)
    recs = delta.read_table(spark, cfg.storage.table(tables.MODEL_RECOMMENDATIONS))
    assert recs.filter(F.col(C.MODEL) != "als").count() == 0
    assert recs.select(C.RUN_ID).distinct().collect()[0][0] == report.run_id
    per_user = recs.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias("n")).collect()
    assert len(per_user) == 31 and {r["n"] for r in per_user} == {3}
    newbie = recs.filter(F.col(C.USER_ID) == "newbie").orderBy(C.RANK).collect()
    assert {r[C.SOURCE] for r in newbie} == {"popularity"}
    assert "i00" not in {r[C.ITEM_ID] for r in newbie}
    # Serving a subset: lists for exactly those users (the cold one from popularity).
    serve = spark.createDataFrame([("u03",), ("newbie",)], f"{C.USER_ID} string")
    untuned = replace(cfg.als, tuning=replace(cfg.als.tuning, enabled=False))
    run_als(spark, untuned, cfg.recommend, cfg.tracking, cfg.storage, serve=serve)
    subset = delta.read_table(spark, cfg.storage.table(tables.MODEL_RECOMMENDATIONS))
    per_user = dict(subset.groupBy(C.USER_ID).agg(F.collect_set(C.SOURCE)).collect())
    assert per_user == {"u03": ["model"], "newbie": ["popularity"]}
    assert subset.count() == 6
    seen = _pairs(spark, [(e[0], e[1]) for e in events])
    assert recs.join(seen, on=[C.USER_ID, C.ITEM_ID], how="inner").count() == 0
    assert report.users_by_source == {"model": 30, "popularity": 1, "users": 31}
    assert len(report.tuning) == 2 and report.params.alpha in (1.0, 10.0)
    best = max(report.tuning, key=lambda t: t["ndcg_at_10"])
    assert report.params.alpha == best["alpha"]
    uf = delta.read_table(spark, cfg.storage.table(tables.ALS_USER_FACTORS))
    assert uf.count() == 31 and set(uf.columns) >= {C.USER_IDX, C.USER_ID, C.FEATURES, C.RUN_ID}
    trials = delta.read_table(spark, cfg.storage.table(tables.ALS_TUNING))
    assert trials.filter(F.col("best")).count() == 1


def test_job_writes_tables_with_decayed_affinity(spark: SparkSession, tmp_path: Path) -> None:
    from recsys_spark.similarity.item_models import run_similarity

    t_ref = datetime(2026, 3, 10)
    rng = np.random.default_rng(3)
    events = []
    for u in range(12):
        for i in rng.choice(6, size=3, replace=False):
            events.append(
                (f"u{u:02d}", f"i{int(i)}", t_ref - timedelta(days=int(rng.integers(0, 20))))
            )
    events.append(("u00", "i9", t_ref))  # the newest event defines t_ref
    events.append(("u99", "i8", t_ref - timedelta(days=1)))  # no co-occurrence: popularity
    users = {u: k for k, u in enumerate(sorted({e[0] for e in events}))}
    items = {it: k for k, it in enumerate(sorted({e[1] for e in events}))}
    rows = [
        (f"e{k}", u, it, users[u], items[it], "view", ts, ts.date(), None, 1.0, "f", "b", ts)
        for k, (u, it, ts) in enumerate(events)
    ]
    root = tmp_path / "lake"
    delta.overwrite(
        spark.createDataFrame(rows, INTERACTIONS), f"{root.as_uri()}/{tables.INTERACTIONS}"
    )
    cfg = load_config(
        None,
        [
            f"storage.root={root}",
            "similarity.measures=[cosine]",
            "similarity.min_support=1",
            "similarity.half_life_days=7",
            "similarity.top_n=2",
            "similarity.similar_items_n=2",
        ],
    )
    report = run_similarity(spark, cfg.similarity, cfg.recommend, cfg.storage, run_id="r1")
    # Reference: decayed affinity x cosine on the binary matrix.
    n_u, n_i = len(users), len(items)
    weights = np.zeros((n_u, n_i))
    binary = np.zeros((n_u, n_i))
    for u, it, ts in events:
        weights[users[u], items[it]] += 0.5 ** ((t_ref - ts).total_seconds() / (7 * 86400))
        binary[users[u], items[it]] = 1
    co = binary.T @ binary
    counts = np.diag(co)
    sim = co / np.sqrt(np.outer(counts, counts))
    np.fill_diagonal(sim, 0)
    item_ids = sorted(items, key=items.get)
    expected = _reference_top_n(weights, sim, item_ids, sorted(users, key=users.get), 2)
    recs = delta.read_table(spark, cfg.storage.table(tables.MODEL_RECOMMENDATIONS))
    assert {(r[0], r[1]) for r in recs.select(C.MODEL, C.RUN_ID).distinct().collect()} == {
        ("item_cosine", "r1")
    }
    # Every user gets top_n items; the model's rows come first and match the reference.
    per_user = recs.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias("n"), F.max(C.RANK).alias("r"))
    assert {(r["n"], r["r"]) for r in per_user.collect()} == {(2, 2)}
    assert per_user.count() == len(users)
    assert report.users_by_source["cosine"]["users"] == len(users)
    u99 = recs.filter(F.col(C.USER_ID) == "u99").select(C.SOURCE, C.ITEM_ID).collect()
    assert {r[C.SOURCE] for r in u99} == {"popularity"} and "i8" not in {r[C.ITEM_ID] for r in u99}
    model_rows = recs.filter(F.col(C.SOURCE) == "model")
    assert_approx_df_equality(
        model_rows.select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE).orderBy(C.USER_ID, C.RANK),
        spark.createDataFrame(expected, RECS_SCHEMA).orderBy(C.USER_ID, C.RANK),
        precision=1e-9,
        ignore_nullable=True,  # Delta reads every column back as nullable
    )
    sims = delta.read_table(spark, cfg.storage.table(tables.ITEM_SIMILARITY))
    assert sims.filter(F.col(C.RUN_ID) != "r1").count() == 0
    assert report.similarity_rows == sims.count() == int((sim > 0).sum())
    similar = delta.read_table(spark, cfg.storage.table(tables.SIMILAR_ITEMS))
    assert similar.groupBy(C.ITEM_ID).count().agg(F.max("count")).first()[0] == 2

    # Serving a subset: the same lists for those users, no rows for anyone else.
    full = {tuple(r) for r in recs.select(C.USER_ID, C.ITEM_ID, C.RANK, C.SOURCE).collect()}
    serve = spark.createDataFrame([("u99",), ("u00",), ("u00",)], f"{C.USER_ID} string")
    run_similarity(spark, cfg.similarity, cfg.recommend, cfg.storage, run_id="r2", serve=serve)
    subset = delta.read_table(spark, cfg.storage.table(tables.MODEL_RECOMMENDATIONS))
    got = {tuple(r) for r in subset.select(C.USER_ID, C.ITEM_ID, C.RANK, C.SOURCE).collect()}
    assert got == {row for row in full if row[0] in ("u99", "u00")}


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
