"""Catalogue ingest: validated, quarantined with a reason, MERGEd by id, idempotent."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from jobs import ingest_catalog
from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.catalog.ingest import EXCLUSIONS_KIND, ITEMS_KIND
from recsys_spark.catalog.ingest import ingest_catalog as ingest
from recsys_spark.config import (
    CatalogConfig,
    ExclusionsFile,
    ItemsFile,
    StorageConfig,
    load_config,
)
from recsys_spark.errors import BatchRefusedError, ConfigError
from recsys_spark.io import delta

NOW = datetime(2026, 5, 1, tzinfo=UTC)
HEADER = "item_id,title,categories,available_from,available_until,active,price"
ROWS = [
    "i1,Red shoe,shoes|red,,,true,10",
    "i2,Blue shoe,shoes,2026-04-01,,,12",
    "i3,Green hat,hats,,2026-04-20,yes,5",
    "i4,Old lamp,home,,,false,",
]


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def items_cfg(source: Path, **kw) -> CatalogConfig:
    return CatalogConfig(items=ItemsFile(source=str(source), **kw))


def table(spark, storage: StorageConfig, name: str):
    return delta.read_table(spark, storage.table(name))


def by_id(spark, storage: StorageConfig) -> dict[str, dict]:
    return {r[C.ITEM_ID]: r.asDict() for r in table(spark, storage, tables.ITEMS).collect()}


def test_items_are_parsed_merged_and_a_rerun_commits_nothing(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    path = write(tmp_path / "items.csv", ROWS)
    cfg = items_cfg(path)
    [report] = ingest(spark, cfg, storage, now=NOW)
    assert (report.rows_read, report.rows_valid, report.inserted) == (4, 4, 4)
    items = by_id(spark, storage)
    assert items["i1"]["categories"] == ["shoes", "red"]
    assert items["i1"]["active"] is True and items["i4"]["active"] is False
    assert items["i2"]["available_from"] == datetime(2026, 4, 1)
    assert items["i3"]["available_until"] == datetime(2026, 4, 20)
    assert items["i1"]["attributes"] == {"price": "10"}
    assert items["i4"]["attributes"] == {}  # an empty attribute is not kept
    versions = lambda: [  # noqa: E731
        delta.table_version(spark, storage.table(t)) for t in (tables.ITEMS, tables.CATALOG_BATCHES)
    ]
    before = versions()
    # The same file and settings, the table as the batch left it: not read at all.
    [again] = ingest(spark, cfg, storage, now=NOW)
    assert (again.status, again.rows_read, again.table_version) == ("skipped", 0, before[0])
    assert versions() == before
    # The same rows written again (a new modification time), or other settings: read,
    # and nothing to merge.
    os.utime(path, (NOW.timestamp(), NOW.timestamp()))
    [rewritten] = ingest(spark, cfg, storage, now=NOW)
    [reread] = ingest(spark, items_cfg(path, snapshot="full"), storage, now=NOW)
    for report in (rewritten, reread):
        counts = (report.rows_read, report.inserted, report.updated)
        assert report.status == "unchanged" and counts == (4, 0, 0)
    assert versions()[0] == before[0]


def test_a_partial_snapshot_updates_and_inserts_and_a_full_one_deactivates(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    ingest(spark, items_cfg(write(tmp_path / "a" / "items.csv", ROWS)), storage, now=NOW)
    change = ["i1,Red shoe,shoes|red,,,false,10", "i9,New mug,home,2026-04-28,,,3"]
    partial = items_cfg(write(tmp_path / "b" / "items.csv", change))
    [report] = ingest(spark, partial, storage, now=NOW)
    assert (report.inserted, report.updated, report.deactivated) == (1, 1, 0)
    items = by_id(spark, storage)
    assert items["i1"]["active"] is False and items["i2"]["active"] is None
    assert set(items) == {"i1", "i2", "i3", "i4", "i9"}
    full = items_cfg(write(tmp_path / "c" / "items.csv", change), snapshot="full")
    [report] = ingest(spark, full, storage, now=NOW)
    # i2 and i3 were live and are not listed; i4 was already inactive.
    assert (report.inserted, report.updated, report.deactivated) == (0, 0, 2)
    items = by_id(spark, storage)
    assert items["i2"]["active"] is False and items["i3"]["active"] is False
    assert items["i9"]["active"] is None


def test_bad_rows_are_quarantined_with_a_reason_and_nothing_is_lost(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    bad = [
        ",No id,shoes,,,,1",
        "i5,Bad start,shoes,someday,,,1",
        "i6,Bad end,shoes,,2026-13-45,,1",
        "i7,Bad flag,shoes,,,maybe,1",
        "i8,Inverted,shoes,2026-05-01,2026-04-01,,1",
        "i10,One,shoes,,,,1",
        "i10,Two,shoes,,,,1",  # the same id with other content: the owner must choose
        "i1,Red shoe,shoes|red,,,true,10",  # an exact repeat of a good row: collapsed
    ]
    cfg = CatalogConfig(items=ItemsFile(source=str(write(tmp_path / "i.csv", ROWS + bad))),
                        max_quarantine_share=1.0)  # fmt: skip
    [report] = ingest(spark, cfg, storage, now=NOW)
    assert report.reconciled
    assert (report.rows_read, report.rows_valid, report.duplicates) == (12, 4, 1)
    reasons = sorted(r[C.REASON] for r in table(spark, storage, tables.ITEMS_QUARANTINE).collect())
    assert reasons == sorted(
        ["missing_item_id", "bad_available_from", "bad_available_until", "bad_active",
         "window_inverted", "conflicting_rows", "conflicting_rows"]
    )  # fmt: skip
    assert set(by_id(spark, storage)) == {"i1", "i2", "i3", "i4"}
    batch = table(spark, storage, tables.CATALOG_BATCHES).first()
    assert batch["reconciled"] and batch["rows_quarantined"] == 7


def test_too_many_bad_rows_refuse_the_batch_and_the_table_keeps_its_version(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    ingest(spark, items_cfg(write(tmp_path / "a" / "items.csv", ROWS)), storage, now=NOW)
    version = delta.table_version(spark, storage.table(tables.ITEMS))
    broken = [f"i{i},T,c,not-a-date,,,1" for i in range(20)]
    with pytest.raises(BatchRefusedError, match="bad_available_from"):
        ingest(spark, items_cfg(write(tmp_path / "b" / "items.csv", broken)), storage, now=NOW)
    assert delta.table_version(spark, storage.table(tables.ITEMS)) == version
    statuses = table(spark, storage, tables.ITEMS_QUARANTINE).select(C.STATUS).distinct()
    assert [r[0] for r in statuses.collect()] == ["refused"]


def test_a_column_the_file_lacks_is_a_config_error_before_anything_is_written(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    source = write(tmp_path / "items.csv", ["i1,T"], header="item_id,name")
    with pytest.raises(ConfigError, match="title"):
        ingest(spark, items_cfg(source), storage, now=NOW)
    assert not delta.table_exists(spark, storage.table(tables.ITEMS))


def test_json_lines_and_parquet_with_category_lists(spark, tmp_path):
    rows = [
        {"id": "a", "name": "A", "tags": ["x", "y"]},
        {"id": "b", "name": "B", "tags": ["y"]},
    ]
    jsonl = tmp_path / "j" / "items.json"
    jsonl.parent.mkdir()
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    parquet = tmp_path / "p" / "items.parquet"
    parquet.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    columns = {"item": "id", "title": "name", "categories": "tags", "available_from": "",
               "available_until": "", "active": ""}  # fmt: skip
    for fmt, source in (("json", jsonl), ("parquet", parquet)):
        storage = StorageConfig(root=str(tmp_path / f"lake-{fmt}"))
        cfg = load_config(
            None,
            [f"catalog.items.source={source}", f"catalog.items.format={fmt}"]
            + [f"catalog.items.columns.{k}={v}" for k, v in columns.items()],
        ).catalog
        ingest(spark, cfg, storage, kinds=(ITEMS_KIND,), now=NOW)
        items = by_id(spark, storage)
        assert items["a"]["categories"] == ["x", "y"], fmt
        assert items["b"]["title"] == "B", fmt


def test_exclusions_fold_repeats_and_quarantine_bad_rows(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    lines = [
        "u1,i1,2026-06-01",
        "u1,i1,2026-07-01",  # the same pair later: in force until the later date
        "u2,i1,",
        "u2,i1,2026-05-15",  # one copy without a date: for ever
        ",i2,",
        "u3,i3,not-a-date",
    ]
    source = write(tmp_path / "ex.csv", lines, header="user_id,item_id,until")
    cfg = CatalogConfig(exclusions=ExclusionsFile(source=str(source)), max_quarantine_share=1.0)
    [report] = ingest(spark, cfg, storage, kinds=(EXCLUSIONS_KIND,), now=NOW)
    assert report.reconciled and (report.rows_valid, report.duplicates) == (2, 2)
    rows = table(spark, storage, tables.EXCLUSIONS)
    until = {(r[C.USER_ID], r[C.ITEM_ID]): r["until"] for r in rows.collect()}
    assert until == {("u1", "i1"): datetime(2026, 7, 1).date(), ("u2", "i1"): None}
    bad = table(spark, storage, tables.EXCLUSIONS_QUARANTINE)
    assert sorted(r[0] for r in bad.select(C.REASON).collect()) == ["bad_until", "missing_user_id"]


def test_movielens_item_file_loads_with_config_only(spark, tmp_path, ml100k_dir):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    cfg = load_config(
        "conf/movielens.yml", [f"catalog.items.source={ml100k_dir / 'ml-100k.item'}"]
    ).catalog
    [report] = ingest(spark, cfg, storage, now=NOW)
    assert report.rows_read == report.rows_valid == 1682
    toy = table(spark, storage, tables.ITEMS).filter(F.col(C.ITEM_ID) == "1").first()
    assert toy["title"] == "Toy Story"
    assert toy["categories"] == ["Animation", "Children's", "Comedy"]
    assert toy["attributes"] == {"release_year:token": "1995"}


def test_the_job_ingests_the_catalogue_and_exits_2_when_nothing_is_configured(spark, tmp_path):
    lake = tmp_path / "lake"
    source = write(tmp_path / "items.csv", ROWS)
    same = ["--set", "spark.shuffle_partitions=2", "--set", "spark.log_level=ERROR"]
    base = ["--set", f"storage.root={lake}", *same]
    assert ingest_catalog.main([*base, "--set", f"catalog.items.source={source}"]) == 0
    assert delta.table_exists(spark, str(lake / tables.ITEMS))
    assert ingest_catalog.main(base) == 2


def test_a_file_of_ids_and_flags_changes_only_the_flags(spark, tmp_path):
    storage = StorageConfig(root=str(tmp_path / "lake"))
    ingest(spark, items_cfg(write(tmp_path / "a" / "items.csv", ROWS)), storage, now=NOW)
    flags = write(tmp_path / "b" / "flags.csv", ["i1,false", "i7,false"], header="item_id,active")
    cfg = load_config(
        None,
        [f"catalog.items.source={flags}"]
        + [
            f"catalog.items.columns.{k}="
            for k in ("title", "categories", "available_from", "available_until")
        ],  # fmt: skip
    ).catalog
    [report] = ingest(spark, cfg, storage, now=NOW)
    assert (report.inserted, report.updated) == (1, 1)
    items = by_id(spark, storage)
    assert items["i1"]["active"] is False
    assert items["i1"]["title"] == "Red shoe" and items["i1"]["attributes"] == {"price": "10"}
    assert items["i7"]["title"] is None and items["i7"]["active"] is False


def test_the_newer_releases_movies_csv_loads_with_the_documented_overrides(spark, tmp_path):
    movies = write(
        tmp_path / "movies.csv",
        ["1,Toy Story (1995),Adventure|Animation|Children", '2,"Heat, The (1995)",Action'],
        header="movieId,title,genres",
    )
    overrides = [  # as the comment of conf/movielens.yml gives them
        f"catalog.items.source={movies}", "catalog.items.csv_delimiter=,",
        "catalog.items.columns.item=movieId", "catalog.items.columns.title=title",
        "catalog.items.columns.categories=genres", "catalog.items.category_separator=|",
    ]  # fmt: skip
    cfg = load_config("conf/movielens.yml", overrides).catalog
    storage = StorageConfig(root=str(tmp_path / "lake"))
    [report] = ingest(spark, cfg, storage, kinds=(ITEMS_KIND,), now=NOW)
    assert report.rows_valid == 2
    items = by_id(spark, storage)
    assert items["1"]["categories"] == ["Adventure", "Animation", "Children"]
    assert items["2"]["title"] == "Heat, The (1995)"
