"""EASE (Steck 2019): a closed-form linear item-item model, scored like the item-based lists.

With X the binary user x item matrix and G = XᵀX its Gram matrix, EASE's weights are

    P = (G + λI)⁻¹,   B_ij = -P_ij / P_jj,   B_jj = 0,

and a user's score of item j is Σ_i x_ui B_ij over their history. The plan:

1. G in Spark: the co-occurrence blocks (recsys_spark.similarity.blocks) give every item
   block's complete rows of XᵀX, diagonal included, with no caps (EASE needs the full
   counts); only the nonzero counts reach the driver;
2. the solve on the driver (LAPACK's Cholesky inverse, in place), for catalogues up to
   `ease.max_items` items (one dense items x items matrix in `ease.precision`: 1.6 GB
   in float32, 3.2 GB in float64 at 20,000 items, and the pruned weights); a larger
   catalogue skips EASE with a logged reason;
3. each history item keeps its `ease.top_k` weights of largest magnitude (0 keeps them
   all), and every user is scored through the item-based path
   (`recommend_from_matrix`: the weights are broadcast, users scored per partition,
   seen items masked). Lists are completed from the popularity ranking.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark import tables
from recsys_spark.config import EaseConfig, RecommendConfig, StorageConfig
from recsys_spark.io import delta
from recsys_spark.logs import get_logger, stage
from recsys_spark.models.affinity import user_item_affinity
from recsys_spark.models.fallback import recommend_with_fallback, served_frames, users_by_source
from recsys_spark.models.item_based import recommend_from_matrix
from recsys_spark.models.lists import write_recommendations
from recsys_spark.models.popularity import popular_items
from recsys_spark.similarity.blocks import (
    BLOCK,
    HISTORY_SCHEMA,
    balanced_blocks,
    block_matrices,
    replicate_histories,
)
from recsys_spark.similarity.cooccurrence import partition_keys

log = get_logger(__name__)

_GRAM_SCHEMA = f"{C.ITEM_IDX} int, {C.NEIGHBOUR_IDX} int, {C.COOCCURRENCE} long"
# Rows of G (or of B) handled at once: bounds the temporaries of a product or a top-K.
_ROWS_PER_CHUNK = 1_024


@dataclass(frozen=True)
class EaseWeights:
    """EASE's weights: history item x candidate, by position in `items` (sorted item_idx)."""

    matrix: sp.csr_matrix
    items: pd.DataFrame  # item_idx, item_id of every item with a row, in item_idx order


@dataclass(frozen=True)
class EaseReport:
    """What one run wrote; `skipped` says why EASE did not run (None when it did)."""

    run_id: str
    items: int
    weights: int
    recommendation_rows: int
    users_by_source: dict[str, int]
    skipped: str | None = None


