"""Executor kernels of the co-occurrence stage: whole rows of C = XᵀX per block of items.

The items are split into blocks of equal work. Every user's capped history is copied
once to each block holding one of its items (`replicate_histories`), so the task of a
block sees every user of its items together with all their other items and computes
complete rows of C with one scipy sparse product (`block_neighbours`). No partial
counts cross the network: the support filter, the measures and the top-K run on final
counts in the same task, in chunks of rows of bounded work.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recsys_spark import columns as C
from recsys_spark.arrays import distinct
from recsys_spark.similarity.measures import similarity_scores
from recsys_spark.similarity.top_k import top_k_per_group

BLOCK = "_block"
# Pair incidences (sum over users of n_u per item row) one product handles at once:
# bounds the temporaries of a Python worker to a few hundred MB.
WORK_PER_CHUNK = 10_000_000
_ROWS_PER_BATCH = 1 << 20

HISTORY_SCHEMA = f"{BLOCK} int, {C.USER_IDX} int, {C.ITEM_IDX} int"
RANKED_SCHEMA = (
    f"{C.ITEM_IDX} int, {C.NEIGHBOUR_IDX} int, {C.MEASURE} string, {C.RANK} int, "
    f"{C.SCORE} double, {C.COOCCURRENCE} long"
)


def balanced_blocks(work: np.ndarray, n_blocks: int) -> np.ndarray:
    """Block of each item: consecutive item indices, cut where the running work crosses
    a multiple of total / n_blocks, so every block costs about the same.

    Parameters
    ----------
    work
        Per item index, the cost of its row of C (sum of the history sizes of its users).
    n_blocks
        Number of blocks.

    Returns
    -------
    numpy.ndarray
        int32 block in [0, n_blocks) per item index.
    """
    work = np.asarray(work, dtype=np.int64)
    total = int(work.sum())
    if total == 0:
        return np.zeros(len(work), dtype=np.int32)
    before = np.cumsum(work) - work
    return np.minimum(before * n_blocks // total, n_blocks - 1).astype(np.int32)


def replicate_histories(
    batches: Iterator[pa.RecordBatch], *, block_of: np.ndarray
) -> Iterator[pa.RecordBatch]:
    """Each user's items, once per block that holds one of them, as (block, user, item).

    The partition must hold whole users (see `caps.capped_by_user`).
    """
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    table = pa.Table.from_batches(chunks)
    users = table.column(C.USER_IDX).to_numpy()
    items = table.column(C.ITEM_IDX).to_numpy()
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    user_ids, starts, sizes = np.unique(users, return_index=True, return_counts=True)
    n_blocks = int(block_of.max(initial=0)) + 1
    # Distinct (user, block) pairs; a user's rows are already contiguous.
    key = distinct(np.searchsorted(user_ids, users).astype(np.int64) * n_blocks + block_of[items])
    pos, blocks = key // n_blocks, (key % n_blocks).astype(np.int32)
    lengths = sizes[pos]
    offsets = np.repeat(starts[pos] - (np.cumsum(lengths) - lengths), lengths)
    take = offsets + np.arange(int(lengths.sum()))
    out_block, out_user = np.repeat(blocks, lengths), users[take]
    out_item = items[take]
    for lo in range(0, len(take), _ROWS_PER_BATCH):
        hi = lo + _ROWS_PER_BATCH
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(out_block[lo:hi], pa.int32()),
                pa.array(out_user[lo:hi], pa.int32()),
                pa.array(out_item[lo:hi], pa.int32()),
            ],
            names=[BLOCK, C.USER_IDX, C.ITEM_IDX],
        )


def block_matrices(
    batches: Iterator[pa.RecordBatch], *, block_of: np.ndarray, n_items: int
) -> Iterator[tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]]:
    """Per item block of this partition (rows of `replicate_histories`): the binary
    user x item matrix X of its users, Xᵀ, and the block's own items that have users.
    Complete rows of C = XᵀX for those items are `Xᵀ[own] @ X`."""
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    table = pa.Table.from_batches(chunks)
    block = table.column(BLOCK).to_numpy()
    users = table.column(C.USER_IDX).to_numpy()
    items = table.column(C.ITEM_IDX).to_numpy()
    for b in np.unique(block):
        mine = block == b
        _, row = np.unique(users[mine], return_inverse=True)
        x = sp.csr_matrix(
            (np.ones(len(row), dtype=np.int32), (row, items[mine])),
            shape=(int(row.max()) + 1, n_items),
        )
        xt = x.T.tocsr()
        yield x, xt, np.flatnonzero((block_of == b) & (np.diff(xt.indptr) > 0))


def block_neighbours(
    batches: Iterator[pa.RecordBatch],
    *,
    block_of: np.ndarray,
    measures: tuple[str, ...],
    item_counts: np.ndarray,
    tie_rank: np.ndarray,
    n_users: int,
    min_support: int,
    top_k: int,
) -> Iterator[pa.RecordBatch]:
    """Top-K neighbours of every item of the blocks in this partition, per measure.

    Rows: `item_idx`, `neighbour_idx`, `measure`, `rank`, `score`, `cooccurrence`.
    """
    for x, xt, own in block_matrices(batches, block_of=block_of, n_items=len(item_counts)):
        # Cost of each own row of C: the history sizes of its users, summed.
        work = xt[own] @ np.diff(x.indptr).astype(np.int64)
        cuts = np.flatnonzero(np.diff(np.cumsum(work) // WORK_PER_CHUNK)) + 1
        for rows in np.split(own, cuts):
            yield from _ranked_rows(
                rows,
                (xt[rows] @ x).tocsr(),
                measures=measures,
                item_counts=item_counts,
                tie_rank=tie_rank,
                n_users=n_users,
                min_support=min_support,
                top_k=top_k,
            )


def _ranked_rows(
    rows: np.ndarray,
    counts: sp.csr_matrix,
    *,
    measures: tuple[str, ...],
    item_counts: np.ndarray,
    tie_rank: np.ndarray,
    n_users: int,
    min_support: int,
    top_k: int,
) -> Iterator[pa.RecordBatch]:
    """Score the complete co-occurrence rows of items `rows` and keep the top K."""
    item = np.repeat(rows, np.diff(counts.indptr))
    keep = (counts.data >= min_support) & (counts.indices != item)
    item, j, c_ij = item[keep], counts.indices[keep].astype(np.int64), counts.data[keep]
    if not len(item):
        return
    for measure in measures:
        scores = similarity_scores(measure, c_ij, item_counts[item], item_counts[j], n_users)
        top, rank = top_k_per_group(item, scores, tie_rank[j], top_k)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(item[top], pa.int32()),
                pa.array(j[top], pa.int32()),
                pa.array([measure], pa.string()).take(pa.array(np.zeros(len(top), np.int32))),
                pa.array(rank, pa.int32()),
                pa.array(scores[top], pa.float64()),
                pa.array(c_ij[top], pa.int64()),
            ],
            names=[C.ITEM_IDX, C.NEIGHBOUR_IDX, C.MEASURE, C.RANK, C.SCORE, C.COOCCURRENCE],
        )
