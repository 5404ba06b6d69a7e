"""Train implicit ALS on the interactions and write top-N lists for every user.

    python jobs/train_als.py --conf conf/local.yml [--set als.tuning.enabled=true]

Writes `als_user_factors`, `als_item_factors`, `als_tuning` (when tuning) and the `als`
rows of `model_recommendations` under storage.root (recsys_spark.models.als_training).
Exit codes: 0 done, 2 bad configuration or missing input tables.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recsys_spark.cli import job_parser, run_job
from recsys_spark.models.als_training import run_als


def main(argv: Sequence[str] | None = None) -> int:
    def body(spark, cfg, args) -> None:
        run_als(spark, cfg.als, cfg.recommend, cfg.tracking, cfg.storage)

    return run_job(job_parser(__doc__.splitlines()[0]), argv, body)


if __name__ == "__main__":
    sys.exit(main())
