"""The one SparkSession factory.

Outside spark-submit (plain `python jobs/x.py`, notebooks, tests) it starts a local
session: master and driver memory from config, Delta's jars from the project's `jars/`
folder (filled once by `make jars` from Maven Central, then used offline). Under
spark-submit the JVM is already running: the master, memory and jars come from the
spark-submit command line, and this code only adds the SQL settings.

Run `python -m recsys_spark.session` to print the comma-separated jar list for
`spark-submit --jars`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from recsys_spark.config import SparkConfig
from recsys_spark.errors import SparkSetupError

JARS_DIR = Path(
    os.environ.get("RECSYS_SPARK_JARS", Path(__file__).resolve().parent.parent / "jars")
)
# Used only when jars/ is empty (for example a notebook outside the checkout): Spark then
# resolves the same artifact through Ivy. Keep in step with jars/pom.xml.
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"


def delta_jars(jars_dir: Path = JARS_DIR) -> list[str]:
    """The jar files in `jars_dir`, sorted; empty when `make jars` has not run."""
    return sorted(str(p) for p in jars_dir.glob("*.jar")) if jars_dir.is_dir() else []


def under_spark_submit() -> bool:
    """True when spark-submit launched this Python process (its JVM is already running)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(cfg: SparkConfig | None = None) -> SparkSession:
    """Return the SparkSession for a job, creating it with Delta Lake configured.

    Parameters
    ----------
    cfg
        Spark settings; defaults to `SparkConfig()`.

    Returns
    -------
    SparkSession
        UTC session time zone, Delta SQL extension and catalog, `cfg.shuffle_partitions`
        shuffle partitions, interpreted queries when `cfg.codegen` is false, and every
        `cfg.conf` entry; a JVM it starts (outside spark-submit) gets `cfg.driver_memory`
        and `cfg.java_options`.
    """
    cfg = cfg or SparkConfig()
    builder = SparkSession.builder.appName(cfg.app_name)
    settings: dict[str, str] = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        # Progress bars interleave with our own stage logging; jobs log progress themselves.
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": str(cfg.ui_enabled).lower(),
        # Small Delta logs in local runs: a 50-partition state reconstruction is pure overhead.
        "spark.databricks.delta.snapshotPartitions": str(max(cfg.shuffle_partitions, 1)),
        **LOCAL_FILES,
    }
    if not cfg.codegen:
        # Interpreted queries: no Java source generated, compiled and JIT-compiled per query
        # (factoryMode is Spark's switch for expressions, as wholeStage is for operators).
        settings["spark.sql.codegen.wholeStage"] = "false"
        settings["spark.sql.codegen.factoryMode"] = "NO_CODEGEN"
    if not under_spark_submit():
        # Python workers (mapInPandas, applyInPandas) must run this interpreter, the one
        # with numpy and pandas, not whatever `python3` is first on the PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(cfg.master)
        settings["spark.driver.memory"] = cfg.driver_memory
        if cfg.java_options:
            settings["spark.driver.extraJavaOptions"] = cfg.java_options
        settings.update(_jar_settings())
    settings.update(cfg.conf)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.log_level)
    _quiet_deliberate_warnings(spark)
    return spark


# Local paths (`file:`) through Hadoop's raw local file system, without its `.crc` side
# files. The checksummed default writes a `.crc` beside every data and log file, and
# without Hadoop's native library (pyspark ships none) sets each file's permissions and
# follows each rename by starting a `chmod` or `readlink` process: about 170 processes
# for one small ingest batch (seven Delta commits), 3 ms each. Raw: half as many, and a
# warm batch 8-10% faster (BENCHMARKS.md, test tiers). Delta keeps its own checksums of
# the log; Parquet checks its pages. Other schemes (hdfs:, s3a:, abfss:) are unaffected.
LOCAL_FILES = {
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.RawLocalFs",
}


# Loggers whose warnings describe what the code does on purpose. WindowExec warns of every
# window without a partition: the popularity ranking of items and the numbering of new
# ids are deliberate one-partition windows over small frames (hundreds of lines a night).
QUIET_LOGGERS = ("org.apache.spark.sql.execution.window.WindowExec",)


# Loggers that print a task's failure with its whole stack (about 25 KB for one broken
# file): silenced while ingest reads files that may be broken on purpose, since it
# reports each unreadable file itself, in one line.
TASK_FAILURE_LOGGERS = (
    "org.apache.spark.executor.Executor",
    "org.apache.spark.scheduler.TaskSetManager",
    "org.apache.spark.storage.BlockManager",
)


def spark_jobs_started(spark: SparkSession) -> int:
    """How many Spark jobs the session's context has started: the newest job id + 1.

    Job ids are numbered in order; Spark keeps the newest ones (`spark.ui.retainedJobs`),
    so the difference of two calls counts the jobs between them. Jobs run in a job group
    are not seen (this project sets none).
    """
    ids = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    return max(ids) + 1 if ids else 0


@contextmanager
def quiet_task_failures(spark: SparkSession) -> Iterator[None]:
    """Silence Spark's task-failure logs for the block; restore their levels after it."""
    jvm = spark.sparkContext._jvm
    log4j = jvm.org.apache.logging.log4j
    previous = {name: log4j.LogManager.getLogger(name).getLevel() for name in TASK_FAILURE_LOGGERS}
    for name in TASK_FAILURE_LOGGERS:
        log4j.core.config.Configurator.setLevel(name, log4j.Level.OFF)
    try:
        yield
    finally:
        for name, level in previous.items():
            log4j.core.config.Configurator.setLevel(name, level)


def _quiet_deliberate_warnings(spark: SparkSession) -> None:
    jvm = spark.sparkContext._jvm
    level = jvm.org.apache.logging.log4j.Level.ERROR
    for name in QUIET_LOGGERS:
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)


def _jar_settings() -> dict[str, str]:
    jars = delta_jars()
    if jars:
        return {"spark.jars": ",".join(jars)}
    if os.environ.get("RECSYS_SPARK_ALLOW_IVY") == "1":
        ivy = Path.home() / ".cache" / "recsys-spark" / "ivy"
        return {"spark.jars.packages": DELTA_PACKAGE, "spark.jars.ivy": str(ivy)}
    raise SparkSetupError(
        f"no Delta jars in {JARS_DIR}: run `make jars` (needs Maven), "
        "or set RECSYS_SPARK_ALLOW_IVY=1 to let Spark resolve them through Ivy"
    )


if __name__ == "__main__":
    jars = delta_jars()
    if not jars:
        sys.exit(f"no jars in {JARS_DIR}: run `make jars` first")
    print(",".join(jars))
