"""Check that a run left its tables under the storage root: present and not empty.

    python cluster/check_published.py --conf conf/cluster.yml --set storage.root=... \
        --expect ingest
    python cluster/check_published.py --conf conf/cluster.yml --expect nightly --run-date D

`--expect` names what the run should have written (see EXPECTED): `ingest` the tables of
jobs/ingest.py, `nightly` also the published lists of the night `--run-date`. The root
comes from the same `--conf` / `--set` as the job's, so both resolve it alike. It runs in
its own local Spark session (a second reader, independent of the cluster that wrote the
tables), or under spark-submit. Prints one line per table; exit 0 when every check holds,
1 when one fails, 2 on bad arguments or configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date

from pyspark.sql import SparkSession

from recsys_spark import tables
from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import StorageConfig
from recsys_spark.io import delta
from recsys_spark.session import get_spark


@dataclass(frozen=True)
class TableCheck:
    """One table that must exist under the root with at least `min_rows` rows.

    `where` is a SQL condition the counted rows must satisfy (e.g. one run date's
    partition); None counts every row.
    """

    table: str
    min_rows: int = 1
    where: str | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one TableCheck: `rows` is None when there is no Delta table."""

    check: TableCheck
    location: str
    rows: int | None

    @property
    def ok(self) -> bool:
        return self.rows is not None and self.rows >= self.check.min_rows

    def describe(self) -> str:
        scope = f" where {self.check.where}" if self.check.where else ""
        if self.rows is None:
            found = "no Delta table"
        else:
            found = f"{self.rows:,} rows{scope} (need >= {self.check.min_rows:,})"
        return f"{'ok  ' if self.ok else 'FAIL'} {self.check.table}: {found} at {self.location}"


def ingest_checks(run_date: date | None) -> list[TableCheck]:
    """The tables every ingest leaves: the interactions and both id indices."""
    return [
        TableCheck(tables.INTERACTIONS),
        TableCheck(tables.USER_INDEX),
        TableCheck(tables.ITEM_INDEX),
        TableCheck(tables.INGEST_BATCHES),
    ]


def nightly_checks(run_date: date | None) -> list[TableCheck]:
    """Ingest's tables, the night's partition of `recommendations`, the latest lists and
    the night's `publish_log` row."""
    if run_date is None:
        raise ValueError("--expect nightly needs --run-date (the night that was published)")
    night = f"run_date = DATE'{run_date.isoformat()}'"
    return [
        *ingest_checks(run_date),
        TableCheck(tables.PUBLISHED_RECOMMENDATIONS, where=night),
        TableCheck(tables.RECOMMENDATIONS_LATEST),
        TableCheck(tables.PUBLISH_LOG, where=night),
    ]


# What each kind of run must have written; add a profile per job that publishes tables.
EXPECTED: dict[str, Callable[[date | None], list[TableCheck]]] = {
    "ingest": ingest_checks,
    "nightly": nightly_checks,
}


def check_tables(
    spark: SparkSession, storage: StorageConfig, checks: Sequence[TableCheck]
) -> list[CheckResult]:
    """Count the rows of every checked table under `storage` (one count per table).

    Returns
    -------
    list[CheckResult]
        In the order of `checks`; `rows` is None where no Delta table exists.
    """
    results = []
    for check in checks:
        location = storage.table(check.table)
        rows = None
        if delta.table_exists(spark, location):
            frame = delta.read_table(spark, location)
            rows = (frame.where(check.where) if check.where else frame).count()
        results.append(CheckResult(check, location, rows))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--expect", choices=sorted(EXPECTED), default="ingest", help="what the run wrote"
    )
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        default=None,
        help="YYYY-MM-DD: the night whose published lists must exist (--expect nightly)",
    )
    args, cfg = parse_job_args(parser, argv)
    try:
        checks = EXPECTED[args.expect](args.run_date)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    # A few KB of Delta logs and one count per table: one core and a small driver suffice.
    spark_cfg = replace(
        cfg.spark,
        app_name="recsys-check-published",
        master="local[1]",
        driver_memory="1g",
        log_level="ERROR",
    )
    spark = get_spark(spark_cfg)
    results = check_tables(spark, cfg.storage, checks)
    for result in results:
        print(result.describe())
    failed = [r.check.table for r in results if not r.ok]
    if failed:
        print(f"check failed under {cfg.storage.root_uri}: {', '.join(failed)}")
        return 1
    print(f"all {len(results)} tables present and non-empty under {cfg.storage.root_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
