"""jobs/evaluate.py end to end on a tiny lake: split, baseline, report files, MLflow."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
from pyspark.sql import SparkSession

from recsys_spark.evaluation.report import format_table, render_html
from recsys_spark.ingest.schemas import INTERACTIONS


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
    assert "<h1>" in render_html(doc)
