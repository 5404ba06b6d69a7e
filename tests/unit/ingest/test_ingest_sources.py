"""What the ingest reads: deduplication, unreadable and disagreeing files, Parquet and
JSON inputs, MovieLens with config only, missing and empty sources."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import ColumnMapping, StorageConfig, load_config
from recsys_spark.ingest.runner import run_ingest
from tests.unit.ingest.ingest_corpus import GOOD, HEADER, NOW, corpus_config, write_log


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
    cfg = corpus_config(source, format="parquet")
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
    write_log(tmp_path / "logs" / "a.csv", GOOD[:2])
    reordered = "item_id,user_id,event_type,timestamp,value\n"
    write_log(tmp_path / "logs" / "b.csv", ["i7,u7,view,2026-01-05T10:00:00Z,"], header=reordered)
    cfg = corpus_config(tmp_path / "logs")
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
    cfg = corpus_config(source, format="parquet")
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
    cfg = corpus_config(
        source,
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
    report = run_ingest(spark, corpus_config(path, format="json"), storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (3, 2, 1)
    items = spark.read.format("delta").load(storage.table(tables.ITEM_INDEX)).collect()
    assert [r[C.ITEM_ID] for r in items] == ["17"]


def test_empty_file_ingests_nothing_and_reconciles(spark, tmp_path):
    path = write_log(tmp_path / "empty.csv", [], header=HEADER.rstrip("\n"))
    storage = StorageConfig(root=str(tmp_path / "lake"))
    report = run_ingest(spark, corpus_config(path), storage, now=NOW)
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
        run_ingest(spark, corpus_config(tmp_path / "nope"), StorageConfig(root=str(tmp_path)))


assert os.sep == "/"  # paths in the expectations above are POSIX


def test_empty_source_folder_is_nothing_new_with_a_warning(spark, tmp_path, caplog):
    (tmp_path / "landing" / "_temporary").mkdir(parents=True)  # only a write in progress
    (tmp_path / "landing" / "_temporary" / "part-0.csv").write_text(HEADER)
    storage = StorageConfig(root=str(tmp_path / "lake"))
    with caplog.at_level("WARNING", logger="recsys_spark.ingest.runner"):
        report = run_ingest(spark, corpus_config(tmp_path / "landing"), storage)
    assert (report.batch_id, report.files_seen, report.rows_read) == (None, 0, 0)
    assert "no data files at" in caplog.text
    assert list((tmp_path / "lake").iterdir()) == []  # no table written, no probe left
