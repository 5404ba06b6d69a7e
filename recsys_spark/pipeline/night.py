"""The night runner: every stage of one run date under the storage root's lock.

Stages, in order (each logs start, end, duration and row counts; each is a child run of
the night's MLflow run; `recsys_spark.pipeline.stages.Night` has one method per stage):

1. ingest: new raw log files into `interactions` (`run_ingest`);
2. snapshot: the interactions up to the run date into `<root>/nightly/run_date=D/`,
   and a chronological holdout: events before `run date - nightly.holdout_days` train,
   pairs first seen after it are held out (half the users validate, half test);
3. holdout_models: item-based models, ALS (tuned when the schedule says so) and EASE fitted
   on the holdout's training side, lists `nightly.candidate_depth` deep;
4. candidates: the hybrid's weight and the champion chosen on the validation users;
5. evaluation: every model and the most-popular baseline on the test users
   (metrics.json, report.html under `<root>/<nightly.report_dir>/D/`);
6. gate: the champion's `nightly.gate_metric` may not fall more than
   `nightly.gate_tolerance` below the last published night's;
7. final_models: the champion refitted on every event up to the run date, lists
   completed from the popularity ranking so every user has `recommend.top_n` items;
8. publish: `recommendations` (partition run_date = D), `recommendations_latest` and
   `publish_log` (recsys_spark/pipeline/publish.py);
9. maintain, when `maintenance.every_days` have passed since the last one: OPTIMIZE and
   VACUUM of every table under the root (recsys_spark/pipeline/maintain.py), after the
   night's table versions are recorded and whether or not the gate passed.

A refused gate publishes nothing (the previous lists stay live); a failure in any stage
leaves every published table at its last good version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from recsys_spark.config import AppConfig
from recsys_spark.logs import get_logger
from recsys_spark.pipeline.gate import GateDecision
from recsys_spark.pipeline.lineage import NightTracker, StageCost, version_tags
from recsys_spark.pipeline.lock import acquire
from recsys_spark.pipeline.publish import Publication
from recsys_spark.pipeline.stages import Night

log = get_logger(__name__)


@dataclass
class NightReport:
    """What a night did; `published` is None when the gate refused it."""

    run_date: date
    run_id: str
    champion: str
    validation: dict[str, float]
    hybrid_weight: float
    gate: GateDecision
    published: Publication | None
    report: dict[str, str] = field(default_factory=dict)
    costs: dict[str, StageCost] = field(default_factory=dict)  # seconds, jobs, commits
    table_versions: dict[str, int] = field(default_factory=dict)

    @property
    def durations(self) -> dict[str, float]:
        """Seconds per stage."""
        return {name: cost.seconds for name, cost in self.costs.items()}


def run_night(spark: SparkSession, cfg: AppConfig, run_date: date) -> NightReport:
    """Run every stage for `run_date` under the storage root's lock; one MLflow parent run.

    Raises LockHeldError when another night holds the lock; the errors of the stages
    (MissingInputError, HoldoutError, SourceError...) pass through unchanged.
    """
    with acquire(spark, cfg.storage, run_date=run_date.isoformat()):
        tracker = NightTracker(cfg, log)
        tracker.start(f"nightly {run_date}", {"run_date": run_date.isoformat(), **version_tags()})
        try:
            report = _run_stages(Night(spark, cfg, run_date, tracker))
        except BaseException as exc:
            tracker.finish(failed=True, reason=f"{type(exc).__name__}: {exc}")
            raise
        tracker.finish(failed=report.published is None, reason=report.gate.reason)
    costs = report.costs.values()
    log.info(
        "night %s: %s in %.0f s, %d Spark jobs, %d Delta commits (%s)",
        run_date,
        "published" if report.published else "NOT published",
        sum(report.durations.values()),
        sum(c.spark_jobs for c in costs),
        sum(c.delta_commits for c in costs),
        ", ".join(
            f"{k} {c.seconds:.0f} s/{c.spark_jobs} jobs/{c.delta_commits} commits"
            for k, c in report.costs.items()
        ),
    )
    return report


def _run_stages(night: Night) -> NightReport:
    night.ingest()
    night.snapshot()
    night.holdout_models()
    night.candidates()
    night.evaluation()
    if night.gate().passed:
        night.final_models()
        night.publish()
    else:
        night.withdraw_unfinished()
    versions = night.working_versions()
    tracker = night.tracker
    tracker.set_tags({f"table_version.{k}": str(v) for k, v in versions.items()})
    night.maintain()
    files = {k: str(v) for k, v in night.doc.get("report", {}).items()}
    tracker.log_artifacts(
        [Path(files[k]) for k in ("metrics_json", "html") if k in files], "report"
    )
    assert night.decision is not None
    return NightReport(
        night.run_date,
        night.run_id,
        night.champion,
        night.scores,
        night.hybrid_weight,
        night.decision,
        night.published,
        files,
        dict(tracker.costs),
        versions,
    )
