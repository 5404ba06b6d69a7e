"""Item-item co-occurrence on the binarised user-item matrix, and top-K neighbours per item.

The co-occurrence matrix is C = X^T X for the binary user x item matrix X. Instead of a
SQL self-join that shuffles one row per (user, i, j) triple, the work runs in two
Arrow stages on the executors:

1. users are hash-partitioned; each partition builds a scipy CSR block X_p of its users
   and computes the sparse product X_p^T X_p (the arithmetic scipy does in C), emitting
   one row per item with its neighbour and count arrays (an Arrow list, zero copy);
2. those rows are hash-partitioned by item; each partition sums the blocks of its items,
   drops pairs under the support threshold, computes every measure from the counts and
   keeps the top-K neighbours per item (ties by item id).

Only catalogue-sized data (one count and one tie rank per item, and the user count)
reaches the driver.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.similarity.measures import MEASURES, similarity_scores

# Pairs (sum of n_u^2 over users) one block product or one ranking partition handles
# at once: about 1 GiB of numpy temporaries at most.
PAIRS_PER_CHUNK = 20_000_000
PAIRS_PER_PARTITION = 40_000_000
ROWS_PER_BATCH = 4_096

_CAPPED_SCHEMA = "user_idx int, item_idx int, _h long"
_BLOCK_SCHEMA = "item_idx int, neighbours array<int>, counts array<int>"
_RANKED_SCHEMA = (
    "item_idx int, neighbour_idx int, measure string, rank int, score double, cooccurrence long"
)


def cap_interactions(
    pairs: DataFrame,
    *,
    max_per_user: int | None,
    max_per_item: int | None,
    seed: int,
    num_partitions: int = 0,
    user_col: str = C.USER_IDX,
    item_col: str = C.ITEM_IDX,
) -> DataFrame:
    """Binarise user-item pairs and downsample heavy items, then heavy users, at random.

    Each pair gets a seeded hash; an item keeps the `max_per_item` users with the
    smallest hashes, then a user keeps the `max_per_user` items with the smallest hashes
    (ties by the other index), as Mahout caps interactions so one heavy user cannot cost
    millions of pairs. After both steps every user has at most `max_per_user` items and
    every item at most `max_per_item` users. The same seed always keeps the same pairs.

    Parameters
    ----------
    pairs
        Frame with integer `user_col` and `item_col`; repeats are merged, nulls dropped.
    max_per_user, max_per_item
        The caps; None disables one.
    num_partitions
        Partitions of the capping shuffles; 0 uses spark.sql.shuffle.partitions.

    Returns
    -------
    DataFrame
        Distinct `user_idx`, `item_idx` (int) pairs.
    """
    for name, cap in (("max_per_user", max_per_user), ("max_per_item", max_per_item)):
        if cap is not None and cap <= 0:
            raise ValueError(f"{name} must be positive or None; got {cap}")
    binary = pairs.select(
        F.col(user_col).cast("int").alias(C.USER_IDX), F.col(item_col).cast("int").alias(C.ITEM_IDX)
    ).filter(F.col(C.USER_IDX).isNotNull() & F.col(C.ITEM_IDX).isNotNull())
    if max_per_user is None and max_per_item is None:
        return binary.distinct()
    parts = num_partitions or int(pairs.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    binary = binary.withColumn("_h", F.xxhash64(F.lit(seed), C.USER_IDX, C.ITEM_IDX))
    # A numpy sort per partition instead of a SQL window: the same rows, without Spark's
    # row-by-row window machinery (the caps were a third of the job's time with windows).
    for cap, group, other in (
        (max_per_item, C.ITEM_IDX, C.USER_IDX),
        (max_per_user, C.USER_IDX, C.ITEM_IDX),
    ):
        if cap is not None:
            binary = binary.repartition(parts, group).mapInArrow(
                partial(_cap_partition, group=group, other=other, cap=cap), _CAPPED_SCHEMA
            )
    return binary.drop("_h")


def _cap_partition(
    batches: Iterator[pa.RecordBatch], *, group: str, other: str, cap: int
) -> Iterator[pa.RecordBatch]:
    """Per `group` value, keep the `cap` distinct pairs with the smallest (hash, other)."""
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    table = pa.Table.from_batches(chunks)
    g, o, h = (table.column(c).to_numpy() for c in (group, other, "_h"))
    order = np.lexsort((o, h, g))
    g, o, h = g[order], o[order], h[order]
    # A repeated pair has the same hash, so after the sort its copies are neighbours.
    first = np.r_[True, (g[1:] != g[:-1]) | (o[1:] != o[:-1])]
    g, o, h = g[first], o[first], h[first]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    keep = rank < cap
    columns = {group: g[keep], other: o[keep]}
    for lo in range(0, int(keep.sum()), 1 << 20):
        hi = lo + (1 << 20)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(columns[C.USER_IDX][lo:hi], pa.int32()),
                pa.array(columns[C.ITEM_IDX][lo:hi], pa.int32()),
                pa.array(h[keep][lo:hi], pa.int64()),
            ],
            names=[C.USER_IDX, C.ITEM_IDX, "_h"],
        )


def item_similarity(
    pairs: DataFrame,
    *,
    measures: Sequence[str] = ("jaccard",),
    min_support: int = 2,
    top_k: int = 50,
    max_per_user: int | None = 500,
    max_per_item: int | None = 500,
    seed: int = 42,
    num_partitions: int = 0,
) -> DataFrame:
    """Top-K most similar items of every item, for each similarity measure.

    Parameters
    ----------
    pairs
        User-item pairs with `user_idx`, `item_idx`, `item_id` (for example the affinity
        frame); any positive interaction counts as 1.
    measures
        Names from :data:`recsys_spark.similarity.measures.MEASURES`.
    min_support
        Pairs co-occurring in fewer users are dropped.
    top_k
        Neighbours kept per item and measure; score ties go to the smaller item id.
    max_per_user, max_per_item, seed
        Downsampling caps, see :func:`cap_interactions`.
    num_partitions
        Partitions of both stages; 0 sizes them from the number of pairs.

    Returns
    -------
    DataFrame
        `item_idx`, `item_id`, `neighbour_idx`, `neighbour_id`, `measure`, `rank` (1 =
        most similar), `score` (double), `cooccurrence` (long: users with both items).
        Counts are taken after downsampling. Computed eagerly (the result is at most
        items x top_k x measures rows, held as a local checkpoint).
    """
    unknown = [m for m in measures if m not in MEASURES]
    if unknown or not measures:
        raise ValueError(f"unknown measures {unknown}; use some of {', '.join(MEASURES)}")
    if min_support <= 0 or top_k <= 0:
        raise ValueError(f"min_support and top_k must be positive; got {min_support}, {top_k}")
    spark = pairs.sparkSession
    capped = cap_interactions(
        pairs,
        max_per_user=max_per_user,
        max_per_item=max_per_item,
        seed=seed,
        num_partitions=num_partitions,
    ).persist()
    stats = (
        capped.groupBy(C.USER_IDX)
        .agg(F.count(F.lit(1)).alias("_n"))
        .agg(
            F.count(F.lit(1)).alias("n_users"),
            F.sum(F.col("_n") * F.col("_n")).alias("n_pairs"),
        )
        .first()
    )
    n_users, n_pairs = (int(stats["n_users"]), int(stats["n_pairs"] or 0)) if stats else (0, 0)
    items = pairs.select(C.ITEM_IDX, C.ITEM_ID).filter(F.col(C.ITEM_IDX).isNotNull()).distinct()
    # Catalogue-sized: one (index, id, count) row per item.
    catalogue = (
        capped.groupBy(C.ITEM_IDX)
        .agg(F.count(F.lit(1)).alias("_c"))
        .join(items, on=C.ITEM_IDX, how="inner")
        .toPandas()
    )
    item_counts, tie_rank = _catalogue_arrays(catalogue)
    parts = num_partitions or max(
        spark.sparkContext.defaultParallelism, math.ceil(n_pairs / PAIRS_PER_PARTITION)
    )
    blocks = capped.repartition(parts, C.USER_IDX).mapInArrow(
        partial(_block_cooccurrence, n_items=len(item_counts)), _BLOCK_SCHEMA
    )
    ranked = blocks.repartition(parts, C.ITEM_IDX).mapInArrow(
        partial(
            _rank_neighbours,
            measures=tuple(measures),
            item_counts=item_counts,
            tie_rank=tie_rank,
            n_users=n_users,
            min_support=min_support,
            top_k=top_k,
        ),
        _RANKED_SCHEMA,
    )
    # Materialise the (catalogue-sized) result so the cached capped pairs can be freed.
    ranked = ranked.localCheckpoint(eager=True)
    capped.unpersist()
    # The ids come from the catalogue already on the driver: no second scan of `pairs`.
    ids = F.broadcast(
        spark.createDataFrame(
            catalogue[[C.ITEM_IDX, C.ITEM_ID]], f"{C.ITEM_IDX} int, {C.ITEM_ID} string"
        )
    )
    neighbour_ids = ids.select(
        F.col(C.ITEM_IDX).alias(C.NEIGHBOUR_IDX), F.col(C.ITEM_ID).alias(C.NEIGHBOUR_ID)
    )
    return (
        ranked.join(ids, on=C.ITEM_IDX, how="inner")
        .join(neighbour_ids, on=C.NEIGHBOUR_IDX, how="inner")
        .select(
            C.ITEM_IDX,
            C.ITEM_ID,
            C.NEIGHBOUR_IDX,
            C.NEIGHBOUR_ID,
            C.MEASURE,
            C.RANK,
            C.SCORE,
            C.COOCCURRENCE,
        )
    )


def _catalogue_arrays(catalogue: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per item index: its count after downsampling, and its position in item-id order."""
    idx = catalogue[C.ITEM_IDX].to_numpy(dtype=np.int64)
    ids = catalogue[C.ITEM_ID].to_numpy(dtype=object)
    size = int(idx.max()) + 1 if len(idx) else 0
    counts = np.zeros(size, dtype=np.int64)
    counts[idx] = catalogue["_c"].to_numpy(dtype=np.int64)
    tie_rank = np.full(size, size, dtype=np.int64)
    tie_rank[idx[np.argsort(ids.astype(str), kind="stable")]] = np.arange(len(idx))
    return counts, tie_rank


