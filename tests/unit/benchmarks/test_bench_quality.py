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
