"""The nightly end to end on a tiny sample: publishing, the gate, MLflow, kill -9 + rerun, lock.

Each night here is real (ingest, similarity, ALS with a one-candidate tuning, hybrid,
evaluation, gate, publish), on ~2K events with tiny ALS settings so the module stays
around a few minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import nightly
from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import AppConfig, SampleConfig, load_config
from recsys_spark.data.sample import write_sample
from recsys_spark.io import delta
from recsys_spark.pipeline.lock import acquire
from recsys_spark.pipeline.night import run_night

pytestmark = pytest.mark.e2e  # real nights: `make test-fast` skips them

PROJECT = Path(__file__).resolve().parents[2]
RUN_DATE = date(2026, 2, 28)  # the sample spans 2026-01-01 .. 2026-02-28
KEY = [C.USER_ID, C.RANK]


def overrides(root: Path, source: Path) -> list[str]:
    return [
        f"storage.root={root / 'lake'}",
        f"ingest.source={source}",
        f"tracking.uri=sqlite:///{root / 'mlflow.db'}",
        "spark.shuffle_partitions=2",
        "spark.codegen=false",  # tiny nights, as make demo runs them
        "als.rank=4",
        "als.max_iter=3",
        "als.num_user_blocks=2",
        "als.num_item_blocks=2",
        "als.tuning.ranks=[4]",
        "als.tuning.reg_params=[0.1]",
        "als.tuning.alphas=[1.0]",
        "similarity.measures=[jaccard]",
        "evaluation.ks=[5]",  # the gate's ndcg_at_10 is measured all the same
        "evaluation.k=5",
        "evaluation.diversity_max_users=20",
        "nightly.candidate_depth=15",
        "nightly.hybrid_weights=[0.0,0.5,1.0]",
        "nightly.holdout_days=14",
        "maintenance.every_days=0",  # the first night below maintains; the others need not
    ]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = SampleConfig(
        n_events=2_000, n_users=150, n_items=80, n_groups=4, days=59, seed=5,
        duplicate_fraction=0.0, bad_row_fraction=0.0,
    )  # fmt: skip
    return write_sample(spec, tmp_path_factory.mktemp("sample") / "events.csv")


def config(root: Path, source: Path, *extra: str) -> AppConfig:
    return load_config(PROJECT / "conf" / "local.yml", [*overrides(root, source), *extra])


def published(spark: SparkSession, cfg: AppConfig, name: str) -> pd.DataFrame:
    df = delta.read_table(spark, cfg.storage.table(name)).toPandas()
    cols = [C.USER_ID, C.ITEM_ID, C.RANK, C.MODEL, C.SOURCE, "run_date"]
    return df[cols].sort_values(KEY).reset_index(drop=True)


def versions(spark: SparkSession, cfg: AppConfig) -> dict[str, int | None]:
    names = (tables.PUBLISHED_RECOMMENDATIONS, tables.RECOMMENDATIONS_LATEST, tables.PUBLISH_LOG)
    return {n: delta.table_version(spark, cfg.storage.table(n)) for n in names}


@pytest.fixture(scope="module")
def first_night(spark: SparkSession, sample: Path, tmp_path_factory: pytest.TempPathFactory):
    cfg = config(tmp_path_factory.mktemp("night_a"), sample, "maintenance.every_days=7")
    # (every 7 days from the first night: this one does not maintain)
    return cfg, run_night(spark, cfg, RUN_DATE)


def test_night_publishes_a_full_list_for_every_user(spark: SparkSession, first_night) -> None:
    cfg, report = first_night
    assert report.published is not None and report.gate.passed
    recs = published(spark, cfg, tables.PUBLISHED_RECOMMENDATIONS)
    users = delta.read_table(spark, cfg.storage.table(tables.INTERACTIONS)).select(C.USER_ID)
    n_users = users.distinct().count()
    assert recs[C.USER_ID].nunique() == n_users == report.published.users
    assert (recs.groupby(C.USER_ID).size() == cfg.recommend.top_n).all()
    assert set(recs[C.MODEL]) == {report.champion}
    assert set(recs["run_date"]) == {RUN_DATE}
    # Nothing a user has seen (up to the run date) is recommended.
    seen = delta.read_table(spark, cfg.storage.table(tables.INTERACTIONS))
    seen = seen.filter(F.col(C.EVENT_DATE) <= F.lit(RUN_DATE)).select(C.USER_ID, C.ITEM_ID)
    seen_pairs = set(map(tuple, seen.distinct().toPandas().to_numpy()))
    assert not seen_pairs & set(zip(recs[C.USER_ID], recs[C.ITEM_ID], strict=True))
    latest = published(spark, cfg, tables.RECOMMENDATIONS_LATEST)
    pd.testing.assert_frame_equal(recs, latest)
    log = delta.read_table(spark, cfg.storage.table(tables.PUBLISH_LOG)).collect()
    assert [(r["run_date"], r[C.MODEL]) for r in log] == [(RUN_DATE, report.champion)]
    assert log[0]["value"] == pytest.approx(report.gate.value)
    # Every model competed (EASE and the learned ranker included); the champion is the
    # best on validation, the hybrid weight one of those tried.
    assert set(report.validation) == {"als", "item_jaccard", "ease", "hybrid", "ranker"}
    assert report.validation[report.champion] == max(report.validation.values())
    assert report.hybrid_weight in cfg.nightly.hybrid_weights
    assert Path(report.report["html"]).is_file() and Path(report.report["metrics_json"]).is_file()


def test_a_first_night_does_not_maintain_a_young_lake(spark: SparkSession, first_night) -> None:
    cfg, _ = first_night  # maintenance every 7 days, counted from the lake's first night
    path = cfg.storage.table(tables.MAINTENANCE_LOG)
    if delta.table_exists(spark, path):  # the gate refusal's night (2026-03-01) may have run
        assert not delta.read_table(spark, path).filter(F.col("run_date") == RUN_DATE).count()
    assert delta.clustering_columns(spark, cfg.storage.table(tables.INTERACTIONS)) == [C.EVENT_DATE]


def test_night_is_one_mlflow_parent_with_a_child_per_stage(first_night) -> None:
    import mlflow

    cfg, report = first_night
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    parent = client.get_run(report.run_id)
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["run_date"] == RUN_DATE.isoformat()
    assert tags["spark_version"] == "4.2.0" and tags["delta_version"] == "4.4.0"
    assert tags["git_commit"] and tags["champion"] == report.champion
    assert int(tags["table_version.input.interactions"]) >= 0
    # the version the publication committed (the table's first: created by that commit)
    published_version = report.published.versions[tables.PUBLISHED_RECOMMENDATIONS]
    assert int(tags["table_version.output.recommendations"]) == published_version == 0
    assert parent.data.params["nightly.gate_metric"] == "ndcg_at_10"
    # publish: recommendations, recommendations_latest and publish_log, one commit each
    assert parent.data.metrics["stage_delta_commits.publish"] == 3
    assert parent.data.metrics["stage_spark_jobs.publish"] > 0
    exp = parent.info.experiment_id
    children = client.search_runs(
        [exp], filter_string=f"tags.mlflow.parentRunId = '{report.run_id}'"
    )
    stages = {c.info.run_name for c in children}
    assert {"ingest", "snapshot", "holdout_models", "candidates", "evaluation", "gate",
            "final_models", "publish"} <= stages  # fmt: skip
    assert "maintain" not in stages
    artifacts = {a.path for a in client.list_artifacts(report.run_id)}
    assert {"config.json", "report"} <= artifacts


def test_gate_refusal_keeps_the_previous_lists_live(spark: SparkSession, first_night) -> None:
    cfg, _ = first_night
    before, live = versions(spark, cfg), published(spark, cfg, tables.RECOMMENDATIONS_LATEST)
    # A tolerance of -1 asks NDCG@10 to beat the last night by 1.0: impossible.
    argv = ["--run-date", "2026-03-01"]
    # Maintenance due a day after the first night: a refused night maintains all the same.
    for item in [*overrides(Path(cfg.storage.root).parent, Path(cfg.ingest.source)),
                 "nightly.gate_tolerance=-1.0", "maintenance.every_days=1",
                 # refused whatever the models: EASE and the ranker (a quarter of a
                 # tiny night) are left out
                 "ease.enabled=false", "ranker.enabled=false"]:  # fmt: skip
        argv += ["--set", item]
    assert nightly.main(argv) == 3
    # nothing published: the only commits since are maintenance's (VACUUM START / END)
    for name, version in before.items():
        history = DeltaTable.forPath(spark, cfg.storage.table(name)).history()
        later = history.filter(F.col("version") > version).collect()
        assert {r["operation"] for r in later} <= {"OPTIMIZE", "VACUUM START", "VACUUM END"}
    log = delta.read_table(spark, cfg.storage.table(tables.MAINTENANCE_LOG)).collect()
    maintained = {r["table"] for r in log}
    assert {tables.INTERACTIONS, tables.PUBLISHED_RECOMMENDATIONS, tables.PUBLISH_LOG} <= maintained
    assert not any(t.startswith(tables.NIGHTLY) for t in maintained)
    assert {r["run_date"] for r in log} == {date(2026, 3, 1)}
    pd.testing.assert_frame_equal(live, published(spark, cfg, tables.RECOMMENDATIONS_LATEST))

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    runs = client.search_runs(
        [client.get_experiment_by_name(cfg.tracking.experiment).experiment_id],
        filter_string="tags.run_date = '2026-03-01' and attributes.run_name = 'nightly 2026-03-01'",
    )
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "below" in runs[0].data.tags["outcome"]


def test_kill_9_mid_publish_then_rerun_matches_an_uninterrupted_night(
    spark: SparkSession, sample: Path, first_night, tmp_path: Path
) -> None:
    cfg_a, _ = first_night
    cfg = config(tmp_path, sample)
    argv = [sys.executable, str(PROJECT / "jobs" / "nightly.py"), "--run-date", str(RUN_DATE)]
    for item in overrides(tmp_path, sample):
        argv += ["--set", item]
    env = {**os.environ, "RECSYS_FAILPOINT": "publish.after_recommendations"}
    killed = subprocess.run(
        argv, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=1200
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # Killed between two publishing commits: the first table holds the new date in full,
    # the others were never written; every one that exists is readable.
    recs = published(spark, cfg, tables.PUBLISHED_RECOMMENDATIONS)
    assert len(recs) > 0 and set(recs["run_date"]) == {RUN_DATE}
    assert versions(spark, cfg)[tables.RECOMMENDATIONS_LATEST] is None
    assert versions(spark, cfg)[tables.PUBLISH_LOG] is None

    # Late events land before the rerun: every user saw the most recommended item. The
    # rerun reads interactions at the version the killed attempt read, so they wait.
    pinned = delta.table_version(spark, cfg.storage.table(tables.INTERACTIONS))
    top_item = recs[C.ITEM_ID].value_counts().index[0]
    stored = delta.read_table(spark, cfg.storage.table(tables.INTERACTIONS))
    item_index = {r[0]: r[1] for r in stored.select(C.ITEM_ID, C.ITEM_IDX).distinct().collect()}
    late = (
        stored.filter(F.col(C.EVENT_DATE) < F.lit(RUN_DATE))
        .dropDuplicates([C.USER_ID])
        .withColumn(C.EVENT_ID, F.concat(F.lit("late-"), F.col(C.USER_ID)))
        .withColumn(C.ITEM_ID, F.lit(top_item))
        .withColumn(C.ITEM_IDX, F.lit(item_index[top_item]))
    )
    delta.append(late, cfg.storage.table(tables.INTERACTIONS))

    rerun = run_night(spark, cfg, RUN_DATE)  # takes over the dead run's lock
    assert rerun.published is not None
    [pin] = delta.read_table(spark, cfg.storage.table(tables.NIGHT_INPUTS)).collect()
    assert (pin["run_date"], pin["interactions_version"]) == (RUN_DATE, pinned)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    exp = client.get_experiment_by_name(cfg.tracking.experiment).experiment_id
    nights = client.search_runs([exp], filter_string=f"tags.run_date = '{RUN_DATE}'")
    statuses = sorted(r.info.status for r in nights if r.info.run_name.startswith("nightly"))
    assert statuses == ["FINISHED", "KILLED"]  # the killed attempt's run is closed
    # The rerun replaced the date (no duplicate rows) with what the uninterrupted night
    # published on the same data.
    for name in (tables.PUBLISHED_RECOMMENDATIONS, tables.RECOMMENDATIONS_LATEST):
        pd.testing.assert_frame_equal(published(spark, cfg_a, name), published(spark, cfg, name))
    assert delta.read_table(spark, cfg.storage.table(tables.PUBLISH_LOG)).count() == 1


def test_a_second_run_while_one_holds_the_lock_exits_4(
    spark: SparkSession, first_night, tmp_path: Path
) -> None:
    cfg, _ = first_night
    before = versions(spark, cfg)
    argv = ["--run-date", str(RUN_DATE)]
    for item in overrides(Path(cfg.storage.root).parent, Path(cfg.ingest.source)):
        argv += ["--set", item]
    with acquire(spark, cfg.storage, run_date=str(RUN_DATE)):  # a live run (this process)
        assert nightly.main(argv) == 4
    assert versions(spark, cfg) == before