def _block_cooccurrence(
    batches: Iterator[pa.RecordBatch], *, n_items: int
) -> Iterator[pa.RecordBatch]:
    """X_p^T X_p of one partition's users, as (item, neighbours[], counts[]) rows."""
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    table = pa.Table.from_batches(chunks)
    users = table.column(C.USER_IDX).to_numpy()
    items = table.column(C.ITEM_IDX).to_numpy()
    _, row, per_user = np.unique(users, return_inverse=True, return_counts=True)
    x = sp.csr_matrix(
        (np.ones(len(row), dtype=np.int32), (row, items)), shape=(len(per_user), n_items)
    )
    # Bound the temporaries of one product: cut the users into chunks of ~PAIRS_PER_CHUNK.
    chunk_of_user = np.cumsum(per_user.astype(np.int64) ** 2) // PAIRS_PER_CHUNK
    cuts = np.r_[0, np.flatnonzero(np.diff(chunk_of_user)) + 1, len(per_user)]
    total: sp.csr_matrix | None = None
    for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
        block = x[start:stop]
        product = (block.T @ block).tocsr()
        total = product if total is None else total + product
    assert total is not None
    total.setdiag(0)
    total.eliminate_zeros()
    total.sort_indices()
    yield from _csr_rows(total)


def _csr_rows(matrix: sp.csr_matrix) -> Iterator[pa.RecordBatch]:
    """The non-empty rows of a CSR matrix as Arrow list rows, without copying per row."""
    indptr = matrix.indptr.astype(np.int64)
    rows = np.flatnonzero(np.diff(indptr))
    for first in range(0, len(rows), ROWS_PER_BATCH):
        chunk = rows[first : first + ROWS_PER_BATCH]
        lo, hi = indptr[chunk[0]], indptr[chunk[-1] + 1]
        offsets = pa.array(np.append(indptr[chunk], hi) - lo, type=pa.int32())
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(chunk, type=pa.int32()),
                pa.ListArray.from_arrays(offsets, pa.array(matrix.indices[lo:hi], pa.int32())),
                pa.ListArray.from_arrays(offsets, pa.array(matrix.data[lo:hi], pa.int32())),
            ],
            names=[C.ITEM_IDX, "neighbours", "counts"],
        )


