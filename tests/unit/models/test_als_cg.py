"""The conjugate-gradient ALS solver: its step against exact solves, its blocks against one
local run, determinism, and the fall-back to MLlib above the broadcast budget."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import SparkSession

from recsys_spark import columns as C
from recsys_spark.config import AlsConfig, ConfigError
from recsys_spark.models import als_cg
from recsys_spark.models.als import fit_als, item_factors, user_factors
from recsys_spark.models.als_cg import cg_solve_rows, fit_cg, fits_budget, solve_block

RATINGS_DDL = f"{C.USER_IDX} int, {C.ITEM_IDX} int, {C.RATING} float"


def _ratings(seed: int, n_rows: int = 40, n_cols: int = 30, density: float = 0.15) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sp.random(n_rows, n_cols, density=density, random_state=seed, format="csr")
    m.data = rng.integers(1, 6, m.nnz).astype(np.float32)
    m.sort_indices()
    return m.astype(np.float32)


def _exact(m: sp.csr_matrix, fixed: np.ndarray, reg: float, alpha: float) -> np.ndarray:
    """MLlib's implicit normal equations solved row by row in float64 (the reference)."""
    gram = fixed.T.astype(np.float64) @ fixed
    out = np.zeros((m.shape[0], fixed.shape[1]))
    for u in range(m.shape[0]):
        cols, r = m.indices[m.indptr[u] : m.indptr[u + 1]], m.data[m.indptr[u] : m.indptr[u + 1]]
        y = fixed[cols].astype(np.float64)
        a = gram + (y.T * (alpha * r)) @ y + reg * cols.size * np.eye(fixed.shape[1])
        out[u] = np.linalg.solve(a, ((1.0 + alpha * r)[:, None] * y).sum(axis=0))
    return out


def test_enough_cg_steps_reach_the_exact_solution_and_few_steps_do_not() -> None:
    m = _ratings(1)
    fixed = np.random.default_rng(2).normal(size=(m.shape[1], 6)).astype(np.float32)
    exact = _exact(m, fixed, reg=0.1, alpha=2.0)
    start = np.zeros((m.shape[0], 6), np.float32)
    args = {"reg_param": 0.1, "alpha": 2.0}
    gram = fixed.T @ fixed
    solved = cg_solve_rows(m.indptr, m.indices, m.data, start, fixed, gram, steps=18, **args)
    assert np.allclose(solved, exact, rtol=1e-4, atol=1e-4)
    one_step = cg_solve_rows(m.indptr, m.indices, m.data, start, fixed, gram, steps=1, **args)
    assert not np.allclose(one_step, exact, rtol=1e-2, atol=1e-2)


def test_chunks_do_not_change_the_result_and_a_row_without_ratings_goes_to_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = _ratings(3)
    m = sp.vstack([m[:5], sp.csr_matrix((1, m.shape[1]), dtype=np.float32), m[5:]]).tocsr()
    fixed = np.random.default_rng(4).normal(size=(m.shape[1], 4)).astype(np.float32)
    start = np.random.default_rng(5).normal(size=(m.shape[0], 4)).astype(np.float32)
    rows = np.arange(m.shape[0], dtype=np.int32)
    args = {"reg_param": 0.05, "alpha": 1.0, "steps": 3}
    whole = solve_block(rows, m.indptr, m.indices, m.data, start, fixed, fixed.T @ fixed, **args)
    monkeypatch.setattr(als_cg, "CHUNK_NNZ", 7)  # chunks of a few rows each
    chunked = solve_block(rows, m.indptr, m.indices, m.data, start, fixed, fixed.T @ fixed, **args)
    assert np.allclose(whole, chunked, atol=1e-6)
    # No ratings: the right-hand side is 0, so the row's factors shrink towards 0 (no NaN).
    assert np.isfinite(whole).all()
    assert np.linalg.norm(whole[5]) < 0.1 * np.linalg.norm(start[5])


