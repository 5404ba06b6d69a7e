"""User-item affinity: event weights summed per (user, item), optionally decayed by age.

The input of every model: co-occurrence binarises it, ALS weighs its confidence by it,
item-based scoring multiplies it by similarities.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C

SECONDS_PER_DAY = 86_400.0


def user_item_affinity(
    interactions: DataFrame,
    *,
    half_life_days: float | None = None,
    window_days: float | None = None,
    t_ref: datetime | None = None,
) -> DataFrame:
    """Sum event weights per (user, item), with optional time decay and training window.

    Each event contributes `weight * 0.5 ** ((t_ref - t) / half_life)` (no decay when
    `half_life_days` is None). `t_ref` defaults to the newest event timestamp in the
    input; with `window_days`, only events in `(t_ref - window_days, t_ref]` count.

    Parameters
    ----------
    interactions
        The interactions table (user_id, item_id, user_idx, item_idx, event_ts, weight).

    Returns
    -------
    DataFrame
        `user_idx`, `item_idx`, `user_id`, `item_id`, `affinity` (double), `n_events`
        (long), `last_ts` (newest event of the pair). Pairs whose affinity sums to 0 or
        less are dropped.
    """
    if half_life_days is not None and half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive; got {half_life_days}")
    if window_days is not None and window_days <= 0:
        raise ValueError(f"window_days must be positive; got {window_days}")
    events = interactions.select(
        C.USER_IDX, C.ITEM_IDX, C.USER_ID, C.ITEM_ID, C.EVENT_TS, C.WEIGHT
    ).filter(F.col(C.WEIGHT).isNotNull())
    if t_ref is not None:
        events = events.withColumn("_t_ref", F.lit(t_ref).cast("timestamp"))
    else:  # one-row aggregate, broadcast to every event
        events = events.crossJoin(events.agg(F.max(C.EVENT_TS).alias("_t_ref")))
    events = events.withColumn(
        "_age_s", (F.unix_micros("_t_ref") - F.unix_micros(C.EVENT_TS)) / 1e6
    )
    if window_days is not None:
        events = events.filter(
            (F.col("_age_s") >= 0) & (F.col("_age_s") < window_days * SECONDS_PER_DAY)
        )
    contribution = F.col(C.WEIGHT)
    if half_life_days is not None:
        decay = F.pow(F.lit(0.5), F.col("_age_s") / (half_life_days * SECONDS_PER_DAY))
        contribution = contribution * decay
    return (
        events.groupBy(C.USER_IDX, C.ITEM_IDX, C.USER_ID, C.ITEM_ID)
        .agg(
            F.sum(contribution).alias(C.AFFINITY),
            F.count(F.lit(1)).alias(C.N_EVENTS),
            F.max(C.EVENT_TS).alias(C.LAST_TS),
        )
        .filter(F.col(C.AFFINITY) > 0)
    )
