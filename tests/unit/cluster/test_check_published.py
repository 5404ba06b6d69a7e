"""The standalone-cluster helpers: the published-tables check and the scripts' guards.

Starting a cluster takes a minute of two JVMs, so no test does: `make cluster-ci` runs the
whole path. These tests cover the check's logic on tiny Delta tables and the scripts'
argument handling, which need no cluster.
"""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from cluster.check_published import EXPECTED, TableCheck, check_tables
from recsys_spark import tables
from recsys_spark.config import StorageConfig

PROJECT = Path(__file__).resolve().parents[3]
SCHEMA = T.StructType(
    [T.StructField("user_id", T.StringType()), T.StructField("run_date", T.DateType())]
)


def _write(spark: SparkSession, storage: StorageConfig, name: str, rows: list[tuple]) -> None:
    spark.createDataFrame(rows, SCHEMA).write.format("delta").save(storage.table(name))


def test_check_tables_counts_rows_and_flags_missing_and_empty(
    spark: SparkSession, tmp_path: Path
) -> None:
    storage = StorageConfig(root=str(tmp_path / "lake"))
    _write(spark, storage, "full", [("u1", date(2026, 4, 29)), ("u2", date(2026, 4, 30))])
    _write(spark, storage, "empty", [])
    checks = [
        TableCheck("full"),
        TableCheck("full", where="run_date = DATE'2026-04-30'"),
        TableCheck("full", where="run_date = DATE'2026-05-01'"),
        TableCheck("full", min_rows=3),
        TableCheck("empty"),
        TableCheck("absent"),
    ]

    results = check_tables(spark, storage, checks)

    assert [(r.rows, r.ok) for r in results] == [
        (2, True),
        (1, True),
        (0, False),
        (2, False),
        (0, False),
        (None, False),
    ]
    assert results[0].location == storage.table("full")
    assert results[5].describe().startswith("FAIL absent: no Delta table at ")


def test_nightly_profile_checks_the_nights_partition() -> None:
    checks = EXPECTED["nightly"](date(2026, 4, 30))

    by_table = {c.table: c.where for c in checks}
    assert by_table[tables.PUBLISHED_RECOMMENDATIONS] == "run_date = DATE'2026-04-30'"
    assert by_table[tables.PUBLISH_LOG] == "run_date = DATE'2026-04-30'"
    assert by_table[tables.RECOMMENDATIONS_LATEST] is None
    assert {c.table for c in EXPECTED["ingest"](None)} <= set(by_table)
    with pytest.raises(ValueError, match="--run-date"):
        EXPECTED["nightly"](None)


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=PROJECT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


def test_cluster_script_rejects_unknown_command() -> None:
    result = _run(["bash", "cluster/cluster.sh", "start"])

    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_cluster_down_without_a_cluster_says_so(tmp_path: Path) -> None:
    (tmp_path / "worker-1.pid").write_text("999999999\n")  # stale: no such process

    result = _run(["bash", "cluster/cluster.sh", "down"], CLUSTER_DIR=str(tmp_path))

    assert result.returncode == 0
    assert "nothing running" in result.stdout
    assert not (tmp_path / "worker-1.pid").exists()


def test_ci_script_refuses_to_empty_a_folder_outside_data(tmp_path: Path) -> None:
    result = _run(["bash", "cluster/ci.sh"], CI_DIR=str(tmp_path))

    assert result.returncode == 2
    assert "CI_DIR must be a folder under" in result.stderr
    assert tmp_path.exists()
