"""Ingest after a crash or a batch that does not add up: reruns converge, nothing is
counted twice."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    killed_step,
    lake_snapshot,
    write_log,
)


@pytest.fixture(scope="module")
def clean_run(spark, tmp_path_factory):
    """The source of the crash tests and the lake an uninterrupted run makes of it."""
    root = tmp_path_factory.mktemp("clean")
    source = write_log(root / "logs" / "day1.csv", GOOD + GOOD[:2] + list(BAD))
    clean = StorageConfig(root=str(root / "lake"))
    run_ingest(spark, corpus_config(source), clean, now=NOW)
    snapshot = lake_snapshot(spark, clean)
    del snapshot["version"]
    return source, snapshot


@pytest.mark.parametrize("crash_in", ["_write_interactions", "write_logs"])
def test_rerun_after_a_crash_converges_to_the_tables_of_a_clean_run(
    spark, tmp_path, monkeypatch, crash_in, clean_run
):
    from recsys_spark.ingest import runner, write

    source, want = clean_run
    cfg = corpus_config(source)
    crashed = StorageConfig(root=str(tmp_path / "crashed"))

    with monkeypatch.context() as patch:
        patch.setattr(write if crash_in == "_write_interactions" else runner, crash_in, killed_step)
        with pytest.raises(RuntimeError, match="killed"):
            run_ingest(spark, cfg, crashed, now=NOW)
    report = run_ingest(spark, cfg, crashed, now=NOW)
    # the crash before the logs left the events stored: the rerun finds them present
    stored_before = 6 if crash_in == "write_logs" else 0
    assert (report.rows_inserted, report.duplicates_existing) == (6 - stored_before, stored_before)
    assert report.reconciled
    got = lake_snapshot(spark, crashed)
    del got["version"]
    assert got == want


def test_a_batch_that_does_not_reconcile_is_taken_again_by_the_next_run(
    spark, tmp_path, monkeypatch
):
    from dataclasses import replace

    from recsys_spark.errors import ReconciliationError
    from recsys_spark.ingest import runner

    cfg = corpus_config(write_log(tmp_path / "logs" / "day1.csv", GOOD))
    storage = StorageConfig(root=str(tmp_path / "lake"))
    write_batch = runner.write_batch

    def short(*args, **kwargs):
        return replace(write_batch(*args, **kwargs), problems=("1 event lost on the way",))

    with monkeypatch.context() as patch:
        patch.setattr(runner, "write_batch", short)
        with pytest.raises(ReconciliationError, match="1 event lost on the way"):
            run_ingest(spark, cfg, storage, now=NOW)
    log = lambda: spark.read.format("delta").load(storage.table(tables.INGEST_LOG))  # noqa: E731
    assert [r["status"] for r in log().collect()] == ["unreconciled"]
    again = run_ingest(spark, cfg, storage, now=NOW)
    assert (again.files_skipped, again.rows_inserted, again.duplicates_existing) == (0, 0, 6)
    assert again.reconciled
    assert [r["status"] for r in log().collect()] == ["ingested"]


def test_rerun_after_a_crash_with_a_new_file_beside_quarantines_each_bad_row_once(
    spark, tmp_path, monkeypatch
):
    from recsys_spark.ingest import write

    logs = tmp_path / "it's logs"  # a quote in the path: the condition quotes it
    write_log(logs / "day1.csv", GOOD + list(BAD))
    cfg = corpus_config(logs)
    storage = StorageConfig(root=str(tmp_path / "lake"))

    with monkeypatch.context() as patch:  # killed after the quarantine write
        patch.setattr(write, "_write_interactions", killed_step)
        with pytest.raises(RuntimeError, match="killed"):
            run_ingest(spark, cfg, storage, now=NOW)
    write_log(logs / "day3.csv", DAY3)  # the next night's file arrives before the rerun
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert report.reconciled and report.rows_quarantined == len(BAD)
    quarantine = spark.read.format("delta").load(storage.table(tables.QUARANTINE))
    assert quarantine.count() == len(BAD)
    assert [r[0] for r in quarantine.select(C.BATCH_ID).distinct().collect()] == [report.batch_id]


def test_same_events_under_another_file_name_add_nothing(spark, tmp_path):
    source = tmp_path / "logs"
    write_log(source / "a.csv", GOOD)
    cfg = corpus_config(source)
    storage = StorageConfig(root=str(tmp_path / "lake"))
    run_ingest(spark, cfg, storage, now=NOW)
    write_log(source / "b.csv", GOOD[::-1])
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.duplicates_existing) == (6, 0, 6)
    assert report.reconciled and lake_snapshot(spark, storage)["interactions"] == 6


def test_file_names_that_need_uri_escaping_are_counted_per_file(spark, tmp_path):
    source = tmp_path / "raw logs"
    write_log(source / "day #1.csv", GOOD[:3] + list(BAD)[:1])
    write_log(source / "day 100%.csv", GOOD[3:])
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, corpus_config(source), storage, now=NOW)
    assert report.reconciled and (report.rows_read, report.rows_inserted) == (7, 6)
    per_file = {Path(o.file.path).name: (o.rows_read, o.rows_quarantined) for o in report.files}
    assert per_file == {"day #1.csv": (4, 1), "day 100%.csv": (3, 0)}
    read = lambda name: spark.read.format("delta").load(storage.table(name))  # noqa: E731
    listed = {o.file.path for o in report.files}
    stored = {r[0] for r in read(tables.INTERACTIONS).select(C.SOURCE_FILE).distinct().collect()}
    assert stored == listed
    [quarantined] = read(tables.QUARANTINE).collect()
    assert Path(quarantined[C.SOURCE_FILE]).name == "day #1.csv"


def test_batch_of_only_invalid_rows_writes_quarantine_only(spark, tmp_path):
    path = write_log(tmp_path / "bad.csv", list(BAD))
    storage = StorageConfig(root=str(tmp_path / "lake"))
    cfg = corpus_config(path)
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (11, 0, 11)
    assert report.reconciled
    refreshed = run_ingest(spark, cfg, storage, full_refresh=True, now=NOW)
    assert (refreshed.rows_inserted, refreshed.rows_quarantined) == (0, 11)
    assert refreshed.reconciled
