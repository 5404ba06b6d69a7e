"""Stable integer indices for string ids (Spark ALS needs int ids).

An id keeps its index forever: new ids get the next free numbers, in id order, so the
same batch always gets the same numbers.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def assign_new_indices(ids: DataFrame, index: DataFrame, *, id_col: str, idx_col: str) -> DataFrame:
    """Number the ids of `ids` that `index` does not hold yet.

    Parameters
    ----------
    ids
        Frame with a string column `id_col` (repeats allowed; nulls get no index).
    index
        The existing index: `id_col` (string), `idx_col` (int), possibly empty.

    Returns
    -------
    DataFrame
        `id_col`, `idx_col` for the new ids only, numbered from max(existing) + 1 upwards
        in `id_col` order.
    """
    new_ids = (
        ids.select(id_col)
        .filter(F.col(id_col).isNotNull())
        .distinct()
        .join(index.select(id_col), on=id_col, how="left_anti")
    )
    start = index.agg(F.coalesce(F.max(idx_col), F.lit(-1)).alias("_start"))
    # A dense global numbering needs one ordered pass over the new ids. Only a first load
    # has many (a million ids sort in seconds on one core); nightly batches add few.
    order = Window.partitionBy(F.lit(0)).orderBy(id_col)
    return new_ids.crossJoin(start).select(
        id_col,
        (F.col("_start") + F.row_number().over(order)).cast("int").alias(idx_col),
    )