def _local_fit(m: sp.csr_matrix, rank: int, iters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same algorithm in one process: every row of a side in one block."""
    users = als_cg.initial_factors(m.shape[0], rank, seed)
    items = als_cg.initial_factors(m.shape[1], rank, seed + 1)
    t = m.T.tocsr()
    t.sort_indices()
    args = {"reg_param": 0.1, "alpha": 2.0, "steps": 3}
    for _ in range(iters):
        users = cg_solve_rows(m.indptr, m.indices, m.data, users, items, items.T @ items, **args)
        items = cg_solve_rows(t.indptr, t.indices, t.data, items, users, users.T @ users, **args)
    return users, items


def _features(frame) -> dict[int, np.ndarray]:
    return {r["id"]: np.array(r["features"], np.float32) for r in frame.collect()}


def test_spark_blocks_give_the_factors_of_one_local_run_and_refits_are_identical(
    spark: SparkSession,
) -> None:
    m = _ratings(6, n_rows=25, n_cols=18, density=0.25)
    coo = m.tocoo()
    # User 3 and item 4 have no ratings: they get no factors.
    keep = (coo.row != 3) & (coo.col != 4)
    rows = [
        (int(u), int(i), float(r))
        for u, i, r in zip(coo.row[keep], coo.col[keep], coo.data[keep], strict=True)
    ]
    frame = spark.createDataFrame(rows, RATINGS_DDL)
    params = AlsConfig(rank=3, reg_param=0.1, alpha=2.0, max_iter=4, seed=11)
    model = fit_cg(frame, params, blocks=3)
    again = fit_cg(frame, params, blocks=3)
    assert model is not None and again is not None
    local = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=m.shape)
    local.sort_indices()
    users, items = _local_fit(local, rank=3, iters=4, seed=11)
    # float32 sums in another order (blocks, chunks): equal to about 1e-4, not bit for bit.
    got_users, got_items = _features(model.userFactors), _features(model.itemFactors)
    assert sorted(got_users) == [u for u in range(25) if u != 3]
    assert sorted(got_items) == [i for i in range(18) if i != 4]
    assert np.allclose(np.stack([got_users[u] for u in sorted(got_users)]),
                       users[sorted(got_users)], atol=1e-3)  # fmt: skip
    assert np.allclose(np.stack([got_items[i] for i in sorted(got_items)]),
                       items[sorted(got_items)], atol=1e-3)  # fmt: skip
    assert _features(again.userFactors).keys() == got_users.keys()
    assert all(np.array_equal(v, got_users[k]) for k, v in _features(again.userFactors).items())


def test_factors_over_the_budget_fall_back_to_mllib(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 users + 20 items at rank 4,096 need 640 KB; at rank 8,192 1.25 MB > 1 MB.
    assert fits_budget(20, 20, 4096, 1) and not fits_budget(20, 20, 8192, 1)
    rows = [(u, (u + k) % 20, 1.0) for u in range(20) for k in range(3)]
    frame = spark.createDataFrame(rows, RATINGS_DDL)
    over = AlsConfig(rank=8192, max_iter=1, broadcast_budget_mb=1)
    assert fit_cg(frame, over, blocks=2) is None
    params = AlsConfig(rank=2, max_iter=2, solver="cg", broadcast_budget_mb=1)
    model = fit_als(frame, params)
    assert not isinstance(model, ALSModel)  # within the budget: the CG model
    assert user_factors(model).count() == 20 and item_factors(model).count() == 20
    # Over the budget (whatever the sizes): fit_als falls back to MLlib.
    monkeypatch.setattr(als_cg, "fits_budget", lambda *_: False)
    fallback = fit_als(frame, params)
    assert isinstance(fallback, ALSModel)
    assert user_factors(fallback).count() == 20


def test_solver_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="als.solver"):
        AlsConfig(solver="sgd")
    with pytest.raises(ConfigError, match="cg_steps"):
        AlsConfig(cg_steps=0)
    with pytest.raises(ConfigError, match="cg_blocks"):
        AlsConfig(cg_blocks=-1)