def gram_counts(pairs: DataFrame, *, num_partitions: int = 0) -> tuple[pd.DataFrame, sp.coo_matrix]:
    """The items of `pairs` and their Gram matrix XᵀX (binary X), diagonal included.

    Parameters
    ----------
    pairs
        `user_idx`, `item_idx`, `item_id`: any pair counts once.
    num_partitions
        Item blocks; 0 = one per core.

    Returns
    -------
    (items, gram)
        `items`: `item_idx`, `item_id` sorted by `item_idx`; `gram`: the counts as a
        COO matrix indexed by position in `items`.
    """
    spark = pairs.sparkSession
    binary = pairs.select(
        F.col(C.USER_IDX).cast("int").alias(C.USER_IDX),
        F.col(C.ITEM_IDX).cast("int").alias(C.ITEM_IDX),
        F.col(C.ITEM_ID).cast("string").alias(C.ITEM_ID),
    ).dropDuplicates([C.USER_IDX, C.ITEM_IDX])
    binary = binary.repartition(C.USER_IDX).persist()
    catalogue = (
        binary.groupBy(C.ITEM_IDX)
        .agg(F.min(C.ITEM_ID).alias(C.ITEM_ID), F.count(F.lit(1)).alias("_users"))
        .toPandas()
        .sort_values(C.ITEM_IDX, ignore_index=True)
    )
    idx = catalogue[C.ITEM_IDX].to_numpy(dtype=np.int64)
    size = int(idx.max()) + 1 if len(idx) else 0
    # Work of an item's row of G grows with its users; blocks of equal work.
    work = np.zeros(size, dtype=np.int64)
    work[idx] = catalogue["_users"].to_numpy(dtype=np.int64)
    n_blocks = max(1, min(num_partitions or spark.sparkContext.defaultParallelism, len(idx)))
    block_of = balanced_blocks(work, n_blocks)
    keys = F.array(*[F.lit(k) for k in partition_keys(n_blocks)])
    histories = binary.mapInArrow(partial(replicate_histories, block_of=block_of), HISTORY_SCHEMA)
    rows = (
        histories.repartition(n_blocks, F.element_at(keys, F.col(BLOCK) + 1))
        .mapInArrow(partial(_gram_rows, block_of=block_of, n_items=size), _GRAM_SCHEMA)
        .toArrow()
    )
    binary.unpersist()
    pos = np.full(size, -1, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    gram = sp.coo_matrix(
        (
            rows.column(C.COOCCURRENCE).to_numpy().astype(np.float64),
            (
                pos[rows.column(C.ITEM_IDX).to_numpy()],
                pos[rows.column(C.NEIGHBOUR_IDX).to_numpy()],
            ),
        ),
        shape=(len(idx), len(idx)),
    )
    return catalogue[[C.ITEM_IDX, C.ITEM_ID]], gram


def ease_weights(
    gram: sp.spmatrix | np.ndarray, *, l2: float, top_k: int = 0, precision: str = "float64"
) -> sp.csr_matrix:
    """EASE's B from the Gram matrix: B = -P / diag(P), P = (G + l2 I)⁻¹, diagonal 0.

    Each row (history item) keeps its `top_k` weights of largest magnitude (0: all).
    `precision` (`float64` or `float32`) is the solve's: float32 halves the dense
    matrix's memory and about halves the solve's time. Returns a CSR matrix of the kept
    weights, in that precision.
    """
    if l2 <= 0:
        raise ValueError(f"l2 must be positive; got {l2}")
    dtype = np.dtype(precision)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"precision must be float32 or float64; got {precision}")
    g = gram.astype(dtype).toarray() if sp.issparse(gram) else np.array(gram, dtype)
    g[np.diag_indices_from(g)] += l2
    b = _spd_inverse(g)
    b /= -np.diag(b).copy()  # column j divided by -P_jj, in place
    np.fill_diagonal(b, 0.0)
    n = len(b)
    if not top_k or top_k >= n:
        return sp.csr_matrix(b)
    parts = []
    for lo in range(0, n, _ROWS_PER_CHUNK):
        rows = b[lo : lo + _ROWS_PER_CHUNK]
        keep = np.argpartition(-np.abs(rows), top_k - 1, axis=1)[:, :top_k]
        r = np.repeat(np.arange(len(rows)), top_k)
        parts.append(
            sp.csr_matrix((rows[r, keep.ravel()], (r, keep.ravel())), shape=(len(rows), n))
        )
    return sp.vstack(parts, format="csr")


def _spd_inverse(g: np.ndarray) -> np.ndarray:
    """The inverse of the symmetric positive definite `g`, computed in place.

    Cholesky (LAPACK potrf + potri) costs about half the flops of a general inverse
    (np.linalg.inv's LU) and needs no second matrix: G and G⁻¹ share one buffer.
    """
    from scipy.linalg import lapack

    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (g,))  # d... or s...
    # g is symmetric: its transpose is the same matrix in Fortran order (no copy).
    factor, info = potrf(g.T, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        factor, info = potri(factor, lower=True, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"XᵀX + l2 I is not positive definite (LAPACK info {info})")
    inv = factor.T  # C order; potri filled the lower triangle of `factor`, i.e. our upper
    for lo in range(0, len(inv), _ROWS_PER_CHUNK):
        hi = lo + _ROWS_PER_CHUNK
        inv[lo:hi, :lo] = inv[:lo, lo:hi].T
        block = inv[lo:hi, lo:hi]
        block[np.tril_indices(len(block), -1)] = block.T[np.tril_indices(len(block), -1)]
    return inv


def fit_ease(pairs: DataFrame, cfg: EaseConfig) -> EaseWeights | str:
    """EASE's weights for the pairs, or the reason it was skipped (too many items)."""
    items, gram = gram_counts(pairs, num_partitions=cfg.num_partitions)
    if len(items) > cfg.max_items:
        return (
            f"{len(items):,} items > ease.max_items {cfg.max_items:,}: the dense solve "
            "would not fit the driver; EASE skipped"
        )
    with stage(log, f"EASE solve ({len(items):,} items, l2 {cfg.l2:g})"):
        matrix = ease_weights(gram, l2=cfg.l2, top_k=cfg.top_k, precision=cfg.precision)
    return EaseWeights(matrix, items)


def recommend_ease(
    affinity: DataFrame,
    weights: EaseWeights,
    *,
    top_n: int,
    seen: DataFrame | None = None,
    num_partitions: int = 0,
) -> DataFrame:
    """Top-`top_n` unseen items per user with positive EASE scores (binary history).

    Returns `user_idx`, `user_id`, `item_idx`, `item_id`, `rank`, `score`,
    `because_item_id` (the history item with the largest weight towards the item); ties
    go to the smaller item id; users with no positive score get no rows.
    """
    if top_n <= 0:
        raise ValueError(f"top_n must be positive; got {top_n}")
    idx = weights.items[C.ITEM_IDX].to_numpy(dtype=np.int64)
    size = int(idx.max()) + 1 if len(idx) else 0
    # Re-index the weights by item_idx, the index the scoring path uses.
    coo = weights.matrix.tocoo()
    matrix = sp.csr_matrix((coo.data, (idx[coo.row], idx[coo.col])), shape=(size, size))
    tie_rank = np.full(size, size, dtype=np.int64)
    order = np.argsort(weights.items[C.ITEM_ID].to_numpy(dtype=object).astype(str), kind="stable")
    tie_rank[idx[order]] = np.arange(len(idx))
    binary = affinity.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, F.lit(1.0).alias(C.AFFINITY))
    return recommend_from_matrix(
        binary,
        matrix,
        tie_rank,
        weights.items,
        top_n=top_n,
        seen=seen,
        num_partitions=num_partitions,
    )


