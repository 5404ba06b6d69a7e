"""The notebooks run locally as scripts, in order, on a tiny sample: they never rot.

They run in this process (the shared Spark session), with RECSYS_NOTEBOOK_SET pointing
them at a temporary lake and tiny model settings.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from recsys_spark import tables
from recsys_spark.io import delta
from recsys_spark.notebook import ENV_OVERRIDES

pytestmark = pytest.mark.e2e  # real nights: `make test-fast` skips them

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TINY = [
    "spark.shuffle_partitions=2",
    "spark.codegen=false",  # a tiny night, as make demo runs it
    "sample.n_events=3000",
    "sample.n_users=200",
    "sample.n_items=100",
    "als.rank=4",
    "als.max_iter=3",
    "similarity.measures=[jaccard]",
    "evaluation.ks=[5,10]",
    "evaluation.diversity_max_users=20",
    "nightly.candidate_depth=15",
    "nightly.hybrid_weights=[0.0,0.5,1.0]",
    "maintenance.every_days=0",
    "ease.enabled=false",  # the notebooks show no EASE or ranker step; tests/e2e/test_nightly.py
    "ranker.enabled=false",  # runs both in a night
]


def test_notebooks_run_in_order(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    overrides = [f"storage.root={root}", f"ingest.source={tmp_path / 'events.csv'}", *TINY]
    monkeypatch.setenv(ENV_OVERRIDES, ";".join(overrides))
    for name in ("01_ingest_walkthrough.py", "02_nightly_walkthrough.py", "03_explore_run.py"):
        source = (NOTEBOOKS / name).read_text()
        assert source.startswith("# Databricks notebook source\n"), name
        assert "# COMMAND ----------" in source, name
        runpy.run_path(str(NOTEBOOKS / name), run_name="__main__")
    latest = delta.read_table(spark, f"file://{root}/{tables.RECOMMENDATIONS_LATEST}")
    assert latest.count() > 0
