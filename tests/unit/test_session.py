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


def test_task_failure_logs_are_silenced_only_inside_the_block(spark):
    from recsys_spark.session import TASK_FAILURE_LOGGERS, quiet_task_failures

    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    level = lambda: str(log4j.LogManager.getLogger(TASK_FAILURE_LOGGERS[0]).getLevel())  # noqa: E731
    before = level()
    with quiet_task_failures(spark):
        assert level() == "OFF"
    assert level() == before != "OFF"


def test_a_local_session_gets_the_configured_jvm_options_and_codegen_switch(spark):
    # conftest's session: codegen=False and the default java_options (the throughput GC).
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"
    assert spark.conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    jvm = spark.sparkContext._jvm
    beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    assert sorted(str(b.getName()) for b in beans) == ["PS MarkSweep", "PS Scavenge"]


def test_local_tables_are_written_without_checksum_side_files(spark, tmp_path):
    # The raw local file system: a Delta write leaves its data and log files and no `.crc`
    # beside them (the checksummed default writes one per file, each behind a `chmod`).
    path = str(tmp_path / "table")
    spark.range(3).write.format("delta").save(path)
    spark.range(2).write.format("delta").mode("append").save(path)
    names = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert any(n.endswith(".parquet") for n in names) and "00000000000000000001.json" in names
    assert [n for n in names if n.endswith(".crc") and n.startswith(".")] == []
    assert spark.read.format("delta").load(path).count() == 5
