"""The night's MLflow bookkeeping: a failing MLflow call never hides a stage's own error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recsys_spark.config import AppConfig, load_config
from recsys_spark.pipeline.lineage import NightTracker


class BrokenStore:
    """Stands in for the mlflow module with a tracking store that refuses metrics."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def start_run(self, **kwargs: object) -> object:
        return object()  # a child run

    def log_metrics(self, metrics: dict) -> None:
        raise RuntimeError("tracking store unavailable")

    def log_metric(self, key: str, value: float) -> None:
        raise RuntimeError("tracking store unavailable")

    def end_run(self, status: str) -> None:
        self.ended.append(status)


def tracker_with(store: BrokenStore) -> NightTracker:
    tracker = NightTracker(AppConfig(), logging.getLogger("test"))
    tracker.mlflow = store
    return tracker


def test_a_failing_stage_keeps_its_own_error_when_mlflow_fails_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = BrokenStore()
    tracker = tracker_with(store)
    with pytest.raises(ValueError, match="the stage's own error"), tracker.stage("snapshot"):
        raise ValueError("the stage's own error")
    assert store.ended == ["FAILED"]  # the child run is closed all the same
    assert "MLflow could not record it" in caplog.text
    assert "snapshot" in tracker.durations


def test_an_mlflow_failure_after_a_good_stage_is_raised() -> None:
    store = BrokenStore()
    tracker = tracker_with(store)
    with pytest.raises(RuntimeError, match="tracking store unavailable"), tracker.stage("gate"):
        pass
    assert store.ended == ["FINISHED"]


def test_a_night_closes_the_runs_a_killed_night_of_another_date_left_running(
    tmp_path: Path,
) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config(None, [f"tracking.uri={uri}", f"storage.root={tmp_path / 'lake'}"])
    killed = NightTracker(cfg, logging.getLogger("test"))
    killed.start("nightly 2026-04-29", {"run_date": "2026-04-29"})
    with killed.stage("ingest"):
        pass
    killed.finish(failed=True)
    client = mlflow.MlflowClient(tracking_uri=uri)
    (child,) = client.search_runs(
        [client.get_experiment_by_name(cfg.tracking.experiment).experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{killed.run_id}'",
    )
    # kill -9 leaves a night's runs RUNNING: put them back as the killed process left them.
    for run_id in (killed.run_id, child.info.run_id):
        client.update_run(run_id, status="RUNNING")

    elsewhere = load_config(None, [f"tracking.uri={uri}", f"storage.root={tmp_path / 'other'}"])
    other_lake = NightTracker(elsewhere, logging.getLogger("test"))
    other_lake.start("nightly 2026-04-30", {"run_date": "2026-04-30"})
    other_lake.finish(failed=False)
    assert client.get_run(killed.run_id).info.status == "RUNNING"  # not that lake's night

    night = NightTracker(cfg, logging.getLogger("test"))
    night.start("nightly 2026-04-30", {"run_date": "2026-04-30"})
    night.finish(failed=False)
    assert client.get_run(killed.run_id).info.status == "KILLED"
    assert client.get_run(child.info.run_id).info.status == "KILLED"


def test_a_stage_counts_its_spark_jobs_and_delta_commits(spark, tmp_path: Path) -> None:
    from recsys_spark.io import delta

    tracker = NightTracker(AppConfig(), logging.getLogger("test"))
    path = str(tmp_path / "t")
    with tracker.stage("two commits"):
        delta.append(spark.range(3), path)  # creates the table
        delta.append(spark.range(2), path)
        delta.append(spark.range(5).filter("id > 5"), path)  # empty: Delta commits nothing
    with tracker.stage("reads only"):
        assert delta.read_table(spark, path).count() == 5
    with tracker.stage("nothing"):
        pass
    writes, reads, idle = (tracker.costs[n] for n in ("two commits", "reads only", "nothing"))
    assert writes.delta_commits == delta.table_version(spark, path) + 1 == 2
    assert writes.spark_jobs >= 3 and reads.spark_jobs >= 1
    assert (reads.delta_commits, idle.delta_commits, idle.spark_jobs) == (0, 0, 0)
