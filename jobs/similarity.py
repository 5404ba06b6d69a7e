"""Item-item co-occurrence similarities and item-based top-N recommendations.

    python jobs/similarity.py --conf conf/local.yml [--set similarity.measures=[jaccard,llr]]

Writes `item_similarity`, the `item_<measure>` rows of `model_recommendations` and
`similar_items` under storage.root (recsys_spark.similarity.item_models.run_similarity).
Exit codes: 0 done, 2 bad configuration or no interactions table.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recsys_spark.catalog.content import load_content
from recsys_spark.cli import job_parser, run_job
from recsys_spark.similarity.item_models import run_similarity


def main(argv: Sequence[str] | None = None) -> int:
    def body(spark, cfg, args) -> None:
        content = load_content(spark, cfg.catalog, cfg.storage)  # None without a catalogue
        run_similarity(spark, cfg.similarity, cfg.recommend, cfg.storage, content=content)

    return run_job(job_parser(__doc__.splitlines()[0]), argv, body)


if __name__ == "__main__":
    sys.exit(main())
