"""A reason for every recommendation: the history item that explains it (`because_item_id`).

Item-based and EASE lists find theirs while scoring (the history item with the largest
contribution, `item_based.strongest_contributors`). ALS lists have no per-item
contributions; their reason is the history item closest to the recommended item in
factor space (cosine of the item factors), found here for every listed pair in one pass
per partition of users. The popularity fallback has no reason (null).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C

_IS_LIST = "_is_list"
_REASON_SCHEMA = "user_idx int, item_idx int, because_idx int"


def factor_reasons(lists: DataFrame, history: DataFrame, item_factors: DataFrame) -> DataFrame:
    """`lists` with `because_item_id`: for each (user, item), the item of the user's
    `history` whose factor vector has the largest cosine with the item's.

    Parameters
    ----------
    lists
        `user_idx`, `item_idx` and any other columns (kept).
    history
        `user_idx`, `item_idx`, `item_id` of the pairs that may explain (the training pairs).
    item_factors
        `item_idx`, `features` (catalogue-sized: collected and broadcast).

    Users without history in `history`, or items without factors, get null.
    """
    spark = lists.sparkSession
    catalogue = item_factors.select(C.ITEM_IDX, C.FEATURES).toPandas()
    size = int(catalogue[C.ITEM_IDX].max()) + 1 if len(catalogue) else 0
    rank = len(catalogue[C.FEATURES].iloc[0]) if len(catalogue) else 0
    unit = np.zeros((size, rank), dtype=np.float32)
    if size:
        vectors = np.vstack(catalogue[C.FEATURES].to_numpy()).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit[catalogue[C.ITEM_IDX].to_numpy()] = vectors / np.where(norms > 0, norms, 1.0)
    shared = spark.sparkContext.broadcast(unit)
    rows = (
        lists.select(C.USER_IDX, C.ITEM_IDX, F.lit(True).alias(_IS_LIST))
        .unionByName(history.select(C.USER_IDX, C.ITEM_IDX, F.lit(False).alias(_IS_LIST)))
        .filter(F.col(C.USER_IDX).isNotNull() & F.col(C.ITEM_IDX).isNotNull())
        .repartition(C.USER_IDX)
    )
    found = rows.mapInArrow(partial(_nearest, shared=shared), _REASON_SCHEMA)
    names = history.select(
        F.col(C.ITEM_IDX).alias("because_idx"), F.col(C.ITEM_ID).alias(C.BECAUSE_ITEM_ID)
    ).distinct()
    reasons = found.join(F.broadcast(names), on="because_idx", how="inner").drop("because_idx")
    base = lists.drop(C.BECAUSE_ITEM_ID) if C.BECAUSE_ITEM_ID in lists.columns else lists
    return base.join(reasons, on=[C.USER_IDX, C.ITEM_IDX], how="left")


def _nearest(batches: Iterator[pa.RecordBatch], *, shared: Any) -> Iterator[pa.RecordBatch]:
    chunks = [b for b in batches if b.num_rows]
    if not chunks:
        return
    unit = shared.value
    table = pa.Table.from_batches(chunks)
    users = table.column(C.USER_IDX).to_numpy()
    items = table.column(C.ITEM_IDX).to_numpy().astype(np.int64)
    listed = table.column(_IS_LIST).to_numpy(zero_copy_only=False)
    known = items < len(unit)
    users, items, listed = users[known], items[known], listed[known]
    order = np.lexsort((items, users))
    users, items, listed = users[order], items[order], listed[order]
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    out_user, out_item, out_reason = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        recs, hist = items[a:b][listed[a:b]], items[a:b][~listed[a:b]]
        if not len(recs) or not len(hist):
            continue
        hist = np.unique(hist)
        best = np.argmax(unit[recs] @ unit[hist].T, axis=1)  # ties: the smaller item index
        out_user.append(np.full(len(recs), users[a]))
        out_item.append(recs)
        out_reason.append(hist[best])
    if not out_user:
        return
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(np.concatenate(out_user), pa.int32()),
            pa.array(np.concatenate(out_item), pa.int32()),
            pa.array(np.concatenate(out_reason), pa.int32()),
        ],
        names=[C.USER_IDX, C.ITEM_IDX, "because_idx"],
    )
