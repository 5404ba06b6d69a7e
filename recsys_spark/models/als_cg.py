"""Implicit ALS by conjugate gradient inside Spark (Takacs, Pilaszy, Tikk 2011).

The loss is MLlib's implicit ALS, so the two solvers take the same hyperparameters: a
pair with rating r > 0 has preference 1 and confidence `1 + alpha * r`, every other pair
preference 0 and confidence 1, and a row with n ratings is regularised by
`reg_param * n` (ALS-WR, as MLlib does). Each half-iteration fixes one side's factors Y
and solves, for every row u of the other side,

    (Y'Y + sum_i alpha r_ui y_i y_i' + reg n_u I) x_u = sum_i (1 + alpha r_ui) y_i

approximately, with `cg_steps` conjugate-gradient steps started from the row's previous
factors, instead of MLlib's exact Cholesky solve of a k x k system per row. Rows are
solved in blocks, all rows of a block at once with vectorised numpy and scipy (a gather,
a sparse product and a small dense product per step), so a step costs about
`nnz * k + rows * k^2` multiply-adds.

Distribution: the ratings are grouped once into CSR row blocks per side (a cached RDD,
block b in partition b); each half-iteration solves the blocks in parallel tasks with
the fixed side's factors broadcast, warm-starting from the solved side's broadcast of
the half before. The driver assembles each half's factors and broadcasts them once (the
fixed side of the next half, the warm start of the one after): the solver therefore
needs both factor matrices to fit `broadcast_budget_mb`; `fits_budget` says whether they
do, and the caller falls back to MLlib when not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark.config import AlsConfig
from recsys_spark.logs import get_logger

log = get_logger(__name__)

_BLOCK = "_block"
_BLOCK_SCHEMA = T.StructType(
    [
        T.StructField(_BLOCK, T.IntegerType()),
        T.StructField("rows", T.BinaryType()),  # int32 row ids (user_idx or item_idx), sorted
        T.StructField("indptr", T.BinaryType()),  # int64 CSR offsets, len(rows) + 1
        T.StructField("cols", T.BinaryType()),  # int32 ids of the other side
        T.StructField("ratings", T.BinaryType()),  # float32 r_ui
    ]
)
# Rows of a block solved together: bounds the (nnz x rank) gathers of one chunk.
CHUNK_NNZ = 1 << 14


def cg_solve_rows(
    indptr: np.ndarray,
    cols: np.ndarray,
    ratings: np.ndarray,
    x0: np.ndarray,
    fixed: np.ndarray,
    gram: np.ndarray,
    *,
    reg_param: float,
    alpha: float,
    steps: int,
) -> np.ndarray:
    """`steps` conjugate-gradient steps of the implicit-ALS normal equations of a CSR block.

    Parameters
    ----------
    indptr, cols, ratings
        The block's ratings as CSR: row j holds `cols[indptr[j]:indptr[j+1]]` (indices
        into `fixed`) with ratings `ratings[...]` (all > 0).
    x0
        float32 (rows x rank): the rows' factors to start from.
    fixed
        float32 (n x rank): the other side's factors.
    gram
        `fixed.T @ fixed` (rank x rank).
    reg_param, alpha
        MLlib's `regParam` (scaled by each row's number of ratings) and `alpha`.
    steps
        Conjugate-gradient steps; the exact solution as steps reach the rank.

    Returns
    -------
    numpy.ndarray
        float32 (rows x rank): the new factors.
    """
    n_rows = indptr.size - 1
    counts = np.diff(indptr)
    x = x0.astype(np.float32, copy=True)
    if n_rows == 0:
        return x
    lam = (reg_param * counts).astype(np.float32)[:, None]
    conf = (alpha * ratings).astype(np.float32)  # confidence - 1
    gathered = np.take(fixed, cols, axis=0)  # (nnz x rank), reused by every step
    shape = (n_rows, fixed.shape[0])

    def product(v: np.ndarray) -> np.ndarray:
        """A v for every row at once: Y'Y v + sum_i conf_i (y_i . v) y_i + lam v."""
        # Each rating's row of v: rows are contiguous, so a repeat (3-4x faster than a gather).
        along = np.einsum("ij,ij->i", gathered, np.repeat(v, counts, axis=0)) * conf
        sparse = sp.csr_matrix((along, cols, indptr), shape=shape)
        return v @ gram + lam * v + np.asarray(sparse @ fixed)

    target = sp.csr_matrix((1.0 + conf, cols, indptr), shape=shape) @ fixed
    residual = np.asarray(target, dtype=np.float32) - product(x)
    direction = residual.copy()
    norm = np.einsum("ij,ij->i", residual, residual)
    for _ in range(steps):
        moved = product(direction)
        curvature = np.einsum("ij,ij->i", direction, moved)
        step = np.divide(norm, curvature, out=np.zeros_like(norm), where=curvature > 0)
        x += step[:, None] * direction
        residual -= step[:, None] * moved
        new_norm = np.einsum("ij,ij->i", residual, residual)
        ratio = np.divide(new_norm, norm, out=np.zeros_like(norm), where=norm > 0)
        direction = residual + ratio[:, None] * direction
        norm = new_norm
    return x


