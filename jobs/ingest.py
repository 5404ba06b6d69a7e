"""Ingest raw interaction logs into the Delta tables under the storage root.

    python jobs/ingest.py --conf conf/local.yml [--set ingest.source=/path] [--full-refresh]

Exit codes: 0 done (bad rows quarantined, unreadable files recorded), 1 the batch does
not reconcile or no new file could be read, 2 bad configuration or source.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import SparkSession

from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import AppConfig
from recsys_spark.ingest.runner import IngestReport, ReconciliationError, run_ingest
from recsys_spark.io.files import SourceError
from recsys_spark.logs import get_logger
from recsys_spark.session import get_spark

log = get_logger("jobs.ingest")


def run(spark: SparkSession, cfg: AppConfig, *, full_refresh: bool = False) -> IngestReport:
    """Ingest `cfg.ingest.source` into the tables under `cfg.storage.root`."""
    report = run_ingest(spark, cfg.ingest, cfg.storage, full_refresh=full_refresh)
    log.info("tables under %s", cfg.storage.root)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild interactions, quarantine and ingest logs from every source file",
    )
    args, cfg = parse_job_args(parser, argv)
    spark = get_spark(cfg.spark)
    try:
        report = run(spark, cfg, full_refresh=args.full_refresh)
    except SourceError as exc:
        log.error("%s", exc)
        return 2
    except ReconciliationError as exc:
        log.error("%s", exc)
        return 1
    if report.files_failed:
        log.warning(
            "%d unreadable files recorded in ingest_log and quarantine", report.files_failed
        )
    if report.files and report.files_failed == len(report.files):
        log.error("no new file could be read: check ingest.format and the files' contents")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
