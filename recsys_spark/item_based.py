"""Item-based top-N: score(u, j) = sum over the user's history i of affinity(u, i) x sim(i, j).

The similarity matrix holds at most top-K neighbours per item, so it is catalogue-sized
(items x K) whatever the number of users: it is broadcast once, and each partition of
users multiplies its sparse affinity block by it in scipy (a sparse product in C instead
of a join that would emit one row per user x history item x neighbour).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C

USERS_PER_CHUNK = 4_096

_SCORED_SCHEMA = "user_idx int, user_id string, item_idx int, rank int, score double"


def recommend_item_based(
    affinity: DataFrame,
    similarity: DataFrame,
    *,
    measure: str,
    top_n: int = 10,
    num_partitions: int = 0,
) -> DataFrame:
    """Top-`top_n` unseen items per user from their history and item-item similarities.

    Parameters
    ----------
    affinity
        `user_idx`, `user_id`, `item_idx`, `affinity` (> 0): every pair is history, and
        history items are never recommended.
    similarity
        Output of :func:`recsys_spark.similarity.item_similarity` (`item_idx`,
        `neighbour_idx`, `neighbour_id`, `measure`, `score`); the rows of `measure` are used.
    measure
        Which similarity to score with.
    top_n
        Items per user.
    num_partitions
        Partitions of users; 0 keeps Spark's shuffle partitions.

    Returns
    -------
    DataFrame
        `user_idx`, `user_id`, `item_idx`, `item_id`, `rank` (1 = best), `score` (double).
        Only items with a positive score are recommended; ties go to the smaller item
        id. Users whose history has no neighbours get no rows.
    """
    if top_n <= 0:
        raise ValueError(f"top_n must be positive; got {top_n}")
    spark = affinity.sparkSession
    sims = similarity.filter(F.col(C.MEASURE) == measure).select(
        C.ITEM_IDX, C.NEIGHBOUR_IDX, C.NEIGHBOUR_ID, C.SCORE
    )
    # Catalogue-sized (items x top-K rows): safe to bring to the driver and broadcast.
    local = sims.toPandas()
    matrix, tie_rank = _similarity_matrix(local)
    shared = spark.sparkContext.broadcast(
        (matrix.indptr, matrix.indices, matrix.data, matrix.shape, tie_rank)
    )
    history = affinity.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.AFFINITY).filter(
        F.col(C.USER_IDX).isNotNull() & F.col(C.ITEM_IDX).isNotNull()
    )
    history = (
        history.repartition(num_partitions, C.USER_IDX)
        if num_partitions
        else history.repartition(C.USER_IDX)
    )
    scored = history.mapInArrow(partial(_score_users, shared=shared, top_n=top_n), _SCORED_SCHEMA)
    item_ids = F.broadcast(
        sims.select(
            F.col(C.NEIGHBOUR_IDX).alias(C.ITEM_IDX), F.col(C.NEIGHBOUR_ID).alias(C.ITEM_ID)
        ).distinct()
    )
    return scored.join(item_ids, on=C.ITEM_IDX, how="inner").select(
        C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.ITEM_ID, C.RANK, C.SCORE
    )


def similar_items(similarity: DataFrame, *, n: int = 10) -> DataFrame:
    """Each item's `n` most similar items per measure: the product-page list.

    Returns
    -------
    DataFrame
        `item_id`, `measure`, `rank` (1..n), `similar_item_id`, `score`.
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    return similarity.filter(F.col(C.RANK) <= n).select(
        C.ITEM_ID,
        C.MEASURE,
        C.RANK,
        F.col(C.NEIGHBOUR_ID).alias(C.SIMILAR_ITEM_ID),
        C.SCORE,
    )


def _similarity_matrix(rows: Any) -> tuple[sp.csr_matrix, np.ndarray]:
    """CSR item x neighbour matrix and each neighbour's position in item-id order."""
    item = rows[C.ITEM_IDX].to_numpy(dtype=np.int64)
    nbr = rows[C.NEIGHBOUR_IDX].to_numpy(dtype=np.int64)
    size = int(max(item.max(initial=-1), nbr.max(initial=-1))) + 1
    matrix = sp.csr_matrix(
        (rows[C.SCORE].to_numpy(dtype=np.float64), (item, nbr)), shape=(size, size)
    )
    ids = rows[[C.NEIGHBOUR_IDX, C.NEIGHBOUR_ID]].drop_duplicates()
    tie_rank = np.full(size, size, dtype=np.int64)
    order = np.argsort(ids[C.NEIGHBOUR_ID].to_numpy(dtype=object).astype(str), kind="stable")
    tie_rank[ids[C.NEIGHBOUR_IDX].to_numpy(dtype=np.int64)[order]] = np.arange(len(ids))
    return matrix, tie_rank


def _score_users(
    batches: Iterator[pa.RecordBatch], *, shared: Any, top_n: int
) -> Iterator[pa.RecordBatch]:
    """Score one partition's users against the broadcast similarity matrix."""
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    indptr, indices, data, shape, tie_rank = shared.value
    sim = sp.csr_matrix((data, indices, indptr), shape=shape)
    table = pa.Table.from_batches(chunks)
    users = table.column(C.USER_IDX).to_numpy()
    items = table.column(C.ITEM_IDX).to_numpy().astype(np.int64)
    weights = table.column(C.AFFINITY).to_numpy(zero_copy_only=False).astype(np.float64)
    user_idx, first, row = np.unique(users, return_index=True, return_inverse=True)
    user_ids = table.column(C.USER_ID).combine_chunks().take(pa.array(first))
    # Items without a row in the similarity matrix have no neighbours: they still count
    # as seen but cannot contribute to a score.
    known = items < shape[0]
    history = sp.csr_matrix(
        (weights[known], (row[known], items[known])), shape=(len(user_idx), shape[0])
    )
    seen = np.unique(row[known].astype(np.int64) * shape[1] + items[known])
    for start in range(0, len(user_idx), USERS_PER_CHUNK):
        stop = min(start + USERS_PER_CHUNK, len(user_idx))
        scores = (history[start:stop] @ sim).tocoo()
        r = scores.row.astype(np.int64) + start
        j = scores.col.astype(np.int64)
        keep = (scores.data > 0) & ~np.isin(r * shape[1] + j, seen)
        r, j, s = r[keep], j[keep], scores.data[keep]
        order = np.lexsort((tie_rank[j], -s, r))
        r_sorted = r[order]
        starts = np.flatnonzero(np.r_[True, r_sorted[1:] != r_sorted[:-1]])
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        top = order[rank < top_n]
        if not len(top):
            continue
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(user_idx[r[top]], pa.int32()),
                user_ids.take(pa.array(r[top])),
                pa.array(j[top], pa.int32()),
                pa.array(rank[rank < top_n] + 1, pa.int32()),
                pa.array(s[top], pa.float64()),
            ],
            names=[C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.RANK, C.SCORE],
        )
