"""Successive ingest batches into one lake: the bad-input corpus, reruns, new files,
new dates, a full refresh."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import StorageConfig
from recsys_spark.ingest.runner import run_ingest
from tests.unit.ingest.ingest_corpus import (
    BAD,
    DAY3,
    GOOD,
    NOW,
    corpus_config,
    lake_snapshot,
    write_log,
)


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    """Run the ingest steps once, in order, and keep what each step returned and left."""
    root = tmp_path_factory.mktemp("ingest")
    source = root / "logs"
    cfg = corpus_config(source)
    storage = StorageConfig(root=str(root / "lake"))
    write_log(source / "day1.csv", GOOD + GOOD[:2] + list(BAD))
    steps = {}
    steps["first"] = (run_ingest(spark, cfg, storage, now=NOW), lake_snapshot(spark, storage))
    steps["rerun"] = (run_ingest(spark, cfg, storage, now=NOW), lake_snapshot(spark, storage))
    # day 2: one event already ingested, one new user with a new item sorting first
    write_log(source / "day2.csv", [GOOD[0], "u0,i0,view,2026-01-07T00:00:00Z,"])
    steps["day2"] = (run_ingest(spark, cfg, storage, now=NOW), lake_snapshot(spark, storage))
    # day 3: only dates with nothing stored yet, one event twice
    write_log(source / "day3.csv", DAY3 + DAY3[:1])
    steps["day3"] = (run_ingest(spark, cfg, storage, now=NOW), lake_snapshot(spark, storage))
    steps["refresh"] = (
        run_ingest(spark, cfg, storage, full_refresh=True, now=NOW),
        lake_snapshot(spark, storage),
    )
    return steps, storage


def test_first_batch_reconciles_exactly(history):
    report, _ = history[0]["first"]
    assert (
        report.rows_read,
        report.rows_inserted,
        report.duplicates_in_batch,
        report.duplicates_existing,
        report.rows_quarantined,
    ) == (19, 6, 2, 0, 11)
    assert report.reconciled


def test_every_bad_row_is_quarantined_with_its_reason_and_raw_line(history):
    _, snap = history[0]["first"]
    reasons = sorted(reason for reason, _ in snap["quarantine"])
    assert reasons == sorted(BAD.values())
    raws = {raw for _, raw in snap["quarantine"]}
    assert "u4,i4" in raws and "u4,i4,view,2026-01-05T10:00:00Z,1,extra" in raws


def test_indices_are_dense_and_in_id_order(history):
    _, snap = history[0]["first"]
    assert snap["users"] == {"u1": 0, "u2": 1, "u3": 2}
    assert snap["items"] == {"i1": 0, "i2": 1, "i3": 2}


def test_rerun_skips_ingested_files_and_changes_nothing(history):
    report, snap = history[0]["rerun"]
    assert report.batch_id is None and report.files_skipped == 1
    assert snap == history[0]["first"][1]


def test_new_file_adds_only_new_events_and_never_renumbers(history):
    report, snap = history[0]["day2"]
    assert (report.rows_read, report.rows_inserted, report.duplicates_existing) == (2, 1, 1)
    assert snap["interactions"] == 7
    assert snap["users"] == {"u1": 0, "u2": 1, "u3": 2, "u0": 3}
    assert snap["items"] == {"i1": 0, "i2": 1, "i3": 2, "i0": 3}


def test_file_of_new_dates_is_inserted_and_deduplicated_within_itself(history):
    report, snap = history[0]["day3"]
    assert (
        report.rows_read,
        report.rows_inserted,
        report.duplicates_in_batch,
        report.duplicates_existing,
    ) == (3, 2, 1, 0)
    assert report.reconciled and snap["interactions"] == 9
    assert snap["users"]["u9"] == 4 and snap["items"]["i9"] == 4


def test_full_refresh_rebuilds_the_same_tables_in_one_commit_each(history):
    report, snap = history[0]["refresh"]
    before = history[0]["day3"][1]
    assert report.rows_read == 24 and report.reconciled
    assert snap["interactions"] == before["interactions"]
    assert snap["users"] == before["users"] and snap["items"] == before["items"]
    assert snap["quarantine"] == before["quarantine"]
    assert snap["version"] == before["version"] + 1


def test_interactions_are_clustered_by_event_date_with_typed_columns(spark, history):
    storage = history[1]
    detail = DeltaTable.forPath(spark, storage.table(tables.INTERACTIONS)).detail().first()
    assert (detail["partitionColumns"], detail["clusteringColumns"]) == ([], [C.EVENT_DATE])
    # four batches over five event dates (and a full refresh): a file or two per write,
    # where date partitions made one per date and batch
    assert detail["numFiles"] <= 2
    df = spark.read.format("delta").load(storage.table(tables.INTERACTIONS))
    row = df.filter((F.col(C.USER_ID) == "u2") & (F.col(C.ITEM_ID) == "i3")).first()
    assert (row[C.EVENT_TS], row[C.VALUE], row[C.WEIGHT], row[C.USER_IDX], row[C.ITEM_IDX]) == (
        datetime(2026, 1, 5, 10, 0),
        3.0,
        1.0,
        1,
        2,
    )


def test_ingest_log_records_each_file(spark, history):
    storage = history[1]
    log = spark.read.format("delta").load(storage.table(tables.INGEST_LOG))
    rows = {Path(r["source_file"]).name: r for r in log.collect()}
    assert set(rows) == {"day1.csv", "day2.csv", "day3.csv"}
    assert (rows["day1.csv"]["rows_read"], rows["day1.csv"]["rows_quarantined"]) == (19, 11)
    assert rows["day1.csv"]["status"] == "ingested"


def test_a_date_partitioned_table_of_the_older_layout_takes_appends_and_a_full_refresh_clusters_it(
    spark, tmp_path
):
    source, storage = tmp_path / "logs", StorageConfig(root=str(tmp_path / "lake"))
    cfg = corpus_config(source)
    write_log(source / "day1.csv", GOOD)
    run_ingest(spark, cfg, storage, now=NOW)
    path = storage.table(tables.INTERACTIONS)
    stored = spark.read.format("delta").load(path)
    old = spark.createDataFrame(stored.collect(), stored.schema)
    shutil.rmtree(path.removeprefix("file://"))  # as the older layout wrote it: by date
    old_stats = ",".join((C.EVENT_TS, C.USER_IDX, C.ITEM_IDX, C.BATCH_ID, C.INGESTED_AT))
    old.write.format("delta").partitionBy(C.EVENT_DATE).save(path)
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES "
        f"('delta.dataSkippingStatsColumns' = '{old_stats}')"
    )
    write_log(source / "day3.csv", DAY3)
    appended = run_ingest(spark, cfg, storage, now=NOW)
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert appended.rows_inserted == len(DAY3) and detail["partitionColumns"] == [C.EVENT_DATE]
    rows = sorted(spark.read.format("delta").load(path).select(C.EVENT_ID).collect())

    refreshed = run_ingest(spark, cfg, storage, full_refresh=True, now=NOW)
    detail = DeltaTable.forPath(spark, path).detail().first()
    assert refreshed.reconciled
    assert (detail["partitionColumns"], detail["clusteringColumns"]) == ([], [C.EVENT_DATE])
    assert sorted(spark.read.format("delta").load(path).select(C.EVENT_ID).collect()) == rows
