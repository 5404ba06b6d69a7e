"""The session factory: Delta configured, UTC, and no warnings for deliberate plans."""

from __future__ import annotations

from pyspark.sql import SparkSession

from recsys_spark.session import QUIET_LOGGERS


def test_the_session_is_utc_with_delta_and_quiet_about_deliberate_windows(
    spark: SparkSession,
) -> None:
    # conftest builds the test session with get_spark, as every job does.
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")
    manager = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager
    for name in QUIET_LOGGERS:
        assert str(manager.getLogger(name).getLevel()) == "ERROR"
