"""Item-item co-occurrence on the binarised user-item matrix, and top-K neighbours per item.

The co-occurrence matrix is C = XᵀX for the binary user x item matrix X, after the
seeded caps (caps.py). A SQL self-join would shuffle one row per (user, i, j) triple, and
summing per-partition products XₚᵀXₚ would shuffle every partial count (most of them
pairs seen once, dropped by the support filter afterwards). Here the plan is:

1. cap the pairs (two numpy shuffles), cache them, and bring the catalogue (per item:
   id, count, work) to the driver;
2. split the items into blocks of equal work and copy each user's history once to each
   block holding one of its items (at most min(n_u, blocks) copies per user);
3. one task per block computes complete rows of C for its items with a scipy sparse
   product, filters support, scores every measure and keeps the top K (blocks.py).

Only catalogue-sized data (one id, count and work per item) reaches the driver.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.similarity.blocks import (
    BLOCK,
    HISTORY_SCHEMA,
    RANKED_SCHEMA,
    balanced_blocks,
    block_neighbours,
    replicate_histories,
)
from recsys_spark.similarity.caps import USER_ITEMS, USER_LEAD, capped_by_user
from recsys_spark.similarity.measures import MEASURES

# Capped pairs per block beyond which the blocks outnumber the cores: a block's task
# holds the histories of its users (at most all capped pairs) in one Python worker.
PAIRS_PER_BLOCK = 10_000_000

_COUNT, _WORK = "_count", "_work"


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
        Downsampling caps, see :func:`recsys_spark.similarity.cap_interactions`.
    num_partitions
        Partitions of the caps and item blocks of the co-occurrence stage; 0 takes
        spark.sql.shuffle.partitions for the caps and sizes the blocks from the data
        (at least one per core).

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
    binary = pairs.select(
        F.col(C.USER_IDX).cast("int").alias(C.USER_IDX),
        F.col(C.ITEM_IDX).cast("int").alias(C.ITEM_IDX),
        F.col(C.ITEM_ID).cast("string").alias(C.ITEM_ID),
    )
    capped = capped_by_user(
        binary,
        max_per_user=max_per_user,
        max_per_item=max_per_item,
        seed=seed,
        num_partitions=num_partitions,
        carry=(C.ITEM_ID,),
    ).persist()
    # Catalogue-sized: one row per item. Work = sum of its users' history sizes = the
    # cost of its row of C; the user count is the sum of the one-per-user lead flags.
    catalogue: pd.DataFrame = (
        capped.groupBy(C.ITEM_IDX)
        .agg(
            F.count(F.lit(1)).alias(_COUNT),
            F.sum(USER_ITEMS).alias(_WORK),
            F.sum(USER_LEAD).alias(USER_LEAD),
            F.min(C.ITEM_ID).alias(C.ITEM_ID),
        )
        .toPandas()
    )
    counts, work, tie_rank = _catalogue_arrays(catalogue)
    n_blocks = num_partitions or max(
        spark.sparkContext.defaultParallelism, math.ceil(int(counts.sum()) / PAIRS_PER_BLOCK)
    )
    n_blocks = max(1, min(n_blocks, int((work > 0).sum())))
    block_of = balanced_blocks(work, n_blocks)
    keys = F.array(*[F.lit(k) for k in partition_keys(n_blocks)])
    histories = capped.mapInArrow(partial(replicate_histories, block_of=block_of), HISTORY_SCHEMA)
    ranked = histories.repartition(n_blocks, F.element_at(keys, F.col(BLOCK) + 1)).mapInArrow(
        partial(
            block_neighbours,
            block_of=block_of,
            measures=tuple(measures),
            item_counts=counts,
            tie_rank=tie_rank,
            n_users=int(catalogue[USER_LEAD].sum()),
            min_support=min_support,
            top_k=top_k,
        ),
        RANKED_SCHEMA,
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


def _catalogue_arrays(catalogue: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item index: count after the caps, row work, and position in item-id order."""
    idx = catalogue[C.ITEM_IDX].to_numpy(dtype=np.int64)
    size = int(idx.max()) + 1 if len(idx) else 0
    counts = np.zeros(size, dtype=np.int64)
    counts[idx] = catalogue[_COUNT].to_numpy(dtype=np.int64)
    work = np.zeros(size, dtype=np.int64)
    work[idx] = catalogue[_WORK].to_numpy(dtype=np.int64)
    ids = catalogue[C.ITEM_ID].to_numpy(dtype=object).astype(str)
    tie_rank = np.full(size, size, dtype=np.int64)
    tie_rank[idx[np.argsort(ids, kind="stable")]] = np.arange(len(idx))
    return counts, work, tie_rank


def partition_keys(n: int) -> list[int]:
    """One int key per partition p of `repartition(n, key)`: pmod(murmur3(key), n) = p.

    Hash partitioning of the block numbers themselves could send two blocks to one task
    and none to another; these keys give every block a task of its own.
    """
    found: dict[int, int] = {}
    key = 0
    while len(found) < n:
        found.setdefault(_spark_hash_int(key) % n, key)
        key += 1
    return [found[p] for p in range(n)]


def _spark_hash_int(value: int, seed: int = 42) -> int:
    """Spark's `hash()` of an int column (Murmur3 x86_32 of 4 bytes, seed 42), signed."""
    mask = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    k1 = rotl((value & mask) * 0xCC9E2D51 & mask, 15) * 0x1B873593 & mask
    h1 = (rotl(seed ^ k1, 13) * 5 + 0xE6546B64) & mask
    h1 ^= 4
    h1 = (h1 ^ (h1 >> 16)) * 0x85EBCA6B & mask
    h1 = (h1 ^ (h1 >> 13)) * 0xC2B2AE35 & mask
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1
