"""Top-N for every user from factor models, seen items excluded, in one pass over the scores.

Spark's `ALSModel.recommendForAllUsers` cannot exclude the items a user has seen; asking
it for `N + max_seen` items and anti-joining is slow. Here the item factors are
broadcast once and each executor scores its users block by block with a numpy matrix
product over Arrow batches (`mapInPandas`: a dense GEMM is what numpy does best).

Selection touches every score once with vectorised work instead of running a selection
algorithm over every score row: the item columns are cut into blocks of `width` items;
the N-th largest block maximum of a row is a safe threshold (N distinct items reach it,
so every top-N item does too); only the few scores at or above it are gathered and
ordered exactly by (score desc, item id asc).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C

# Scores per GEMM chunk: 2^24 float32 = 64 MB, so a Python worker stays well under 1 GB.
CHUNK_SCORES = 1 << 24
BLOCK_WIDTH = 64
_SEEN = "_seen"


def select_top_n(
    scores: np.ndarray, n: int, *, width: int = BLOCK_WIDTH
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `n` best columns of every row of `scores`, ties by column index.

    Entries equal to -inf (masked) are never selected, so a row can yield fewer than `n`.

    Parameters
    ----------
    scores
        float array (rows x columns); columns are in tie-break order.
    n
        How many columns per row.
    width
        Block width for the threshold; any value gives the same, exact result.

    Returns
    -------
    tuple of numpy arrays
        `rows`, `cols`, `values` of the selected entries, ordered by row, then score
        descending, then column ascending.
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    n_rows, n_cols = scores.shape
    floor = np.finfo(scores.dtype).min  # excludes -inf, keeps every finite score
    n_blocks = n_cols // width
    if n_blocks > n:
        # Block b holds the columns b, b + n_blocks, b + 2 n_blocks, ...: any disjoint
        # grouping gives a safe threshold, and this one reduces over whole contiguous
        # rows (elementwise maxima), far faster than a max over many short segments.
        head = scores[:, : n_blocks * width].reshape(n_rows, width, n_blocks).max(axis=1)
        # The n-th largest of the few block maxima: a selection over n_cols / width
        # values per row, not over every score.
        threshold = np.partition(head, n_blocks - n, axis=1)[:, n_blocks - n]
        threshold = np.maximum(threshold, floor)
    else:
        threshold = np.full(n_rows, floor, dtype=scores.dtype)
    flat = np.flatnonzero(scores >= threshold[:, None])
    rows, cols = np.divmod(flat, n_cols)
    values = scores.reshape(-1)[flat]
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.cumsum(counts) - counts
    position = np.arange(rows.size) - np.repeat(starts, counts)
    keep = position < n
    return rows[keep], cols[keep], values[keep]


def _score_partition(
    batches: Iterator[pd.DataFrame],
    item_factors: np.ndarray,
    column_of_idx: np.ndarray,
    item_idx: np.ndarray,
    item_ids: np.ndarray | None,
    user_extra: list[str],
    n: int,
    width: int,
) -> Iterator[pd.DataFrame]:
    n_items = item_idx.size
    chunk_rows = max(1, CHUNK_SCORES // max(item_factors.shape[0], 1))
    for batch in batches:
        for start in range(0, len(batch), chunk_rows):
            chunk = batch.iloc[start : start + chunk_rows]
            users = np.stack(chunk[C.FEATURES].to_numpy()).astype(np.float32, copy=False)
            scores = users @ item_factors.T
            scores[:, n_items:] = -np.inf  # zero padding up to a multiple of the block width
            seen = [s if s is not None else np.empty(0, np.int64) for s in chunk[_SEEN]]
            lengths = np.fromiter((len(s) for s in seen), dtype=np.int64, count=len(seen))
            if lengths.sum():
                seen_idx = np.concatenate(seen).astype(np.int64)
                seen_rows = np.repeat(np.arange(len(seen)), lengths)
                known = (seen_idx >= 0) & (seen_idx < column_of_idx.size)
                seen_cols = column_of_idx[seen_idx[known]]
                in_model = seen_cols >= 0
                scores[seen_rows[known][in_model], seen_cols[in_model]] = -np.inf
            rows, cols, values = select_top_n(scores, n, width=width)
            counts = np.bincount(rows, minlength=len(chunk))
            out = {C.USER_IDX: chunk[C.USER_IDX].to_numpy()[rows]}
            for name in user_extra:
                out[name] = chunk[name].to_numpy()[rows]
            out[C.ITEM_IDX] = item_idx[cols]
            if item_ids is not None:
                out[C.ITEM_ID] = item_ids[cols]
            out[C.RANK] = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts) + 1
            out[C.SCORE] = values.astype(np.float64)
            yield pd.DataFrame(out)


def recommend_for_all_users(
    user_factors: DataFrame,
    item_factors: DataFrame,
    seen: DataFrame,
    *,
    n: int,
    num_partitions: int | None = None,
    width: int = BLOCK_WIDTH,
) -> DataFrame:
    """Top-`n` items per user by factor dot product, items in `seen` excluded.

    Parameters
    ----------
    user_factors
        `user_idx` (int), `features` (array<float>), optionally `user_id` (passed through).
    item_factors
        `item_idx` (int), `features`, optionally `item_id`: then score ties break by
        `item_id`, else by `item_idx`. One row per item: collected and broadcast.
    seen
        `user_idx`, `item_idx` pairs never to recommend (duplicates and unknown items are
        fine). Users without factors here are ignored.
    n
        List length; a user gets fewer only when fewer unseen items exist.
    num_partitions
        Scoring tasks; defaults to the session's default parallelism.

    Returns
    -------
    DataFrame
        `user_idx`, [`user_id`], `item_idx`, [`item_id`], `rank` (int, 1 = best),
        `score` (double). Ties by item id, so reruns give identical lists.
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    spark = user_factors.sparkSession
    has_item_id = C.ITEM_ID in item_factors.columns
    item_cols = [C.ITEM_IDX, C.FEATURES] + ([C.ITEM_ID] if has_item_id else [])
    catalogue = item_factors.select(*item_cols).toPandas()  # catalogue-sized, not user-sized
    catalogue = catalogue.sort_values(C.ITEM_ID if has_item_id else C.ITEM_IDX, kind="stable")
    rank = len(catalogue[C.FEATURES].iloc[0]) if len(catalogue) else 0
    factors = (
        np.stack(catalogue[C.FEATURES].to_numpy()).astype(np.float32)
        if len(catalogue)
        else np.zeros((0, rank), np.float32)
    )
    # Zero rows up to a multiple of the block width keep the block reshape a free view.
    padded = -(-factors.shape[0] // width) * width
    factors = np.vstack([factors, np.zeros((padded - factors.shape[0], rank), np.float32)])
    idx = catalogue[C.ITEM_IDX].to_numpy(dtype=np.int64)
    column_of_idx = np.full(int(idx.max()) + 1 if idx.size else 0, -1, dtype=np.int64)
    column_of_idx[idx] = np.arange(idx.size)
    ids = catalogue[C.ITEM_ID].to_numpy(dtype=object) if has_item_id else None
    shared = spark.sparkContext.broadcast((factors, column_of_idx, idx, ids))

    user_extra = [C.USER_ID] if C.USER_ID in user_factors.columns else []
    # Both sides hash-partitioned the same way: the join adds no shuffle, and a fixed
    # partition count keeps AQE from coalescing this small frame into one task (one core).
    parts = num_partitions or spark.sparkContext.defaultParallelism
    histories = (
        seen.select(C.USER_IDX, C.ITEM_IDX)
        .repartition(parts, C.USER_IDX)
        .groupBy(C.USER_IDX)
        .agg(F.collect_set(C.ITEM_IDX).alias(_SEEN))
    )
    users = (
        user_factors.select(C.USER_IDX, *user_extra, C.FEATURES)
        .repartition(parts, C.USER_IDX)
        .join(histories, on=C.USER_IDX, how="left")
    )

    out_fields = [T.StructField(C.USER_IDX, T.IntegerType())]
    out_fields += [T.StructField(C.USER_ID, T.StringType())] if user_extra else []
    out_fields += [T.StructField(C.ITEM_IDX, T.IntegerType())]
    out_fields += [T.StructField(C.ITEM_ID, T.StringType())] if has_item_id else []
    out_fields += [
        T.StructField(C.RANK, T.IntegerType()),
        T.StructField(C.SCORE, T.DoubleType()),
    ]

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        factors_, column_of_idx_, idx_, ids_ = shared.value
        yield from _score_partition(
            batches, factors_, column_of_idx_, idx_, ids_, user_extra, n, width
        )

    if idx.size == 0:
        return spark.createDataFrame([], T.StructType(out_fields))
    return users.mapInPandas(score, T.StructType(out_fields))
