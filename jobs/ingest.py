"""Ingest raw interaction logs into the Delta tables under the storage root.

    python jobs/ingest.py --conf conf/local.yml [--set ingest.source=/path] [--full-refresh]

Exit codes: 0 done (bad rows quarantined, unreadable files recorded), 1 the batch does
not reconcile or no new file could be read, 2 bad configuration or source.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recsys_spark.cli import job_parser, run_job
from recsys_spark.ingest.runner import run_ingest


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild interactions, quarantine and ingest logs from every source file",
    )

    def body(spark, cfg, args) -> None:
        run_ingest(
            spark, cfg.ingest, cfg.storage, full_refresh=args.full_refresh, require_readable=True
        )

    return run_job(parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
