"""The nightly pipeline: ingest, models, hybrid, evaluation, quality gate, publishing.

    python jobs/nightly.py --conf conf/local.yml --run-date 2026-04-30 [--set key=value]

Stages, in order (each logs start, end, duration and row counts; each is a child run
of the night's MLflow run):
1. ingest: new raw log files into `interactions` (jobs/ingest.py);
2. snapshot: the interactions up to the run date into `<root>/nightly/run_date=D/`,
   and a chronological holdout: events before `run date - nightly.holdout_days` train,
   pairs first seen after it are held out (half the users validate, half test);
3. holdout_models: item-based models and ALS (tuned when the schedule says so) fitted
   on the holdout's training side, lists `nightly.candidate_depth` deep;
4. candidates: the hybrid's weight and the champion chosen on the validation users;
5. evaluation: every model and the most-popular baseline on the test users
   (metrics.json, report.html under `<root>/<nightly.report_dir>/D/`);
6. gate: the champion's `nightly.gate_metric` may not fall more than
   `nightly.gate_tolerance` below the last published night's;
7. final_models: the champion refitted on every event up to the run date, lists
   completed from the popularity ranking so every user has `recommend.top_n` items;
8. publish: `recommendations` (partition run_date = D), `recommendations_latest` and
   `publish_log` (recsys_spark/pipeline/publish.py).

Exit codes: 0 published; 1 a stage failed (published tables keep their last good
version; rerun the date); 2 bad configuration or input; 3 the quality gate refused the
night (the previous lists stay live); 4 another nightly holds this storage root's lock.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import SparkSession

from jobs import train_als as train_als_job
from jobs.nightly_stages import Night
from recsys_spark import tables
from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import AppConfig
from recsys_spark.io.files import SourceError
from recsys_spark.logs import get_logger
from recsys_spark.pipeline.gate import GateDecision
from recsys_spark.pipeline.holdout import HoldoutError
from recsys_spark.pipeline.lineage import NightTracker, version_tags
from recsys_spark.pipeline.lock import LockHeldError, acquire
from recsys_spark.pipeline.publish import Publication
from recsys_spark.session import get_spark

log = get_logger("jobs.nightly")


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
    durations: dict[str, float] = field(default_factory=dict)
    table_versions: dict[str, int] = field(default_factory=dict)


def run(spark: SparkSession, cfg: AppConfig, run_date: date) -> NightReport:
    """Run every stage for `run_date` under the storage root's lock; one MLflow parent run."""
    with acquire(spark, cfg.storage, run_date=run_date.isoformat()):
        tracker = NightTracker(cfg, log)
        tracker.start(f"nightly {run_date}", {"run_date": run_date.isoformat(), **version_tags()})
        try:
            report = _run_stages(Night(spark, cfg, run_date, tracker))
        except BaseException as exc:
            tracker.finish(failed=True, reason=f"{type(exc).__name__}: {exc}")
            raise
        tracker.finish(failed=report.published is None, reason=report.gate.reason)
    log.info(
        "night %s: %s in %.0f s (%s)",
        run_date,
        "published" if report.published else "NOT published",
        sum(report.durations.values()),
        ", ".join(f"{k} {v:.0f} s" for k, v in report.durations.items()),
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
        dict(tracker.durations),
        versions,
    )


def _run_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--run-date must be YYYY-MM-DD; got '{text}'") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--run-date",
        type=_run_date,
        default=datetime.now(UTC).date(),
        help="the night to compute, YYYY-MM-DD (default: today, UTC); events after it are ignored",
    )
    args, cfg = parse_job_args(parser, argv)
    spark = get_spark(cfg.spark)
    try:
        report = run(spark, cfg, args.run_date)
    except LockHeldError as exc:
        log.error("%s", exc)
        return 4
    except (SourceError, HoldoutError, train_als_job.MissingInputError) as exc:
        log.error("%s", exc)
        return 2
    if report.published is None:
        log.error("night %s not published: %s", args.run_date, report.gate.reason)
        return 3
    log.info(
        "published %s lists of %d users for %s: %s (latest: %s); report %s",
        report.champion,
        report.published.users,
        args.run_date,
        cfg.storage.table(tables.PUBLISHED_RECOMMENDATIONS),
        cfg.storage.table(tables.RECOMMENDATIONS_LATEST),
        report.report.get("html", "-"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