def solve_block(
    rows: np.ndarray,
    indptr: np.ndarray,
    cols: np.ndarray,
    ratings: np.ndarray,
    solved: np.ndarray,
    fixed: np.ndarray,
    gram: np.ndarray,
    *,
    reg_param: float,
    alpha: float,
    steps: int,
) -> np.ndarray:
    """`cg_solve_rows` over a whole block in chunks of about CHUNK_NNZ ratings; the new
    factors of `rows` (warm-started from `solved[rows]`)."""
    out = np.empty((rows.size, fixed.shape[1]), np.float32)
    start = 0
    while start < rows.size:
        # The chunk's last row: the first at which CHUNK_NNZ ratings are reached (>= 1 row).
        stop = int(np.searchsorted(indptr, indptr[start] + CHUNK_NNZ, side="right"))
        stop = min(max(stop - 1, start + 1), rows.size)
        lo, hi = indptr[start], indptr[stop]
        out[start:stop] = cg_solve_rows(
            indptr[start : stop + 1] - lo,
            cols[lo:hi],
            ratings[lo:hi],
            solved[rows[start:stop]],
            fixed,
            gram,
            reg_param=reg_param,
            alpha=alpha,
            steps=steps,
        )
        start = stop
    return out


def _group_block(frame: pd.DataFrame, row_col: str, col_col: str) -> pd.DataFrame:
    """One block's ratings (pandas rows) as one row of CSR arrays in bytes."""
    frame = frame.sort_values([row_col, col_col], kind="stable")
    ids = frame[row_col].to_numpy(np.int32)
    rows, counts = np.unique(ids, return_counts=True)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return pd.DataFrame(
        {
            _BLOCK: [int(frame[_BLOCK].iloc[0])],
            "rows": [rows.astype(np.int32).tobytes()],
            "indptr": [indptr.tobytes()],
            "cols": [frame[col_col].to_numpy(np.int32).tobytes()],
            "ratings": [frame[C.RATING].to_numpy(np.float32).tobytes()],
        }
    )


def rating_blocks(ratings: DataFrame, *, by: str, other: str, blocks: int) -> DataFrame:
    """`ratings` grouped into `blocks` CSR blocks of the `by` side (`by` modulo `blocks`),
    one row per block."""
    keyed = ratings.select(
        F.col(by).cast("int").alias(by),
        F.col(other).cast("int").alias(other),
        F.col(C.RATING).cast("float").alias(C.RATING),
        F.pmod(F.col(by), F.lit(blocks)).cast("int").alias(_BLOCK),
    )
    return keyed.groupBy(_BLOCK).applyInPandas(
        lambda frame: _group_block(frame, by, other), _BLOCK_SCHEMA
    )


@dataclass(frozen=True)
class CgAlsModel:
    """A fitted conjugate-gradient model, shaped like MLlib's `ALSModel` where the
    project reads it: `userFactors` and `itemFactors` with `id` (int) and `features`
    (array<float>), and `save(path)`."""

    userFactors: DataFrame
    itemFactors: DataFrame

    def save(self, path: str) -> None:
        """Both factor frames as Parquet under `path` (`userFactors/`, `itemFactors/`)."""
        self.userFactors.write.mode("overwrite").parquet(f"{path}/userFactors")
        self.itemFactors.write.mode("overwrite").parquet(f"{path}/itemFactors")


def factor_frame(spark: SparkSession, ids: np.ndarray, factors: np.ndarray) -> DataFrame:
    """`id` (int), `features` (array<float>) from ids and a float32 matrix, through Arrow."""
    flat = pa.array(np.ascontiguousarray(factors, np.float32).reshape(-1))
    features = pa.FixedSizeListArray.from_arrays(flat, factors.shape[1])
    table = pa.table(
        {
            "id": pa.array(ids.astype(np.int32)),
            "features": features.cast(pa.list_(pa.float32())),
        }
    )
    return spark.createDataFrame(table)


def factor_bytes(n_users: int, n_items: int, rank: int) -> int:
    """Bytes of both float32 factor matrices (what each half-iteration broadcasts)."""
    return (n_users + n_items) * rank * 4


def fits_budget(n_users: int, n_items: int, rank: int, budget_mb: int) -> bool:
    """Whether both factor matrices fit the broadcast budget."""
    return factor_bytes(n_users, n_items, rank) <= budget_mb * 2**20


