"""The offline evaluation's report and split (the job end to end: tests/e2e/test_jobs.py)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import SparkSession

from recsys_spark import tables
from recsys_spark.config import load_config
from recsys_spark.evaluation import offline
from recsys_spark.evaluation.report import format_table, render_html
from recsys_spark.ingest.schemas import INTERACTIONS
from recsys_spark.io import delta
from tests.unit.ingest.ingest_corpus import killed_step


def tiny_interactions(spark: SparkSession):
    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 1)
    rows = []
    for u in range(30):
        for i in rng.choice(25, size=int(rng.integers(2, 12)), replace=False):
            i = int(i) if u % 3 else int(i) % 8  # popular items among every third user
            ts = start + timedelta(hours=int(rng.integers(0, 500)))
            rows.append(
                (f"e{u}-{i}-{len(rows)}", f"u{u:02d}", f"i{i:02d}", u, i, "view", ts, ts.date())
                + (1.0, 1.0, "f", "b", ts)
            )
    return spark.createDataFrame(rows, INTERACTIONS)


def _by_user():
    from pyspark.sql import Window

    return Window.partitionBy("user_id").orderBy("item_id")


def test_format_table_and_html_without_models() -> None:
    models = {"a": {"map": 0.5, "users_evaluated": 10.0}, "long_name": {"map": math.nan}}
    text = format_table(models, ["map", "users_evaluated"])
    lines = text.splitlines()
    assert lines[2].split() == ["a", "0.500000", "10"]
    assert lines[3].split()[0] == "long_name" and lines[3].split()[2] == "-"
    doc = {"run_id": "x", "ks": [10], "k": 10, "models": {}, "split": {"kind": "random"}}
    assert "<h1>" in render_html(doc) and "Learned ranker" not in render_html(doc)
    ranker = {"sources": ["als", "ease"], "importance_gain": {"rank__als": 3.0, "rank__ease": 9.0}}
    page = render_html({**doc, "ranker": {**ranker, "train_users": 7, "train_rows": 70}})
    assert "Learned ranker: feature importance" in page and "from als, ease" in page
    assert page.count("data:image/png") == render_html(doc).count("data:image/png") + 1


def test_a_split_carries_the_fingerprint_of_its_settings_and_source(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    cfg = load_config(None, [f"storage.root={tmp_path / 'lake'}"])
    source = cfg.storage.table(tables.INTERACTIONS)
    delta.overwrite(tiny_interactions(spark), source)
    offline.prepare_split(spark, cfg.evaluation, cfg.storage)
    version = delta.table_version(spark, source)
    stored = offline.stored_fingerprint(spark, cfg.storage)
    assert stored == offline.split_fingerprint(cfg.evaluation, version)
    # other settings, or newer interactions, make another split
    assert stored != offline.split_fingerprint(replace(cfg.evaluation, seed=7), version)
    assert stored != offline.split_fingerprint(cfg.evaluation, version + 1)
    # a split cut short keeps no fingerprint: the next evaluation cuts it again
    monkeypatch.setattr(offline, "split_summary", killed_step)
    with pytest.raises(RuntimeError, match="killed"):
        offline.prepare_split(spark, replace(cfg.evaluation, seed=7), cfg.storage)
    assert offline.stored_fingerprint(spark, cfg.storage) is None
