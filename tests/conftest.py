"""One Spark session for the whole test run: local[2], 2 shuffle partitions, UTC, no UI.

Jobs' `main()` functions, called by tests, build their session from a config with
`get_spark`, which returns this one and applies the config's settings to it (4 shuffle
partitions, 4 Delta snapshot partitions, WARN): after each test the session's settings
are put back, so that no test runs with what an earlier one left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from recsys_spark.config import SparkConfig
from recsys_spark.session import get_spark

SHARED = Path(__file__).resolve().parents[2] / "shared"
ML100K = Path(os.environ.get("RECSYS_ML100K", SHARED / "datasets" / "ml-100k"))


LOG_LEVEL = "ERROR"
# The session's runtime settings as the fixture made them; empty until it is created.
_SETTINGS: dict[str, str] = {}


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    warehouse = tmp_path_factory.mktemp("warehouse")
    cfg = SparkConfig(
        app_name="recsys-spark-tests",
        master="local[2]",
        driver_memory="4g",  # a long session: the broadcasts of ~220 tests add up
        shuffle_partitions=2,
        log_level=LOG_LEVEL,
        ui_enabled=False,
        conf={
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.default.parallelism": "2",
            # Tiny tables: skip Delta's per-write stats collection overheads where harmless.
            "spark.databricks.delta.snapshotPartitions": "1",
        },
        # Tests run thousands of query shapes over a few rows each: compiling Java code
        # for every one costs more than interpreting it (measured: an ingest batch
        # about 25% faster).
        codegen=False,
    )
    session = get_spark(cfg)
    _SETTINGS.update(session.conf.getAll)
    yield session
    _SETTINGS.clear()
    session.stop()


@pytest.fixture(autouse=True)
def _spark_settings_restored() -> Iterator[None]:
    """Put back the test session's settings that a test changed, and drop those it added."""
    yield
    session = SparkSession.getActiveSession()
    if session is None or not _SETTINGS:
        return
    now = session.conf.getAll
    changed = {k: v for k, v in _SETTINGS.items() if now.get(k) != v}
    added = now.keys() - _SETTINGS.keys()
    # Only settings a test could set are found changed; `isModifiable` knows Spark's own
    # SQL settings, not Delta's, so it cannot be the filter.
    for key, value in changed.items():
        session.conf.set(key, value)
    for key in added:
        session.conf.unset(key)
    session.sparkContext.setLogLevel(LOG_LEVEL)


@pytest.fixture
def ml100k_dir() -> Path:
    if not (ML100K / "ml-100k.inter").is_file():
        pytest.skip(f"MovieLens-100K not found at {ML100K} (set RECSYS_ML100K to its folder)")
    return ML100K


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """RECSYS_TEST_ORDER=reverse runs every file's tests backwards: a check that no test
    depends on another having run first (module fixtures are still shared)."""
    if os.environ.get("RECSYS_TEST_ORDER") == "reverse":
        items.reverse()
