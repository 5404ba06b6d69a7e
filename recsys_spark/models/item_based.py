"""Item-based top-N: each candidate item scored from the user's history and item-item similarities.

score(u, j) = sum over the user's history i of affinity(u, i) x sim(i, j), where the
stored similarities hold only the top-K neighbours of each item. With every neighbour
kept, sim is symmetric and there is one answer; with top-K lists there are two ways to
read the truncated matrix (`neighbourhood`):

- `candidate` (default): the item-kNN rule of Sarwar et al. (2001), sim(i, j) counts
  when i is among the K nearest neighbours of the candidate j. Every candidate sums at
  most K terms, so an item that merely sits in many other items' lists (a popular hub)
  does not collect a term from each of them. On MovieLens-100K it is the better rule
  for every measure that ranks well (count, Jaccard, cosine; BENCHMARKS.md);
- `history`: sim(i, j) counts when j is among the K nearest neighbours of the history
  item i, as SAR (affinity x similarity) and Deshpande & Karypis (2004) score.

The matrix is catalogue-sized (items x K) whatever the number of users: it is broadcast
once, and each partition of users multiplies its sparse affinity block by it in scipy (a
sparse product in C instead of a join that would emit one row per user x history item x
neighbour). `item_based_lists` completes short or missing lists from the popularity
ranking (recsys_spark.models.fallback), so every user gets N items.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.models.fallback import recommend_with_fallback
from recsys_spark.similarity.top_k import top_k_per_group

USERS_PER_CHUNK = 4_096
# A block of scores holding more than this share of nonzero cells is selected from as
# dense arrays of at most DENSE_CELLS cells (`unseen_candidates`). Measured on 4,096
# users x 19,600 items: the two paths cost the same near 16% (1.9 and 2.1 s); at 6%
# (50 neighbours per item) the sparse path is 7x faster, at 43% (EASE's 500 weights per
# item) the dense one 2.6x.
DENSE_SHARE = 0.15
DENSE_CELLS = 8_000_000
NEIGHBOURHOODS = ("candidate", "history")

ENTRIES_PER_CHUNK = 2_000_000  # history entries looked up at a time by the reasons
_SCORED_SCHEMA = (
    "user_idx int, user_id string, item_idx int, rank int, score double, because_idx int, "
    "_model_pos int"
)


def recommend_item_based(
    affinity: DataFrame,
    similarity: DataFrame,
    *,
    measure: str,
    top_n: int = 10,
    neighbourhood: str = "candidate",
    seen: DataFrame | None = None,
    num_partitions: int = 0,
) -> DataFrame:
    """Top-`top_n` unseen items per user from their history and item-item similarities.

    Parameters
    ----------
    affinity
        `user_idx`, `user_id`, `item_idx`, `affinity` (> 0): every pair is history, and
        history items are never recommended.
    similarity
        Output of :func:`recsys_spark.similarity.item_similarity` (`item_idx`, `item_id`,
        `neighbour_idx`, `neighbour_id`, `measure`, `score`); the rows of `measure` are used.
    measure
        Which similarity to score with.
    top_n
        Items per user.
    neighbourhood
        `candidate`: sim(i, j) counts when i is in the candidate j's neighbour list
        (item-kNN); `history`: when j is in the history item i's list (SAR). The same
        when the lists hold every neighbour. See the module docstring.
    seen
        `user_idx`, `user_id`, `item_idx`: more pairs never to recommend, such as items
        seen before the affinity's window or only in events of no weight. They join the
        history with no weight: excluded, but adding nothing to a score.
    num_partitions
        Partitions of users; 0 keeps Spark's shuffle partitions.

    Returns
    -------
    DataFrame
        `user_idx`, `user_id`, `item_idx`, `item_id`, `rank` (1 = best), `score` (double),
        `because_item_id` (the history item contributing most to the score).
        Only items with a positive score are recommended; ties go to the smaller item
        id. Users whose history has no neighbours get no rows (see `item_based_lists`).
    """
    lists = _recommend_measures(
        affinity,
        similarity,
        {measure: ""},
        top_n=top_n,
        neighbourhood=neighbourhood,
        seen=seen,
        num_partitions=num_partitions,
    )
    return lists.drop(C.MODEL)


def _recommend_measures(
    affinity: DataFrame,
    similarity: DataFrame,
    models: Mapping[str, str],
    *,
    top_n: int,
    neighbourhood: str,
    seen: DataFrame | None,
    num_partitions: int,
) -> DataFrame:
    """`recommend_item_based` of every measure of `models` (measure -> model name) in one
    pass over the users; the lists carry the model name in `model`."""
    if top_n <= 0:
        raise ValueError(f"top_n must be positive; got {top_n}")
    if neighbourhood not in NEIGHBOURHOODS:
        raise ValueError(
            f"unknown neighbourhood '{neighbourhood}'; use one of {', '.join(NEIGHBOURHOODS)}"
        )
    sims = similarity.filter(F.col(C.MEASURE).isin(list(models))).select(
        C.MEASURE, C.ITEM_IDX, C.ITEM_ID, C.NEIGHBOUR_IDX, C.NEIGHBOUR_ID, C.SCORE
    )
    # Catalogue-sized (measures x items x top-K rows): safe to bring to the driver and
    # broadcast.
    matrices, tie_rank, ids = _similarity_matrices(
        sims.toPandas(), list(models), neighbourhood=neighbourhood
    )
    return recommend_from_matrices(
        affinity,
        {models[measure]: matrix for measure, matrix in matrices.items()},
        tie_rank,
        ids,
        top_n=top_n,
        seen=seen,
        num_partitions=num_partitions,
    )


def recommend_from_matrix(
    affinity: DataFrame,
    matrix: sp.csr_matrix,
    tie_rank: np.ndarray,
    ids: pd.DataFrame,
    *,
    top_n: int,
    seen: DataFrame | None = None,
    num_partitions: int = 0,
) -> DataFrame:
    """Top-`top_n` unseen items per user: score = history affinities x `matrix`.

    `matrix` is history item x candidate (indexed by `item_idx`, catalogue-sized: it is
    broadcast); `tie_rank` orders each item index by item id (ties go to the smaller
    id); `ids` holds the `item_idx`, `item_id` of every candidate. Used by the item-based
    models and EASE (recsys_spark.models.ease); the rest as in `recommend_item_based`,
    plus `because_item_id`: the history item with the largest contribution to the score
    (`strongest_contributors`).
    """
    lists = recommend_from_matrices(
        affinity,
        {"": matrix},
        tie_rank,
        ids,
        top_n=top_n,
        seen=seen,
        num_partitions=num_partitions,
    )
    return lists.drop(C.MODEL)


def recommend_from_matrices(
    affinity: DataFrame,
    matrices: Mapping[str, sp.csr_matrix],
    tie_rank: np.ndarray,
    ids: pd.DataFrame,
    *,
    top_n: int,
    seen: DataFrame | None = None,
    num_partitions: int = 0,
) -> DataFrame:
    """`recommend_from_matrix` for several models in one pass over the users.

    `matrices` maps a model name to its matrix (all of one shape); `tie_rank` and `ids`
    cover the items of all of them. The histories are shuffled once and each partition
    builds its users' history matrix once for every model (per model, the shuffle and
    the history build cost as much as the scoring at 2M events). Returns the columns of
    `recommend_from_matrix` plus `model`.
    """
    if not matrices:
        raise ValueError("no matrix to score with: give at least one model")
    spark = affinity.sparkSession
    names = list(matrices)
    shared = spark.sparkContext.broadcast(
        (
            [(m.indptr, m.indices, m.data) for m in matrices.values()],
            next(iter(matrices.values())).shape,
            tie_rank,
        )
    )
    history = affinity.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, C.AFFINITY)
    if seen is not None:
        no_weight = F.lit(0.0).alias(C.AFFINITY)
        history = history.unionByName(seen.select(C.USER_IDX, C.USER_ID, C.ITEM_IDX, no_weight))
    history = history.filter(F.col(C.USER_IDX).isNotNull() & F.col(C.ITEM_IDX).isNotNull())
    history = (
        history.repartition(num_partitions, C.USER_IDX)
        if num_partitions
        else history.repartition(C.USER_IDX)
    )
    scored = history.mapInArrow(partial(_score_users, shared=shared, top_n=top_n), _SCORED_SCHEMA)
    item_ids = F.broadcast(spark.createDataFrame(ids, f"{C.ITEM_IDX} int, {C.ITEM_ID} string"))
    reasons = item_ids.select(
        F.col(C.ITEM_IDX).alias("because_idx"), F.col(C.ITEM_ID).alias(C.BECAUSE_ITEM_ID)
    )
    models = F.broadcast(
        spark.createDataFrame(list(enumerate(names)), f"_model_pos int, {C.MODEL} string")
    )
    return (
        scored.join(item_ids, on=C.ITEM_IDX, how="inner")
        .join(reasons, on="because_idx", how="left")
        .join(models, on="_model_pos", how="inner")
        .select(
            C.USER_IDX,
            C.USER_ID,
            C.ITEM_IDX,
            C.ITEM_ID,
            C.RANK,
            C.SCORE,
            C.BECAUSE_ITEM_ID,
            C.MODEL,
        )
    )


def item_based_lists(
    affinity: DataFrame,
    similarity: DataFrame,
    popular: DataFrame,
    *,
    measure: str,
    top_n: int = 10,
    neighbourhood: str = "candidate",
    users: DataFrame | None = None,
    seen: DataFrame | None = None,
    num_partitions: int = 0,
) -> DataFrame:
    """Item-based top-`top_n` for every user, completed from the popularity ranking.

    Users whose history yields fewer than `top_n` positive scores (no neighbours, a
    tiny history, or no history at all) get the most popular items they have not seen
    after their item-based ones, as the ALS lists do (recsys_spark.models.fallback).

    Parameters
    ----------
    affinity, similarity, measure, top_n, neighbourhood, num_partitions
        As in :func:`recommend_item_based`.
    popular
        Output of :func:`recsys_spark.models.popularity.popular_items`.
    users
        `user_id` of every user to serve; default the users of `affinity`.
    seen
        `user_idx`, `user_id`, `item_idx`, `item_id`: every pair the user has seen, never
        recommended (see :func:`recommend_item_based`); default the pairs of `affinity`.

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `rank` (1..top_n), `score`, `source` (`model` or
        `popularity`), `because_item_id`.
    """
    lists = item_based_models(
        affinity,
        similarity,
        popular,
        models={measure: measure},
        top_n=top_n,
        neighbourhood=neighbourhood,
        users=users,
        seen=seen,
        num_partitions=num_partitions,
    )
    return lists.drop(C.MODEL)


def item_based_models(
    affinity: DataFrame,
    similarity: DataFrame,
    popular: DataFrame,
    *,
    models: Mapping[str, str],
    top_n: int = 10,
    neighbourhood: str = "candidate",
    users: DataFrame | None = None,
    seen: DataFrame | None = None,
    num_partitions: int = 0,
) -> DataFrame:
    """`item_based_lists` of several measures in one pass: the histories are shuffled,
    scored and completed from the popularity ranking once for all of them.

    `models` maps each measure to the name its lists carry in the `model` column (the
    nightly's `item_<measure>`); the other parameters as in `item_based_lists`. Each
    measure's rows equal its `item_based_lists` rows.
    """
    lists = _recommend_measures(
        affinity,
        similarity,
        models,
        top_n=top_n,
        neighbourhood=neighbourhood,
        seen=seen,
        num_partitions=num_partitions,
    )
    return recommend_with_fallback(
        lists,
        users if users is not None else affinity.select(C.USER_ID),
        (seen if seen is not None else affinity).select(C.USER_ID, C.ITEM_ID),
        popular,
        n=top_n,
        models=list(models.values()),
    )


def similar_items(similarity: DataFrame, *, n: int = 10) -> DataFrame:
    """Each item's `n` most similar items per measure: the product-page list.

    Returns
    -------
    DataFrame
        `item_id`, `measure`, `rank` (1..n), `similar_item_id`, `score`, and `source`
        (`behaviour` or `content`) when `similarity` has it.
    """
    if n <= 0:
        raise ValueError(f"n must be positive; got {n}")
    source = [C.SOURCE] if C.SOURCE in similarity.columns else []
    return similarity.filter(F.col(C.RANK) <= n).select(
        C.ITEM_ID,
        C.MEASURE,
        C.RANK,
        F.col(C.NEIGHBOUR_ID).alias(C.SIMILAR_ITEM_ID),
        C.SCORE,
        *source,
    )


def _similarity_matrices(
    rows: pd.DataFrame, measures: list[str], *, neighbourhood: str
) -> tuple[dict[str, sp.csr_matrix], np.ndarray, pd.DataFrame]:
    """One CSR history item x candidate matrix per measure (all of one shape), each
    item's position in item-id order, and the (item_idx, item_id) pairs of every item in
    the lists of any measure."""
    item = rows[C.ITEM_IDX].to_numpy(dtype=np.int64)
    nbr = rows[C.NEIGHBOUR_IDX].to_numpy(dtype=np.int64)
    size = int(max(item.max(initial=-1), nbr.max(initial=-1))) + 1
    source, target = (nbr, item) if neighbourhood == "candidate" else (item, nbr)
    score = rows[C.SCORE].to_numpy(dtype=np.float64)
    measure = rows[C.MEASURE].to_numpy(dtype=object)
    matrices = {}
    for name in measures:
        mine = measure == name
        matrices[name] = sp.csr_matrix(
            (score[mine], (source[mine], target[mine])), shape=(size, size)
        )
    ids = (
        pd.concat(
            [
                rows[[C.ITEM_IDX, C.ITEM_ID]],
                rows[[C.NEIGHBOUR_IDX, C.NEIGHBOUR_ID]].set_axis([C.ITEM_IDX, C.ITEM_ID], axis=1),
            ]
        )
        .drop_duplicates(C.ITEM_IDX)
        .reset_index(drop=True)
    )
    # The order of a measure's items among the union's is their order among its own.
    tie_rank = np.full(size, size, dtype=np.int64)
    order = np.argsort(ids[C.ITEM_ID].to_numpy(dtype=object).astype(str), kind="stable")
    tie_rank[ids[C.ITEM_IDX].to_numpy(dtype=np.int64)[order]] = np.arange(len(ids))
    return matrices, tie_rank, ids


def _score_users(
    batches: Iterator[pa.RecordBatch], *, shared: Any, top_n: int
) -> Iterator[pa.RecordBatch]:
    """Score one partition's users against each broadcast matrix (`_model_pos` = its
    position in the broadcast list)."""
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    arrays, shape, tie_rank = shared.value
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
    # Every seen pair as a 0/1 matrix: subtracting score x seen zeroes the seen pairs'
    # scores in one linear pass over the sparse structure (np.isin on the flattened
    # pairs sorted both sides and took two thirds of the kernel's time).
    seen = sp.csr_matrix(
        (np.ones(int(known.sum())), (row[known], items[known])), shape=history.shape
    )
    seen.data[:] = 1.0  # repeated pairs were summed
    for position, (indptr, indices, data) in enumerate(arrays):
        sim = sp.csr_matrix((data, indices, indptr), shape=shape)
        for start in range(0, len(user_idx), USERS_PER_CHUNK):
            stop = min(start + USERS_PER_CHUNK, len(user_idx))
            block = history[start:stop] @ sim
            r, j, s = unseen_candidates(block, seen[start:stop], top_n)
            r += start
            top, rank = top_k_per_group(r, s, tie_rank[j], top_n)
            if not len(top):
                continue
            because = strongest_contributors(history, sim, r[top], j[top])
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(user_idx[r[top]], pa.int32()),
                    user_ids.take(pa.array(r[top])),
                    pa.array(j[top], pa.int32()),
                    pa.array(rank, pa.int32()),
                    pa.array(s[top], pa.float64()),
                    pa.array(because, pa.int32(), mask=because < 0),
                    pa.array(np.full(len(top), position), pa.int32()),
                ],
                names=[
                    C.USER_IDX,
                    C.USER_ID,
                    C.ITEM_IDX,
                    C.RANK,
                    C.SCORE,
                    "because_idx",
                    "_model_pos",
                ],
            )


def unseen_candidates(
    block: sp.csr_matrix, seen: sp.csr_matrix, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and score of the positive unseen entries of `block` (users x
    candidates scores) that can be among a row's `k` best: every one of them, or, for a
    dense block, those scoring at least the row's k-th largest score (ties included), so
    that `top_k_per_group` picks the same top k from far fewer entries.

    Dense blocks (EASE's weights give each user scores on about half the catalogue) are
    scored as dense arrays in slices of rows: the sparse path's temporaries (the
    difference, its COO copy, the selection of every entry) cost more than the
    arithmetic there."""
    if block.nnz <= DENSE_SHARE * block.shape[0] * block.shape[1]:
        scores = (block - block.multiply(seen)).tocoo()
        keep = scores.data > 0
        return (
            scores.row[keep].astype(np.int64),
            scores.col[keep].astype(np.int64),
            scores.data[keep],
        )
    rows_at_once = max(1, DENSE_CELLS // max(block.shape[1], 1))
    parts = []
    for lo in range(0, block.shape[0], rows_at_once):
        dense = block[lo : lo + rows_at_once].toarray()
        masked = seen[lo : lo + rows_at_once].tocoo()
        dense[masked.row, masked.col] = 0.0
        if dense.shape[1] > k:
            kth = np.partition(dense, dense.shape[1] - k, axis=1)[:, dense.shape[1] - k]
            r, j = np.nonzero((dense >= kth[:, None]) & (dense > 0))
        else:
            r, j = np.nonzero(dense > 0)
        parts.append((r.astype(np.int64) + lo, j.astype(np.int64), dense[r, j]))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, block.dtype)
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def strongest_contributors(
    history: sp.csr_matrix, sim: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """For each pair (`rows[p]`, `cols[p]`): the history item h with the largest positive
    contribution `history[row, h] * sim[h, col]` to the pair's score (ties: the smaller
    item index), or -1 when nothing contributes positively. The reason of a
    recommendation: "because you liked h".

    `sim` is history item x candidate. Each pair looks its history items up in `sim`
    (a binary search among its sorted entries): the cost follows the histories'
    lengths, not the candidates' columns, which for EASE's weights hold thousands of
    entries for a popular item."""
    out = np.full(len(rows), -1, dtype=np.int64)
    if not len(rows) or not sim.nnz:
        return out
    if not sim.has_sorted_indices:
        sim = sim.sorted_indices()
    width = np.int64(sim.shape[1])
    # Every entry of `sim` as one sorted key (row-major position).
    keys = np.repeat(np.arange(sim.shape[0], dtype=np.int64), np.diff(sim.indptr)) * width
    keys += sim.indices
    lengths = np.diff(history.indptr)[rows]
    ends = np.cumsum(lengths)
    start = 0
    while start < len(rows):
        # pairs whose history entries add up to at most ENTRIES_PER_CHUNK (one at least)
        stop = max(
            start + 1,
            int(np.searchsorted(ends, ends[start] - lengths[start] + ENTRIES_PER_CHUNK, "right")),
        )
        chosen = history[rows[start:stop]]
        pair = np.repeat(np.arange(stop - start), np.diff(chosen.indptr))
        item = chosen.indices.astype(np.int64)
        wanted = item * width + cols[start:stop][pair]
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        found = keys[at] == wanted
        value = chosen.data[found] * sim.data[at[found]]
        pair, item = pair[found], item[found]
        keep = value > 0
        pair, item, value = pair[keep], item[keep], value[keep]
        order = np.lexsort((item, -value, pair))
        pair, item = pair[order], item[order]
        first = np.r_[True, pair[1:] != pair[:-1]] if len(pair) else np.zeros(0, bool)
        out[start + pair[first]] = item[first]
        start = stop
    return out
