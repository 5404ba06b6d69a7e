"""Drop repeated events of a batch without shuffling the batch itself."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys_spark import columns as C

# A row's position in the persisted batch (monotonically_increasing_id before the cache):
# it tells apart copies of an event that are equal in every other column.
ROW_ID = "_row_id"


def row_id() -> Column:
    """The `ROW_ID` of a row; stable only when computed before the frame is persisted."""
    return F.monotonically_increasing_id()


def repeated_key_hashes(events: DataFrame, *, key_col: str = C.EVENT_ID) -> DataFrame:
    """64-bit hashes (`_hash`) of the keys that occur more than once in `events`.

    The shuffle carries one long per row, not the row. A hash collision only marks a
    unique key as a candidate for `first_copies`, which compares the keys themselves.
    """
    return (
        events.groupBy(F.xxhash64(F.col(key_col)).alias("_hash"))
        .agg(F.count(F.lit(1)).alias("_n"))
        .filter(F.col("_n") > 1)
        .select("_hash")
    )


def first_copies(
    events: DataFrame,
    repeated_hashes: DataFrame,
    *,
    key_cols: tuple[str, ...] = (C.EVENT_DATE, C.EVENT_ID),
    file_col: str = C.SOURCE_FILE,
    row_col: str = ROW_ID,
) -> DataFrame:
    """The copy to keep of every repeated key: `key_cols` and its row id, as `_keep`.

    The first file by name wins, then the first row. `repeated_hashes` comes from
    `repeated_key_hashes` on the last of `key_cols`; keys that only share a hash with a
    repeated one are dropped here, by their count.
    """
    candidates = events.withColumn("_hash", F.xxhash64(F.col(key_cols[-1]))).join(
        repeated_hashes, on="_hash", how="left_semi"
    )
    return (
        candidates.groupBy(*key_cols)
        .agg(F.count(F.lit(1)).alias("_n"), F.min(F.struct(file_col, row_col)).alias("_first"))
        .filter(F.col("_n") > 1)
        .select(*key_cols, F.col("_first")[row_col].alias("_keep"))
    )


def drop_repeats(
    events: DataFrame,
    first: DataFrame,
    *,
    key_cols: tuple[str, ...] = (C.EVENT_DATE, C.EVENT_ID),
    row_col: str = ROW_ID,
) -> DataFrame:
    """`events` without the copies of repeated keys that `first` does not keep.

    `first` comes from `first_copies`. Rows stay in their partitions when `first` is
    small enough to broadcast (one probe per row; two probes on long keys, hash then row
    id, measured slower).
    """
    return (
        events.join(first, on=list(key_cols), how="left")
        .filter(F.col("_keep").isNull() | (F.col(row_col) == F.col("_keep")))
        .select(*events.columns)
    )


def deduplicate_events(
    events: DataFrame,
    *,
    key_cols: tuple[str, ...] = (C.EVENT_DATE, C.EVENT_ID),
    file_col: str = C.SOURCE_FILE,
    row_col: str = ROW_ID,
) -> DataFrame:
    """Keep one row per event key: from the first file by name, then the first row.

    Only keys that occur more than once are shuffled, first as 64-bit hashes and then,
    for the repeated ones, with their file and row id; every other row stays where it
    is. The input is scanned three times, so it should be persisted, and `row_col` must
    be stable across scans (see `row_id`). A caller that persists the small frames of
    `repeated_key_hashes` and `first_copies` in between lets Spark broadcast them and
    never shuffle `events` at all.

    Parameters
    ----------
    events
        Rows with `key_cols`, `file_col`, `row_col` (unique per row) and any others.

    Returns
    -------
    DataFrame
        The columns of `events`, one row per key.
    """
    hashes = repeated_key_hashes(events, key_col=key_cols[-1])
    first = first_copies(events, hashes, key_cols=key_cols, file_col=file_col, row_col=row_col)
    return drop_repeats(events, first, key_cols=key_cols, row_col=row_col)
