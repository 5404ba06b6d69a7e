"""Replaying the quarantine under a corrected config, instead of a full refresh."""

from __future__ import annotations

import pytest

from jobs import ingest
from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import IngestConfig, StorageConfig
from recsys_spark.ingest.replay import run_replay
from recsys_spark.ingest.runner import run_ingest
from recsys_spark.io import delta
from tests.unit.ingest.ingest_corpus import NOW, killed_step, write_log

SAME_SESSION = ["--set", "spark.shuffle_partitions=2", "--set", "spark.log_level=ERROR"]
GOOD = [f"u{i % 7},i{i % 5},view,{1767607200 + 60 * i}," for i in range(40)]
WISHLIST = "u1,i9,wishlist,1767607200,"
BROKEN = "u1,i1"  # too few fields: malformed, whatever the config
NEGATIVE = "u2,i2,view,1767607200,-3"
WEIGHTS = {"view": 1.0, "wishlist": 3.0}


def statuses(spark, storage):
    rows = delta.read_table(spark, storage.table(tables.QUARANTINE)).collect()
    return sorted((r[C.REASON], r[C.STATUS]) for r in rows)


def test_replay_stores_rows_that_now_pass_once_and_keeps_the_others(spark, tmp_path, monkeypatch):
    source = write_log(tmp_path / "logs" / "day1.csv", [*GOOD, WISHLIST, BROKEN, NEGATIVE])
    storage = StorageConfig(root=str(tmp_path / "lake"))
    first = IngestConfig(source=str(source), max_quarantine_share=0.1, event_weights={"view": 1.0})
    assert run_ingest(spark, first, storage, now=NOW).rows_quarantined == 3
    interactions = lambda: delta.read_table(spark, storage.table(tables.INTERACTIONS))  # noqa: E731

    fixed = IngestConfig(source=str(source), max_quarantine_share=0.1, event_weights=WEIGHTS)
    # killed after the events were stored, before their quarantine rows were resolved
    from recsys_spark.ingest import replay

    with monkeypatch.context() as patch:
        patch.setattr(replay, "_mark_resolved", killed_step)
        with pytest.raises(RuntimeError, match="killed"):
            run_replay(spark, fixed, storage, reason="unknown_event_type", now=NOW)
    assert interactions().count() == 41
    again = run_replay(spark, fixed, storage, reason="unknown_event_type", now=NOW)
    assert (again.rows_read, again.rows_inserted, again.duplicates_existing) == (1, 0, 1)
    assert again.reconciled
    assert statuses(spark, storage) == [
        ("malformed_row", "quarantined"),
        ("negative_value", "quarantined"),
        ("unknown_event_type", "resolved"),
    ]
    [row] = interactions().filter(f"{C.EVENT_TYPE} = 'wishlist'").collect()
    assert (row[C.USER_ID], row[C.ITEM_ID], row[C.WEIGHT]) == ("u1", "i9", 3.0)
    assert row[C.SOURCE_FILE] == source.as_uri().replace("file:///", "file:/")

    # every reason: the rest still fails, stays quarantined, and the replay reconciles
    rest = run_replay(spark, fixed, storage, now=NOW)
    assert (rest.rows_read, rest.rows_inserted, rest.rows_quarantined) == (2, 0, 2)
    assert rest.reconciled and interactions().count() == 41
    assert [r for r in statuses(spark, storage) if r[1] == "resolved"] == [
        ("unknown_event_type", "resolved")
    ]


def test_replay_job_takes_a_reason_and_refuses_a_reason_alone(spark, tmp_path):
    source = write_log(tmp_path / "logs" / "day1.csv", [*GOOD, WISHLIST])
    lake = ["--set", f"storage.root={tmp_path / 'lake'}", "--set", f"ingest.source={source}"]
    assert ingest.main([*lake, *SAME_SESSION]) == 0
    weights = ["--set", "ingest.event_weights={view: 1.0, wishlist: 3.0}"]
    args = [*lake, *weights, *SAME_SESSION, "--replay-quarantine", "--reason", "unknown_event_type"]
    assert ingest.main(args) == 0
    storage = StorageConfig(root=str(tmp_path / "lake"))
    assert statuses(spark, storage) == [("unknown_event_type", "resolved")]
    with pytest.raises(SystemExit) as exit_:
        ingest.main([*lake, *SAME_SESSION, "--reason", "unknown_event_type"])
    assert exit_.value.code == 2
