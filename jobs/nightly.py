"""The nightly pipeline: ingest, models, hybrid, evaluation, quality gate, publishing.

    python jobs/nightly.py --conf conf/local.yml --run-date 2026-04-30 [--set key=value]

The stages are recsys_spark.pipeline.night.run_night's. Exit codes: 0 published; 1 a
stage failed (published tables keep their last good version; rerun the date); 2 bad
configuration or input; 3 the quality gate refused the night (the previous lists stay
live); 4 another nightly holds this storage root's lock.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime

from recsys_spark import tables
from recsys_spark.cli import job_parser, run_job
from recsys_spark.logs import get_logger
from recsys_spark.pipeline.night import run_night

log = get_logger("jobs.nightly")


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

    def body(spark, cfg, args) -> int:
        report = run_night(spark, cfg, args.run_date)
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

    return run_job(parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