def initial_factors(size: int, rank: int, seed: int) -> np.ndarray:
    """Seeded starting factors (size x rank, float32): small uniform values, as the
    `implicit` library starts its conjugate-gradient fits."""
    rng = np.random.default_rng(seed)
    return rng.random((size, rank), dtype=np.float32) * np.float32(0.01)


def fit_cg(ratings: DataFrame, params: AlsConfig, *, blocks: int) -> CgAlsModel | None:
    """Fit implicit ALS by conjugate gradient on `ratings` (`user_idx`, `item_idx`,
    `rating` > 0; one row per pair, as `als_ratings` gives).

    Uses `params.rank`, `reg_param`, `alpha`, `max_iter`, `seed`, `cg_steps` and
    `broadcast_budget_mb`. Each iteration solves the users, then the items, in `blocks`
    tasks per side. Returns None, having read only the ratings' ids, when both factor
    matrices would not fit the budget (the caller then fits with MLlib).
    """
    rank, seed, budget_mb = params.rank, params.seed, params.broadcast_budget_mb
    started = time.perf_counter()
    spark = ratings.sparkSession
    sc = spark.sparkContext
    layout = {"user": (C.USER_IDX, C.ITEM_IDX), "item": (C.ITEM_IDX, C.USER_IDX)}
    # An RDD of numpy blocks, not a DataFrame: a half-iteration is then one light Python
    # job (about 0.1 s of overhead against 0.4 s for a mapInPandas over the same blocks).
    by_side = {
        side: rating_blocks(ratings, by=by, other=other, blocks=blocks)
        .rdd.map(_decode)
        .partitionBy(blocks, lambda block: block)  # block b in partition b: one task each
        .cache()
        for side, (by, other) in layout.items()
    }
    ids = {}
    for side, rdd in by_side.items():
        parts = rdd.map(lambda block: block[1][0]).collect()  # the ids: one array per block
        ids[side] = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int32)
    sizes = {side: int(v.max()) + 1 if v.size else 0 for side, v in ids.items()}
    if not fits_budget(sizes["user"], sizes["item"], rank, budget_mb):
        need = factor_bytes(sizes["user"], sizes["item"], rank) / 2**20
        log.info(
            "CG ALS: the factors need %.0f MB, over als.broadcast_budget_mb=%d", need, budget_mb
        )
        for rdd in by_side.values():
            rdd.unpersist()
        return None
    built = time.perf_counter()
    users = initial_factors(sizes["user"], rank, seed)
    items = initial_factors(sizes["item"], rank, seed + 1)
    solve_args = {"reg_param": params.reg_param, "alpha": params.alpha, "steps": params.cg_steps}

    def shared(factors: np.ndarray) -> Any:
        """A side's factors and their Gram matrix, broadcast once: fixed in one
        half-iteration, the warm start of the next."""
        return sc.broadcast((factors, (factors.T @ factors).astype(np.float32)))

    def half(rdd: Any, solved: Any, fixed: Any) -> tuple[np.ndarray, Any]:
        def solve(block: tuple[int, tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray]:
            start, _ = solved.value
            fixed_, gram = fixed.value
            rows, indptr, cols, values = block[1]
            return rows, solve_block(rows, indptr, cols, values, start, fixed_, gram, **solve_args)

        out = solved.value[0].copy()
        for rows, new in rdd.map(solve).collect():
            out[rows] = new
        solved.destroy()
        return out, shared(out)

    users_bc, items_bc = shared(users), shared(items)
    for iteration in range(params.max_iter):
        users, users_bc = half(by_side["user"], users_bc, items_bc)
        items, items_bc = half(by_side["item"], items_bc, users_bc)
        log.debug("CG ALS iteration %d/%d done", iteration + 1, params.max_iter)
    users_bc.destroy()
    items_bc.destroy()
    log.info(
        "CG ALS: %d users, %d items, rank %d: blocks %.1f s, %d iterations %.1f s",
        ids["user"].size,
        ids["item"].size,
        rank,
        built - started,
        params.max_iter,
        time.perf_counter() - built,
    )
    for rdd in by_side.values():
        rdd.unpersist()
    return CgAlsModel(
        factor_frame(spark, ids["user"], users[ids["user"]]),
        factor_frame(spark, ids["item"], items[ids["item"]]),
    )


def _decode(row: Any) -> tuple[int, tuple[np.ndarray, ...]]:
    """A block row as (block, arrays): ids, CSR offsets, the other side's ids, ratings."""
    return row[_BLOCK], (
        np.frombuffer(row["rows"], np.int32),
        np.frombuffer(row["indptr"], np.int64),
        np.frombuffer(row["cols"], np.int32),
        np.frombuffer(row["ratings"], np.float32),
    )
