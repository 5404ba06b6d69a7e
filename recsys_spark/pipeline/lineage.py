"""MLflow lineage of a night: one parent run, one child run per stage.

`NightTracker` wraps MLflow so the pipeline code reads the same with tracking on or off
(off: every call is a no-op, durations are still kept for the log and the benchmark).
The parent run carries the config as parameters, tags for the run date, git commit,
Spark and Delta versions, the Delta version of every input and output table, and the
reports, config and model as artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from recsys_spark.config import AppConfig
from recsys_spark.io import delta
from recsys_spark.session import spark_jobs_started
from recsys_spark.tracking import metric_key, use_experiment

PROJECT_DIR = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    """The checkout's HEAD commit, or 'unknown' outside a git checkout (an installed wheel)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def version_tags() -> dict[str, str]:
    """Versions that decide a run's numbers: Python, Spark, Delta, MLflow."""

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "git_commit": git_commit(),
        "python_version": sys.version.split()[0],
        "spark_version": version("pyspark"),
        "delta_version": version("delta-spark"),
        "mlflow_version": version("mlflow"),
    }


def config_params(cfg: AppConfig) -> dict[str, str]:
    """Every config key as a flat `section.key` -> string parameter."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = json.dumps(value) if isinstance(value, list | tuple) else str(value)

    walk("", dataclasses.asdict(cfg))
    # Map keys are the user's (an event type such as "add+cart"): made valid MLflow names.
    return {metric_key(k): v[:500] for k, v in flat.items()}


@dataclasses.dataclass(frozen=True)
class StageCost:
    """What one stage took: wall seconds, Spark jobs started, Delta commits made."""

    seconds: float
    spark_jobs: int
    delta_commits: int


class NightTracker:
    """The parent MLflow run of one night and its per-stage child runs."""

    def __init__(self, cfg: AppConfig, log: logging.Logger) -> None:
        self.cfg = cfg
        self.log = log
        self.costs: dict[str, StageCost] = {}
        self.mlflow: Any = None
        self.run_id: str | None = None

    def start(self, run_name: str, tags: Mapping[str, str]) -> None:
        """Open the parent run (when tracking is on) with `tags` and the config."""
        if not self.cfg.tracking.enabled:
            return
        mlflow = use_experiment(self.cfg.tracking)
        self.mlflow = mlflow
        tags = {**tags, "storage_root": self.cfg.storage.root_uri}
        self._close_dead_runs(tags)
        self.run_id = mlflow.start_run(run_name=run_name, tags=tags).info.run_id
        try:
            mlflow.log_params(config_params(self.cfg))
            mlflow.log_dict(dataclasses.asdict(self.cfg), "config.json")
        except BaseException:
            mlflow.end_run(status="FAILED")  # not left RUNNING
            raise

    def _close_dead_runs(self, tags: Mapping[str, str]) -> None:
        """Mark KILLED the nights of this storage root still RUNNING, whatever their date.

        The caller holds the storage root's lock, so such a run is a killed earlier night
        (kill -9 leaves its MLflow run open); its child runs are closed with it.
        """
        experiment = self.mlflow.get_experiment_by_name(self.cfg.tracking.experiment)
        if experiment is None or "run_date" not in tags:
            return
        client = self.mlflow.MlflowClient()
        # Only a night's parent run carries the storage_root tag.
        same_root = (
            f"tags.storage_root = '{tags['storage_root']}' and attributes.status = 'RUNNING'"
        )
        for run in client.search_runs([experiment.experiment_id], filter_string=same_root):
            children = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
                " and attributes.status = 'RUNNING'",
            )
            for dead in [*children, run]:
                client.set_terminated(dead.info.run_id, status="KILLED")
            self.log.warning("MLflow run %s of a killed attempt marked KILLED", run.info.run_id)

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, float]]:
        """Time a stage, count its Spark jobs and Delta commits, log start/end, and give it
        a child run; yields a metrics dict."""
        metrics: dict[str, float] = {}
        start = time.perf_counter()
        spark = SparkSession.getActiveSession()
        jobs = spark_jobs_started(spark) if spark is not None else 0
        commits = delta.commits_made()
        self.log.info("stage %s: start", name)
        child = None
        if self.mlflow is not None:
            child = self.mlflow.start_run(run_name=name, nested=True)
        status = "FAILED"
        try:
            yield metrics
            status = "FINISHED"
        finally:
            seconds = time.perf_counter() - start
            self.costs[name] = StageCost(
                seconds,
                spark_jobs_started(spark) - jobs if spark is not None else 0,
                delta.commits_made() - commits,
            )
            self.log.info(
                "stage %s: %s in %.1f s (%d Spark jobs, %d Delta commits)%s",
                name,
                "done" if status == "FINISHED" else "failed",
                seconds,
                self.costs[name].spark_jobs,
                self.costs[name].delta_commits,
                "".join(f", {k}={v:g}" for k, v in metrics.items()),
            )
            if child is not None:
                try:
                    self._close_stage_run(name, metrics, seconds, status)
                except Exception as exc:
                    if status == "FINISHED":
                        raise
                    # The stage's own error is the one the operator needs: an MLflow
                    # failure on top of it must not replace it.
                    self.log.warning("stage %s: MLflow could not record it: %s", name, exc)

    def _close_stage_run(
        self, name: str, metrics: Mapping[str, float], seconds: float, status: str
    ) -> None:
        """Log the stage's metrics to its child run, close it, add its time to the parent."""
        cost = self.costs[name]
        try:
            self.mlflow.log_metrics({metric_key(k): float(v) for k, v in metrics.items()})
            self.mlflow.log_metrics(
                {
                    "seconds": seconds,
                    "spark_jobs": cost.spark_jobs,
                    "delta_commits": cost.delta_commits,
                }
            )
        finally:
            self.mlflow.end_run(status=status)
        self.mlflow.log_metrics(
            {
                metric_key(f"stage_seconds.{name}"): seconds,
                metric_key(f"stage_spark_jobs.{name}"): cost.spark_jobs,
                metric_key(f"stage_delta_commits.{name}"): cost.delta_commits,
            }
        )

    @property
    def durations(self) -> dict[str, float]:
        """Seconds per stage run so far."""
        return {name: cost.seconds for name, cost in self.costs.items()}

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        if self.mlflow is not None:
            clean = {metric_key(k): float(v) for k, v in metrics.items() if v == v}
            self.mlflow.log_metrics(clean)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.mlflow is not None:
            self.mlflow.set_tags(dict(tags))

    def log_artifacts(self, paths: list[Path], artifact_path: str | None = None) -> None:
        if self.mlflow is not None:
            for path in paths:
                if path.is_file():
                    self.mlflow.log_artifact(str(path), artifact_path)

    def log_model_dir(self, save: Any, artifact_path: str) -> None:
        """Log a model folder: `save(folder)` writes it (for example an ALSModel's save)."""
        if self.mlflow is not None:
            with tempfile.TemporaryDirectory() as tmp:
                save(f"{tmp}/model")
                self.mlflow.log_artifacts(f"{tmp}/model", artifact_path)

    def finish(self, *, failed: bool, reason: str = "") -> None:
        """Close the parent run FINISHED or FAILED (with the reason as a tag)."""
        if self.mlflow is None:
            return
        if reason:
            self.mlflow.set_tag("outcome", reason[:5000])
        self.mlflow.end_run(status="FAILED" if failed else "FINISHED")
        self.mlflow = None
