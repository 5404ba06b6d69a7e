"""Maintain every Delta table under the storage root: OPTIMIZE (compaction; clustering
by event date for interactions), then VACUUM with `maintenance.retention_hours`.

    python jobs/maintain.py --conf conf/local.yml [--set maintenance.retention_hours=336]

The night runs the same when `maintenance.every_days` have passed since the last
maintenance (`maintenance_log`). Exit codes: 0 done, 2 bad configuration, 4 a night or an
ingest holds the storage root's lock.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from recsys_spark.cli import job_parser, run_job
from recsys_spark.ingest.checks import check_writable
from recsys_spark.pipeline.lock import acquire
from recsys_spark.pipeline.maintain import maintain_lake


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])

    def body(spark, cfg, args) -> None:
        check_writable(spark, cfg.storage.root)  # before the lock file is made there
        # VACUUM must not delete the files of a write in progress: hold the root's lock.
        with acquire(spark, cfg.storage, run_date="maintain"):
            maintain_lake(spark, cfg.storage, cfg.maintenance, datetime.now(UTC).date())

    return run_job(parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
