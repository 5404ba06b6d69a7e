"""Write the built-in synthetic interaction log (the demo's and benchmarks' data).

    python jobs/generate_sample.py --conf conf/local.yml [--set sample.n_events=2000000]

Deterministic: the same `sample.*` settings give the same file. No Spark.
Exit codes: 0 written, 2 bad configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.data.sample import generate_sample


def main(argv: Sequence[str] | None = None) -> int:
    _, cfg = parse_job_args(job_parser(__doc__.splitlines()[0]), argv)
    generate_sample(cfg.sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
