"""Evaluate every model's top-N lists against a held-out split, with a most-popular baseline.

    python jobs/evaluate.py --conf conf/local.yml --prepare     # 1. split, holdout lake
    python jobs/train_als.py --conf conf/local.yml \\
        --set storage.root=data/lake/holdout                    # 2. models on train only
    python jobs/evaluate.py --conf conf/local.yml               # 3. metrics.json + report.html

Step 2 runs any model job (train_als, similarity) on `<storage.root>/holdout`, whose
interactions are the split's training side only (recsys_spark.evaluation.offline).
Exit codes: 0 done, 2 missing input tables or bad configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recsys_spark.cli import job_parser, run_job
from recsys_spark.evaluation.offline import run_evaluation


def main(argv: Sequence[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="only split and write eval_train, eval_test and <root>/holdout/interactions",
    )

    def body(spark, cfg, args) -> None:
        run_evaluation(spark, cfg.evaluation, cfg.tracking, cfg.storage, prepare=args.prepare)

    return run_job(parser, argv, body)


if __name__ == "__main__":
    sys.exit(main())
