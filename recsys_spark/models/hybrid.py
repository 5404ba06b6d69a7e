"""The hybrid model: a rank-normalised blend of two models' top-N lists.

Scores of ALS (dot products) and of item-based models (sums of similarities) live on
different scales, so the blend uses positions, not scores: position r of a list of
depth d scores (d - r + 1) / d (1 for the top item, 1/d for the last), an item missing
from a list scores 0, and the hybrid score is `w * als + (1 - w) * item_based`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.models.fallback import SOURCE_MODEL, SOURCE_POPULARITY

_A, _B = "_score_a", "_score_b"
_SRC_A, _SRC_B = "_source_a", "_source_b"


def _positions(
    lists: DataFrame, depth: int, score_col: str, source_col: str, because_col: str
) -> DataFrame:
    rank = F.col(C.RANK).cast("double")
    has_reason = C.BECAUSE_ITEM_ID in lists.columns
    because = F.col(C.BECAUSE_ITEM_ID) if has_reason else F.lit(None).cast("string")
    return lists.filter(F.col(C.RANK) <= depth).select(
        C.USER_ID,
        C.ITEM_ID,
        ((F.lit(float(depth)) - rank + 1.0) / float(depth)).alias(score_col),
        F.col(C.SOURCE).alias(source_col),
        because.alias(because_col),
    )


def blend_ranked_lists(
    first: DataFrame, second: DataFrame, *, weight: float, depth: int, n: int
) -> DataFrame:
    """Blend two models' lists by position; top-`n` per user.

    Parameters
    ----------
    first, second
        Lists with `user_id`, `item_id`, `rank` (1 = best) and `source` (`model` or
        `popularity`); rows deeper than `depth` are ignored.
    weight
        Weight of `first` in [0, 1]; `second` gets `1 - weight`.
    depth
        Positions that score: rank r scores (depth - r + 1) / depth.

    Returns
    -------
    DataFrame
        `user_id`, `item_id`, `rank` (1..n, ties by item id), `score` (the blended
        position score), `source`: `popularity` when every list the item came from
        was the popularity fallback, else `model`, and `because_item_id`: the reason of
        the list that contributed more (null when neither list carries one).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1]; got {weight}")
    if depth < 1 or n < 1:
        raise ValueError(f"depth and n must be positive; got depth={depth}, n={n}")
    a = _positions(first, depth, _A, _SRC_A, "_because_a")
    b = _positions(second, depth, _B, _SRC_B, "_because_b")
    joined = a.join(b, on=[C.USER_ID, C.ITEM_ID], how="full_outer")
    part_a = F.lit(weight) * F.coalesce(F.col(_A), F.lit(0.0))
    part_b = F.lit(1.0 - weight) * F.coalesce(F.col(_B), F.lit(0.0))
    score = part_a + part_b
    # The reason of the list that contributed more to the blended score (the other's
    # when that one has none).
    because = F.when(
        part_a >= part_b, F.coalesce(F.col("_because_a"), F.col("_because_b"))
    ).otherwise(F.coalesce(F.col("_because_b"), F.col("_because_a")))
    from_model = (F.col(_SRC_A) == SOURCE_MODEL) | (F.col(_SRC_B) == SOURCE_MODEL)
    source = F.when(F.coalesce(from_model, F.lit(False)), F.lit(SOURCE_MODEL)).otherwise(
        F.lit(SOURCE_POPULARITY)
    )
    order = Window.partitionBy(C.USER_ID).orderBy(F.col(C.SCORE).desc(), F.col(C.ITEM_ID).asc())
    return (
        joined.select(
            C.USER_ID,
            C.ITEM_ID,
            score.alias(C.SCORE),
            source.alias(C.SOURCE),
            because.alias(C.BECAUSE_ITEM_ID),
        )
        .withColumn(C.RANK, F.row_number().over(order))
        .filter(F.col(C.RANK) <= n)
        .select(C.USER_ID, C.ITEM_ID, C.RANK, C.SCORE, C.SOURCE, C.BECAUSE_ITEM_ID)
    )
