"""Logging set-up and stage timing shared by the jobs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_logger(name: str) -> logging.Logger:
    """A logger under the `recsys_spark` hierarchy, configured once to log to stderr."""
    root = logging.getLogger("recsys_spark")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    return logging.getLogger(
        f"recsys_spark.{name}" if not name.startswith("recsys_spark") else name
    )


@contextmanager
def stage(log: logging.Logger, name: str) -> Iterator[None]:
    """Log the start, end and duration of a stage (and its failure, then re-raise)."""
    start = time.perf_counter()
    log.info("%s: start", name)
    try:
        yield
    except BaseException:
        log.error("%s: failed after %.1f s", name, time.perf_counter() - start)
        raise
    log.info("%s: done in %.1f s", name, time.perf_counter() - start)
