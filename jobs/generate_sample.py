"""Write the built-in synthetic interaction log (the demo's and benchmarks' data).

    python jobs/generate_sample.py --conf conf/local.yml [--set sample.n_events=2000000]

Deterministic: the same `sample.*` settings give the same file.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from recsys_spark.cli import job_parser, parse_job_args
from recsys_spark.config import SampleConfig
from recsys_spark.logs import get_logger
from recsys_spark.sample import SampleSpec, write_sample

log = get_logger("jobs.generate_sample")


def run(cfg: SampleConfig) -> Path:
    """Generate the log described by `cfg` and write it to `cfg.path`; no Spark needed."""
    spec = SampleSpec(
        n_events=cfg.n_events,
        n_users=cfg.n_users,
        n_items=cfg.n_items,
        n_groups=cfg.n_groups,
        start_date=cfg.start_date,
        days=cfg.days,
        seed=cfg.seed,
        duplicate_fraction=cfg.duplicate_fraction,
        bad_row_fraction=cfg.bad_row_fraction,
        timestamp_format=cfg.timestamp_format,
    )
    start = time.perf_counter()
    path = write_sample(spec, cfg.path, fmt=cfg.format)
    log.info(
        "wrote %d events (%d users, %d items) to %s in %.1f s",
        cfg.n_events,
        cfg.n_users,
        cfg.n_items,
        path,
        time.perf_counter() - start,
    )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = parse_job_args(job_parser(__doc__.splitlines()[0]), argv)
    try:
        run(cfg.sample)
    except ValueError as exc:
        log.error("sample config: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
