"""EASE: the Gram matrix from Spark, the closed form, and lists against numpy references."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import EaseConfig, load_config
from recsys_spark.errors import ConfigError
from recsys_spark.ingest.schemas import INTERACTIONS
from recsys_spark.io import delta
from recsys_spark.models.ease import (
    ease_weights,
    fit_ease,
    gram_counts,
    recommend_ease,
    run_ease,
)


def random_pairs(seed: int, n_users: int = 40, n_items: int = 25) -> pd.DataFrame:
    """Random user-item pairs; item indices with holes and ids whose order differs from
    the indices', so both mappings are exercised."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_users, n_items)) < 0.25
    x[:, 3] = False  # an item index no one has
    u, i = np.nonzero(x)
    return pd.DataFrame(
        {
            C.USER_IDX: u.astype(np.int32),
            C.USER_ID: [f"u{k:02d}" for k in u],
            C.ITEM_IDX: (i * 2).astype(np.int32),  # holes between indices
            C.ITEM_ID: [f"i{n_items - k:02d}" for k in i],
        }
    )


def numpy_ease(pairs: pd.DataFrame, l2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, G and B of the reference (items in item_idx order)."""
    items = np.sort(pairs[C.ITEM_IDX].unique())
    col = np.searchsorted(items, pairs[C.ITEM_IDX].to_numpy())
    x = np.zeros((pairs[C.USER_IDX].max() + 1, len(items)))
    x[pairs[C.USER_IDX].to_numpy(), col] = 1.0
    g = x.T @ x
    p = np.linalg.inv(g + l2 * np.eye(len(items)))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return x, g, b


def test_gram_counts_equal_xtx_with_the_diagonal(spark: SparkSession) -> None:
    pairs = random_pairs(1)
    _, g, _ = numpy_ease(pairs, 1.0)
    doubled = pd.concat([pairs, pairs.iloc[:5]])  # a repeated pair counts once
    for blocks in (1, 3):
        items, gram = gram_counts(spark.createDataFrame(doubled), num_partitions=blocks)
        assert items[C.ITEM_IDX].tolist() == sorted(pairs[C.ITEM_IDX].unique())
        np.testing.assert_array_equal(gram.toarray(), g)


def test_weights_equal_the_closed_form_and_top_k_keeps_the_largest_magnitudes() -> None:
    _, g, b = numpy_ease(random_pairs(2), 3.0)
    dense = ease_weights(g, l2=3.0).toarray()
    np.testing.assert_allclose(dense, b, rtol=1e-10, atol=1e-12)
    assert np.all(np.diag(dense) == 0)
    kept = ease_weights(g, l2=3.0, top_k=4).toarray()
    assert np.all((kept != 0).sum(axis=1) <= 4)
    for row, full in zip(kept, b, strict=True):
        nonzero = np.abs(row[row != 0])
        np.testing.assert_allclose(np.sort(nonzero), np.sort(np.abs(full))[-len(nonzero) :])
    with pytest.raises(ValueError, match="l2 must be positive"):
        ease_weights(g, l2=0.0)


def test_a_float32_solve_gives_the_float64_weights_to_single_precision() -> None:
    _, g, b = numpy_ease(random_pairs(3, n_users=200, n_items=60), 5.0)
    single = ease_weights(g, l2=5.0, precision="float32")
    assert single.dtype == np.float32
    np.testing.assert_allclose(single.toarray(), b, rtol=1e-3, atol=1e-5 * np.abs(b).max())
    with pytest.raises(ValueError, match="precision must be float32 or float64"):
        ease_weights(g, l2=5.0, precision="float16")


def test_lists_equal_a_numpy_ranking_of_unseen_positive_scores(spark: SparkSession) -> None:
    pairs = random_pairs(3)
    x, _, b = numpy_ease(pairs, 2.0)
    frame = spark.createDataFrame(pairs)
    fitted = fit_ease(frame, EaseConfig(l2=2.0, top_k=0, precision="float64"))
    assert not isinstance(fitted, str)
    got = recommend_ease(frame, fitted, top_n=5).toPandas()
    items = np.sort(pairs[C.ITEM_IDX].unique())
    item_id = pairs.drop_duplicates(C.ITEM_IDX).set_index(C.ITEM_IDX)[C.ITEM_ID]
    scores = x @ b
    expected = []
    for user in np.flatnonzero(x.sum(axis=1)):
        cand = [
            (-scores[user, j], item_id[items[j]], j)
            for j in range(len(items))
            if x[user, j] == 0 and scores[user, j] > 0
        ]
        for rank, (neg, iid, _) in enumerate(sorted(cand)[:5], start=1):
            expected.append((f"u{user:02d}", iid, rank, -neg))
    want = pd.DataFrame(expected, columns=[C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE])
    got = got[[C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE]].sort_values([C.USER_ID, C.RANK])
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False, rtol=1e-9
    )


def interactions(spark: SparkSession, pairs: pd.DataFrame):
    start = datetime(2026, 3, 1)
    rows = [
        (f"e{k}", r.user_id, r.item_id, int(r.user_idx), int(r.item_idx), "view",
         start + timedelta(hours=k), (start + timedelta(hours=k)).date(), None, 1.0, "f", "b",
         start)
        for k, r in enumerate(pairs.itertuples())
    ]  # fmt: skip
    return spark.createDataFrame(rows, INTERACTIONS)


def test_run_writes_full_unseen_lists_or_skips_a_catalogue_too_large(
    spark: SparkSession, tmp_path: Path
) -> None:
    pairs = random_pairs(4)
    cfg = load_config(None, [f"storage.root={tmp_path}", "ease.l2=5"])
    delta.overwrite(interactions(spark, pairs), cfg.storage.table(tables.INTERACTIONS))
    report = run_ease(spark, cfg.ease, cfg.recommend, cfg.storage, top_n=4)
    assert report.skipped is None and report.items == pairs[C.ITEM_IDX].nunique()
    recs = delta.read_table(spark, cfg.storage.table(tables.MODEL_RECOMMENDATIONS))
    assert {r[0] for r in recs.select(C.MODEL).distinct().collect()} == {tables.EASE}
    per_user = recs.groupBy(C.USER_ID).agg(F.count("*").alias("n")).toPandas()
    assert len(per_user) == pairs[C.USER_ID].nunique() and set(per_user["n"]) == {4}
    seen = set(zip(pairs[C.USER_ID], pairs[C.ITEM_ID], strict=True))
    assert not seen & {(r[C.USER_ID], r[C.ITEM_ID]) for r in recs.collect()}

    small = EaseConfig(max_items=10)
    skipped = run_ease(spark, small, cfg.recommend, cfg.storage, top_n=4, run_id="again")
    assert "ease.max_items 10" in (skipped.skipped or "")
    again = delta.read_table(spark, cfg.storage.table(tables.MODEL_RECOMMENDATIONS))
    assert again.filter(F.col(C.RUN_ID) == "again").count() == 0  # nothing written


def test_config_refuses_a_non_positive_l2() -> None:
    with pytest.raises(ConfigError, match="ease.l2"):
        load_config(None, ["ease.l2=0"])
    with pytest.raises(ConfigError, match="ease.precision"):
        load_config(None, ["ease.precision=float16"])
