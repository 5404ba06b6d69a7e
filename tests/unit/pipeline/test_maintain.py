"""Table maintenance: which tables, what OPTIMIZE and VACUUM do to them, the schedule."""

from __future__ import annotations

import os
import time
from datetime import date

import pytest
from delta.tables import DeltaTable

from recsys_spark import tables
from recsys_spark.config import MaintenanceConfig, StorageConfig, load_config
from recsys_spark.errors import ConfigError
from recsys_spark.io import delta
from recsys_spark.pipeline.inputs import pin_version
from recsys_spark.pipeline.maintain import (
    lake_tables,
    last_maintained,
    maintain_lake,
    maintain_table,
    maintenance_due,
)

DAY = date(2026, 3, 1)


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A lake of small appends: interactions (three, clustered), a holdout table (two),
    a night's working table and a reports folder (neither maintained)."""
    root = tmp_path_factory.mktemp("maintain")
    storage = StorageConfig(root=str(root))
    rows = spark.range(300).selectExpr(
        "id", "date_add(date'2026-01-01', cast(id % 60 as int)) AS d"
    )
    interactions = storage.table(tables.INTERACTIONS)
    for part in range(3):
        delta.append(rows.filter(f"id % 3 = {part}").coalesce(1), interactions)
    delta.cluster_by(spark, interactions, ("d",))
    holdout = storage.table(f"{tables.HOLDOUT}/{tables.MODEL_RECOMMENDATIONS}")
    for part in range(2):
        delta.append(rows.filter(f"id % 2 = {part}").coalesce(1), holdout)
    delta.append(rows.coalesce(1), storage.table(f"{tables.NIGHTLY}/run_date=2026-03-01/x"))
    (root / "reports" / "nightly" / "2026-03-01").mkdir(parents=True)
    # Files no version reads (a crashed write's leftovers): one older than the retention,
    # one fresh (perhaps a write in progress).
    folder = interactions.removeprefix("file:")
    for name, age_days in (("part-old-orphan.parquet", 30), ("part-new-orphan.parquet", 0)):
        orphan = os.path.join(folder, name)
        with open(orphan, "wb") as out:
            out.write(b"not read by any version")
        stamp = time.time() - age_days * 86_400
        os.utime(orphan, (stamp, stamp))
    before = delta.read_table(spark, interactions).count()
    first = maintain_lake(spark, storage, MaintenanceConfig(), DAY)
    again = maintain_table(spark, interactions, MaintenanceConfig().retention_hours)
    return storage, before, first, again


def test_every_table_of_the_lake_is_found_but_a_nights_working_tables(spark, lake):
    storage = lake[0]
    assert lake_tables(spark, storage) == [
        f"{tables.HOLDOUT}/{tables.MODEL_RECOMMENDATIONS}",
        tables.INTERACTIONS,
        tables.MAINTENANCE_LOG,
    ]


def test_optimize_compacts_small_files_and_keeps_every_row_and_the_clustering(spark, lake):
    storage, before, first, _ = lake
    done = {t.table: t for t in first}
    assert set(done) == {tables.INTERACTIONS, f"{tables.HOLDOUT}/{tables.MODEL_RECOMMENDATIONS}"}
    events = done[tables.INTERACTIONS]
    assert (events.files_compacted, events.files_written) == (3, 1)
    holdout = done[f"{tables.HOLDOUT}/{tables.MODEL_RECOMMENDATIONS}"]
    assert (holdout.files_compacted, holdout.files_written) == (2, 1)
    assert len(delta.read_table(spark, storage.table(tables.INTERACTIONS)).inputFiles()) == 1
    path = storage.table(tables.INTERACTIONS)
    assert delta.read_table(spark, path).count() == before
    assert delta.clustering_columns(spark, path) == ["d"]


def test_vacuum_deletes_only_what_no_version_within_the_retention_reads(spark, lake):
    storage, before, first, _ = lake
    path = storage.table(tables.INTERACTIONS)
    folder = path.removeprefix("file:")
    assert {t.table: t.files_deleted for t in first}[tables.INTERACTIONS] == 1
    assert not os.path.exists(os.path.join(folder, "part-old-orphan.parquet"))
    assert os.path.exists(os.path.join(folder, "part-new-orphan.parquet"))
    # the files OPTIMIZE replaced stay for the retention: the versions before it still read
    assert delta.read_table(spark, path, version=0).count() == 100


def test_a_second_run_changes_nothing_and_a_run_is_logged(spark, lake):
    storage, _, first, again = lake
    assert (again["files_compacted"], again["files_written"], again["files_deleted"]) == (0, 0, 0)
    log = delta.read_table(spark, storage.table(tables.MAINTENANCE_LOG)).collect()
    assert sorted(r["table"] for r in log) == sorted(t.table for t in first)
    assert {(r["run_date"], r["retention_hours"]) for r in log} == {(DAY, 168)}
    # the second run rewrote nothing; Delta records each VACUUM as VACUUM START / END
    history = DeltaTable.forPath(spark, storage.table(tables.INTERACTIONS)).history()
    operations = [r["operation"] for r in history.collect()]  # newest first
    assert operations.count("OPTIMIZE") == 1
    assert set(operations[: operations.index("OPTIMIZE")]) <= {"VACUUM START", "VACUUM END"}


def test_a_lake_never_maintained_counts_from_its_first_night(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path))
    assert last_maintained(spark, storage) is None
    pin_version(spark, storage, date(2026, 2, 10), 3, "run-a")
    pin_version(spark, storage, date(2026, 2, 11), 4, "run-b")
    assert last_maintained(spark, storage) == date(2026, 2, 10)


def test_maintenance_is_due_every_n_days_and_never_for_an_earlier_night():
    assert maintenance_due(None, DAY, 7)
    assert not maintenance_due(DAY, date(2026, 3, 7), 7)
    assert maintenance_due(DAY, date(2026, 3, 8), 7)
    assert not maintenance_due(DAY, date(2026, 2, 1), 7)  # a backfill of past nights
    assert not maintenance_due(None, DAY, 0)


def test_a_retention_below_deltas_safety_interval_is_refused():
    with pytest.raises(ConfigError, match="maintenance.retention_hours must be at least 168"):
        load_config(None, ["maintenance.retention_hours=24"])
    assert load_config(None, ["maintenance.retention_hours=336"]).maintenance.retention_hours == 336
