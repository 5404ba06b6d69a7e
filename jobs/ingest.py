"""Ingest raw interaction logs into the Delta tables under the storage root.

    python jobs/ingest.py --conf conf/local.yml [--set ingest.source=/path] [--full-refresh]
    python jobs/ingest.py --replay-quarantine [--reason unknown_event_type]

Exit codes: 0 done (bad rows quarantined, unreadable files recorded or parked), 1 the
batch does not reconcile or no new file could be read, 2 bad configuration or source, or
a batch refused by the circuit breaker (ingest.max_quarantine_share), 4 a nightly or
another ingest holds the storage root's lock.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recsys_spark.cli import job_parser, run_job
from recsys_spark.ingest.checks import check_writable
from recsys_spark.ingest.replay import run_replay
from recsys_spark.ingest.runner import run_ingest
from recsys_spark.pipeline.lock import acquire


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild interactions, quarantine and ingest logs from every source file",
    )

    parser.add_argument(
        "--replay-quarantine",
        action="store_true",
        help="re-validate quarantined rows under the current config and store those that pass",
    )
    parser.add_argument("--reason", help="with --replay-quarantine: only rows of this reason")

    def body(spark, cfg, args) -> None:
        if args.reason and not args.replay_quarantine:
            parser.error("--reason goes with --replay-quarantine")
        check_writable(spark, cfg.storage.root)  # before the lock file is made there
        # The storage root's lock, as a night holds it: ingest numbers new ids and
        # deduplicates against what it read, which only one writer at a time may do.
        with acquire(spark, cfg.storage, run_date="ingest"):
            if args.replay_quarantine:
                run_replay(spark, cfg.ingest, cfg.storage, reason=args.reason)
            else:
                run_ingest(
                    spark,
                    cfg.ingest,
                    cfg.storage,
                    full_refresh=args.full_refresh,
                    require_readable=True,
                )

    return run_job(parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
