"""make bench-quality never reports one source's lake under another source's name."""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_quality
from recsys_spark.config import IngestConfig, StorageConfig
from recsys_spark.ingest.runner import run_ingest
from tests.unit.ingest.ingest_corpus import GOOD, NOW, write_log


def test_a_lake_of_another_source_is_refused(spark, tmp_path, capsys):
    first = write_log(tmp_path / "a" / "ratings.csv", GOOD)
    other = write_log(tmp_path / "b" / "ratings.csv", GOOD[:3])
    storage = StorageConfig(root=str(tmp_path / "lake"))
    run_ingest(spark, IngestConfig(source=str(first)), storage, now=NOW)
    assert bench_quality.foreign_files(spark, IngestConfig(source=str(first)), storage) == []
    [foreign] = bench_quality.foreign_files(spark, IngestConfig(source=str(other)), storage)
    assert Path(foreign.removeprefix("file:")) == first
    code = bench_quality.main(
        ["--set", f"storage.root={storage.root}", "--set", f"ingest.source={other}"]
    )
    assert code == 2 and "holds files of another source" in capsys.readouterr().out


def test_lists_are_scored_for_test_users_only_as_the_job_scores_them(spark, tmp_path):
    # bench-quality and jobs/evaluate.py read lists through one function: the catalogue
    # coverage of users without a test item must not count (issue 23, item 4).
    from recsys_spark import tables
    from recsys_spark.evaluation.offline import lists_of_test_users
    from recsys_spark.io import delta
    from recsys_spark.models.lists import SCHEMA

    recs_path = str(tmp_path / tables.EVAL_RECOMMENDATIONS)
    rows = [
        ("u1", "a", 1, 1.0, "als", "model", "r", None),
        ("u2", "b", 1, 1.0, "als", "model", "r", None),
    ]
    delta.overwrite(spark.createDataFrame(rows, SCHEMA), recs_path)
    users = spark.createDataFrame([("u1",)], "user_id string")
    lists = lists_of_test_users(spark, recs_path, (), users)
    assert [(r.user_id, r.item_id) for r in lists["als"].collect()] == [("u1", "a")]
    assert "lists_of_test_users(" in Path(bench_quality.__file__).read_text()
