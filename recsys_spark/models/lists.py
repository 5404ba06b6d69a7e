"""The recommendations table: the contract every model's top-N writes and evaluation reads.

One row per (model, user, rank): `user_id`, `item_id` (the original string ids),
`rank` (1 = best), `score`, `model`, `source` (`model` or `popularity` for the cold-start
fallback), `run_id`, and `because_item_id`: the item of the user's history that explains
the recommendation (null for the popularity fallback). Rankings break score ties by item
id, so reruns are identical.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_spark import columns as C
from recsys_spark.io import delta

SCHEMA = T.StructType(
    [
        T.StructField(C.USER_ID, T.StringType(), False),
        T.StructField(C.ITEM_ID, T.StringType(), False),
        T.StructField(C.RANK, T.IntegerType(), False),
        T.StructField(C.SCORE, T.DoubleType(), True),
        T.StructField(C.MODEL, T.StringType(), False),
        T.StructField(C.SOURCE, T.StringType(), False),
        T.StructField(C.RUN_ID, T.StringType(), True),
        T.StructField(C.BECAUSE_ITEM_ID, T.StringType(), True),
    ]
)
OPTIONAL = (C.BECAUSE_ITEM_ID,)  # null when the lists do not carry it


def write_recommendations(recs: DataFrame, path: str, model: str | Sequence[str]) -> dict[str, int]:
    """Replace the rows of `model` (one name, or several) in the recommendations table at
    `path` (one commit).

    `recs` must have the columns of SCHEMA (extra columns are dropped; an OPTIONAL one it
    lacks is null) and hold only rows of `model`. Other models' rows are left as they
    are. Returns the commit metrics.
    """
    rows = conformed(recs)
    models = [model] if isinstance(model, str) else list(model)
    return delta.replace_where(rows, path, delta.sql_in(C.MODEL, models), merge_schema=True)


def conformed(recs: DataFrame) -> DataFrame:
    """`recs` as the SCHEMA columns, in order and typed; an OPTIONAL column it lacks is
    null. ValueError when a required column is missing."""
    missing = [f.name for f in SCHEMA.fields if f.name not in recs.columns]
    if set(missing) - set(OPTIONAL):
        raise ValueError(f"recommendations lack the columns {missing}")
    return recs.select(
        *[
            (recs[f.name] if f.name in recs.columns else F.lit(None)).cast(f.dataType).alias(f.name)
            for f in SCHEMA.fields
        ]
    )
