"""The nightly's chronological holdout: train before a cut, new pairs after it.

The honest protocol for a nightly system: models see only events before the cut (the
run date minus `holdout_days`) and are scored on the user-item pairs that first
appeared after it. Held-out users are split (seeded hash) into a validation half, which
picks the champion and the hybrid weight, and a test half, which the quality gate and
the report use, so the gate never scores on the data that chose the model.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C
from recsys_spark.errors import HoldoutError
from recsys_spark.models.affinity import user_item_affinity

ROLE = "role"
VALIDATION = "validation"
TEST = "test"


def day_end(run_date: date) -> datetime:
    """The first instant after `run_date` (UTC): events before it belong to the run."""
    return datetime.combine(run_date + timedelta(days=1), time())


def holdout_cut(run_date: date, holdout_days: int) -> datetime:
    """Start of the holdout window: the last `holdout_days` days up to `run_date`."""
    return day_end(run_date) - timedelta(days=holdout_days)


def events_as_of(interactions: DataFrame, run_date: date) -> DataFrame:
    """Interactions of `run_date` and before: a rerun of a past date sees the same data."""
    return interactions.filter(F.col(C.EVENT_DATE) <= F.lit(run_date))


def chronological_holdout(
    events: DataFrame, *, cut: datetime, validation_share: float, seed: int
) -> tuple[DataFrame, DataFrame]:
    """Split events at `cut` into training events and held-out pairs.

    Parameters
    ----------
    events
        Interactions (`user_id`, `item_id`, `event_ts`, `weight`, ...).
    cut
        Events before it train the models.
    validation_share
        Share of held-out users (seeded hash of `user_id`) given the role `validation`.

    Returns
    -------
    tuple[DataFrame, DataFrame]
        `(train_events, held_out)`: the events before `cut` with the columns of
        `events`, and the affinity pairs (`user_id`, `item_id`, `affinity`, `n_events`,
        `last_ts`, `role`) of events at or after `cut` whose user has training events
        and whose pair has none: what a model could have predicted.
    """
    if not 0.0 < validation_share < 1.0:
        raise ValueError(f"validation_share must be in (0, 1); got {validation_share}")
    before = F.col(C.EVENT_TS) < F.lit(cut).cast("timestamp")
    train_events = events.filter(before)
    after = user_item_affinity(events.filter(~before))
    train_pairs = train_events.select(C.USER_ID, C.ITEM_ID).distinct()
    bucket = F.pmod(F.xxhash64(F.col(C.USER_ID), F.lit(seed)), F.lit(10_000))
    role = F.when(bucket < int(validation_share * 10_000), F.lit(VALIDATION)).otherwise(F.lit(TEST))
    held_out = (
        after.select(C.USER_ID, C.ITEM_ID, C.AFFINITY, C.N_EVENTS, C.LAST_TS)
        .join(train_pairs, on=[C.USER_ID, C.ITEM_ID], how="left_anti")
        .join(train_pairs.select(C.USER_ID).distinct(), on=C.USER_ID, how="left_semi")
        .withColumn(ROLE, role)
    )
    return train_events, held_out


def holdout_counts(
    events: DataFrame, train_events: DataFrame, held_out: DataFrame
) -> dict[str, float]:
    """Events, training events, held-out pairs and users per role (small collects only)."""
    roles = {
        r[ROLE]: r
        for r in held_out.groupBy(ROLE)
        .agg(F.count(F.lit(1)).alias("pairs"), F.countDistinct(C.USER_ID).alias("users"))
        .collect()
    }
    return {
        "events": float(events.count()),
        "train_events": float(train_events.count()),
        "validation_users": float(roles[VALIDATION]["users"]) if VALIDATION in roles else 0.0,
        "test_users": float(roles[TEST]["users"]) if TEST in roles else 0.0,
        "held_out_pairs": float(sum(r["pairs"] for r in roles.values())),
    }


def check_holdout(counts: dict[str, float], run_date: date, cut: datetime) -> None:
    """Raise HoldoutError when the snapshot or either side of the holdout is empty."""
    if counts["events"] == 0:
        raise HoldoutError(f"no interactions on or before {run_date}: wrong --run-date?")
    if counts["train_events"] == 0:
        raise HoldoutError(
            f"no interactions before the holdout cut {cut}: lower nightly.holdout_days"
        )
    if counts["validation_users"] == 0 or counts["test_users"] == 0:
        raise HoldoutError(
            f"the holdout after {cut} has {counts['validation_users']:.0f} validation and "
            f"{counts['test_users']:.0f} test users: raise nightly.holdout_days or check --run-date"
        )
