"""MERGE the item catalogue and the exclusions into the `items` and `exclusions` tables.

    python jobs/ingest_catalog.py --conf conf/local.yml [--set catalog.items.source=/path]
    python jobs/ingest_catalog.py --only exclusions

Reads `catalog.items` and `catalog.exclusions` (a source "" is skipped). Exit codes: 0
done (bad rows quarantined), 1 the counts do not reconcile, 2 bad configuration or
source, or a batch refused for too many bad rows (catalog.max_quarantine_share; nothing
merged), 4 a nightly or another ingest holds the storage root's lock.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recsys_spark.catalog.ingest import EXCLUSIONS_KIND, ITEMS_KIND, ingest_catalog
from recsys_spark.cli import job_parser, run_job
from recsys_spark.errors import ConfigError
from recsys_spark.ingest.checks import check_writable
from recsys_spark.pipeline.lock import acquire


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=(ITEMS_KIND, EXCLUSIONS_KIND), help="ingest only this catalogue file"
    )

    def body(spark, cfg, args) -> None:
        kinds = (args.only,) if args.only else (ITEMS_KIND, EXCLUSIONS_KIND)
        if not any(getattr(cfg.catalog, kind).source for kind in kinds):
            raise ConfigError(
                "nothing to ingest: set catalog.items.source or catalog.exclusions.source"
            )
        check_writable(spark, cfg.storage.root)  # before the lock file is made there
        with acquire(spark, cfg.storage, run_date="ingest-catalog"):
            ingest_catalog(spark, cfg.catalog, cfg.storage, kinds=kinds)

    return run_job(parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