def run_ease(
    spark: SparkSession,
    ease: EaseConfig,
    recommend: RecommendConfig,
    storage: StorageConfig,
    *,
    top_n: int | None = None,
    run_id: str | None = None,
    serve: DataFrame | None = None,
) -> EaseReport:
    """Fit EASE on `storage`'s interactions; its lists (model `ease`) into
    `model_recommendations` under the same root, completed from the popularity ranking.

    `top_n` defaults to `recommend.top_n`; `serve` (`user_id`s) limits the lists to
    those users (the nightly's holdout users). When the catalogue exceeds
    `ease.max_items`, nothing is written and the report says why.
    """
    top_n = recommend.top_n if top_n is None else top_n
    run_id = run_id or f"ease-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    interactions = delta.read_required(spark, storage.table(tables.INTERACTIONS))
    affinity = user_item_affinity(interactions).persist()
    with stage(log, "EASE fit"):
        fitted = fit_ease(affinity, ease)
    if isinstance(fitted, str):
        log.warning(fitted)
        affinity.unpersist()
        return EaseReport(run_id, 0, 0, 0, {}, skipped=fitted)
    users, histories, seen = served_frames(interactions, affinity, serve)
    events = interactions.select(C.USER_ID, C.ITEM_ID, F.col(C.EVENT_TS).alias(C.LAST_TS))
    popular = popular_items(events, window_days=recommend.popularity_window_days)
    path = storage.table(tables.MODEL_RECOMMENDATIONS)
    with stage(log, f"EASE top-{top_n}"):
        lists = recommend_with_fallback(
            recommend_ease(histories, fitted, top_n=top_n, seen=seen),
            users,
            seen.select(C.USER_ID, C.ITEM_ID),
            popular,
            n=top_n,
        ).select(
            C.USER_ID,
            C.ITEM_ID,
            C.RANK,
            C.SCORE,
            F.lit(tables.EASE).alias(C.MODEL),
            C.SOURCE,
            F.lit(run_id).alias(C.RUN_ID),
            C.BECAUSE_ITEM_ID,
        )
        written = write_recommendations(lists, path, tables.EASE)
    affinity.unpersist()
    served = users_by_source(delta.read_table(spark, path).filter(F.col(C.MODEL) == tables.EASE))
    report = EaseReport(
        run_id,
        len(fitted.items),
        int(fitted.matrix.nnz),
        written.get("numOutputRows", 0),
        served,
    )
    log.info("run %s: %s", run_id, report)
    return report


def _gram_rows(
    batches: Iterator[pa.RecordBatch], *, block_of: np.ndarray, n_items: int
) -> Iterator[pa.RecordBatch]:
    """The complete rows of XᵀX (diagonal included) of every item block in this partition."""
    for x, xt, own in block_matrices(batches, block_of=block_of, n_items=n_items):
        for lo in range(0, len(own), _ROWS_PER_CHUNK):
            rows = own[lo : lo + _ROWS_PER_CHUNK]
            counts = (xt[rows] @ x).tocoo()
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(rows[counts.row], pa.int32()),
                    pa.array(counts.col, pa.int32()),
                    pa.array(counts.data, pa.int64()),
                ],
                names=[C.ITEM_IDX, C.NEIGHBOUR_IDX, C.COOCCURRENCE],
            )
