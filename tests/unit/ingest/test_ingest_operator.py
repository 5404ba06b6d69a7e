"""Operator mistakes at ingest: refused before anything is lost, each with one line that
says what to fix, and recoverable by fixing the setting and running again."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from jobs import ingest
from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import ColumnMapping, IngestConfig, StorageConfig
from recsys_spark.errors import BatchRefusedError, ConfigError, NoReadableFileError
from recsys_spark.ingest.breaker import timestamp_unit
from recsys_spark.ingest.runner import run_ingest
from recsys_spark.io import delta
from tests.unit.ingest.ingest_corpus import GOOD, HEADER, NOW, write_log

SAME_SESSION = ["--set", "spark.shuffle_partitions=2", "--set", "spark.log_level=ERROR"]
EPOCH_LINES = [f"u{i % 7},i{i % 5},view,{1767607200 + 60 * i}," for i in range(40)]


def read(spark, storage: StorageConfig, name: str):
    return delta.read_table(spark, storage.table(name))


def test_a_wrong_timestamp_unit_refuses_the_batch_and_a_fixed_rerun_takes_it(
    spark, tmp_path, caplog
):
    source = write_log(tmp_path / "logs" / "day1.csv", EPOCH_LINES)
    storage = StorageConfig(root=str(tmp_path / "lake"))
    args = [
        "--set", f"storage.root={storage.root}",
        "--set", f"ingest.source={source.parent}",
        "--set", "ingest.timestamp_format=epoch_ms",
        *SAME_SESSION,
    ]  # fmt: skip
    with caplog.at_level("ERROR", logger="recsys_spark.cli"):
        assert ingest.main(args) == 2  # the job: exit 2 and one line
    [message] = [r.getMessage() for r in caplog.records if r.name == "recsys_spark.cli"]
    assert message.startswith("batch refused") and "\n" not in message
    assert "40 of 40 rows (100.0%)" in message and "timestamp_out_of_range" in message
    assert "look like epoch seconds" in message
    # nothing reached interactions; the rows wait in quarantine, marked refused
    assert not delta.table_exists(spark, storage.table(tables.INTERACTIONS))
    quarantine = read(spark, storage, tables.QUARANTINE).collect()
    assert len(quarantine) == 40 and {r[C.STATUS] for r in quarantine} == {"refused"}
    assert [r["status"] for r in read(spark, storage, tables.INGEST_LOG).collect()] == ["refused"]

    fixed = IngestConfig(source=str(source.parent), timestamp_format="epoch_s")
    report = run_ingest(spark, fixed, storage, now=NOW)
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (40, 40, 0)
    assert report.reconciled
    assert read(spark, storage, tables.QUARANTINE).count() == 0  # the refused rows are gone
    assert [r["status"] for r in read(spark, storage, tables.INGEST_LOG).collect()] == ["ingested"]


def test_one_reason_taking_nearly_every_row_refuses_whatever_the_share(spark, tmp_path):
    lines = [line.replace(",view,", ",wishlist,") for line in EPOCH_LINES]
    source = write_log(tmp_path / "logs" / "day1.csv", lines)
    storage = StorageConfig(root=str(tmp_path / "lake"))
    lenient = IngestConfig(source=str(source), max_quarantine_share=0.95)
    with pytest.raises(BatchRefusedError, match="as unknown_event_type.*ingest.event_weights"):
        run_ingest(spark, lenient, storage, now=NOW)
    # a share of 1 turns the breaker off: the rows are quarantined, the batch committed
    off = IngestConfig(source=str(source), max_quarantine_share=1.0)
    report = run_ingest(spark, off, storage, now=NOW)
    assert (report.rows_quarantined, report.rows_inserted) == (40, 0) and report.reconciled
    assert {r[C.STATUS] for r in read(spark, storage, tables.QUARANTINE).collect()} == {
        "quarantined"
    }


def test_a_file_that_stays_broken_is_parked_after_its_attempts(spark, tmp_path):
    logs = tmp_path / "logs"
    (logs / "part-3.csv.gz").parent.mkdir(parents=True)
    (logs / "part-3.csv.gz").write_bytes(b"this is not gzip")  # a name that lies
    cfg = IngestConfig(source=str(logs), max_file_attempts=2)
    storage = StorageConfig(root=str(tmp_path / "lake"))
    with pytest.raises(NoReadableFileError, match="part-3.csv.gz"):  # attempt 1: loud
        run_ingest(spark, cfg, storage, now=NOW, require_readable=True)
    write_log(logs / "part-1.csv", GOOD)
    second = run_ingest(spark, cfg, storage, now=NOW, require_readable=True)  # parked
    assert second.rows_inserted == 6 and second.reconciled
    assert {Path(o.file.path).name: (o.status, o.attempts) for o in second.files} == {
        "part-1.csv": ("ingested", 1),
        "part-3.csv.gz": ("parked", 2),
    }
    later = run_ingest(spark, cfg, storage, now=NOW, require_readable=True)  # no error
    assert later.batch_id is None and [Path(p).name for p in later.files_parked] == [
        "part-3.csv.gz"
    ]
    log = {
        Path(r[C.SOURCE_FILE]).name: r for r in read(spark, storage, tables.INGEST_LOG).collect()
    }
    assert len(log) == 2 and (log["part-3.csv.gz"]["status"], log["part-3.csv.gz"]["attempts"]) == (
        "parked",
        2,
    )
    unreadable = (
        read(spark, storage, tables.QUARANTINE).filter(f"{C.REASON} = 'unreadable_file'").collect()
    )
    assert len(unreadable) == 1  # one row per file, however often it was tried
    # a new version of the file (fixed upstream) is read again
    with gzip.open(logs / "part-3.csv.gz", "wt") as fixed:
        fixed.write(HEADER + "u8,i8,view,2026-01-05T10:00:00Z,\n")
    again = run_ingest(spark, cfg, storage, now=NOW, require_readable=True)
    assert again.rows_inserted == 1 and not again.files_parked
    assert read(spark, storage, tables.QUARANTINE).count() == 0


def test_files_of_another_kind_in_a_folder_are_skipped_and_listed(spark, tmp_path, caplog):
    logs = tmp_path / "logs"
    # one bad row in 41, under the default share of 0.05: quarantined, the batch taken
    write_log(logs / "day1.csv", [*EPOCH_LINES, "u1,i1,teleport,1767607200,"])
    (logs / "manifest.json").write_text('{"files": ["day1.csv"]}\n')
    storage = StorageConfig(root=str(tmp_path / "lake"))
    with caplog.at_level("WARNING", logger="recsys_spark.ingest.runner"):
        report = run_ingest(spark, IngestConfig(source=str(logs)), storage, now=NOW)
    assert report.reconciled and report.files_failed == 0
    assert (report.rows_read, report.rows_inserted, report.rows_quarantined) == (41, 40, 1)
    assert [Path(p).name for p in report.files_ignored] == ["manifest.json"]
    assert "skipped 1 files whose names are not of ingest.format csv (manifest.json)" in caplog.text
    # configured extensions read other names
    (logs / "day2.log").write_text(HEADER + "u8,i8,view,2026-01-05T10:00:00Z,\n")
    wider = IngestConfig(source=str(logs), extensions=("csv", "log"))
    assert run_ingest(spark, wider, storage, now=NOW).rows_inserted == 1


def test_a_mapped_column_missing_from_a_header_is_a_config_error_before_any_read(spark, tmp_path):
    logs = tmp_path / "logs"
    write_log(logs / "a.csv", GOOD)
    renamed_header = "user,item_id,event_type,timestamp,value\n"
    write_log(logs / "b.csv", ["u1,i1,view,2026-01-05T10:00:00Z,"], header=renamed_header)
    storage = StorageConfig(root=str(tmp_path / "lake"))
    with pytest.raises(ConfigError) as error:
        run_ingest(spark, IngestConfig(source=str(logs)), storage, now=NOW)
    assert "ingest.columns.user names column 'user_id'" in str(error.value)
    assert "b.csv" in str(error.value)
    assert not delta.table_exists(spark, storage.table(tables.INGEST_LOG))  # no file blamed
    renamed = IngestConfig(source=str(logs / "b.csv"), columns=ColumnMapping(user="user"))
    assert run_ingest(spark, renamed, storage, now=NOW).rows_inserted == 1


def test_an_unwritable_storage_root_is_named_first(spark, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    storage = StorageConfig(root=str(tmp_path / "a-file" / "lake"))
    # checked before the source: a missing source would otherwise be reported first
    with pytest.raises(ConfigError, match=r"^storage.root .* cannot be written"):
        run_ingest(spark, IngestConfig(source=str(tmp_path / "none")), storage, now=NOW)


def test_the_job_exits_2_on_config_and_environment_mistakes(spark, tmp_path):
    source = write_log(tmp_path / "logs" / "day1.csv", GOOD)
    base = ["--set", f"ingest.source={source}", *SAME_SESSION]
    lake = ["--set", f"storage.root={tmp_path / 'lake'}"]
    (tmp_path / "a-file").write_text("")
    assert ingest.main([*base, "--set", f"storage.root={tmp_path / 'a-file' / 'x'}"]) == 2
    assert ingest.main([*base, *lake, "--set", "ingest.columns.user=customer"]) == 2
    with pytest.raises(SystemExit) as exit_:
        ingest.main([*base, *lake, "--set", "ingest.format=xml"])
    assert exit_.value.code == 2


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("881250949", "epoch seconds"),
        ("881250949000", "epoch milliseconds"),
        ("881250949000000", "epoch microseconds"),
        ("1997-12-04T15:55:49", "ISO-8601"),
        ("yesterday", None),
    ],
)
def test_timestamp_unit_hint(value, unit):
    hint = timestamp_unit(value)
    assert (hint is None) if unit is None else hint.startswith(unit)
