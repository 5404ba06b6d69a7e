"""End-to-end ingest into Delta in a temporary folder: the bad-input corpus, reruns,
incremental batches, unreadable files, other formats, full refresh."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import ColumnMapping, IngestConfig, StorageConfig, load_config
from recsys_spark.ingest.runner import run_ingest

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HEADER = "user_id,item_id,event_type,timestamp,value\n"
GOOD = [
    "u1,i1,view,2026-01-05T10:00:00Z,12.5",
    "u1,i2,purchase,2026-01-05T10:05:00Z,2",
    "u2,i1,click,1767607200,",
    "u2,i3,view,1767607200000,3",
    "u3,i2,add_to_cart,2026-01-06T00:00:00Z,1",
    "u3,i3,view,2026-02-01T08:00:00Z,",
]
BAD = {
    ",i1,view,2026-01-05T10:00:00Z,": "missing_user_id",
    "u4,,view,2026-01-05T10:00:00Z,": "missing_item_id",
    "u4,i4,view,,": "missing_timestamp",
    "u4,i4,view,not-a-time,": "unparseable_timestamp",
    "u4,i4,view,1970-01-01T00:00:00Z,": "timestamp_out_of_range",
    "u4,i4,teleport,2026-01-05T10:00:00Z,": "unknown_event_type",
    "u4,i4,view,2026-01-05T10:00:00Z,lots": "non_numeric_value",
    "u4,i4,view,2026-01-05T10:00:00Z,-1": "negative_value",
    "u4,i4,view,2026-01-05T10:00:00Z,NaN": "non_finite_value",
    "u4,i4": "malformed_row",
    "u4,i4,view,2026-01-05T10:00:00Z,1,extra": "malformed_row",
}


DAY3 = ["u1,i9,view,2026-03-01T09:00:00Z,", "u9,i1,click,2026-03-02T09:00:00Z,1"]


def _write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def _killed(*args, **kwargs):
    """Stands in for a step of the job: the run dies there."""
    raise RuntimeError("killed")


def _snapshot(spark, storage: StorageConfig) -> dict:
    read = lambda name: spark.read.format("delta").load(storage.table(name))  # noqa: E731
    return {
        "interactions": read(tables.INTERACTIONS).count(),
        "version": DeltaTable.forPath(spark, storage.table(tables.INTERACTIONS))
        .history(1)
        .first()["version"],
        "users": {
            r[0]: r[1] for r in read(tables.USER_INDEX).select(C.USER_ID, C.USER_IDX).collect()
        },
        "items": {
            r[0]: r[1] for r in read(tables.ITEM_INDEX).select(C.ITEM_ID, C.ITEM_IDX).collect()
        },
        "quarantine": sorted(
            (r[0], r[1]) for r in read(tables.QUARANTINE).select(C.REASON, C.RAW).collect()
        ),
    }


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    """Run the ingest steps once, in order, and keep what each step returned and left."""
    root = tmp_path_factory.mktemp("ingest")
    source = root / "logs"
    cfg = IngestConfig(source=str(source))
    storage = StorageConfig(root=str(root / "lake"))
    _write(source / "day1.csv", GOOD + GOOD[:2] + list(BAD))
    steps = {}
    steps["first"] = (run_ingest(spark, cfg, storage, now=NOW), _snapshot(spark, storage))
    steps["rerun"] = (run_ingest(spark, cfg, storage, now=NOW), _snapshot(spark, storage))
    # day 2: one event already ingested, one new user with a new item sorting first
    _write(source / "day2.csv", [GOOD[0], "u0,i0,view,2026-01-07T00:00:00Z,"])
    steps["day2"] = (run_ingest(spark, cfg, storage, now=NOW), _snapshot(spark, storage))
    # day 3: only dates with nothing stored yet, one event twice
    _write(source / "day3.csv", DAY3 + DAY3[:1])
    steps["day3"] = (run_ingest(spark, cfg, storage, now=NOW), _snapshot(spark, storage))
    steps["refresh"] = (
        run_ingest(spark, cfg, storage, full_refresh=True, now=NOW),
        _snapshot(spark, storage),
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


def test_interactions_are_partitioned_by_event_date_with_typed_columns(spark, history):
    storage = history[1]
    detail = DeltaTable.forPath(spark, storage.table(tables.INTERACTIONS)).detail().first()
    assert detail["partitionColumns"] == [C.EVENT_DATE]
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


@pytest.mark.parametrize("crash_in", ["_write_interactions", "_write_logs"])
def test_rerun_after_a_crash_converges_to_the_tables_of_a_clean_run(
    spark, tmp_path, monkeypatch, crash_in
):
    from recsys_spark.ingest import runner, write

    source = _write(tmp_path / "logs" / "day1.csv", GOOD + GOOD[:2] + list(BAD))
    cfg = IngestConfig(source=str(source))
    clean = StorageConfig(root=str(tmp_path / "clean"))
    run_ingest(spark, cfg, clean, now=NOW)
    crashed = StorageConfig(root=str(tmp_path / "crashed"))

    with monkeypatch.context() as patch:
        patch.setattr(write if crash_in == "_write_interactions" else runner, crash_in, _killed)
        with pytest.raises(RuntimeError, match="killed"):
            run_ingest(spark, cfg, crashed, now=NOW)
    report = run_ingest(spark, cfg, crashed, now=NOW)
    # the crash before the logs left the events stored: the rerun finds them present
    stored_before = 6 if crash_in == "_write_logs" else 0
    assert (report.rows_inserted, report.duplicates_existing) == (6 - stored_before, stored_before)
    assert report.reconciled
    got, want = _snapshot(spark, crashed), _snapshot(spark, clean)
    del got["version"], want["version"]
    assert got == want


def test_a_batch_that_does_not_reconcile_is_taken_again_by_the_next_run(
    spark, tmp_path, monkeypatch
):
    from dataclasses import replace

    from recsys_spark.errors import ReconciliationError
    from recsys_spark.ingest import runner

    cfg = IngestConfig(source=str(_write(tmp_path / "logs" / "day1.csv", GOOD)))
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
    _write(logs / "day1.csv", GOOD + list(BAD))
    cfg = IngestConfig(source=str(logs))
    storage = StorageConfig(root=str(tmp_path / "lake"))

    with monkeypatch.context() as patch:  # killed after the quarantine write
        patch.setattr(write, "_write_interactions", _killed)
        with pytest.raises(RuntimeError, match="killed"):
            run_ingest(spark, cfg, storage, now=NOW)
    _write(logs / "day3.csv", DAY3)  # the next night's file arrives before the rerun
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert report.reconciled and report.rows_quarantined == len(BAD)
    quarantine = spark.read.format("delta").load(storage.table(tables.QUARANTINE))
    assert quarantine.count() == len(BAD)
    assert [r[0] for r in quarantine.select(C.BATCH_ID).distinct().collect()] == [report.batch_id]


def test_same_events_under_another_file_name_add_nothing(spark, tmp_path):
    source = tmp_path / "logs"
    _write(source / "a.csv", GOOD)
    cfg = IngestConfig(source=str(source))
    storage = StorageConfig(root=str(tmp_path / "lake"))
    run_ingest(spark, cfg, storage, now=NOW)
    _write(source / "b.csv", GOOD[::-1])
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.duplicates_existing) == (6, 0, 6)
    assert report.reconciled and _snapshot(spark, storage)["interactions"] == 6


def test_file_names_that_need_uri_escaping_are_counted_per_file(spark, tmp_path):
    source = tmp_path / "raw logs"
    _write(source / "day #1.csv", GOOD[:3] + list(BAD)[:1])
    _write(source / "day 100%.csv", GOOD[3:])
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, IngestConfig(source=str(source)), storage, now=NOW)
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
    path = _write(tmp_path / "bad.csv", list(BAD))
    storage = StorageConfig(root=str(tmp_path / "lake"))
    cfg = IngestConfig(source=str(path))
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (11, 0, 11)
    assert report.reconciled
    refreshed = run_ingest(spark, cfg, storage, full_refresh=True, now=NOW)
    assert (refreshed.rows_inserted, refreshed.rows_quarantined) == (0, 11)
    assert refreshed.reconciled


def test_deduplicate_keeps_one_row_per_key_from_the_first_file_by_name(spark):
    from chispa import assert_df_equality

    from recsys_spark.ingest.dedup import deduplicate_events, drop_repeats, first_copies

    schema = "event_id string, event_date date, user_id string, source_file string, _row_id long"
    d1, d2 = datetime(2026, 1, 5).date(), datetime(2026, 1, 6).date()
    events = spark.createDataFrame(
        [
            ("k1", d1, "u1", "b.csv", 0),
            ("k1", d1, "u1", "a.csv", 5),
            ("k1", d1, "u1", "a.csv", 3),
            ("k2", d1, "u2", "b.csv", 1),
            ("k3", d2, None, "c.csv", 2),
            ("k3", d2, None, "c.csv", 4),
            ("k4", d2, "u4", "c.csv", 6),
            ("k4", d1, "u4", "c.csv", 7),  # same id on another date: another key
        ],
        schema,
    )
    expected = spark.createDataFrame(
        [
            ("k1", d1, "u1", "a.csv", 3),
            ("k2", d1, "u2", "b.csv", 1),
            ("k3", d2, None, "c.csv", 2),
            ("k4", d2, "u4", "c.csv", 6),
            ("k4", d1, "u4", "c.csv", 7),
        ],
        schema,
    )
    # rows stay in their input partitions, so their order is not part of the contract
    assert_df_equality(deduplicate_events(events), expected, ignore_row_order=True)
    assert deduplicate_events(events.limit(0)).count() == 0
    # unique keys whose hashes collide with repeated ones keep their single row
    every_hash = events.select(F.xxhash64(C.EVENT_ID).alias("_hash")).distinct()
    first = first_copies(events, every_hash)
    assert_df_equality(drop_repeats(events, first), expected, ignore_row_order=True)


def test_unreadable_file_is_recorded_and_the_others_still_load(spark, tmp_path):
    source = tmp_path / "parquet"
    source.mkdir()
    good = spark.createDataFrame(
        [("u1", "i1", "view", 1767607200, 1.0), ("u2", "i1", "click", 1767607300, None)],
        "user_id string, item_id string, event_type string, timestamp long, value double",
    )
    good.coalesce(1).write.parquet(str(source / "good"))
    (source / "broken.parquet").write_bytes(b"PAR1 this is not parquet at all")
    cfg = IngestConfig(source=str(source), format="parquet")
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert (report.files_failed, report.rows_inserted, report.rows_read) == (1, 2, 2)
    assert report.reconciled
    quarantine = spark.read.format("delta").load(storage.table(tables.QUARANTINE)).collect()
    assert [(Path(r[C.SOURCE_FILE]).name, r[C.REASON]) for r in quarantine] == [
        ("broken.parquet", "unreadable_file")
    ]
    assert "not a Parquet file" in quarantine[0][C.RAW]  # why, not only which call failed
    # the failed file is retried on the next run, the good one is not
    again = run_ingest(spark, cfg, storage, now=NOW)
    assert (again.files_skipped, again.files_failed) == (1, 1)


def test_csv_file_whose_header_disagrees_with_the_first_file_fails_alone(spark, tmp_path):
    # Every mapped column is there, in another order: read with the first file's
    # columns, its values would land in the wrong fields.
    _write(tmp_path / "logs" / "a.csv", GOOD[:2])
    reordered = "item_id,user_id,event_type,timestamp,value\n"
    _write(tmp_path / "logs" / "b.csv", ["i7,u7,view,2026-01-05T10:00:00Z,"], header=reordered)
    cfg = IngestConfig(source=str(tmp_path / "logs"))
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert [(Path(o.file.path).name, o.status) for o in report.files] == [
        ("a.csv", "ingested"),
        ("b.csv", "failed"),
    ]
    assert (report.rows_read, report.rows_inserted, report.files_failed) == (2, 2, 1)
    assert report.reconciled
    assert "CSV header" in next(o.error for o in report.files if o.status == "failed")


def test_parquet_files_that_type_a_column_differently_load_together(spark, tmp_path):
    # Each file reads alone, not together: the fallback reads them one by one.
    source = tmp_path / "parquet"
    typed = "item_id string, event_type string, timestamp long, value double"
    for name, user, user_type in (("a", "42", "string"), ("b", 42, "long")):
        spark.createDataFrame(
            [(user, "i1", "view", 1767607200 + ord(name), 1.0)], f"user_id {user_type}, {typed}"
        ).coalesce(1).write.parquet(str(source / name))
    (source / "b" / "_temporary" / "0").mkdir(parents=True)  # an upstream write in progress
    (source / "b" / "_temporary" / "0" / "part-0.parquet").write_bytes(b"PAR1 half written")
    cfg = IngestConfig(source=str(source), format="parquet")
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert (len(report.files), report.files_failed, report.rows_inserted) == (2, 0, 2)
    assert report.reconciled and report.new_users == 1  # 42 is one user, typed either way


def test_parquet_ids_typed_as_floats_read_as_whole_numbers(spark, tmp_path):
    # pandas writes an integer id column with gaps as float64: 42.0 is user 42.
    from decimal import Decimal

    source = tmp_path / "parquet"
    rows = [
        (42.0, Decimal("17.00"), 1767607200),
        (7.0, Decimal("17.00"), 1767607300),
        (float("nan"), Decimal("18.00"), 1767607400),
        (42.5, Decimal("18.00"), 1767607500),
        (42.0, Decimal("18.50"), 1767607600),
    ]
    spark.createDataFrame(rows, "user_id double, item_id decimal(12,2), timestamp long").coalesce(
        1
    ).write.parquet(str(source))
    cfg = IngestConfig(
        source=str(source),
        format="parquet",
        columns=ColumnMapping(event_type="", value=""),
        default_event_type="view",
    )
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, cfg, storage, now=NOW)
    assert (report.rows_inserted, report.rows_quarantined) == (2, 3) and report.reconciled
    read = lambda name: spark.read.format("delta").load(storage.table(name))  # noqa: E731
    assert sorted((r[C.USER_ID], r[C.ITEM_ID]) for r in read(tables.INTERACTIONS).collect()) == [
        ("42", "17"),
        ("7", "17"),
    ]
    quarantined = sorted(
        (r[C.REASON], json.loads(r[C.RAW])["user_id"], json.loads(r[C.RAW])["item_id"])
        for r in read(tables.QUARANTINE).collect()
    )
    assert quarantined == [  # each value as the file typed it
        ("missing_item_id", "42.0", "18.50"),
        ("missing_user_id", "42.5", "18.00"),
        ("missing_user_id", "NaN", "18.00"),
    ]


def test_json_lines_with_a_broken_line(spark, tmp_path):
    path = tmp_path / "events.json"
    path.write_text(
        '{"user_id": "u1", "item_id": 17, "event_type": "view", '
        '"timestamp": "2026-01-05T10:00:00Z"}\n'
        '{"user_id": "u1", "item_id": \n'
        '{"user_id": "u2", "item_id": "17", "event_type": "click", '
        '"timestamp": 1767607200, "value": 2}\n'
    )
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, IngestConfig(source=str(path), format="json"), storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (3, 2, 1)
    items = spark.read.format("delta").load(storage.table(tables.ITEM_INDEX)).collect()
    assert [r[C.ITEM_ID] for r in items] == ["17"]


def test_empty_file_ingests_nothing_and_reconciles(spark, tmp_path):
    path = _write(tmp_path / "empty.csv", [], header=HEADER.rstrip("\n"))
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, IngestConfig(source=str(path)), storage, now=NOW)
    assert (report.rows_read, report.rows_inserted) == (0, 0) and report.reconciled


def test_movielens_loads_with_a_config_change_only(spark, ml100k_dir, tmp_path):
    conf = Path(__file__).resolve().parents[3] / "conf" / "movielens.yml"
    cfg = load_config(
        conf, [f"ingest.source={ml100k_dir / 'ml-100k.inter'}", f"storage.root={tmp_path}"]
    )
    report = run_ingest(spark, cfg.ingest, cfg.storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (
        100_000,
        100_000,
        0,
    )
    assert (report.new_users, report.new_items) == (943, 1682)


def test_missing_source_is_a_clear_error(spark, tmp_path):
    from recsys_spark.errors import SourceError

    with pytest.raises(SourceError, match="source not found"):
        run_ingest(
            spark, IngestConfig(source=str(tmp_path / "nope")), StorageConfig(root=str(tmp_path))
        )


assert os.sep == "/"  # paths in the expectations above are POSIX


def test_empty_source_folder_is_nothing_new_with_a_warning(spark, tmp_path, caplog):
    (tmp_path / "landing" / "_temporary").mkdir(parents=True)  # only a write in progress
    (tmp_path / "landing" / "_temporary" / "part-0.csv").write_text(HEADER)
    storage = StorageConfig(root=str(tmp_path / "lake"))
    with caplog.at_level("WARNING", logger="recsys_spark.ingest.runner"):
        report = run_ingest(spark, IngestConfig(source=str(tmp_path / "landing")), storage)
    assert (report.batch_id, report.files_seen, report.rows_read) == (None, 0, 0)
    assert "no data files at" in caplog.text
    assert not (tmp_path / "lake").exists()  # no table written