def _rank_neighbours(
    batches: Iterator[pa.RecordBatch],
    *,
    measures: tuple[str, ...],
    item_counts: np.ndarray,
    tie_rank: np.ndarray,
    n_users: int,
    min_support: int,
    top_k: int,
) -> Iterator[pa.RecordBatch]:
    """Sum the blocks of this partition's items, score every pair, keep the top K."""
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    table = pa.Table.from_batches(chunks)
    neighbours = table.column("neighbours").combine_chunks()
    lengths = pc.list_value_length(neighbours).to_numpy(zero_copy_only=False)
    owner = np.repeat(table.column(C.ITEM_IDX).to_numpy(), lengths)
    nbr = neighbours.flatten().to_numpy()
    cnt = table.column("counts").combine_chunks().flatten().to_numpy()
    item_ids, local = np.unique(owner, return_inverse=True)
    summed = sp.csr_matrix(
        (cnt.astype(np.int64), (local, nbr)), shape=(len(item_ids), len(item_counts))
    )
    summed.sum_duplicates()
    keep = summed.data >= min_support
    row = np.repeat(np.arange(len(item_ids)), np.diff(summed.indptr))[keep]
    j = summed.indices[keep].astype(np.int64)
    c_ij = summed.data[keep]
    if not len(row):
        return
    item = item_ids[row]
    for measure in measures:
        scores = similarity_scores(measure, c_ij, item_counts[item], item_counts[j], n_users)
        order = np.lexsort((tie_rank[j], -scores, row))
        sorted_rows = row[order]
        starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        top = order[rank < top_k]
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(item[top], pa.int32()),
                pa.array(j[top], pa.int32()),
                pa.array([measure], pa.string()).take(pa.array(np.zeros(len(top), np.int32))),
                pa.array(rank[rank < top_k] + 1, pa.int32()),
                pa.array(scores[top], pa.float64()),
                pa.array(c_ij[top], pa.int64()),
            ],
            names=[C.ITEM_IDX, C.NEIGHBOUR_IDX, C.MEASURE, C.RANK, C.SCORE, C.COOCCURRENCE],
        )
